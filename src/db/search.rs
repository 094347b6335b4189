//! Searching for part of an account's address or of an audit event's text, from an index
//! rather than by reading every row.
//!
//! Three characters or more are answered by a trigram index: SQLite's FTS5 `trigram`
//! tokenizer, PostgreSQL's `pg_trgm`. Their SQL differs between the backends, so they are made
//! here, after the migrations, rather than in a migration. Every search still checks its
//! matches with `LIKE`, so an index that lags its table can only make a search miss, never
//! find what does not match.

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::sql_types::{Bool, Text};
use diesel::{BoxableExpression, Connection, RunQueryDsl};

use super::{Conn, DbError};

type Backend = <Conn as Connection>::Backend;

/// Searches shorter than this match the start of the text instead: a trigram index cannot
/// answer them.
pub const TRIGRAM: usize = 3;

/// The searchable text of each indexed table: (table, column, index name).
const INDEXED: [(&str, &str, &str); 2] = [
    ("users", "email_normalized", "users_search"),
    ("audit_events", "search_text", "audit_events_search"),
];

/// Makes the trigram indexes where they are missing; an index made now is filled from its
/// table. Runs with the migrations.
pub fn ensure_indexes(conn: &mut Conn) -> Result<(), DbError> {
    match conn {
        Conn::Sqlite(sqlite) => {
            for (table, column, index) in INDEXED {
                let exists: bool = diesel::select(sql::<Bool>(&format!(
                    "EXISTS (SELECT 1 FROM sqlite_master WHERE name = '{index}')"
                )))
                .get_result(sqlite)?;
                if exists {
                    continue;
                }
                // The index reads its text from `table` by rowid (external content), and
                // triggers keep it in step with every insert, change and delete.
                sqlite.batch_execute(&format!(
                    "BEGIN IMMEDIATE;
                     CREATE VIRTUAL TABLE {index} USING fts5(
                         {column}, content='{table}', tokenize='trigram');
                     CREATE TRIGGER {index}_insert AFTER INSERT ON {table} BEGIN
                         INSERT INTO {index} (rowid, {column}) VALUES (new.rowid, new.{column});
                     END;
                     CREATE TRIGGER {index}_delete AFTER DELETE ON {table} BEGIN
                         INSERT INTO {index} ({index}, rowid, {column})
                             VALUES ('delete', old.rowid, old.{column});
                     END;
                     CREATE TRIGGER {index}_update AFTER UPDATE OF {column} ON {table} BEGIN
                         INSERT INTO {index} ({index}, rowid, {column})
                             VALUES ('delete', old.rowid, old.{column});
                         INSERT INTO {index} (rowid, {column}) VALUES (new.rowid, new.{column});
                     END;
                     INSERT INTO {index} ({index}) VALUES ('rebuild');
                     COMMIT;"
                ))?;
                log::info!("made the search index {index}");
            }
        }
        Conn::Postgresql(pg) => {
            // A trusted extension: a database owner may create it. Without it searches still
            // work, by reading the table.
            if let Err(error) = pg.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm") {
                log::warn!(
                    "searches of users and audit events will read whole tables: \
                     the pg_trgm extension could not be created ({error})"
                );
                return Ok(());
            }
            for (table, column, index) in INDEXED {
                pg.batch_execute(&format!(
                    "CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin ({column} gin_trgm_ops)"
                ))?;
            }
        }
    }
    Ok(())
}

/// On SQLite (`sqlite`), a condition that lets it answer `LIKE '%text%'` on `table` from its trigram index
/// (PostgreSQL's planner finds `pg_trgm` for the `LIKE` by itself); `None` where no index
/// helps. `text` has at least [`TRIGRAM`] characters.
pub fn trigram_condition<QS: 'static>(
    sqlite: bool,
    table: &str,
    text: &str,
) -> Option<Box<dyn BoxableExpression<QS, Backend, SqlType = Bool>>> {
    if !sqlite {
        return None;
    }
    let (_, _, index) = INDEXED.into_iter().find(|(name, _, _)| *name == table)?;
    // An FTS5 phrase in double quotes is matched literally, as a run of trigrams.
    let phrase = format!("\"{}\"", text.replace('"', "\"\""));
    Some(Box::new(
        sql::<Bool>(&format!(
            "{table}.rowid IN (SELECT rowid FROM {index} WHERE {index} MATCH "
        ))
        .bind::<Text, _>(phrase)
        .sql(")"),
    ))
}
