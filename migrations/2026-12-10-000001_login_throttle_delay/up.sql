-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- Until when a counter refuses further attempts (Unix seconds; 0: it does not). An account's
-- failed-login counter slows guessing down with a growing delay instead of locking the door.
ALTER TABLE throttle_counters ADD COLUMN blocked_until BIGINT NOT NULL DEFAULT 0;
