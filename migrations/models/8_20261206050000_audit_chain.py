from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Migration 8 (issue 18): an audit trail the runtime role cannot forge, and that tells when
# anyone (its owner, a superuser) changed it. No model changes: the columns below are the
# database's own business (filled by triggers), so MODELS_STATE is migration 7's.
#
# Who may do what: the role that runs the migrations owns every table (the owner); services
# and the studio connect as a runtime role with only SELECT and INSERT on audit_event and
# SELECT on erasure_receipt (`coach-db runtime-role NAME` prints or applies its grants). A setting
# (migration 7's coach_db.erasure) is no permission: redaction now happens only inside
# erase_person(), SECURITY DEFINER and owned by the owner, which erases one existing user and
# redacts only the rows about that user; the UPDATE trigger lets a change through only when
# the role really running (current_user) owns the table and erase_person() declared it. A
# receipt is never changed at all.
#
# The chain: a BEFORE INSERT trigger (audit_event_seal, SECURITY DEFINER, so every writer gets
# it, whoever and however they insert) takes the head's row lock (concurrent inserts queue),
# reads the last sealed row and stores chain_seq (1, 2, 3, ...), chain_prev (the previous row's hash) and chain_hash =
# sha256(chain_prev, seq, id, created_at, actor_id, action, model, row_id, db_role, digests).
# The personal columns (actor_email, subject_id, changes) enter the hash only through their
# digests, sha256(nonce || value) with a random nonce per field (seal_nonces): an erasure
# replaces the value and drops its nonce, the digest stays, so the chain still verifies and
# the digest can no longer confirm a guessed value. `coach-db audit verify` recomputes it all
# outside the database (coach_db/audit.py).


async def upgrade(db: BaseDBAsyncClient) -> str:
    return r"""
        ALTER TABLE "audit_event"
            ADD COLUMN "chain_seq" BIGINT,
            ADD COLUMN "chain_prev" CHAR(64),
            ADD COLUMN "chain_hash" CHAR(64),
            ADD COLUMN "seal_digests" TEXT,
            ADD COLUMN "seal_nonces" JSONB,
            ADD COLUMN "db_role" TEXT;
        CREATE UNIQUE INDEX "audit_event_chain_seq" ON "audit_event" ("chain_seq");
        COMMENT ON COLUMN "audit_event"."chain_seq" IS 'Position in the hash chain (1, 2, ...), set by the database';
        COMMENT ON COLUMN "audit_event"."chain_prev" IS 'chain_hash of the row before (64 zeros for the first)';
        COMMENT ON COLUMN "audit_event"."chain_hash" IS 'sha256 over chain_prev, this row''s columns and seal_digests';
        COMMENT ON COLUMN "audit_event"."seal_digests" IS 'sha256(nonce || value) of actor_email, subject_id, changes';
        COMMENT ON COLUMN "audit_event"."seal_nonces" IS 'The nonces of seal_digests; an erasure drops those of the values it redacts';
        COMMENT ON COLUMN "audit_event"."db_role" IS 'The database login that inserted the row (session_user)';
        CREATE TABLE "audit_chain_head" (
            "id" INT NOT NULL PRIMARY KEY DEFAULT 1 CONSTRAINT "audit_chain_head_one_row" CHECK ("id" = 1),
            "seq" BIGINT NOT NULL,
            "hash" CHAR(64) NOT NULL
        );
        COMMENT ON TABLE "audit_chain_head" IS 'The last chain_seq and chain_hash of audit_event; its row lock orders inserts.';
        INSERT INTO "audit_chain_head" ("seq", "hash") VALUES (0, repeat('0', 64));

        -- Length-prefixed text, so that no two different field lists hash the same.
        CREATE FUNCTION audit_enc(v TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN v IS NULL THEN '~' ELSE octet_length(v) || ':' || v END
        $$;
        CREATE FUNCTION audit_sha256(v TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT encode(sha256(convert_to(v, 'UTF8')), 'hex')
        $$;
        -- Is the role really running (current_user, not a setting) the table's owner or a superuser?
        CREATE FUNCTION audit_by_owner(rel OID) RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
            SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_roles r ON r.rolname = current_user
                            WHERE c.oid = rel AND (c.relowner = r.oid OR r.rolsuper))
        $$;
        -- Was a visible row version written by this transaction (or one of its savepoints)? Its
        -- xmin is still in progress: another transaction's uncommitted rows are not visible.
        -- (x has no epoch: the nearest one to the current transaction's; a savepoint's id is
        -- above the transaction's own.)
        CREATE FUNCTION audit_written_here(x XID) RETURNS BOOLEAN LANGUAGE sql VOLATILE AS $$
            SELECT CASE WHEN full_id < 0 THEN false ELSE txid_status(full_id) = 'in progress' END
              FROM (SELECT CASE WHEN guess - cur > 2147483648 THEN guess - 4294967296
                                ELSE guess END AS full_id
                      FROM (SELECT txid_current() AS cur,
                                   ((txid_current() >> 32) << 32) + x::text::bigint AS guess) AS g
                   ) AS ids
        $$;
        -- Does `changes` hold the e-mail as a whole value, at any depth (never a substring)?
        CREATE FUNCTION audit_names(changes JSONB, email TEXT) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
            SELECT EXISTS (SELECT 1 FROM jsonb_path_query(changes, 'strict $.**') AS v
                            WHERE jsonb_typeof(v) = 'string' AND lower(v #>> '{}') = email)
        $$;

        -- The seal of one row at position seq after prev: nonces, digests and hash.
        CREATE FUNCTION audit_seal_row(r audit_event, seq BIGINT, prev TEXT) RETURNS audit_event
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            nonces JSONB := jsonb_build_object('actor_email', gen_random_uuid()::text,
                'subject_id', gen_random_uuid()::text, 'changes', gen_random_uuid()::text);
        BEGIN
            r.chain_seq := seq;
            r.chain_prev := prev;
            r.seal_nonces := nonces;
            r.seal_digests := audit_sha256((nonces ->> 'actor_email') || audit_enc(r.actor_email))
                || ' ' || audit_sha256((nonces ->> 'subject_id') || audit_enc(r.subject_id::text))
                || ' ' || audit_sha256((nonces ->> 'changes') || audit_enc(r.changes::text));
            r.chain_hash := audit_sha256(prev || audit_enc(seq::text) || audit_enc(r.id::text)
                || audit_enc(to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'))
                || audit_enc(r.actor_id::text) || audit_enc(r.action) || audit_enc(r.model)
                || audit_enc(r.row_id::text) || audit_enc(r.db_role) || audit_enc(r.seal_digests));
            RETURN r;
        END $$;

        -- Inserts by anyone but the owner: the database's clock, and no e-mail without an actor
        -- id, nor an actor id of an existing user who is not staff or has another e-mail, unless
        -- this very transaction changed that user (a staff member editing or deleting their own
        -- account). Runs as the inserting role.
        CREATE FUNCTION audit_event_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF audit_by_owner(TG_RELID) THEN
                RETURN NEW;
            END IF;
            NEW.created_at := clock_timestamp();
            IF (NEW.actor_email IS NOT NULL AND NEW.actor_id IS NULL) OR EXISTS (
                SELECT 1 FROM "user" u
                 WHERE u.id = NEW.actor_id
                   AND (NOT u.is_staff OR u.email IS DISTINCT FROM NEW.actor_email)
                   AND NOT coalesce(audit_written_here(u.xmin), false)) THEN
                RAISE EXCEPTION 'audit_event: the actor (#%, %) is not a staff member with that e-mail.',
                    NEW.actor_id, NEW.actor_email
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_event_actor_is_staff';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER "audit_event_check_insert" BEFORE INSERT ON "audit_event"
            FOR EACH ROW EXECUTE FUNCTION audit_event_check_insert();

        -- Every insert, last (triggers fire in name order): chained after the last sealed row,
        -- under the head's row lock (held to the commit, so writers queue: in READ COMMITTED each
        -- query here sees what the one before committed; in REPEATABLE READ a concurrent writer
        -- is a serialization failure, and the unique chain_seq a backstop). The head itself is
        -- moved once per statement (below): one version per row would make a long transaction's
        -- lookups of it quadratic.
        CREATE FUNCTION audit_event_seal() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        DECLARE
            last RECORD;
        BEGIN
            PERFORM 1 FROM audit_chain_head WHERE id = 1 FOR UPDATE;
            SELECT chain_seq, chain_hash INTO last FROM audit_event
             WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1;
            NEW.db_role := session_user;
            NEW := audit_seal_row(NEW, coalesce(last.chain_seq, 0) + 1,
                                  coalesce(last.chain_hash, repeat('0', 64)));
            RETURN NEW;
        END $$;
        CREATE TRIGGER "audit_event_seal" BEFORE INSERT ON "audit_event"
            FOR EACH ROW EXECUTE FUNCTION audit_event_seal();
        CREATE FUNCTION audit_chain_head_move() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        BEGIN
            UPDATE audit_chain_head h SET seq = a.chain_seq, hash = a.chain_hash
              FROM (SELECT chain_seq, chain_hash FROM audit_event WHERE chain_seq IS NOT NULL
                     ORDER BY chain_seq DESC LIMIT 1) AS a
             WHERE h.id = 1;
            RETURN NULL;
        END $$;
        CREATE TRIGGER "audit_event_head" AFTER INSERT ON "audit_event"
            FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_move();

        -- Rows written before this migration join the chain in id order (db_role unknown).
        ALTER TABLE "audit_event" DISABLE TRIGGER "audit_event_append_only";
        DO $$
        DECLARE
            r audit_event;
            last_seq BIGINT := 0;
            last_hash TEXT := repeat('0', 64);
        BEGIN
            FOR r IN SELECT * FROM audit_event ORDER BY id LOOP
                r := audit_seal_row(r, last_seq + 1, last_hash);
                UPDATE audit_event SET chain_seq = r.chain_seq, chain_prev = r.chain_prev,
                       chain_hash = r.chain_hash, seal_digests = r.seal_digests,
                       seal_nonces = r.seal_nonces
                 WHERE id = r.id;
                last_seq := r.chain_seq;
                last_hash := r.chain_hash;
            END LOOP;
            UPDATE audit_chain_head SET seq = last_seq, hash = last_hash WHERE id = 1;
        END $$;
        ALTER TABLE "audit_event" ENABLE TRIGGER "audit_event_append_only";

        -- Append-only, and the one exception is no longer a setting anyone can set: only the
        -- owner (in practice erase_person()) after declaring coach_db.redacting, and only the
        -- columns named by the trigger. Receipts: no exception at all.
        CREATE OR REPLACE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND TG_NARGS > 0
               AND coalesce(current_setting('coach_db.redacting', true), '') = 'on'
               AND audit_by_owner(TG_RELID)
               AND to_jsonb(NEW) - TG_ARGV = to_jsonb(OLD) - TG_ARGV THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '% rows cannot be changed or deleted (% refused): the table is append-only.',
                TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation', CONSTRAINT = TG_TABLE_NAME || '_append_only';
        END $$;
        -- Once, by the owner: receipts written by the studio before named the staff member by
        -- e-mail; from now on by id (a pseudonym once they are erased), never to change again.
        ALTER TABLE "erasure_receipt" DISABLE TRIGGER "erasure_receipt_append_only";
        UPDATE "erasure_receipt" r SET "erased_by" = 'studio: staff #' || u.id
          FROM "user" u WHERE r."erased_by" = 'studio: ' || u.email;
        UPDATE "erasure_receipt" SET "erased_by" = 'studio: [erased]'
         WHERE "erased_by" LIKE 'studio: %@%';
        ALTER TABLE "erasure_receipt" ENABLE TRIGGER "erasure_receipt_append_only";
        DROP TRIGGER "audit_event_append_only" ON "audit_event";
        CREATE TRIGGER "audit_event_append_only" BEFORE UPDATE OR DELETE ON "audit_event"
            FOR EACH ROW EXECUTE FUNCTION append_only('actor_email', 'subject_id', 'changes', 'seal_nonces');
        DROP TRIGGER "erasure_receipt_append_only" ON "erasure_receipt";
        CREATE TRIGGER "erasure_receipt_append_only" BEFORE UPDATE OR DELETE ON "erasure_receipt"
            FOR EACH ROW EXECUTE FUNCTION append_only();
        CREATE TRIGGER "audit_chain_head_no_truncate" BEFORE TRUNCATE ON "audit_chain_head"
            FOR EACH STATEMENT EXECUTE FUNCTION append_only();

        -- The receipts' e-mail hash: keyed from now on by a secret outside the database
        -- (COACH_DB_ERASURE_KEY_FILE); earlier receipts keep the salt of erasure_salt.
        ALTER TABLE "erasure_receipt" ADD COLUMN "email_hash_key" VARCHAR(20) NOT NULL DEFAULT 'database salt'
            CONSTRAINT "erasure_receipt_email_hash_key_valid" CHECK ("email_hash_key" IN ('database salt', 'external key'));
        ALTER TABLE "erasure_receipt" ALTER COLUMN "email_hash_key" SET DEFAULT 'external key';
        COMMENT ON COLUMN "erasure_receipt"."email_hash_key" IS 'Key of email_hash: external key (COACH_DB_ERASURE_KEY_FILE) or database salt (before migration 8)';

        -- What erasing user #uid deletes and redacts (the studio's confirmation page, the CLI).
        CREATE FUNCTION erasure_counts(uid INT) RETURNS JSONB LANGUAGE sql STABLE AS $$
            SELECT jsonb_build_object(
                'user', (SELECT count(*) FROM "user" WHERE id = uid),
                'sessions', (SELECT count(*) FROM conversation_session WHERE user_id = uid),
                'messages', (SELECT count(*) FROM message m
                               JOIN conversation_session s ON s.id = m.session_id WHERE s.user_id = uid),
                'audit_events_redacted', (SELECT count(*) FROM audit_event a, "user" u
                    WHERE u.id = uid AND (a.subject_id = uid OR a.actor_id = uid
                          OR lower(a.actor_email) = u.email OR audit_names(a.changes, u.email))))
        $$;

        -- The one way to redact the trail: erase one existing user. Deletes them (their sessions
        -- and messages by cascade), redacts the audit rows about them (subject), by them (actor:
        -- the e-mail goes, actor_id stays as a pseudonym) or naming their e-mail as a whole value,
        -- writes the receipt and the `erase` audit row. The receipt names a studio actor by id.
        CREATE FUNCTION erase_person(uid INT, hashed TEXT, by_text TEXT, by_id INT, by_email TEXT)
        RETURNS JSONB LANGUAGE plpgsql SECURITY DEFINER AS $$
        DECLARE
            address TEXT;
            tally JSONB;
            receipt INT;
            erased JSONB := to_jsonb('[erased]'::text);
        BEGIN
            SELECT u.email INTO address FROM "user" u WHERE u.id = uid FOR UPDATE;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'No user #% to erase.', uid USING ERRCODE = 'no_data_found';
            END IF;
            IF hashed IS NULL OR hashed !~ '^[0-9a-f]{64}$' THEN
                RAISE EXCEPTION 'erase_person: the e-mail hash must be 64 hex digits.'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF by_id IS NOT NULL OR by_email IS NOT NULL THEN
                IF NOT EXISTS (SELECT 1 FROM "user" u
                                WHERE u.id = by_id AND u.email = by_email AND u.is_staff) THEN
                    RAISE EXCEPTION 'erase_person: the actor is not a staff member with that e-mail.'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                by_text := 'studio: staff #' || by_id;
            ELSIF by_text IS NULL OR strpos(lower(by_text), address) > 0 THEN
                RAISE EXCEPTION 'erase_person: say who erases, without the person''s e-mail.'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            tally := erasure_counts(uid);
            PERFORM set_config('coach_db.redacting', 'on', true);
            UPDATE audit_event a SET
                subject_id = CASE WHEN a.subject_id = uid THEN NULL ELSE a.subject_id END,
                actor_email = CASE WHEN a.actor_id = uid OR lower(a.actor_email) = address
                                   THEN NULL ELSE a.actor_email END,
                changes = CASE
                    WHEN NOT (a.subject_id = uid OR audit_names(a.changes, address)) THEN a.changes
                    WHEN jsonb_typeof(a.changes) = 'object'
                        THEN (SELECT jsonb_object_agg(key, erased) FROM jsonb_each(a.changes))
                    ELSE erased END,
                seal_nonces = a.seal_nonces - array_remove(ARRAY[
                    CASE WHEN a.subject_id = uid THEN 'subject_id' END,
                    CASE WHEN a.actor_id = uid OR lower(a.actor_email) = address THEN 'actor_email' END,
                    CASE WHEN a.subject_id = uid OR audit_names(a.changes, address) THEN 'changes' END
                ], NULL)
             WHERE a.subject_id = uid OR a.actor_id = uid OR lower(a.actor_email) = address
                OR audit_names(a.changes, address);
            PERFORM set_config('coach_db.redacting', '', true);
            DELETE FROM "user" WHERE id = uid;
            INSERT INTO erasure_receipt (email_hash, email_hash_key, counts, erased_by)
                VALUES (hashed, 'external key', tally, by_text) RETURNING id INTO receipt;
            -- The erasure itself, about nobody any more; a self-erasure names its actor by id only.
            INSERT INTO audit_event (actor_id, actor_email, action, model, row_id, changes)
                VALUES (by_id, CASE WHEN by_id = uid THEN NULL ELSE by_email END, 'erase', 'user',
                        uid, jsonb_build_object('erasure_receipt', jsonb_build_array(NULL, receipt)));
            RETURN jsonb_build_object('receipt_id', receipt, 'counts', tally);
        END $$;
        REVOKE ALL ON FUNCTION erase_person(INT, TEXT, TEXT, INT, TEXT) FROM PUBLIC;

        -- SECURITY DEFINER with a search path nobody else can write to (pg_temp last; the
        -- runtime role has no CREATE on the schema).
        DO $$
        BEGIN
            EXECUTE format('ALTER FUNCTION erase_person(INT, TEXT, TEXT, INT, TEXT) SET search_path = pg_catalog, %I, pg_temp', current_schema());
            EXECUTE format('ALTER FUNCTION audit_event_seal() SET search_path = pg_catalog, %I, pg_temp', current_schema());
            EXECUTE format('ALTER FUNCTION audit_chain_head_move() SET search_path = pg_catalog, %I, pg_temp', current_schema());
            -- The guards run as the inserting role: its search path must not find other functions.
            EXECUTE format('ALTER FUNCTION audit_event_check_insert() SET search_path = pg_catalog, %I, pg_temp', current_schema());
            EXECUTE format('ALTER FUNCTION append_only() SET search_path = pg_catalog, %I, pg_temp', current_schema());
        END $$;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return r"""
        DROP FUNCTION IF EXISTS erase_person(INT, TEXT, TEXT, INT, TEXT);
        DROP FUNCTION IF EXISTS erasure_counts(INT);
        ALTER TABLE "erasure_receipt" DROP COLUMN IF EXISTS "email_hash_key";
        DROP TRIGGER IF EXISTS "audit_event_seal" ON "audit_event";
        DROP TRIGGER IF EXISTS "audit_event_head" ON "audit_event";
        DROP FUNCTION IF EXISTS audit_chain_head_move();
        DROP TRIGGER IF EXISTS "audit_event_check_insert" ON "audit_event";
        DROP FUNCTION IF EXISTS audit_event_seal();
        DROP FUNCTION IF EXISTS audit_event_check_insert();
        DROP FUNCTION IF EXISTS audit_seal_row(audit_event, BIGINT, TEXT);
        DROP FUNCTION IF EXISTS audit_names(JSONB, TEXT);
        DROP FUNCTION IF EXISTS audit_written_here(XID);
        DROP TABLE IF EXISTS "audit_chain_head";
        ALTER TABLE "audit_event" DROP COLUMN IF EXISTS "chain_seq", DROP COLUMN IF EXISTS "chain_prev",
            DROP COLUMN IF EXISTS "chain_hash", DROP COLUMN IF EXISTS "seal_digests",
            DROP COLUMN IF EXISTS "seal_nonces", DROP COLUMN IF EXISTS "db_role";
        CREATE OR REPLACE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE'
               AND coalesce(current_setting('coach_db.erasure', true), '') = 'on'
               AND to_jsonb(NEW) - TG_ARGV = to_jsonb(OLD) - TG_ARGV THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '% rows cannot be changed or deleted (% refused): the table is append-only.',
                TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation', CONSTRAINT = TG_TABLE_NAME || '_append_only';
        END $$;
        DROP FUNCTION IF EXISTS audit_by_owner(OID);
        DROP FUNCTION IF EXISTS audit_sha256(TEXT);
        DROP FUNCTION IF EXISTS audit_enc(TEXT);
        DROP TRIGGER "audit_event_append_only" ON "audit_event";
        CREATE TRIGGER "audit_event_append_only" BEFORE UPDATE OR DELETE ON "audit_event"
            FOR EACH ROW EXECUTE FUNCTION append_only('actor_id', 'actor_email', 'subject_id', 'changes');
        DROP TRIGGER "erasure_receipt_append_only" ON "erasure_receipt";
        CREATE TRIGGER "erasure_receipt_append_only" BEFORE UPDATE OR DELETE ON "erasure_receipt"
            FOR EACH ROW EXECUTE FUNCTION append_only('erased_by');"""


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
