DROP INDEX users_last_login_at;
DROP INDEX users_created_at;
ALTER TABLE users DROP COLUMN last_login_at;
