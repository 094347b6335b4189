-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- Long lists are read a page at a time from the item the last page ended at (keyset
-- pagination), in the order of a sort key with the id as tie-breaker; each index below holds
-- one such order, so a page reads only its own rows, however deep it is. The substring
-- searches' indexes differ between the backends and are made at startup (`db::search`).

DROP INDEX users_created_at;
DROP INDEX users_last_login_at;
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX users_last_login ON users (last_login_at, id);
-- Accounts that never signed in come last in the last-sign-in sort, newest first among them.
CREATE INDEX users_never_signed_in ON users (created_at, id) WHERE last_login_at IS NULL;

DROP INDEX audit_events_occurred_at;
DROP INDEX audit_events_event;
CREATE INDEX audit_events_time ON audit_events (occurred_at, id);
CREATE INDEX audit_events_event_time ON audit_events (event, occurred_at, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, occurred_at, id);
CREATE INDEX audit_events_subject ON audit_events (subject_id, occurred_at, id);
CREATE INDEX audit_events_ip ON audit_events (ip, occurred_at, id);
