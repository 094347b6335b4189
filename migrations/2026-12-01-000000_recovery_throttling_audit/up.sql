-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- Single-use tokens sent by email: password resets and address verification. Only the
-- SHA-256 of a token is stored; the address it was sent to is kept so that changing the
-- address invalidates it.
CREATE TABLE email_tokens (
    token_hash VARCHAR(64) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- `reset` or `verify`.
    purpose VARCHAR(16) NOT NULL,
    email_normalized VARCHAR(320) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE INDEX email_tokens_user_id ON email_tokens (user_id);

-- Fixed-window counters shared by every instance on this database: failed logins per
-- account, emails per address.
CREATE TABLE throttle_counters (
    counter_key VARCHAR(400) PRIMARY KEY NOT NULL,
    hits INTEGER NOT NULL,
    window_started_at BIGINT NOT NULL
);

-- Security events. Ids are time-ordered UUIDs (v7); emails and names are copied so an event
-- stays readable after its user or client is deleted.
CREATE TABLE audit_events (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    occurred_at BIGINT NOT NULL,
    event VARCHAR(40) NOT NULL,
    actor_id VARCHAR(64),
    actor_label VARCHAR(320),
    subject_id VARCHAR(64),
    subject_label VARCHAR(320),
    ip VARCHAR(45),
    user_agent TEXT,
    detail TEXT,
    -- Labels and detail, lower-cased by the service (SQL's LOWER() is ASCII-only in SQLite),
    -- for searching in any letter case.
    search_text TEXT NOT NULL
);

CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_event ON audit_events (event);
