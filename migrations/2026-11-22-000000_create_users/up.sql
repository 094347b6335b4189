-- Portable SQL: the same statements run on SQLite and PostgreSQL.
CREATE TABLE users (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    email VARCHAR(320) NOT NULL,
    -- Lower-cased email: the unique index makes addresses unique in any letter case.
    email_normalized VARCHAR(320) NOT NULL,
    hashed_password TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    is_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX users_email_normalized_key ON users (email_normalized);
