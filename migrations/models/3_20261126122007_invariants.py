from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


# The version column comes from `aerich migrate`; the rest is hand-written. Invariants that must
# hold whoever writes (coach_db's functions, the studio, raw SQL, COPY), so they live here;
# coach_db/conversations.py and the README explain them.
#
# - A session that is not active accepts no new message, unless the transaction declared an
#   explicit backfill (SET LOCAL coach_db.backfill = 'on', as the demo seed and imports do);
#   a backfilled message must still not be timestamped after the session's end. Before, only
#   the timestamp was compared, and a message's default timestamp is its transaction's start:
#   a transaction that began before end_session committed could add a message after the end.
#   Checked on the locked, latest session row, so a concurrent end is always seen.
# - conversation_session.version: +1 on every direct write (the message counters' updates do
#   not count). A write that sets version to anything but the stored value is refused
#   (conversation_session_version_current): Tortoise's save() writes the version it read, so a
#   stale object can no longer write its old status over a newer one. Raw SQL that does not
#   mention version is not checked.
# - user.email is stored lower-case and trimmed (CHECK user_email_lower_trimmed): a raw-SQL
#   'Boss@Example.com' could never sign in. Existing rows are fixed first; if two would then
#   share an address, the migration stops and names their ids (nothing is changed).
# - The size limits of coach_db/limits.py (tests/test_db_invariants.py checks these numbers
#   against it): content <= 32000 characters; metadata <= 32768 bytes as compact UTF-8 JSON
#   (PostgreSQL prints jsonb with ", " and ": ", so those two spaces outside strings are not
#   counted; numbers count as PostgreSQL prints them, e.g. 1e16 as 17 digits) and nesting depth
#   <= 16 (objects and arrays; {} is 1, {"a": {}} is 2). Existing rows over a limit stop the
#   migration with their ids: nothing is truncated. Plain expressions, not SQL functions: a
#   function in a CHECK is parsed and planned again for every INSERT (+0.2 ms each, measured).

async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "conversation_session" ADD "version" INT NOT NULL DEFAULT 1;
        COMMENT ON COLUMN conversation_session."version" IS 'Bumped by the database on every write; a stale writer is refused';

        DO $$
        DECLARE
            clashes text;
            over text;
            fixed integer;
        BEGIN
            SELECT string_agg(format('ids %s as %L', ids, address), '; ') INTO clashes
            FROM (SELECT lower(btrim("email")) AS address,
                         string_agg("id"::text, ', ' ORDER BY "id") AS ids
                  FROM "user" GROUP BY 1 HAVING count(*) > 1) shared;
            IF clashes IS NOT NULL THEN
                RAISE EXCEPTION 'Users would share an e-mail address once lower-cased and trimmed: %. Merge or change them, then migrate again (nothing was changed).', clashes
                    USING ERRCODE = 'unique_violation';
            END IF;
            UPDATE "user" SET "email" = lower(btrim("email")) WHERE "email" <> lower(btrim("email"));
            GET DIAGNOSTICS fixed = ROW_COUNT;
            IF fixed > 0 THEN
                RAISE NOTICE '% e-mail address(es) stored in lower case and trimmed.', fixed;
            END IF;

            SELECT string_agg("id"::text, ', ' ORDER BY "id") INTO over
            FROM (SELECT "id" FROM "message"
                  WHERE NOT (char_length("content") <= 32000
                      AND (octet_length("metadata"::text) <= 32768
                              OR octet_length("metadata"::text) - octet_length(regexp_replace(
                                  "metadata"::text, '"(?:[^"\\\\]|\\\\.)*"|[^ "]+', '', 'g')) <= 32768)
                      AND (octet_length("metadata"::text)
                                  - octet_length(translate("metadata"::text, '{[', '')) <= 16
                              OR NOT jsonb_path_exists("metadata",
                                  'strict $.**{16 to last} ? (@.type() == "object" || @.type() == "array")')))
                  ORDER BY "id" LIMIT 20) big;
            IF over IS NOT NULL THEN
                RAISE EXCEPTION 'Messages over the size limits of coach_db/limits.py (content 32000 characters, metadata 32768 bytes or depth 16), first 20 ids: %. Shorten them, then migrate again (nothing was changed).', over
                    USING ERRCODE = 'check_violation';
            END IF;
        END $$;

        ALTER TABLE "user"
            ADD CONSTRAINT "user_email_lower_trimmed" CHECK ("email" = lower(btrim("email")));
        ALTER TABLE "message"
            ADD CONSTRAINT "message_content_max_chars" CHECK (char_length("content") <= 32000),
            -- Compact JSON size (see the header): outside strings, the only spaces jsonb prints
            -- are the one after each separator; the regular expression deletes strings (with
            -- their escapes) and everything but spaces, leaving those to subtract. Only text
            -- longer than the limit needs it (compact JSON is never longer than jsonb's text).
            ADD CONSTRAINT "message_metadata_max_bytes" CHECK (octet_length("metadata"::text) <= 32768
                    OR octet_length("metadata"::text) - octet_length(regexp_replace(
                        "metadata"::text, '"(?:[^"\\\\]|\\\\.)*"|[^ "]+', '', 'g')) <= 32768),
            -- Fewer brackets than the limit (strings included) cannot nest deeper: no jsonpath.
            ADD CONSTRAINT "message_metadata_max_depth" CHECK (octet_length("metadata"::text)
                        - octet_length(translate("metadata"::text, '{[', '')) <= 16
                    OR NOT jsonb_path_exists("metadata",
                        'strict $.**{16 to last} ? (@.type() == "object" || @.type() == "array")'));

        CREATE OR REPLACE FUNCTION "conversation_session_guard"() RETURNS trigger
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
                -- Optimistic concurrency: a writer that names a version must have read the
                -- stored one (an ORM save() always does); then every direct write bumps it.
                IF NEW."version" IS DISTINCT FROM OLD."version" THEN
                    RAISE EXCEPTION 'Session % was changed by someone else since it was read (version % read, % stored): read it again, then redo the change.',
                            NEW."id", NEW."version", OLD."version"
                        USING ERRCODE = 'check_violation',
                              CONSTRAINT = 'conversation_session_version_current',
                              TABLE = 'conversation_session';
                END IF;
                NEW."version" := OLD."version" + 1;
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

        CREATE OR REPLACE FUNCTION "message_count_inserted"() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            late record;
            -- Set by SET LOCAL coach_db.backfill = 'on' for the transaction; unset is off.
            backfill boolean := coalesce(current_setting('coach_db.backfill', true), '') = 'on';
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
            -- status and ended_at are the locked row's, so an end committed meanwhile is seen.
            SELECT * INTO late FROM counted
                WHERE "status" <> 'active' AND (last_message > "ended_at" OR NOT backfill)
                LIMIT 1;
            IF FOUND AND NOT backfill THEN
                RAISE EXCEPTION 'Session % is %: it ended at %, so a message cannot be added (an import of past messages declares SET LOCAL coach_db.backfill = ''on'').',
                        late."id", late."status", late."ended_at"
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'message_not_after_session_end',
                          TABLE = 'message';
            ELSIF FOUND THEN
                RAISE EXCEPTION 'Session % is %: it ended at %, so a message at % cannot be added.',
                        late."id", late."status", late."ended_at", late.last_message
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'message_not_after_session_end',
                          TABLE = 'message';
            END IF;
            RETURN NULL;
        END $$;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "message"
            DROP CONSTRAINT "message_content_max_chars",
            DROP CONSTRAINT "message_metadata_max_bytes",
            DROP CONSTRAINT "message_metadata_max_depth";
        ALTER TABLE "user" DROP CONSTRAINT "user_email_lower_trimmed";
        -- The functions of 2_…_conversation_triggers, as they were.
        CREATE OR REPLACE FUNCTION "conversation_session_guard"() RETURNS trigger
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

        CREATE OR REPLACE FUNCTION "message_count_inserted"() RETURNS trigger
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
        ALTER TABLE "conversation_session" DROP COLUMN "version";"""


MODELS_STATE = (
    "eJztW21z2rgW/isaf2k6QzMJTZqUvXNnCKFbdhPoANnd2Zs7HmELUGNLriSXMt3895VkG7"
    "8TTIClWT4llnUk+TkvOueR+G641EYOP25R8hUxDgWmZIA4l3+MBvhuEOgi+c+ybjVgQM+L"
    "O6kGAUeOlrMSAiZPSIy4YNASss8YOhzJJhtxi2FPBFMbPYKAp7pgC4HkMICOAQQ+RwxgIv"
    "/jFiKQYXqsxrWpJQfGZLL+ED7BX3xkCjpBYoqYHOh//5fNmNjoG+Lq8bsxxsix9f+GGsXE"
    "tpLkAjKBbBMKQ0mgbx4LvphHg4RwEt9xFEpzT4Nk6M4SD/3wqDp6D6aeI6WEYBbdbkayHS"
    "I+6I7q40emRR3fJXFnby6mEvmoNyZCtU4QQQzKpco2wXyFvlpSqLRIIQEQcZcAgYSMjcbQ"
    "d0T8QXIBcZthmt3e0By0h6Zp5PQbSST0FTZJRSnbkEvl+usnaglv6qdnF2eXb9+dXcouep"
    "mLlovHYOoYmEBQw9MdGo/6PRTQjNUWgyqVJnyeB7Y1haxNfFej25FLgsRCOZRj6QzS8hOy"
    "SEe4LoM6aoixjt1jAayy6K/RWorb077UbA07v7UbIOhwT1q920837WH7uiHdwvUcJBd4T5"
    "pXze51r6ta4QgSmxJkZ32qREcu/GY6iEzEVD6+X6KP35r91sdm/+j9azUylc4ZxIlu+KKu"
    "3iiFpRQUeVVOSdcSWoFdVOwCacmMguxQ9Dj6Z1vqKvSNwRfnOng6etW66/fb3aE57Ny2B8"
    "Pm7adXr5/jLwxBu0eceeinS5SxmFBN53L+xdGYNodt9aauW+eZ1qN3Gc0tBgG/d4YfgXoE"
    "f0or0pBTLiZMzxj3G/5pqDVBX1CT0JkJ7URIiVojJFOWgCTK69hBUm4DVhAu9flGsJkA+Y"
    "MoOMJkqYYFFdAxXblrwgkqCMqlu11e8Omdb1MOfpJV7Ek+And9dySzDZl3RGusgQfkCYC+"
    "qSxohzthDLbtsygvkzPZVeAuEl0L8N340iICgDcg3hRqILH63cOvstEwG14R9YTE7qz7NA"
    "v1aR7eK9/1kA1GcyAzZqBSrRHkCMhEG8k1z8GMYYF+Uom29FIUPMrUmwOGxjJ/XjXL2LAC"
    "oqzfrJRXZ6R2p4i9z7FjZBM10YqoJiQOiIaIqjpw/FBYtCi48uh+oAzhCfkVzXNFSwbUsJ"
    "y/C4f5wcB9jKwnao03EgZni8I5aVTy2+UXyzpHtbeag1bzum0URoMNwDpIDPVCoc1EwRS8"
    "fZkG9jutYcBkjKD1MIPMNktMuTzZuwolP/zaR45ON8ohvw1GeUGIa/BonSZAS8GZf+XW3W"
    "wLJBIUO5xbzZSBq4DiSyBZTuu5iU4rMXnCZyHrluThGjpfUG5a0/81O8CT2RlRz5RFTRaF"
    "1rSY3dvMsBUZv5DGDE1fFY0yILieepBNO2P+rvDk30L+va/X3769qJ+8fXd5fnZxcX55st"
    "hP86+WbaxXnZ/V3lpL1rdPU4SMOmhdgjCS3R09uEZ5dDdo9xvaYe7Jp2Z/2FWPocsotrDZ"
    "+tgI/GUdPnCZQiI+8KKUD7zI8oFyLoFIAQk0lJ5U7A4JkX3Ww0Yon/YfwxTbEyF5dNv843"
    "WK8bnpdX+OuieQb930rjKQp2JcFeYtJXggYPeZn1uFgIW+LVM+nznF0bDYBlJCa7nfjkii"
    "D75MJxD4StVxIUMWZbbS8xoRr35ydrlC0FPdSuNe8DLthy4SUO1Sefh/GfS6xfAnZbIeiC"
    "0B/gIO5lsrsY3/jH1i6TPXkY8dgQk/VtP+N396lfDIe+PV98dXjcZnTsno3ijwRv3BgI4+"
    "I0tIA6EPiPAakFUCIta8BnTKWgPHx7m0sXJAVRMtD6jZ2JnxOzVANqCmU8hVmaeU0IEmeZ"
    "omSVw4eGZJX3Lx4QeDe+XqPmVpxdxJeW2/zcJ1Qa0UVK5J2qW8dE3yPE/Xrk0g9zU7fXlE"
    "0PBWCUcNMJtSXVCG2TLwHDjnABIbTOlMv9F5M/js2xPE81XsNiaoWM9ibsY3BzSmh9sr+x"
    "TgaktKU/23QjIW9X8RZVA26TpZKec6WZJyneQunzj+pAq+Uf/N4LsN0zXu+jdvOBzL0OLQ"
    "GWKWOqmT0V3I8FMDNp5gEYQXLqF3EJjOvalMrtZJg09X0sjpEo2c5jWS/JqcYsopgIzYi7"
    "D/XdMA4RZketJUKCmoQsrhLxDdZxUYv4e7bkwdBxtvTV0YHTGMxs8uLLaqIj7nArmmx6jr"
    "VaLKSgfYZ3Xtrcfo1Gx9ZZSIH1TxDM/QJUGVLT0nuM/wG00ipox62Ao4EIDXusK7lZ07sO"
    "bK+GfEDuivh36qysucJFLqIEhKKrGkXAb8kRTcFvpRqptEf5H+ps+Xx2PEkK3KZnWEtWKq"
    "uuyUsNe7ScWfq042wNzdXrWlCrQCZCcsUkeJCZtnCK53eT0teTg7+dHPTnzPXtMS0pIHS9"
    "hnSyi45b64zJMjSZ+6GsUj/i0fsStcjXrZ1PVWr0np+5EFTHN0b7KcZY4uaD7NMA+oiyhB"
    "mueNWF+e4oM5OKKsBmZYTIHcjbmA43ENMF++UCUqF+qA9XWeWt7oyE9zygfid5fEL3IhLk"
    "ij26q55FdQkcQ+c5N69BpQpOQbTDgiHKvcsyFtkaocD5OAtdQ91smt6+dnq7DE52flLLF6"
    "l7/vXpWJT8rsdU1zjbmivkC02L2oZjzI+YzK+D6FfFqtms8I7vONFMgmlNSxDdRifwLdu5"
    "sbMKYMDJq3N1VqnawLnK/kAudLXOC8oLzU20f16nIhtsPictGSVEbJBn0rbZ/jCVGxR9DE"
    "xnioMw/VxaHOPFjCoc481JnPqzObiGFrahRUmuGb2rJaE8Z9nqo2y2E41Hf7Vd+V/jq8PL"
    "Ut/3n4XhUU617v2UbWqpyqAsJh9xeI7pYO/Ep+qVN+W738lzo7uKz+z5x2b+yCeYW9f/Ob"
    "2ePfGFkmmQ=="
)
