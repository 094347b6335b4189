-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- The address a "confirm your new address" link moves its account to (purpose
-- 'change_email'); NULL for the other links. The link is good only while the account still
-- has the address it had when the link was sent (`email_normalized`).
ALTER TABLE email_tokens ADD COLUMN new_email TEXT;
