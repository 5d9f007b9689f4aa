from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Hand-written (`aerich migrate --empty`; no model changes), issue 10: what keeps the studio's
# message search and dashboard as fast at 10M messages as at 100k. admin/search.py and the
# dashboard in admin/views.py read these; the README ("Studio at production size") explains.
#
# - message_content_words: a GIN index on to_tsvector('simple', content), the words of each
#   message (lower case, no stemming, no stop words), for the studio's word search. Aerich
#   cannot express an expression index, and only a plain CREATE INDEX can run in a transaction
#   (CONCURRENTLY cannot): it blocks writes to message while it builds (minutes at 10M
#   messages; the README gives the time measured). On a large live database build it by hand
#   first, without blocking writes, under the same name:
#       CREATE INDEX CONCURRENTLY "message_content_words" ON "message"
#           USING gin (to_tsvector('simple', "content"));
#   then IF NOT EXISTS makes that step of this migration instant. message_has_words is the same
#   test without the index, for a search that walks the list's order (common words).
# - message_daily and session_by_status: the dashboard's figures, kept by triggers, so that the
#   page reads a few hundred rows instead of scanning message and conversation_session. Each
#   figure is split in stripes: a writer adds to the stripe of its server process
#   (pg_backend_pid() % 64), so concurrent writers rarely wait for one another's row lock until
#   commit (a single row per day would serialize every add_message of the day). A stripe may go
#   negative (counted by one process, deleted by another): only the sum of the stripes means
#   something, and it is exact.
# - Messages are counted by statement-level triggers (transition tables: a COPY, or a DELETE of
#   10,000 messages, is one upsert per day, not one per row). Sessions likewise on INSERT and
#   DELETE; a change of status or duration by a row-level trigger that fires only when they
#   change (every add_message updates its session's total_messages: a statement-level UPDATE
#   trigger would run for each of those, for nothing).
# - Upserts go in key order, so two bulk statements on the same stripe queue rather than
#   deadlock. TRUNCATE empties the figures of the truncated table.
# - The backfill runs after the triggers exist: CREATE TRIGGER keeps writers out until this
#   transaction commits, so no row is missed or counted twice.


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        SET LOCAL maintenance_work_mem = '256MB';
        CREATE INDEX IF NOT EXISTS "message_content_words" ON "message"
            USING gin (to_tsvector('simple', "content"));

        -- The same test without the index, for walking another index in order: plpgsql, so the
        -- planner neither inlines it nor matches it to message_content_words, and PARALLEL
        -- UNSAFE, so a walk for 20 rows is not split between workers that each read ahead.
        CREATE FUNCTION "message_has_words"("content" text, "words" tsquery) RETURNS boolean
        LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE AS $$
        BEGIN
            RETURN to_tsvector('simple', "content") @@ "words";
        END $$;

        CREATE TABLE "message_daily" (
            "day" date NOT NULL,
            "stripe" smallint NOT NULL,
            "messages" bigint NOT NULL,
            PRIMARY KEY ("day", "stripe")
        );
        COMMENT ON TABLE "message_daily" IS 'Messages per UTC day of their timestamp: the sum of '
            'the day''s stripes. Kept by the triggers message_daily_* (migration 5).';

        CREATE FUNCTION "message_daily_count"() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                DELETE FROM "message_daily";
            ELSIF TG_OP = 'INSERT' THEN
                INSERT INTO "message_daily" AS d ("day", "stripe", "messages")
                SELECT ("timestamp" AT TIME ZONE 'UTC')::date, pg_backend_pid() % 64, count(*)
                FROM new_rows GROUP BY 1 ORDER BY 1
                ON CONFLICT ("day", "stripe") DO UPDATE SET "messages" = d."messages" + excluded."messages";
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO "message_daily" AS d ("day", "stripe", "messages")
                SELECT ("timestamp" AT TIME ZONE 'UTC')::date, pg_backend_pid() % 64, -count(*)
                FROM old_rows GROUP BY 1 ORDER BY 1
                ON CONFLICT ("day", "stripe") DO UPDATE SET "messages" = d."messages" + excluded."messages";
            ELSE
                -- Rows in minus rows out, per day: nothing for an edit that keeps the day.
                INSERT INTO "message_daily" AS d ("day", "stripe", "messages")
                SELECT "day", pg_backend_pid() % 64, sum(n)
                FROM (SELECT ("timestamp" AT TIME ZONE 'UTC')::date AS "day", 1 AS n FROM new_rows
                      UNION ALL
                      SELECT ("timestamp" AT TIME ZONE 'UTC')::date, -1 FROM old_rows) moves
                GROUP BY "day" HAVING sum(n) <> 0 ORDER BY "day"
                ON CONFLICT ("day", "stripe") DO UPDATE SET "messages" = d."messages" + excluded."messages";
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER "message_daily_inserted"
            AFTER INSERT ON "message" REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION "message_daily_count"();
        CREATE TRIGGER "message_daily_deleted"
            AFTER DELETE ON "message" REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION "message_daily_count"();
        CREATE TRIGGER "message_daily_updated"
            AFTER UPDATE ON "message" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION "message_daily_count"();
        CREATE TRIGGER "message_daily_truncated"
            AFTER TRUNCATE ON "message"
            FOR EACH STATEMENT EXECUTE FUNCTION "message_daily_count"();

        CREATE TABLE "session_by_status" (
            "status" varchar(9) NOT NULL,
            "stripe" smallint NOT NULL,
            "sessions" bigint NOT NULL,
            "timed" bigint NOT NULL,
            "duration_seconds" bigint NOT NULL,
            PRIMARY KEY ("status", "stripe")
        );
        COMMENT ON TABLE "session_by_status" IS 'Sessions per status; of them, "timed" have a '
            'duration, "duration_seconds" in total: the sums of the status''s stripes. Kept by the '
            'triggers session_by_status_* (migration 5).';

        CREATE FUNCTION "session_by_status_count"() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                DELETE FROM "session_by_status";
            ELSIF TG_OP = 'INSERT' THEN
                INSERT INTO "session_by_status" AS t
                    ("status", "stripe", "sessions", "timed", "duration_seconds")
                SELECT "status", pg_backend_pid() % 64, count(*), count("duration_seconds"),
                       coalesce(sum("duration_seconds"), 0)
                FROM new_rows GROUP BY "status" ORDER BY "status"
                ON CONFLICT ("status", "stripe") DO UPDATE SET
                    "sessions" = t."sessions" + excluded."sessions",
                    "timed" = t."timed" + excluded."timed",
                    "duration_seconds" = t."duration_seconds" + excluded."duration_seconds";
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO "session_by_status" AS t
                    ("status", "stripe", "sessions", "timed", "duration_seconds")
                SELECT "status", pg_backend_pid() % 64, -count(*), -count("duration_seconds"),
                       -coalesce(sum("duration_seconds"), 0)
                FROM old_rows GROUP BY "status" ORDER BY "status"
                ON CONFLICT ("status", "stripe") DO UPDATE SET
                    "sessions" = t."sessions" + excluded."sessions",
                    "timed" = t."timed" + excluded."timed",
                    "duration_seconds" = t."duration_seconds" + excluded."duration_seconds";
            ELSE
                -- FOR EACH ROW, only when the status or the duration changed.
                INSERT INTO "session_by_status" AS t
                    ("status", "stripe", "sessions", "timed", "duration_seconds")
                SELECT "status", pg_backend_pid() % 64, sum(n), sum(timed), sum(seconds)
                FROM (VALUES (OLD."status", -1, -(OLD."duration_seconds" IS NOT NULL)::int,
                              -coalesce(OLD."duration_seconds", 0)),
                             (NEW."status", 1, (NEW."duration_seconds" IS NOT NULL)::int,
                              coalesce(NEW."duration_seconds", 0))) AS moves ("status", n, timed, seconds)
                GROUP BY "status" ORDER BY "status"
                ON CONFLICT ("status", "stripe") DO UPDATE SET
                    "sessions" = t."sessions" + excluded."sessions",
                    "timed" = t."timed" + excluded."timed",
                    "duration_seconds" = t."duration_seconds" + excluded."duration_seconds";
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER "session_by_status_inserted"
            AFTER INSERT ON "conversation_session" REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION "session_by_status_count"();
        CREATE TRIGGER "session_by_status_deleted"
            AFTER DELETE ON "conversation_session" REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION "session_by_status_count"();
        CREATE TRIGGER "session_by_status_updated"
            AFTER UPDATE ON "conversation_session"
            FOR EACH ROW WHEN (OLD."status" IS DISTINCT FROM NEW."status"
                               OR OLD."duration_seconds" IS DISTINCT FROM NEW."duration_seconds")
            EXECUTE FUNCTION "session_by_status_count"();
        CREATE TRIGGER "session_by_status_truncated"
            AFTER TRUNCATE ON "conversation_session"
            FOR EACH STATEMENT EXECUTE FUNCTION "session_by_status_count"();

        INSERT INTO "message_daily" ("day", "stripe", "messages")
        SELECT ("timestamp" AT TIME ZONE 'UTC')::date, 0, count(*) FROM "message" GROUP BY 1;
        INSERT INTO "session_by_status" ("status", "stripe", "sessions", "timed", "duration_seconds")
        SELECT "status", 0, count(*), count("duration_seconds"), coalesce(sum("duration_seconds"), 0)
        FROM "conversation_session" GROUP BY "status";
        -- Statistics of the new index's expression (which words are common): without them the
        -- planner guesses how many messages a word matches.
        ANALYZE "message";"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TRIGGER "session_by_status_truncated" ON "conversation_session";
        DROP TRIGGER "session_by_status_updated" ON "conversation_session";
        DROP TRIGGER "session_by_status_deleted" ON "conversation_session";
        DROP TRIGGER "session_by_status_inserted" ON "conversation_session";
        DROP FUNCTION "session_by_status_count"();
        DROP TABLE "session_by_status";
        DROP TRIGGER "message_daily_truncated" ON "message";
        DROP TRIGGER "message_daily_updated" ON "message";
        DROP TRIGGER "message_daily_deleted" ON "message";
        DROP TRIGGER "message_daily_inserted" ON "message";
        DROP FUNCTION "message_daily_count"();
        DROP TABLE "message_daily";
        DROP FUNCTION "message_has_words"(text, tsquery);
        DROP INDEX IF EXISTS "message_content_words";"""


MODELS_STATE = (
    "eJztW21z2rgW/isaf2k6QzMJTZqUvXNnCKFbdhPoANnd2Zs7HmELUGNLriSXMt3895VkG7"
    "8TTIClWT4llnUk+TkvOueR+G641EYOP25R8hUxDgWmZIA4l3+MBvhuEOgi+c+ybjVgQM+L"
    "O6kGAUeOlrMSAiZPSIy4YNASss8YOhzJJhtxi2FPBFMbPYKAp7pgC4HkMICOAQQ+RwxgIv"
    "/jFiKQYXqsxrWpJQfGZLL+ED7BX3xkCjpBYoqYHOh//5fNmNjoG+Lq8bsxxsix9f+GGsXE"
    "tpLkAjKBbBMKQ0mgbx4LvphHg4RwEt9xFEpzT4Nk6M4SD/3wWAOpCRKjqmXYzxpbdfQeTD"
    "18SsHBF+h2M5LtEPFBd1TAjkyLOr5L4s7eXEylVqPemOgFThBBDMoFyzbBfKVZtaTQICJl"
    "ByDHXQJ0EzI2GkPfEfEHyQXEbYZpdntDc9AemqaRs51IImELYZM0AmV3cqlcf/1ELeFN/f"
    "Ts4uzy7buzS9lFL3PRcvEYTB0DEwhqeLpD41G/hwKascZiUKXqhM/zwLamkLWJ72p0O3JJ"
    "kFgoh3IsnUFafkIW6QjXZVBHDTHWsestgFXe8jVaS3F72k+brWHnt3YDBB3uSat3++mmPW"
    "xfN6TLuZ6D5ALvSfOq2b3udVUrHEFiU4LsrL+W6MiF30wHkYmYysf3S/TxW7Pf+tjsH71/"
    "rUam0vGDGNQNX9TVm0ftXgkFJXwrraRrCa3ALip2gbRkRkF2KHoc/bMtdRX6xuCLcx08Hb"
    "1q3fX77e7QHHZu24Nh8/bTq9fP8ReGoN0jzjz00yXKWEyopnM5/+JoTJvDtnpT163zTOvR"
    "u4zmFoOA3zvDj0A9gj+lFWnIKRcTpmeM+w3/VOHTgL6gJqEzE9qJkBK1RkimLAFJlNexg6"
    "TcBqwgXOrzjWAzAfIHUXCEyVINCyqgY7py14QTVBCUS3e7vODTO9+mHPwkq9iTfATu+u5I"
    "ZjIyp4nWWAMPyBMAfVMZ1g53whhs22dRzidnsqvAXSS6FuC78aVFBABvQLwp1EBi9buHX2"
    "W6Yaa9IuoJid1Z92kW6tM8vFe+6yEbjOZAZuNApVojyBGQSTySa56DGcMC/aSSeOmlKHiU"
    "aT0HDI1lbr5qlrFhBUQVhVkpr85I7U4Re59jx8gm6q0VUU1IHBANEVV14PihsGhRcOXR/U"
    "AZwhPyK5rnipYMqCFVcBcO84OB+xhZT9QabyQMzhaFc9Ko5LfLL5Z1jmpvNQet5nXbKIwG"
    "G4B1kBjqhUKbiYIpePsyDex3WsOAyRhB62EGmW2WmHJ5sncVSn74tY8cnW6UQ34bjPKCEN"
    "fg0TpNgJaCM//KrbvZFkgkKHY4t5opA1cBfZhAspwydBOdVmIJhc9CRi/J8TV0vqDctKb/"
    "a3aAJ7Mzop4pi5osCq1pMXO4mWErsokhRRqavioaZUBwvQ0wfxlWcZNDVyIVr/Dk38Irvq"
    "/X3769qJ+8fXd5fnZxcX55stiq86+W7dlXnZ/Vtl1Lls5Ps4+MOmhd7jGS3R3zuEbldTdo"
    "9xvaF+/Jp2Z/2FWPoTcqIrLZ+tgIXHEdqnGZQiKq8aKUarzIUo1yLoFIAb80lJ5U7A4JkX"
    "3Ww0bYpPYfwxSRFCF5dNv843WKTLrpdX+OuieQb930rjKQp2JcFVIvJXjgdveZ+luF24W+"
    "LbNJnznF0bDYBlJCa7nfjvinD77MVBD4StUpJ0MWZbbS8xoRr35ydrlC0FPdSuNe8DLthy"
    "4SUO1Sefh/GfS6xfAnZbIeiC0B/gIO5lur3o3/jH1i6aPikY8dgQk/VtP+N38wlvDIe+PV"
    "98dXjcZnTsno3ijwRv3BgI4+I0tIA6EPiPAakAUIIta8BnQ2XAPHx7mMtHJAVRMtD6jZ2J"
    "nxOzVANqCms9NVSa2U0IGBeZqBSdyTeCZbUHJf4weDe2XiIGVpxbRMOW2wzZp4wdoUFMVJ"
    "Rqe8Kk5SSE+XxU0g9zU7fedF0PAyDEcNMJtSXauG2TLwHDjnABIbTOlMv9F5M/js2xPE8w"
    "XyNiaoWCpjbsaXEjSmh4sx+xTgaktKU/23QjIW9X8RZVA26TpZKec6WZJyneTutTj+pAq+"
    "Uf/N4LsN0zXu+jdvOBzL0OLQGWKWOgSU0V3I8FMDNp5gEYQXLqF3EJjOvalMrtZJg09X0s"
    "jpEo2c5jWS/JqcYsopgIzYi7D/XdMA4RZketJUKCmoQsrhLxDdZxUYv4e7bsxKBxtvTd1z"
    "HTGMxs8uLLaqIj7nArmmx6jrVaLKSgfYZ3Xtrcfo1Gx9ZZSIH1TxDM/QJUGVLT0nuM/wG0"
    "0ipox62Ao4EIDXuh28lZ07sObK+GfEDuivh36qysucJFLqIEhKKrGkXAb8kRTcFvpRqptE"
    "f5H+po+ux2PEkK3KZnWEtWKquuyUsNe7ScWfq042wNzdXrWlCrQCZCcsUkeJCZtnCK53Lz"
    "4teTg7+dHPTnzPXtMS0pIHS9hnSyi4QL+4J5QjSZ+6dcUj/i0fsSvcunrZ1PVWb2Dpq5cF"
    "THN0JbOcZY7ufj7NMA+oiyhBmueNWF+e4oM5OKKsBmZYTIHcjbmA43ENMF++UCUqF+qA9X"
    "WeWt7oyE9zygfid5fEL3IhLkij26q55AdWkcQ+c5N69BpQpOQbTDgiHKvcsyFtkaocD5OA"
    "tdQ91smt6+dnq7DE52flLLF6l79KX5WJT8rsdU1zjbmivkC02L2oZjzI+YzK+D6FfFqtms"
    "8I7vONFMgmlNSxDdRifwLdu5sbMKYMDJq3N1VqnawLnK/kAudLXOC8oLzU20f16nIhtsPi"
    "ctGSVEbJBn0rbZ/jCVGxR9DExnioMw/VxaHOPFjCoc481JnPqzObiGFrahRUmuGb2rJaE8"
    "Z9nqo2y2E41Hf7Vd+V/vC8PLUt/+X5XhUU617v2UbWqpyqAsJh9xeI7pYO/Ep+qVN+W738"
    "lzo7uKz+z5x2b+yCeYW9f/Ob2ePfttld1g=="
)
