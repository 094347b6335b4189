DROP INDEX audit_events_ip;
DROP INDEX audit_events_subject;
DROP INDEX audit_events_actor;
DROP INDEX audit_events_event_time;
DROP INDEX audit_events_time;
CREATE INDEX audit_events_event ON audit_events (event);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

DROP INDEX users_never_signed_in;
DROP INDEX users_last_login;
DROP INDEX users_created;
CREATE INDEX users_last_login_at ON users (last_login_at);
CREATE INDEX users_created_at ON users (created_at);
