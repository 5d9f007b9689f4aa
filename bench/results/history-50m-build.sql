\timing on
SET session_replication_role = replica;
SET maintenance_work_mem = '512MB';
ALTER TABLE message DROP CONSTRAINT message_pkey;
DROP INDEX idx_message_session_f19c74;
DROP INDEX idx_message_timesta_b99ce8;
INSERT INTO conversation_session (id, user_id, scenario_id, status, started_at, ended_at, total_messages, duration_seconds, version)
SELECT id + k * 1000000, user_id, scenario_id, status, started_at - k * interval '60 days', ended_at - k * interval '60 days', total_messages, duration_seconds, version
FROM conversation_session, generate_series(1, 4) AS k WHERE id <= 321000;
SELECT setval(pg_get_serial_sequence('conversation_session', 'id'), (SELECT max(id) FROM conversation_session));
INSERT INTO message (session_id, role, content, "timestamp", audio_url, metadata)
SELECT session_id + 1000000, role, content, "timestamp" - interval '60 days', audio_url, metadata FROM message WHERE session_id <= 321000;
INSERT INTO message (session_id, role, content, "timestamp", audio_url, metadata)
SELECT session_id + 2000000, role, content, "timestamp" - interval '120 days', audio_url, metadata FROM message WHERE session_id <= 321000;
INSERT INTO message (session_id, role, content, "timestamp", audio_url, metadata)
SELECT session_id + 3000000, role, content, "timestamp" - interval '180 days', audio_url, metadata FROM message WHERE session_id <= 321000;
INSERT INTO message (session_id, role, content, "timestamp", audio_url, metadata)
SELECT session_id + 4000000, role, content, "timestamp" - interval '240 days', audio_url, metadata FROM message WHERE session_id <= 321000;
ALTER TABLE message ADD CONSTRAINT message_pkey PRIMARY KEY (id);
CREATE INDEX idx_message_session_f19c74 ON message USING btree (session_id, "timestamp", id);
CREATE INDEX idx_message_timesta_b99ce8 ON message USING btree ("timestamp", id);
VACUUM (ANALYZE) message;
VACUUM (ANALYZE) conversation_session;
SELECT count(*) FROM message;
