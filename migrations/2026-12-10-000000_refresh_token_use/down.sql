DROP INDEX refresh_tokens_session_generation;
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
ALTER TABLE refresh_tokens DROP COLUMN access_used_at;
ALTER TABLE refresh_tokens DROP COLUMN generation;
