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
    "eJztXetz2joW/1c0fEk6Q7IJzaNNd3eGEHrLbQIZIO2du9zxFbYAt0ZyJTsp083/vnrY+O"
    "3YBKib5UuLZR1Z/h2do/OS86M2Jway2GHTNUynfY+wU7sAP2oYzhH/kXK3DmrQtoN7osGB"
    "Y0t2h6KfhpYdx8yhUBdDTqDFEG8yENOpaTsmwYKghxFwZiaeAgiYAycTMEfzMaLAMA1gYn"
    "4P8XY+KnknfxuQPwsyBCiauAwx4BCgzyCeIkA4EbKQg4DpHIqnG0Tnj+djb/JBIzzCXQIm"
    "hCJzisFXtGAXcgD+4qYFiOtY5r0g502UPDAAsQGgrhMXO4wPAATS7BD0sLXg9wCikLkUjf"
    "D+34P2EFz3Ws1roBOozzRjfOjdBf8CewTv/V0HDKHl3X/Y1LyH+uLQXrwCc7jgUzc4+PyF"
    "+YP3GLiHlssfJaBxsfnNRZpDpohPjHKA/vMXbzaxgb4jJi5/1CYmsgz5W3Fa0PGBNNMQv/"
    "i/ggJ9tylijHOT+YN4Swe7liWWxsKWK6MmO3NQ5MVjHUQewKdJ6EZGZu74C9KdTc1aLOO1"
    "j6tTBB1kaNBZw9iio/1Vk8NHRFshIts1n/bSnHaw8172FRI01nRiuXMc9LcXzozgJYGpBH"
    "2KMF+afM68zaGuEHQxK08t+LKvVl3QRS23EI2BJtC1nOCd+ASCtpqmdXtDjYuFptUSqsSn"
    "CAm916RzyIQ0coGTAEzFFA7eNhqvX583jl6fvTk9OT8/fXP0hveV803eOn9UkwnQUkNJzD"
    "q/dbpDMSHCdZ3Sg6LhUdJwNaIFrA3Qj/I4yoUrfscx5yidD1HKGD8Mj/TQ/xHnjs+LPPb4"
    "DQF/Au2dy6DBN+tKXe3vte76/XZ3qA07N+3BsHlzu/fqOUzjL20IHektlhx+LB8oHjdn7J"
    "slMW0O2+JOQ7YuYq37Z6+iDFwOAj53hh+AuAR/9rptCTlhzpTKJwb9hn8KMeYboEM0zLUk"
    "NELr2m/1kZQC76+EsO6LroNMUQyTPC2QKSz35vV8jueKZG0gN1q+fVLAd1noqI2Rr0qwjw"
    "l4//FVfJvOldjG8cn5yZvXZydLQV225MmnL4txxNGcb9BJ0FszSPNQX5LFgOcTrhrw6EDM"
    "NYz7O9C9u74GBOtIWhrIKMiBOfyuWQhPnZmA/fQkB+9PzX7rQ7O/z3vFhKrr3WqoewmmeJ"
    "tpkh9t7M4lTzp8VpBPPo03HvVKbFmfCsznS6vf5hrnAigdPsJ3t1fy2rUNeX3Vvm6La2Vf"
    "jvCnTvvzBbg30cMIt/vNAb8l2bYK184K8CyuBgOOncX5tbQJi4rPkqDSHBpIH4Cbzoy4VE"
    "cXUntxO1tHGFKT1MHhYcK5KIL+6VEB+E+PMvEXt6IMCGzx4jZcQFPlbeOWmnNIF8KZAmTi"
    "u04r7RlbsfICnkS9jYK7eZSoyowZck7YiDKCl0wZI4vgqXSP972Nvg4Uo975ziz3UpWvKz"
    "afn7PlK9edJbny+6DXzbCzA5K4kW1yr/q/wDJZhXjzQ74X9zHGSAQj6gBOHET/enwHbMjY"
    "A6EG4/u+CDIwMPJezhjVirEjB2sBYMTS9nXW/k3zj7g6a133LuMmtBjgkrNLOKqTryFnST"
    "SMof71AVJDS9whDZLVN3lr3pjHWyCGU4m+eGPxfl6oq0XwPV/iUOA6UA53LSUiltatnhca"
    "00MEGgtRFIqR2aKLqYtgTzCMUI7QM6+xiGt5m1R69Kv8ECWjRGIUT4lxK416Puo6YznBqP"
    "XtxkX+X4Iiz9S32eEOzjrHTVG/xaz7gHp7tqN0Ke79uaS3R+W02Rp2PnELXXUY4Vbv5laY"
    "81fc3idzW1j0xgg3L5vdq15XtMIxxAbBqzlhbwvYk28zzcm3cWsyKltl4lFRyl086lePRy"
    "GO8irrIEy3hlWwHbOpMMN/EQb7mORy2CEOtLQ53zVhqk2cudslCVfyVlYS8KM4Y4+SGrjr"
    "ypQeEck9Ncc6dyJtB6DvwsL6KZ6H4VLf5uNPMsrAnUZaZffQ1wDgAASbgshRLme/ffiFpZ"
    "saV8xEPUSxvdV9HIf6OAnvpTu3kQHGi2iCmhvxiM95AR6o6aB3Kr9tIXXJzXrmpbCLWhlr"
    "ZoDvUZSMiUSptseIytvYAbIhf6sgqiGKHaIeoomwQxTgJLrvVanHR7RIOC0xUL1QwZ03zC"
    "8G7qO/evzWYCOh8GHpOIcXFX93lbkQ7a3moNW8atdStcEaYB2Ehnqh0Ma0YATePjcD+53W"
    "UEUy0uNkoahVprF36VG+/9hHFszIonmQ36hRXhDij5sMJbZV+LuPdMRnXEuJIsZ61PMCiF"
    "4wXaOhzk/GDm8pkRkUKMrAvND9A2Re8rcOZsQyRFEcJt5daEnLIhlCfNZIJSOJMseuzSCb"
    "7UJ8ldos6zkhvhDTEuBmZ4WjVJVODX+4abYOBh+ajdMzPy1pkQdED3Rhhqtii7ooMmXAFL"
    "uXZe0xwKBV1PGMZuuLlFicZVdYnCUKLFTJaakM2JLiWQmwbfGnL8pr1QZpCB0ElOossz9s"
    "NMEVCbJJrblKlC1MuAu2VjkWVyjYqtg5XpTSmWGiSqvMzzMCKMTAdC68qnuvJo1Q0LrurK"
    "IYXx8VqaThvTJVo7xXmXyzb1OnWIchczvbLJyHOhU7buFSL+0bTgSrQwuq2En8anaADamD"
    "xTVnltckjxpkHK5Yy7AlDUUvj+75R0Ll8VU2t9eQHo6lntc59K4iv5IV+ZQoY2GVBLVPW2"
    "llfDdo91U94wjfNvvDrrj0pFFkq5utDxdKFFfRy3kM8bXyeaZOPk9aq9jxTpFFGTLkkpRl"
    "ri5JqsyHtaQc238M823SpZVz3ev+5nePG6pRyCM6roxNGiHc2aS/uk0qDnESzaXlDkeEia"
    "p8NOK964iS1HsiSuEo0gkVYatVNF7j6ORNkXMQvFv2QQh5M1ZZjxwodqkyrnqYZvvOeu2f"
    "ExfLExhg7JqWY2J2KB7771qeRI5qez8e9y4uvjCCx6NaijTKFwZElkfzBUK+IszqwOKzx/"
    "qiDqQ1XKIif9tOftQ6LZr5jBDt0nRPp+lCxbTPTCllFPX+YnAXzi5FVlp67u7n+MTL1F6K"
    "UxxO+2V7xeE849NucRPwfc2IFkY7xKuYZugCPMyI9FU9axnYFlyoo/wz8iDvSLsZfHGNqX"
    "fEPuIgb+IBJV1lk2lB5arEdJdaqZKCq+e4pvL/EsaY3/9FuEFxo6tI+K+RE/5rHCWO0jHL"
    "nZbB1++/Hnw3sXRrd/3rAwYnXLXIHJVMUXHt7nD1UweGOTUdpV4Yh95CYLawZ9y4WsUMPi"
    "7EkeMcjhwnORJ+mwRjskMAMbIXsf63HQbwtiDNy+KXgT+FtMoskOmJaFRabbx1cRhqTE00"
    "ebZjsVEWsQVz0FyzKZnbpUJlmQNUmV2VlRj1AaaVmZFBvmPFMySj9NcJEoRVhr/WxM6MEt"
    "vUVQwEmCsdIdvIzq1Wc2n8Y2Q79FdDP+LlxTKJhFgI4gxPLEwXA3/MCTeFvm/qhtFfmr/R"
    "1PVkgigyhNssUlgFTdW8LGGvdx3RP5eduIK5u7lscxZIBvBOphNJJe4+5rXLncRzJ+pDPq"
    "ushCjlbiVUeSWknLJcFpMXLClKhK+fWZr/skPXGy3Tl+dzUiLN/rmd7Cizf0Do6QjzgMwR"
    "wUjGef2oL4vEgxnYJ7QOHkxnBvhuLKvl6oC6mIW+TfsqGVpe68hPx5R3gd+t19QncW2L5p"
    "x6+qrHJuXodSCCkgcmZggzU9ieokaUCBvPxCpqKXusYltv5AuFQtrLRuLDNJX2aa5MJkJf"
    "wJ9sJbwZ/8tVpU+VJAirXJEC6ZTghmkAMVnvC50TQsGgeXNdxteJi8BpIRE4zRGB0xT3Um"
    "4f5b3LJdkWnctlS5gZGRv0DV/7THzB3ZSZ2WBj3PmZO+9i52fuVsLOz9z5mc/zM5uImvqs"
    "lvbnVdSdeu6fVgn6POVtZsOw8++q5d9lfp0o27TN/jxRpRyKVct7NmG1CqEqgbDX/QWiu6"
    "GEX8ZJnbyD5VkndSp5snwd2e6X8Znkx/8BNA6obw=="
)
