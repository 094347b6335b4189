ALTER TABLE throttle_counters DROP COLUMN blocked_until;
