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
# hold personal data (audit_event: actor_id, actor_email, row_id, changes; erasure_receipt:
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
    "changes" JSONB
);
CREATE INDEX IF NOT EXISTS "idx_audit_event_model_140cd9" ON "audit_event" ("model", "row_id", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_event_actor_i_0df092" ON "audit_event" ("actor_id", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_event_action_ed6e8c" ON "audit_event" ("action", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_event_created_5aa5b8" ON "audit_event" ("created_at", "id");
COMMENT ON COLUMN "audit_event"."actor_id" IS 'Staff user id at the time (no FK)';
COMMENT ON COLUMN "audit_event"."actor_email" IS 'Staff e-mail at the time; NULL once erased';
COMMENT ON COLUMN "audit_event"."action" IS 'CREATE: create\nUPDATE: update\nDELETE: delete\nVIEW: view\nERASE: erase';
COMMENT ON COLUMN "audit_event"."model" IS 'Studio resource: user, scenario, ...';
COMMENT ON COLUMN "audit_event"."row_id" IS 'Primary key of the row (no FK)';
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
            FOR EACH ROW EXECUTE FUNCTION append_only('actor_id', 'actor_email', 'row_id', 'changes');
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
    "eJztXW1z2joW/isaviSdIdmENkmb7u4MIfSWbUIyQNo7d7njK2wBbo1EJTsp081/3yPZxu"
    "+OTYB1s3xpsaQjy+foHD3nxc7P2owZxBKHTccw7fY9oXbtHP2sUTwj8COlt45qeD4P+mSD"
    "jUeWGo7lOI0sB46EzbEupxxjSxBoMojQuTm3TUYlwQ0lyJ6adIIwEjYej9GMzEaEI8M0kE"
    "mhj0A7zMreq98GhnthQRAnY0cQgWyG9CmmE4IYEBGL2ASZ9qG8u8F0uD3MvckbDemQdhka"
    "M07MCUXfyEKcqwngwU0LMce2zHtJDk2cPQiEqYGwrjOH2gImQJLT4hDdUGsBfYhwLBxOhn"
    "T/r357gK5uWs0rpDOsTzVjdOj1on+gPUb3/qojQciy929zbt5jfXE4X7xCM7yApRvAfHhg"
    "uPGeQPfYcuBWkjUONb87RLPZhMDCODDo339Cs0kN8oMIefmzNjaJZajfrqQlHUykmYb8Bf"
    "9KCvJjzokQIE3hT+JtHepYltwai7naGTU1GJiiLh7rKHIDWCbjm5pZbrW1z6tzgm1iaNhe"
    "w9xy4PybpqaPqJ/LEdWu+bQX5qRD7Q9qrNzlI01nljOjwfj5wp4yuiQwXWWcEArbB9YMbT"
    "Z3pDLKVXmq6+unuzOCIe6WCNEYZIwdyw6eCRYQtNU0rXsz0GDralotoe4+RUgxvSYdWCY1"
    "BpRCMWAil3DwrtF4/fqscfT69O3Jm7Ozk7dHb2GsWm+y6+zRXUzALXcqxbPOb53uQC6IgT"
    "1ybZVseFQ0oOpaINqA+1EZR6VwCT22OSPpcohSxuRheKSH/o+4dHxZ5InHbwjkE1jYXAH1"
    "v1uX7tX+Xuuu12t3B9qgc93uD5rXt3uvniM0eGhD2jFvs+TIY3lDebuZEN8txdPmoC17Gq"
    "p1EWvdP30VFeByEvSlM/iI5CX646bbVixnwp5wdcdg3OAPqcZwSNlMo2DJsBHa136rz0ml"
    "8P5OCNun6D7IVMUwydMKmSJyb13Pl3iuStb66jCEI44jOAmx7R5esCvRPmXow6dX8aM0V2"
    "Mbx2/O3rx9ffpmqajLljz99HUxznEyg0M0yfTWFPM8ri/JYoyHBVeN8eRArjXM9/eoe3d1"
    "hRjViUIDxCgogRn+oVmETuypZPvJmxx+f272Wh+bvX0YFVOqrtfVcPsSQvEO06Q82tSZKZ"
    "l0YFUYFp8mG496JbGszwTmy6XVa4PFOUeuDR/Su9tLde3MDXV92b5qy2sXAw7p5077yzm6"
    "N8nDkLZ7zT50KbGtIrXTAjKLm8FAYqdxeS1xW1H1WRJUWkJ9hdMB3grmcJ2cK+sFWFgnFH"
    "OT1dHhYcIBKML9k6MC7D85yuS/7IoKIMDLxTFcQFPlY+OWmzPMF9LhQWzsuzcrnRlbQXkh"
    "VKe8OJEUyr/6N90MOBeQxLGcCQ7Wf5BligrJ5qd6LoCyIyL90jrCY5vwPx/fozkW4oFxQ8"
    "DxIv1NgYbewxnDWjGh5fBfMjAC6HzV2L9u/h7XmtbVzUUcqckJLkBc0h8afwthctkwwvq3"
    "B8wNLdHDGixrbLJr1pjFWzDFE8V9+cTy+byoR4vRe8IFlnztu35dLSU4kjasnhcl0UMEmg"
    "hRFAqXzOUQU5d+fzCN1EHsoTgqQxyeLUwPhJSfomTAQM7iGTEAA9xzhdbofodmrW/X/f5/"
    "8b2fieSzvWoQne2kmN9iIDKg3h5EUcj13l9LentUT5utQeczAEF3wJC2bq5vJWq8BFjJZn"
    "MJHI0hbV40u5fgsEIrHmFqMLoa1n9XALa8y0Qt7+KgJapbZcIeUcpd2ONXD3sQ4PIq+yBM"
    "t4ZdsB3YVFjgv4iAfZ7kSthmNra0GZyaOBUTZ552ScKVvJWVFPwoLtijpAXuOiq7w2Sex1"
    "1jHXyVuY3ID4mwtngSBsw2HO5jPriTUYbdaaRVdg99C4AOUHAoyHTVcvXbZ79Euqnhq0yu"
    "hyi2t7uP46w+TrL3wpnNiYFGi2iuEkA8gTUv0AM3bfLeTXVaxL0EWC+8bGZRlLFmAfgeRb"
    "lAeoxqe4KoPMYOOBvytwpyNUSx46jH0UTYIcrgJHc/uFn/T2SRcFpiTPVCBXfeNL8Ycx/9"
    "3eO3BgcJxw9Lxzm8qeDZ3QC5bG81+63mZbuWag3WwNZ+aKoXytqYFYywtwcwsNdpDdxIRn"
    "qcLBS1ygR7Fx7lh089YuGMZI3H8mt3lhfE8cdNhhLbbuFOj+gEVlxLiSLGRtTzAoheGZDG"
    "Q4OfjB3ecqYC9VhWBM0B2QBaeMDCyzHW0ZRZhqyPoszrxZZCFskQ4rNmKhlJVKlcbYrFdB"
    "fiq9RhWc8J8YWElmBudvIxSlXpDOTH62broP+x2Tg59bNfFnsg/ECXMNzN6ddlvaFApjy9"
    "LGtPIIGtoo5nNClcJJN/mp3IP03k8d3qw1IZsCXFsxJg25JPT1ZaugekIW0Qck1nmfNhow"
    "muSJBNWc1Vomxhwl2wtcqxuELBVleco0UpmxkmqrTJ/DJliGOKTPvcK8D2Sp8YR62rziqG"
    "8fVRkYINGJVpGlVfZfLNPqZOQYchuJ0NC2ehQcUq7x3upX3DiWC3ft2tqZG/mh00x9ym8h"
    "qE5TWpqvOMOvu1TFsSKHp5dM8/kiYPdtlsvob0cCz1vM6pd4XflSz85swFC6skqH3aShvj"
    "u36755bNDeltszfoyktPG2W2utn6eO6q4ip2OU8gvlU+y7TJZ0m0Sm3vhaKoQAagSVlwdU"
    "lSZTmsJeXY/n2Qj0mXKOfqpvubPzwOVKMsj9i4Mpg0QrjDpL86JpXv8zHN4eVq8MNEVa7A"
    "/+DY8mW6eyZL4TjRGZdhq1UsXuPozdsi5fYwLLveXnXGCriJjeUpVcZVD9Ns31mv/X3sUF"
    "Xoj0aOadkmFYfytv+s5WnksLb383Hv/PyrYHQ0rKVoo3pgxEZfiQ4OhM2+ESrqyILVU31R"
    "RwoNlyj83raTH0WnRTOfEaJdmu7pNF2omPaZKaWMot5fjN2Fs0uRnZaeu/vf+MTL1F6KUx"
    "xO+2V7xeE849NucRPBuWZEC6Nt5lVMC3KOHqZM+aoeWkZzCy/ct7qn7EH1KNyMvjrGxHvb"
    "OuIgb+IGJV1lU2hB5ari6S61UiUDV89xTdX/JcCYP/5FuEFx0FUk/NfICf81jhJvbAnLmZ"
    "Thrz9+PfzdxNat3fWuDgQeg2lROSqVogLrboP5qSPDnJi2a14EsN4iaLqYTwFcrQKDjwtJ"
    "5DhHIsdJiYSfJiGY7BBAjOxF7P9thwG8I0jzsvhl2J9CWmURqPRENCrtHrx1+TLUiJtk/G"
    "zHYqMiEgthk5k252w2LxUqy5ygyuKqrMa43+JZWRgZ5DtRPEMzSr8EnyCsMvtrTWpPOZub"
    "uhsDQeZKr5Bt5OR2d3Np/sfIdtxfjfsRLy+WSWTMIphmeGJhuhjzR0C4Ke77UDfM/SX8ja"
    "aux2PCiSHdZpnCKghV87KENzdXEftz0YkbmLvrizaIQAkABpl2JJW4+2bULncSz52434tZ"
    "ZSdEKXc7oco7IeUty2UxecGSokT4+pml+S87dL3RMn31fk5KpNl/byc7yuy/IPR0hLnPZo"
    "RRouK8ftRXROLBAu0zXkcPpj1FcBqrark64g4Voc+UvkqGltc689Mx5V3gd+s19Um+tmVz"
    "Tj191WOTavY6kkHJA5MKQoUpsaesEWUS45nUjVqqEatg6418CE9qe9lIfJim0j7NpSlk6A"
    "v5i62EN+N/uar0WyUJwipXpGA+YbRhGkgu1vsQ5Jhx1G9eX5XxdeIqcFJIBU5yVOAkxb1U"
    "x0d573JJtkXnctkSFkbGAX0Ne1/Ij3mbKjMbHIw7P3PnXez8zN1O2PmZOz/zeX5mk3BTn9"
    "bS/tKG21PP/SsbwZinvM1sNuz8u2r5d5lfJ8qGttmfJ6qUQ7Fqec8mUKtUqhIc9oa/QO5u"
    "KOGX8aZO3ovlWW/qVPLN8nVku1/GZ5If/wtLJQrG"
)
