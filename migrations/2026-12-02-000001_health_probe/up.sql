-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- One row that `/health` rewrites (at most once a second) to prove the database can still
-- store data: a full disk, a read-only file or a failing volume shows here first.
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY NOT NULL,
    checked_at BIGINT NOT NULL
);

INSERT INTO health_probe (id, checked_at) VALUES (1, 0);
