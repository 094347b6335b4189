DROP TABLE audit_events;
DROP TABLE throttle_counters;
DROP TABLE email_tokens;
