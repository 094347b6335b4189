-- Secrets the service makes for itself, shared by every instance on this database. They do
-- not depend on the signing keys, so rotating those leaves refresh-token chains and browser
-- page sessions intact.
CREATE TABLE server_secrets (
    name VARCHAR(64) PRIMARY KEY NOT NULL,
    -- 32 random bytes, base64url without padding.
    secret VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL
);
