-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- Email waiting to be sent, written in the transaction that stores the token it carries, so
-- that a message survives a restart or a crash. A worker on any instance claims due rows
-- (`claimed_by` until `claimed_until`: a crashed claimer's rows come back), tries to deliver
-- them, and marks each `sent`, or `pending` again with a later `next_attempt_at`, or finally
-- `failed`. Failed rows stay for inspection.
CREATE TABLE email_outbox (
    -- A time-ordered UUID (v7).
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    recipient VARCHAR(320) NOT NULL,
    subject TEXT NOT NULL,
    -- The whole message as it goes on the wire (RFC 5322 with its MIME parts). It carries a
    -- live link, so it is erased once the message is sent or given up.
    message TEXT,
    -- `pending`, `sent` or `failed`.
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_by VARCHAR(36),
    claimed_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    failed_at BIGINT
);

CREATE INDEX email_outbox_status_next_attempt_at ON email_outbox (status, next_attempt_at);
