-- The exact plan for making "message" a partitioned table, for when it is needed (README
-- "Scaling out" → Partitioning says when). NOT a migration yet: when the time comes, it becomes
-- the upgrade() of a hand-written Aerich migration (next number), whose MODELS_STATE is copied
-- unchanged from the migration before it (the models do not change, so `coach-db check` and
-- the next `aerich migrate` see no drift). tests/test_partition_plan.py applies this file to a
-- database built by the real migrations and runs the package's conversation and invariant
-- tests against the result.
--
-- Partition key: RANGE on session_id. Every query the package runs on message names one
-- session (add_message, transcript, user_history, the studio's transcript and per-session
-- list) and prunes to one partition; session ids grow with time, so new messages land in the
-- newest, small partition, and the oldest partitions empty out under retention and are then
-- dropped instead of deleted row by row. (By timestamp instead, every transcript page would
-- probe every partition, and a conversation crossing a boundary would live in two.)
--
-- Step 0, on a live database, BEFORE running this (each statement without blocking writes;
-- minutes at 50M rows), so that the migration itself does no scan and no rewrite:
--   CREATE UNIQUE INDEX CONCURRENTLY message_id_session_id ON message (id, session_id);
--   ALTER TABLE message ADD CONSTRAINT message_p0_range
--       CHECK (session_id >= 1 AND session_id < <FIRST>) NOT VALID;
--   ALTER TABLE message VALIDATE CONSTRAINT message_p0_range;  -- SHARE UPDATE EXCLUSIVE
-- where <FIRST> is a multiple of 500,000 above max(conversation_session.id) plus a few days'
-- growth. The statements below create them when missing (fine on a small database) and use
-- 500,000 as <FIRST>: replace it. The whole migration then holds its ACCESS EXCLUSIVE locks
-- for milliseconds (set lock_timeout so it gives up rather than queue behind a long query).

SET LOCAL lock_timeout = '10s';

-- The existing table becomes the first partition, with its rows where they are.
CREATE UNIQUE INDEX IF NOT EXISTS message_id_session_id ON message (id, session_id);
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'message_p0_range') THEN
        ALTER TABLE message ADD CONSTRAINT message_p0_range
            CHECK (session_id >= 1 AND session_id < 500000);
    END IF;
END $$;
ALTER TABLE message RENAME TO message_p0;
-- A partition takes its parent's primary key, (id, session_id) below, served by the index
-- built in step 0; the old key on id alone goes (ids stay unique: one sequence issues them).
ALTER TABLE message_p0 DROP CONSTRAINT message_pkey;
ALTER INDEX message_id_session_id RENAME TO message_p0_pkey;
ALTER INDEX "idx_message_session_f19c74" RENAME TO message_p0_session_timestamp_id;
ALTER INDEX "idx_message_timesta_b99ce8" RENAME TO message_p0_timestamp_id;
ALTER INDEX message_session_idempotency_key RENAME TO message_p0_session_idempotency_key;
-- The counting triggers move to the parent: statement-level triggers with transition tables on
-- a partitioned table see the rows of every partition (PostgreSQL ≥ 11), so their guarantees
-- hold unchanged. They must not stay on p0 as well (a statement on the parent fires the
-- parent's statement triggers only; rows would not be counted twice, but a write naming a
-- partition directly would bypass the parent's: write through "message" only).
DROP TRIGGER message_count_inserted ON message_p0;
DROP TRIGGER message_count_deleted ON message_p0;
DROP TRIGGER message_count_updated ON message_p0;
DROP TRIGGER message_count_truncated ON message_p0;

-- The parent: same columns, defaults, CHECKs (same names) and comments.
CREATE TABLE message (LIKE message_p0 INCLUDING DEFAULTS INCLUDING CONSTRAINTS
    INCLUDING COMMENTS INCLUDING STORAGE) PARTITION BY RANGE (session_id);
ALTER TABLE message DROP CONSTRAINT message_p0_range;
ALTER SEQUENCE message_id_seq OWNED BY message.id;
-- A primary or unique key of a partitioned table must contain the partition key: (id,
-- session_id). id alone stays unique because one sequence issues it; lookups by id alone
-- (Message.get(id=…), the studio's edit form) probe each partition's index.
ALTER TABLE message ADD CONSTRAINT message_pkey PRIMARY KEY (id, session_id);
ALTER TABLE message ADD CONSTRAINT message_session_id_fkey FOREIGN KEY (session_id)
    REFERENCES conversation_session (id) ON DELETE CASCADE;
-- The same index names as the models' (Aerich's), so later migrations find them.
CREATE INDEX "idx_message_session_f19c74" ON message (session_id, "timestamp", id);
CREATE INDEX "idx_message_timesta_b99ce8" ON message ("timestamp", id);
-- Migration 10's retry keys: unique per session, so the partition key is already in it.
CREATE UNIQUE INDEX message_session_idempotency_key ON message (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Attaching finds the matching indexes of p0 and uses them (no build), merges p0's identical
-- foreign key into the parent's, and trusts the validated range CHECK (no scan).
ALTER TABLE message ATTACH PARTITION message_p0 FOR VALUES FROM (MINVALUE) TO (500000);
ALTER TABLE message_p0 DROP CONSTRAINT message_p0_range;         -- the bound replaces it
-- Partitions ahead (about 16M messages each at the benchmark's 31 messages per session):
-- `coach-db partitions` (a command to add with this migration) or a cron job creates the next
-- one when max(session id) reaches the last bound's 80 %. The DEFAULT partition only catches a
-- missed job; a new range cannot be created while the default holds rows of it.
CREATE TABLE message_p1 PARTITION OF message FOR VALUES FROM (500000) TO (1000000);
CREATE TABLE message_p2 PARTITION OF message FOR VALUES FROM (1000000) TO (1500000);
CREATE TABLE message_default PARTITION OF message DEFAULT;

CREATE TRIGGER message_count_inserted AFTER INSERT ON message
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION message_count_inserted();
CREATE TRIGGER message_count_deleted AFTER DELETE ON message
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION message_count_deleted();
CREATE TRIGGER message_count_updated AFTER UPDATE ON message
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION message_count_updated();
CREATE TRIGGER message_count_truncated AFTER TRUNCATE ON message
    FOR EACH STATEMENT EXECUTE FUNCTION message_count_truncated();

-- Retention, afterwards: `coach-db retention` as today (row by row, exact triggers); a
-- partition whose sessions are all gone is then empty, and
--   ALTER TABLE message DETACH PARTITION message_pN CONCURRENTLY; DROP TABLE message_pN;
-- returns its disk at once (no VACUUM, no WAL for the rows).
