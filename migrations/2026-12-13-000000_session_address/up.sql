-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- The client address a session started from, shown beside it on the account page so that
-- people recognise their devices. NULL for sessions started before it was recorded.
ALTER TABLE sessions ADD COLUMN ip_address TEXT;
