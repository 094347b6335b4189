-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- How a session's login was proved (RFC 8176 method names, space-separated) and when: access
-- tokens carry them as `amr` and `auth_time`, and every refresh keeps them.
ALTER TABLE sessions ADD COLUMN amr VARCHAR(64) NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET auth_time = created_at;

-- An authenticator app. The secret is sealed (AES-256-GCM under MFA_KEY, bound to the user),
-- so a copy of the database alone yields no working seed. Pending until a code confirms it.
CREATE TABLE totp_factors (
    user_id VARCHAR(36) PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    -- The last 30-second step whose code was accepted: no code of it or before is accepted again.
    last_used_step BIGINT NOT NULL DEFAULT 0
);

-- Single-use recovery codes, stored only as keyed hashes (HMAC-SHA-256 under MFA_KEY).
CREATE TABLE recovery_codes (
    code_hash VARCHAR(64) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX recovery_codes_user_id ON recovery_codes (user_id);

-- The second step of a login: the right password was given, a second factor is owed. The
-- token is stored only as its SHA-256 hash; single use, short-lived, bound to the user.
CREATE TABLE mfa_challenges (
    token_hash VARCHAR(64) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    -- Wrong codes sent with this token; enough of them void it.
    failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mfa_challenges_user_id ON mfa_challenges (user_id, created_at);

-- WebAuthn credentials (webauthn-rs's `Passkey`, as JSON).
CREATE TABLE passkeys (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name VARCHAR(64) NOT NULL,
    -- The credential id, base64url: how an assertion names its credential.
    credential_id VARCHAR(1400) NOT NULL UNIQUE,
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);

-- A WebAuthn ceremony's server-side state, so that any instance can finish a ceremony another
-- began. Single use; `user_id` is empty for a passwordless sign-in, whose user is not known yet.
CREATE TABLE webauthn_ceremonies (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    user_id VARCHAR(36) REFERENCES users (id) ON DELETE CASCADE,
    purpose VARCHAR(16) NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
