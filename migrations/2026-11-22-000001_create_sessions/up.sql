-- A session is one login: a family of refresh tokens, each replacing the one before.
CREATE TABLE sessions (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    user_agent TEXT
);

CREATE INDEX sessions_user_id ON sessions (user_id);

-- Refresh tokens are stored only as SHA-256 hashes.
CREATE TABLE refresh_tokens (
    token_hash VARCHAR(64) PRIMARY KEY NOT NULL,
    session_id VARCHAR(36) NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Set when the token has been exchanged for its successor.
    rotated_at BIGINT
);

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
