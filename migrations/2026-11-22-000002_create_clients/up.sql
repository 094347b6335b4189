-- Machine clients: services that trade a client id and secret for an access token.
CREATE TABLE clients (
    id VARCHAR(64) PRIMARY KEY NOT NULL,
    name VARCHAR(100) NOT NULL,
    -- SHA-256 (hex) of the secret; the secret itself is shown once and never stored.
    secret_hash VARCHAR(64) NOT NULL,
    -- The scopes the client may ask for, space-separated (RFC 6749 section 3.3).
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
