-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- A refresh token's place in its session's chain (0 for the token of the login, its child 1,
-- and so on). Access tokens name the generation they were issued with, so that the first
-- request one authenticates can mark that refresh token as in use.
ALTER TABLE refresh_tokens ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
-- Set when an access token issued with this refresh token first authenticated a request.
-- A token that has been rotated (`rotated_at`) or is in use (`access_used_at`) has reached its
-- client: presenting its parent again is then reuse, not a retry after a lost answer.
ALTER TABLE refresh_tokens ADD COLUMN access_used_at BIGINT;

DROP INDEX refresh_tokens_session_id;
CREATE INDEX refresh_tokens_session_generation ON refresh_tokens (session_id, generation);
