from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


# Hand-written: the invariants of conversations that must hold whoever writes (coach_db's
# functions, the studio's plain ORM saves, other services' raw SQL, COPY), so they live in the
# database. coach_db/conversations.py explains each decision.
#
# - total_messages: counted by statement-level triggers on message (transition tables, so a
#   COPY or bulk insert updates each session once, not once per row). The count is the
#   triggers' alone: a new session starts at 0 and a direct write keeps the stored value
#   (Tortoise's save() writes every column, often from a stale object). Sessions are locked in
#   id order, so two bulk statements cannot deadlock. (Row-level triggers append ~12% faster
#   one message at a time but COPY 10x slower: each row rewrites its session row.)
# - ended_at / status: a CHECK ties them (ended iff not active). Ending without a time stamps
#   the database clock (read after the row lock, never before the last message); reopening
#   clears it.
# - duration_seconds: follows ended_at - started_at in whole seconds unless the writer sets it,
#   and a CHECK refuses a written value that does not match.
# - no message after the end: a message timestamped after its session's ended_at is refused,
#   and so is an ended_at before a message already there. Backfilling history (timestamps up to
#   ended_at, as the demo seed does) stays possible.
# Errors raised by the triggers use SQLSTATE 23514 (check_violation) with a constraint name,
# so drivers and Tortoise report them like CHECK constraints (IntegrityError).
#
# CHECK constraints are tested in alphabetical order of name: the new names sort after the
# older ones they overlap with, so those keep reporting first.

async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "conversation_session"
            ADD CONSTRAINT "conversation_session_ended_at_matches_status"
                CHECK (("status" = 'active') = ("ended_at" IS NULL)),
            ADD CONSTRAINT "conversation_session_duration_spans_start_to_end"
                CHECK ("duration_seconds" IS NOT DISTINCT FROM CASE
                    WHEN "ended_at" >= "started_at"
                    THEN floor(extract(epoch FROM "ended_at" - "started_at")) END);

        CREATE FUNCTION "conversation_session_guard"() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            last_message timestamptz;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                -- No message can reference a row not inserted yet: the count starts at 0,
                -- whatever the INSERT says; the message triggers count what arrives.
                NEW."total_messages" := 0;
            ELSE
                -- The message triggers' own updates skip this trigger (WHEN below), so this is
                -- a direct write: keep the count.
                NEW."total_messages" := OLD."total_messages";
                IF OLD."status" = 'active' AND NEW."status" <> 'active' AND NEW."ended_at" IS NULL THEN
                    -- Ending without a time: the database clock, read after the row lock (so
                    -- after any message that got the lock first), and never before the start or
                    -- the last message, which an ORM stamps with the application's clock.
                    SELECT max("timestamp") INTO last_message
                        FROM "message" WHERE "session_id" = NEW."id";
                    NEW."ended_at" := greatest(clock_timestamp(), NEW."started_at", last_message);
                ELSIF OLD."status" <> 'active' AND NEW."status" = 'active'
                        AND NEW."ended_at" IS NOT DISTINCT FROM OLD."ended_at" THEN
                    -- Reopened (an administrator's correction): it has not ended any more.
                    NEW."ended_at" := NULL;
                ELSIF NEW."ended_at" IS DISTINCT FROM OLD."ended_at" THEN
                    SELECT max("timestamp") INTO last_message
                        FROM "message" WHERE "session_id" = NEW."id";
                    IF last_message > NEW."ended_at" THEN
                        RAISE EXCEPTION 'Session % cannot end at %: it has a message at %.',
                                NEW."id", NEW."ended_at", last_message
                            USING ERRCODE = 'check_violation',
                                  CONSTRAINT = 'message_not_after_session_end',
                                  TABLE = 'conversation_session';
                    END IF;
                END IF;
            END IF;
            -- duration_seconds follows the times unless this write sets it; the CHECK
            -- conversation_session_duration_spans_start_to_end judges a value written by hand.
            IF (TG_OP = 'INSERT' AND NEW."duration_seconds" IS NULL)
                    OR (TG_OP = 'UPDATE'
                        AND NEW."duration_seconds" IS NOT DISTINCT FROM OLD."duration_seconds"
                        AND (NEW."started_at", NEW."ended_at")
                            IS DISTINCT FROM (OLD."started_at", OLD."ended_at")) THEN
                -- Capped at the column's maximum (68 years), so that an absurd end time fails
                -- the CHECK by name instead of with "integer out of range".
                NEW."duration_seconds" := CASE WHEN NEW."ended_at" >= NEW."started_at"
                    THEN least(floor(extract(epoch FROM NEW."ended_at" - NEW."started_at")),
                               2147483647)::int END;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER "conversation_session_guard_insert"
            BEFORE INSERT ON "conversation_session"
            FOR EACH ROW EXECUTE FUNCTION "conversation_session_guard"();
        -- pg_trigger_depth() is 0 for a statement sent by a client and 1 for the counter's
        -- UPDATE inside a message trigger, which needs no guarding.
        CREATE TRIGGER "conversation_session_guard_update"
            BEFORE UPDATE ON "conversation_session"
            FOR EACH ROW WHEN (pg_trigger_depth() = 0)
            EXECUTE FUNCTION "conversation_session_guard"();

        -- Each counting function is one statement: lock the sessions it touches in id order (so
        -- two bulk statements naming the same sessions queue instead of deadlocking), then add
        -- each session's change to its count on the latest row version (so concurrent writers
        -- never lose one). One statement rather than several: +25% appends per second.
        CREATE FUNCTION "message_count_inserted"() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            late record;
        BEGIN
            WITH added AS (
                SELECT "session_id", count(*) AS n, max("timestamp") AS last_message
                FROM new_rows GROUP BY "session_id"
            ), locked AS (
                SELECT "id" FROM "conversation_session"
                WHERE "id" IN (SELECT "session_id" FROM added)
                ORDER BY "id" FOR NO KEY UPDATE
            ), counted AS (
                UPDATE "conversation_session" s SET "total_messages" = s."total_messages" + a.n
                FROM locked JOIN added a ON a."session_id" = locked."id"
                WHERE s."id" = locked."id"
                RETURNING s."id", s."status", s."ended_at", a.last_message
            )
            SELECT * INTO late FROM counted WHERE last_message > "ended_at" LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'Session % is %: it ended at %, so a message at % cannot be added.',
                        late."id", late."status", late."ended_at", late.last_message
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'message_not_after_session_end',
                          TABLE = 'message';
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER "message_count_inserted"
            AFTER INSERT ON "message" REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION "message_count_inserted"();

        CREATE FUNCTION "message_count_deleted"() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- When a session is deleted its messages go by cascade after it: nothing to lock.
            WITH removed AS (
                SELECT "session_id", count(*) AS n FROM old_rows GROUP BY "session_id"
            ), locked AS (
                SELECT "id" FROM "conversation_session"
                WHERE "id" IN (SELECT "session_id" FROM removed)
                ORDER BY "id" FOR NO KEY UPDATE
            )
            UPDATE "conversation_session" s SET "total_messages" = s."total_messages" - r.n
            FROM locked JOIN removed r ON r."session_id" = locked."id"
            WHERE s."id" = locked."id";
            RETURN NULL;
        END $$;
        CREATE TRIGGER "message_count_deleted"
            AFTER DELETE ON "message" REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION "message_count_deleted"();

        -- Transition tables rule out UPDATE OF "session_id", so this runs for every UPDATE of
        -- messages and does work only for rows that moved to another session or time.
        CREATE FUNCTION "message_count_updated"() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            late record;
        BEGIN
            -- Per session: rows that arrived minus rows that left (nothing for in-place edits).
            WITH moved AS (
                SELECT "session_id", sum(n) AS n
                FROM (SELECT "session_id", 1 AS n FROM new_rows
                      UNION ALL SELECT "session_id", -1 FROM old_rows) moves
                GROUP BY "session_id" HAVING sum(n) <> 0
            ), locked AS (
                SELECT "id" FROM "conversation_session"
                WHERE "id" IN (SELECT "session_id" FROM moved)
                ORDER BY "id" FOR NO KEY UPDATE
            )
            UPDATE "conversation_session" s SET "total_messages" = s."total_messages" + m.n
            FROM locked JOIN moved m ON m."session_id" = locked."id"
            WHERE s."id" = locked."id";
            -- A row moved to another session or time must not land after that session's end.
            SELECT n."session_id", n."timestamp", s."status", s."ended_at" INTO late
                FROM new_rows n JOIN "conversation_session" s ON s."id" = n."session_id"
                WHERE n."timestamp" > s."ended_at"
                  AND NOT EXISTS (SELECT FROM old_rows o WHERE o."id" = n."id"
                                  AND o."session_id" = n."session_id"
                                  AND o."timestamp" = n."timestamp")
                LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'Session % is %: it ended at %, so a message at % cannot be added.',
                        late."session_id", late."status", late."ended_at", late."timestamp"
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'message_not_after_session_end',
                          TABLE = 'message';
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER "message_count_updated"
            AFTER UPDATE ON "message" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION "message_count_updated"();

        -- TRUNCATE fires no DELETE triggers: every count goes back to 0.
        CREATE FUNCTION "message_count_truncated"() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE "conversation_session" SET "total_messages" = 0 WHERE "total_messages" <> 0;
            RETURN NULL;
        END $$;
        CREATE TRIGGER "message_count_truncated"
            AFTER TRUNCATE ON "message"
            FOR EACH STATEMENT EXECUTE FUNCTION "message_count_truncated"();"""



async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TRIGGER "message_count_truncated" ON "message";
        DROP TRIGGER "message_count_updated" ON "message";
        DROP TRIGGER "message_count_deleted" ON "message";
        DROP TRIGGER "message_count_inserted" ON "message";
        DROP TRIGGER "conversation_session_guard_update" ON "conversation_session";
        DROP TRIGGER "conversation_session_guard_insert" ON "conversation_session";
        DROP FUNCTION "message_count_truncated"();
        DROP FUNCTION "message_count_updated"();
        DROP FUNCTION "message_count_deleted"();
        DROP FUNCTION "message_count_inserted"();
        DROP FUNCTION "conversation_session_guard"();
        ALTER TABLE "conversation_session"
            DROP CONSTRAINT "conversation_session_ended_at_matches_status",
            DROP CONSTRAINT "conversation_session_duration_spans_start_to_end";"""


MODELS_STATE = (
    "eJztW21z2rgW/isaf2k6QzMpTZqUvXNnHEK33E2gA2R3Z2/ueIQtQI0tuZLclOnNf19Jtv"
    "E7wQS4NJdPwbKOJD/nRec8Un4YHnWQy4/blHxDjEOBKRkizuUfowV+GAR6SP5Y1q0BDOj7"
    "SSfVIODY1XJ2SsDiKYkxFwzaQvaZQJcj2eQgbjPsi3Bqo08Q8FUXbCOQHgbQCYAg4IgBTO"
    "QvbiMCGabHalyH2nJgTKbrDxEQ/DVAlqBTJGaIyYH+/R/ZjImDviOuHn8YE4xcR/821CgW"
    "dpQkF5AJ5FhQGEoCffdZ+MU8HiSCkwSuq1Ca+xokQ3eWeOiHR9XRv7f0HBklhLPodiuW7R"
    "LxUXdUHz+2bOoGHkk6+3Mxk8jHvTERqnWKCGJQLlW2CRYo9NWSIqXFCgmBSLqECKRkHDSB"
    "gSuSD5ILSNoMy+r1R9awM7Iso6DfWCKlr6hJKkrZhlwq118/VUt403x7en568e796YXsop"
    "e5aDl/DKdOgAkFNTy9kfGo30MBrURtCahSaSLgRWDbM8g6JPA0ul25JEhsVEA5kc4hLT8h"
    "j3SM6zKo44YE68Q9FsAqi/4Wr6W8PetLZnvU/b3TAmGHO9Lu33y+7ow6Vy3pFp7vIrnAO2"
    "Jemr2rfk+1wjEkDiXIyftUhY48+N1yEZmKmXz8sEQfv5uD9idzcPThtRqZSucM40QvetFU"
    "b5TCMgqKvaqgpCsJrcAeKneBrGROQU4kehz/2Ja6Sn1j+NW9Cp+OXrVvB4NOb2SNujed4c"
    "i8+fzq9XP8hSHo9Ik7j/x0iTIWE6rpPM6/uhpTc9RRb5q6dZ5rPXqf09xiEPBHd/QJqEfw"
    "l7QiDTnlYsr0jEm/0V+GWhMMBLUIfbCgkwopcWuMZMYSkER5HTtIy23ACqKlPt8INhMgfx"
    "IFx5gs1bCgArqWJ3dNOEUlQblytysKPr3zbcrBT/KKPSlG4F7gjWW2IfOOeI0NcI98AdB3"
    "lQXtcCdMwHYCFudlcianDtxlomsBvhtfWkQA8AYkm0IDpFa/e/jjpNOqldblpHZn5Xuf4i"
    "XIplLyFVFNSRwQjRBVZcjkvjRnVnAV0f1IGcJT8huaF3LmHKhRNXkbDfOTgfsYW0/cmsQx"
    "Bh8WdVvaqOS3yy+WabZqb5vDtnnVMUqjwQZgHaaGeqHQ5qJgBt6BzEIG3fYoLKTH0L5/gM"
    "yxKky5Ote4jCQ//jZArt7tqiG/CUd5QYhr8GiTpkDLwFl85TW9fAskEhQnmlvNlIOrhGFK"
    "IVnNKnmpTisRSSJgEemTpoHkl86QpoEa+pfZBb5MDoh6pixusim0Z+Xk0maGrUk4RSxaZP"
    "qqZpEBwfPVg2zaGfF0iaf/L9zTh2bz3bvz5sm79xdnp+fnZxcni/20+GrZxnrZ/VXtrY10"
    "efU0Q8Woi9blp2LZ3bFTa2Tnt8POoKUd5o58NgejnnqMXEaRVWb7Uyv0l3XoqGUKiemo80"
    "o66jxPR8m5BCIlHMRIelK5O6RE9lkPG2EcOn+OMmRDjOTRjfnn6wzhcN3v/Rp3TyHfvu5f"
    "5iDPxLg6xE9G8MD/7TM9tAr/BwNHpnwBc8ujYbkNZITWcr8dcRQfA5lOIPCNqtMqhmzKHK"
    "XnNSJe8+T0YoWgp7pVxr3wZdYPPSSg2qWK8P9r2O+Vw5+WyXsgtgX4L3Ax31qJbfxjEhBb"
    "H/mNA+wKTPixmvafxcOTlEfeGa9+PL5qtb5wSsZ3Rok36g8GdPwF2UIaCL1HhDeArBIQse"
    "cNoFPWBjg+LqSNtQOqmmh5QM3HzpzfqQHyATWbQq7KPGWEDjTJ0zRJ6rz7mSV9xbn7Twb3"
    "ytV9xtLKuZPq2n6bheuCWimpXNO0S3XpmuZ5nq5dTSD3NSd7d0HQ6FIDRy3wMKO6oIyyZe"
    "C7cM4BJA6Y0Qf9RufN4EvgTBEvVrHbmKBmPYu5lRxca0wPlyf2KcA1lpSm+m+NZCzu/yLK"
    "oHzSdbJSznWyJOU6Kdx9cINpHXzj/pvBdxuma9wOrt9wOJGhxaUPiNmQIyCju5DhpwEcPM"
    "UiDC9cQu8iMJv7M5lcrZMGv11JI2+XaORtUSPprykoppoCyIm9CPvfNQ0QbUGWL02FkpIq"
    "pBr+EtF9VoHxR7TrJtRxuPE21H3FMcNo8uzCYqsq4nMukGf5jHp+LaqscoB9VtfeeoxOzd"
    "ZXRoX4QRXP8AxdEtTZ0guC+wy/YRIxY9THdsiBALzWDdKt7NyhNdfGPyd2QH899DNVXu4k"
    "kVIXQVJRiaXlcuCPpeC20I9T3TT6i/Q3e748mSCGHFU2qyOsFVPVZaeE/f51Jv5cdvMB5v"
    "bmsiNVoBUgO2GROUpM2TxDcL2701nJw9nJz352EvjOmpaQlTxYwj5bQskl68VlngJJ+tTV"
    "KB7zb8WIXeNq1Mumrrd6TUrfjyxhmuN7k9Usc3xB82mGeUg9RAnSPG/M+vIMH8zBEWUN8I"
    "DFDMjdmAs4mTQAC+QLVaJyoQ5YXxep5Y2O/DSnfCB+d0n8Ig/ikjS6o5or/gknlthnblKP"
    "3gCKlHyDCUeEY5V7tqQtUpXjYRKylrrHOrl18+x0FZb47LSaJVbvivfd6zLxaZm9rmmuMF"
    "fUF4gXuxfVjA85f6Ayvs8gn9Wr5nOC+3wjBbIpJU3sALXYX0Dv9voaTCgDQ/Pmuk6tk3eB"
    "s5Vc4GyJC5yVlJd6+6hfXS7EdlhcLlrSyqjYoG+k7XM8JSr2CJraGA915qG6ONSZB0s41J"
    "mHOvN5daaJGLZnRkmlGb1pLKs1YdLnqWqzGoZDfbdf9Z1ypdIrDtWpbUpknwuKda/3bCNr"
    "VU5VA+Go+wtEd0sHfhX/qVN9W736P3V2cFn9f3PavbEL5jX2/s1vZo9/A3FFq7M="
)
