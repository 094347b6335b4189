-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- Applications ("Log in with Gatehouse") are clients with redirect URIs. Each list is stored
-- as its URIs separated by spaces (a URI has none). A public client has no secret: its
-- `secret_hash` is empty, which no presented secret's hash matches.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN is_public BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN skip_consent BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN id_token_alg VARCHAR(8) NOT NULL DEFAULT 'ES256';

-- An application's grant is a session of its own, bound to the client and the granted
-- scopes: its refresh tokens rotate and its access tokens end with it, as a user's do.
ALTER TABLE sessions ADD COLUMN client_id VARCHAR(64);
ALTER TABLE sessions ADD COLUMN scopes TEXT;
CREATE INDEX sessions_user_client ON sessions (user_id, client_id);

-- What a user allowed an application to see, remembered per user and application.
CREATE TABLE oauth_consents (
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id VARCHAR(64) NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Authorization codes, stored only as their SHA-256 hash; single use, 60 seconds. A used
-- code remembers the session it started, so a replay can end it.
CREATE TABLE authorization_codes (
    code_hash VARCHAR(64) PRIMARY KEY NOT NULL,
    client_id VARCHAR(64) NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge VARCHAR(128) NOT NULL,
    nonce TEXT,
    scopes TEXT NOT NULL,
    amr VARCHAR(64) NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    session_id VARCHAR(36)
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);
