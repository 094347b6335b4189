-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- Access tokens of the old fastapi-users backend (LEGACY_JWT_SECRET) belong to no session, so
-- ending sessions cannot end them: this is the instant before which they no longer count for
-- a user. It moves whenever every session of the user ends (a password change or reset, a
-- deactivation, "log out everywhere") and when such a token itself logs out.
CREATE TABLE legacy_token_cutoffs (
    user_id VARCHAR(36) PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    cutoff_at BIGINT NOT NULL
);
