-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- The UTS 39 confusable skeleton of the address, unique like `email_normalized`: an address
-- that only looks like another (a Cyrillic `е` for a Latin `e`) cannot make a second account.
-- Existing rows are left NULL here and filled in by the service when it migrates (the
-- skeleton, and the new form of `email_normalized`, need Unicode tables SQL does not have).
ALTER TABLE users ADD COLUMN email_skeleton TEXT;

CREATE UNIQUE INDEX users_email_skeleton_key ON users (email_skeleton);
