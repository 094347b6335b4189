-- Portable SQL: the same statements run on SQLite and PostgreSQL.

-- A client's name tells people which client it is, so two may not share one (in any letter
-- case). Clients registered before this rule keep working: a later namesake of an older
-- client gets its id appended to its name.
UPDATE clients SET name = SUBSTR(name, 1, 60) || ' (' || id || ')'
WHERE EXISTS (
    SELECT 1 FROM clients AS older
    WHERE LOWER(older.name) = LOWER(clients.name)
      AND (older.created_at < clients.created_at
           OR (older.created_at = clients.created_at AND older.id < clients.id))
);
CREATE UNIQUE INDEX clients_name_unique ON clients (LOWER(name));
