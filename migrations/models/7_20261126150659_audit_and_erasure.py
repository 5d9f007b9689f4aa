from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Migration 7 (issue 13): the studio's audit trail and the receipts of erasures. The tables are
# Aerich's output; below them, by hand: the CHECK on actions, the per-install salt of the
# receipts' e-mail hashes, and the triggers that make both tables append-only.
#
# Append-only: UPDATE, DELETE and TRUNCATE of audit_event and erasure_receipt are refused
# (constraint names audit_event_append_only, erasure_receipt_append_only), for the studio, the
# package and raw SQL alike. One narrow exception: an erasure (coach_db/privacy.py) declares
# SET LOCAL coach_db.erasure = 'on' in its transaction and may then UPDATE the columns that can
# hold personal data (audit_event: actor_id, actor_email, subject_id, changes; erasure_receipt:
# erased_by): it redacts rows about the erased person rather than deleting them, so the trail
# still says that something was done, when, and by whom. Nothing else changes even then.
# (The table's owner can still disable a trigger or drop the table: this guards against the
# application and its staff, not against the database's owner.)


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "audit_event" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "created_at" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor_id" INT,
    "actor_email" VARCHAR(254),
    "action" VARCHAR(6) NOT NULL,
    "model" VARCHAR(50) NOT NULL,
    "row_id" BIGINT,
    "subject_id" INT,
    "changes" JSONB
);
CREATE INDEX IF NOT EXISTS "idx_audit_event_model_140cd9" ON "audit_event" ("model", "row_id", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_event_actor_i_0df092" ON "audit_event" ("actor_id", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_event_subject_51ae36" ON "audit_event" ("subject_id", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_event_action_ed6e8c" ON "audit_event" ("action", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_event_created_5aa5b8" ON "audit_event" ("created_at", "id");
COMMENT ON COLUMN "audit_event"."actor_id" IS 'Staff user id at the time (no FK)';
COMMENT ON COLUMN "audit_event"."actor_email" IS 'Staff e-mail at the time; NULL once erased';
COMMENT ON COLUMN "audit_event"."action" IS 'CREATE: create\nUPDATE: update\nDELETE: delete\nVIEW: view\nERASE: erase';
COMMENT ON COLUMN "audit_event"."model" IS 'Studio resource: user, scenario, ...';
COMMENT ON COLUMN "audit_event"."row_id" IS 'Primary key of the row (no FK)';
COMMENT ON COLUMN "audit_event"."subject_id" IS 'The person the row belongs to (user id, no FK); erasure sets it NULL';
COMMENT ON COLUMN "audit_event"."changes" IS '{field: [before, after]}; passwords only as \"changed\"';
COMMENT ON TABLE "audit_event" IS 'One thing a staff member did in the studio; the database refuses to change or delete it.';
        CREATE TABLE IF NOT EXISTS "erasure_receipt" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "email_hash" VARCHAR(64) NOT NULL,
    "counts" JSONB NOT NULL,
    "erased_at" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "erased_by" VARCHAR(300) NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_erasure_rec_email_h_a47a9a" ON "erasure_receipt" ("email_hash");
COMMENT ON COLUMN "erasure_receipt"."email_hash" IS 'HMAC-SHA256 of the lower-case e-mail, this install''s salt';
COMMENT ON COLUMN "erasure_receipt"."counts" IS 'Rows deleted per table';
COMMENT ON COLUMN "erasure_receipt"."erased_by" IS 'Who ran it: staff e-mail or CLI';
COMMENT ON TABLE "erasure_receipt" IS 'Proof that a person was erased, holding no personal data.';
        ALTER TABLE "audit_event" ADD CONSTRAINT "audit_event_action_valid"
            CHECK ("action" IN ('create', 'update', 'delete', 'view', 'erase'));
        -- One random value per install (two v4 UUIDs: 244 random bits), made here once.
        CREATE TABLE IF NOT EXISTS "erasure_salt" (
            "id" INT NOT NULL PRIMARY KEY DEFAULT 1 CONSTRAINT "erasure_salt_one_row" CHECK ("id" = 1),
            "salt" TEXT NOT NULL
        );
        COMMENT ON TABLE "erasure_salt" IS 'The salt of erasure_receipt.email_hash, random per install.';
        INSERT INTO "erasure_salt" ("salt")
            VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
            ON CONFLICT DO NOTHING;
        CREATE OR REPLACE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- Under an erasure, an UPDATE may change only the columns named by the trigger.
            IF TG_OP = 'UPDATE'
               AND coalesce(current_setting('coach_db.erasure', true), '') = 'on'
               AND to_jsonb(NEW) - TG_ARGV = to_jsonb(OLD) - TG_ARGV THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '% rows cannot be changed or deleted (% refused): the table is append-only.',
                TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation', CONSTRAINT = TG_TABLE_NAME || '_append_only';
        END $$;
        CREATE TRIGGER "audit_event_append_only" BEFORE UPDATE OR DELETE ON "audit_event"
            FOR EACH ROW EXECUTE FUNCTION append_only('actor_id', 'actor_email', 'subject_id', 'changes');
        CREATE TRIGGER "audit_event_no_truncate" BEFORE TRUNCATE ON "audit_event"
            FOR EACH STATEMENT EXECUTE FUNCTION append_only();
        CREATE TRIGGER "erasure_receipt_append_only" BEFORE UPDATE OR DELETE ON "erasure_receipt"
            FOR EACH ROW EXECUTE FUNCTION append_only('erased_by');
        CREATE TRIGGER "erasure_receipt_no_truncate" BEFORE TRUNCATE ON "erasure_receipt"
            FOR EACH STATEMENT EXECUTE FUNCTION append_only();
        CREATE TRIGGER "erasure_salt_append_only" BEFORE UPDATE OR DELETE ON "erasure_salt"
            FOR EACH ROW EXECUTE FUNCTION append_only();
        CREATE TRIGGER "erasure_salt_no_truncate" BEFORE TRUNCATE ON "erasure_salt"
            FOR EACH STATEMENT EXECUTE FUNCTION append_only();"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "erasure_salt";
        DROP TABLE IF EXISTS "audit_event";
        DROP TABLE IF EXISTS "erasure_receipt";
        DROP FUNCTION IF EXISTS append_only();"""


MODELS_STATE = (
    "eJztXW1T27oS/iuafIHOGC6kBVp6750JIT3NKQQmCe2Zc9LxUWwl8akjpZYNzfTy369e7P"
    "jd2CYJhvpLiyWtrOxKq91nV/LPxpzoyKT7LUc37M4twnbjFPxsYDhH7I+EWgU04GLh1/EC"
    "G45N0RzydipaNRxT24Ia73ICTYpYkY6oZhkL2yCYE1xhBOyZgacAAmrDyQTM0XyMLKAbOj"
    "Awq0OsnPVK3ou/dcjeBSkCFpo4FFFgE6DNIJ4iQBgRMpGNgGHv87frRGOvZ31v8kUjPMI9"
    "AibEQsYUg29oSU9FB+yHGyYgjm0at5ycFVnkjgKIdQA1jTjYpqwDwDlN98EVNpesDiALUs"
    "dCI7z796AzBBdX7dYF0AjUZqo+3ndrwX/ADsE7fyuAIrSq/dfCMm6httxfLF+BOVyyoeuM"
    "+ewHsxfvUHALTYe9irPGwcZ3B6k2mSI2MIsx6K+vrNjAOvqBKH/82ZgYyNTF31LSnI51pB"
    "o6/4v9yynQj4WFKGXSpF4n7tTBjmnyqbFciJnREI0ZU8TDvQJCL2DDJNZGeqbO+B+k2Zsa"
    "NZ/Ga+9XsxC0ka5Cew1984aLb6roPrS0JUdEuerRnhnTLrY/iLZ8BY1VjZjOHPvtF0t7Rv"
    "CKwJALfYowm5pszKzMthy+0PmoXLXgrX056/wmcroFaHQ0gY5p+7+JDcAva6hq72qosmWh"
    "qo2YKvEoAoveLdIYy/hqZAtOMGDKh7D3rtl8/fqkefD6+O3Rm5OTo7cHb1lbMd541cm9HI"
    "zPLdmV4Fn3t25vyAdEmK6TepAX3AsapkZUX7Q+98MyDkvhnNXYxhwlyyFMGZGH7pLue39E"
    "pePJIks8XoEvH197Zwpo8N08l0+7O+2bfr/TG6rD7mVnMGxdXu+8eozQ2I/WuY50J0uGPF"
    "Yv5K+bU/rdFDxtDTu8pilKl5HS3eNXYQGuOgFfusOPgD+CP696HcFyQu2pJd7otxv+yZcx"
    "2wBtomKmJaEemNdeqcdJseC9mRDUfeF5kLoUgyQPL8gEkbvjerzEM5dkYyA2WrZ9WoDtst"
    "CWGyOblWAXE/Dh06voNp25YpuHb07evH19/Ga1UFclWevTW4tRjqM526DjTG/PoJXF9RVZ"
    "hPFswFVjPNrjYw3y/T3o3VxcAII1JCwNpOeUwBz+UE2Ep/aMs/3oTQa/P7f67Y+t/i5rFV"
    "lUPbeqKetiQnE307g8OtiZC5l02aggG3ySbFzqUmJZnwrMlku732Ea5xRIHT7CN9fn4tlZ"
    "6OL5vHPR4c/Svhzhz93Ol1Nwa6C7Ee70WwNWJcRWRmrHOWQWVYO+xI6j8lrZhHmXz4qg0h"
    "IaCB+Amc6UOJaGToX2Yna2hjC0DKKA/f2Yc5GH+0cHOdh/dJDKf14VFoBvi+e34XyaKm8b"
    "15Yxh9aSO1OATDzXqdSesRUrz5dJ2NvIuZuHiaosmCGTxAJZlOCVUMbIJHgq3ONdd6NXgB"
    "TUe8+ZZV6q9HX55vM0W7503WlcKr8PrnopdrZPEjWyDeZV/w+YBq2QbH6K38V8jDHiYIQC"
    "4MRG1tf792ABKb0jlk7Zvs9BBgpG7o/TR4184sjgNWdgyNL2dNbuZeuPqDprX1ydRU1o3s"
    "EZExd3VCffAs4SLxhD7dsdtHQ1VkOaJK1tvGrenEdLIIZTwX3+i/nvc6GuNsG3bIpDzteB"
    "dLgbCYhYUjMlCxrTAgQqDVDkwsgWvImhcbDH74YrR+ia15jjWu4mlYx+Fe+iIErEe3GVGL"
    "PSLNdHXSeW4/eqbBcX+VVAkUfq23S4g4nOdhLUbz7r3qfenu0oXIpbbyzJ5eF12moPu5+Z"
    "hS4bjHD76vKam/PnzN4n8wW36PURbp21eudXPV4KxxDrBJdzwt7lsCffpZqT76LWZHhtFc"
    "GjwpQ1HvXc8SjEuFxmHgTp1jALtmM25Rb4MxGwx5NMCdvEhqY6Z7smTLSJU3e7OGEpb6XU"
    "Aj+ICvYgroF7jgjpER7ck2NUmBO5sAH6wS2sJ/E8dMfybD72Jr0Iu5NIq+weehoA7AF/U+"
    "AxytXot89+bukm4oqpXA9QbG92H0ZZfRhn75kzXyAdjJfhADUz4hEb8xLcWYaN3sv4tonk"
    "IzPrqRvCzmtlrFkAnkdREBMJU21PEJW3sRM4687YkhwOU1eZ0xJ/spgtbcs8Culmc2TJgh"
    "jcGfYskrwxMUxZzxaJgZl/+kSbQMA1zimeAEWVRbLVyR9DiMIMjnP3g8zK+YSWMf8ywlQX"
    "1blxu3lmzL33Zo9X6u/5FrxbYRzBScV+uwwy8fJ2a9BunXcaieplDWwdBLp6oayNbFgh9v"
    "aZxd7vtofJ/FVTTZTSfP7s91gNdm9PcxeWV3j7S5FbOhQdAIZT/akzl/LDpz4yYUqg2hXh"
    "peylOqJ79Eq53yRa35ERpj7SEBtxIwGoj7RQsjB6N16lWoHGD8Lz1xYRQUrIMy3d6NgdpG"
    "5+hQJmxNR53ikmbi00xTSPo/SP6qkgWC/SWNQZpLMaRa+UkaNkoOgBocWYm554EaaqdPbF"
    "x8tWe2/wsdU8OvYi/ya5Q9aexvcEmc+k8DxuyjcF5uaaOxRQaOY168MJMXmymI7Tk5iOYz"
    "lMMqu7UJB5RfGoGPO25NPnGexyg9S5DgJSdRbZHzYaQw7h2EJrlgGyg4R1PKPKcHeueIYU"
    "53hZSGcGiSqtMr/MiLChDfvUPdjipn0SC7QvumUU4+uDPMlqrFWqahR1lUnp8GzqBOswYG"
    "6nm4XzQKN8J5ocy82sCOZayHNBMp+Q/9XqggW0bMyfmbDcInGaJ+X80lq6LWgouqkqrn/E"
    "VR6bZfMFf1jvqZd1dl0feqnkoReLSGOhTA6IR1tpZXwz6PRlyvAIX7f6wx5/dFcjTwhptT"
    "+eyqVYRi9nCcTTyiepOvkkbq1i2z2oGRbIkK2kNHN1RVJlOawlqt/5Y5htk66snIur3m9e"
    "86ihGmZ5SMcVsUlDhLVN+txtUn5OmqiOVez8UZCoyqePPjg2z/q+JTzb1EIasThsVUbjNQ"
    "/evM1z1Ig1Sz9rJCojh1eQDfkuVcRVD9Js31lv/HviYHHICYwdw7QNTPf5a//byFqRo8bO"
    "z/ud09N/KMHjUSNhNYofDIg4gcAmCPmGMFWAyUaPtaUicfoCh1627eSHrdO8oe8QUR1efT"
    "i8GshXf2SIKiVv/pmxO3eUKTTTkmOuT+MTr0KyCU5xMFyb7hUH48MPu8UtwPY1PXz2wCbu"
    "oQSKTsHdjAhf1bWWwcKESxkrnJE7USPsZvCPo0/dWyxCDvImXlDQVTao6ieHC57WoZUqKT"
    "glwzUV/xcwxrz2L8INihpdeeC/Zgb81zyInValpjMtwl+v/Xr4u4mp27jpX+xROGGqRcSo"
    "RIiKaXebqR8F6MbUcHMdKGO9icBsuZgx46qMGXyYSyKHGRI5jEsk+GtigkmHACJkL2L+bx"
    "sGcLcg1Y3iF2F/AmmVRSDCE2FUWm68Cj9vOLYMNHm0Y7FREdEltdFclblLZQQV66DK4qrs"
    "ipF3nJUWRgp5LYpHrIzCF4DECKvM/kYL2zOLLAxNYiDAKHVKcyM7t5zNhfkfIau5X477IS"
    "8vEkkkxEQQp3hiQboI88eMcFPc90zdIPdX5m84dD2ZIAvp3G3mIaycpmpWlPDq6iKkf866"
    "UQVzc3nWYSIQAmCNDDsUSqzvy6tjJ9HYibwrq8xMCFPWM6HKM8HjW2AqrJLJc6YUxeDrR6"
    "bmv2zoOunU7CMZVtnjKNU+0xBlWwZCH+Dsw0B98KBRDsAeA2M+d0QvgGK4oDNiy+wzr8Md"
    "mnCmRxEHj22EoweVEyD7jbwiAbT/KxSs8NjwNYLl14D7NgH3Z3Iwv4TvcqiApgiZiwz54M"
    "zb/sHjXwdprDxeUiOJlRBHjSRWRhS/BpJYMgpbI4fPn9s1ZlVIIs8TqciDWdWXIG0rUbG+"
    "tGRNl5bkyE/8pQC2p7/CZKOgk7j5KAFp8m5ESoeXvKuXHoaUBmSOCEYiE9PLy6ShjE0Kdo"
    "mlCGYCg6riPKsCLAfTwAfaXsWRpLX2/HDWZ40Ubf3WizhfO7w4mbOP+0bPlrIHRe8K4GmD"
    "e1w9YGrw6DA/xU14FNbAMq9QtCgT/d7IZ3r4ai+aKxukqbLv0Dg3KE9OA95gK+FFeJ9vKH"
    "zvS4ywymfGoDUluGnogA/W/UzVhFhg0Lq8KJKNEF0CR7mWwFHGEjhKSAAR20eCsfNA/seK"
    "bIvpH6uSoDBSNuhLNvcp/4ypIc5O+BtjIcNlw5kgz+sQeYN/vEsaSOHlECiPZsyK+79CH6"
    "nlX3PVSfg7tfK7YPyWB6QbbMvglz1AfW7gMgtlzR8H09gGhrBtMHakX2+YahilUD+L25jv"
    "ZgiDkOZVVvYmlxCfge6HhJ8mIlSDUjUoVSdS/TozoU6kKmaJVjs3qIUsQ5s1EoAat0bJgm"
    "qg3+YhsCadDTU8Ui14JNW+SvcM042qSvnjZc+vbsLp44uqAIfd5i+QuxuKS6dcRZV1c2ra"
    "VVSVvDp1HUkYL+NTm/f/B0PcNt8="
)
