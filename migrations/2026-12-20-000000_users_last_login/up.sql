-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- When the account last signed in (a login that started a session), for the superusers' list
-- of users; NULL until its first sign-in after this column. The indexes serve the list's sorts
-- (its address's sort uses `users_email_normalized_key`).
ALTER TABLE users ADD COLUMN last_login_at BIGINT;
CREATE INDEX users_created_at ON users (created_at);
CREATE INDEX users_last_login_at ON users (last_login_at);
