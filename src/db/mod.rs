//! The database: a pool of diesel connections to SQLite or PostgreSQL, the embedded
//! migrations, and the queries.
//!
//! Queries are synchronous functions taking `&mut Conn`; async code reaches them only through
//! [`run`], which moves the work onto the blocking pool. `Conn` is diesel's `MultiConnection`
//! over both backends, so each query is written once. What differs between the backends lives
//! in this file: connecting, migrating, the write transaction, and [`per_backend!`] for the
//! few statements (upserts) that diesel only builds for one backend at a time.
//!
//! One row is read with `get_result`, never `first`: `first` adds `LIMIT ?`, and SQLite
//! (3.46 and later) prepares a statement again at every run when its `LIMIT` is a bound value,
//! which cost the hot paths more than all their other work.

/// Runs one statement on whichever backend `conn` is connected to: the statement is written
/// once and compiled for each. For what `MultiConnection` cannot express (`ON CONFLICT`), and
/// for the queries of every request: a statement of one backend's connection finds its
/// prepared statement by its type, where `MultiConnection` writes the SQL out at each run to
/// look it up (about 60,000 instructions a request).
macro_rules! per_backend {
    ($conn:expr, $c:ident => $statement:expr) => {
        match $conn {
            $crate::db::Conn::Postgresql($c) => $statement,
            $crate::db::Conn::Sqlite($c) => $statement,
        }
    };
}

/// Narrows a boxed query to the rows beyond `bound`, a `(key, id)` pair, in the order of
/// `(column, id)`, and orders it so (from the largest when `descending`): a page of a list that
/// an index on `(column, id)` serves however deep it is.
macro_rules! keyset {
    ($query:expr, $column:expr, $id:expr, $bound:expr, $descending:expr) => {{
        use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl};
        match ($bound, $descending) {
            (Some((key, id)), true) => $query
                .filter($column.le(key.clone()).and($column.lt(key).or($id.lt(id))))
                .order_by(($column.desc(), $id.desc())),
            (Some((key, id)), false) => $query
                .filter($column.ge(key.clone()).and($column.gt(key).or($id.gt(id))))
                .order_by(($column.asc(), $id.asc())),
            (None, true) => $query.order_by(($column.desc(), $id.desc())),
            (None, false) => $query.order_by(($column.asc(), $id.asc())),
        }
    }};
}

pub mod audit;
pub mod clients;
pub mod email_tokens;
pub mod factors;
pub mod fastapi_users;
pub mod legacy_tokens;
pub mod models;
pub mod oidc;
pub mod outbox;
pub mod passkeys;
mod pool;
pub mod schema;
pub mod search;
pub mod secrets;
pub mod seed;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::path::Path;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ExpressionMethods, QueryDsl, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use crate::config::{Backend, PoolSettings};
pub use crate::domain::{Boundary, Listing, Page, Total};

pub(crate) use users::escape_like;

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum Conn {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub use pool::{Pool, Pooled};

/// The same migrations serve both backends: they are written in the SQL both understand.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any constant will do: the key PostgreSQL's advisory locks take for Gatehouse's writers.
const PG_WRITE_LOCK: i64 = 0x6761_7465_686f;
const PG_MIGRATION_LOCK: i64 = 0x6761_7465_6d69;

/// Everything that can go wrong below the service layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("another client has that name")]
    ClientNameTaken,
    #[error("no such row")]
    NotFound,
    #[error("database query failed: {0}")]
    Query(DieselError),
    /// No connection could be had: the database is down, unreachable or overwhelmed.
    #[error("no database connection available: {0}")]
    Down(String),
    /// A write could not be stored: the disk is full, the file read-only or failing, or the
    /// database file was deleted or replaced.
    #[error("the database cannot store data: {0}")]
    Storage(String),
    /// Starting would create a new, empty database where one was expected.
    #[error("{0}")]
    NoDatabase(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("the blocking task was cancelled")]
    Cancelled,
}

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> DbError {
        match storage_failure(&error) {
            true => DbError::Storage(error.to_string()),
            false => DbError::Query(error),
        }
    }
}

/// Errors that say the database cannot do its job (down, full, read-only, failing I/O),
/// on either backend, rather than that a statement was wrong.
fn storage_failure(error: &DieselError) -> bool {
    let DieselError::DatabaseError(kind, info) = error else {
        return false;
    };
    if matches!(
        kind,
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::ReadOnlyTransaction
    ) {
        return true;
    }
    let message = info.message().to_ascii_lowercase();
    [
        "database or disk is full",
        "readonly database",
        "disk i/o error",
        "database is locked",
        "unable to open database file",
        "no space left on device",
        "could not extend file",
        "read-only",
        "terminating connection",
        "the database system is",
        "server closed the connection",
        "connection",
    ]
    .iter()
    .any(|sign| message.contains(sign))
}

/// Whether starting may create a database that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// Create it, and say so loudly (development, `gatehouse migrate`).
    Allowed,
    /// Refuse to start: the database should exist (production).
    Refused,
}

/// Opens connections to the configured backend (rather than guessing from the URL, as
/// `MultiConnection::establish` does, which would hide PostgreSQL's error behind SQLite's).
#[derive(Debug)]
pub struct Manager {
    url: String,
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, diesel::r2d2::Error> {
        let conn = match self.backend {
            Backend::Postgres => PgConnection::establish(&self.url).map(Conn::Postgresql),
            // Never creates the file: one deleted under a running server must not come back
            // empty.
            Backend::Sqlite => {
                SqliteConnection::establish(&existing_file_uri(&self.url)).map(Conn::Sqlite)
            }
        };
        let mut conn = conn.map_err(diesel::r2d2::Error::ConnectionError)?;
        if let Conn::Sqlite(sqlite) = &mut conn {
            // A busy timeout instead of an immediate "database is locked", foreign keys, and
            // `synchronous = FULL`: a commit is on disk before it is acknowledged, even if
            // the machine loses power.
            sqlite
                .batch_execute(
                    "PRAGMA busy_timeout = 5000;
                     PRAGMA synchronous = FULL;
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(Pooled::proven(conn))
    }

    /// Pings a connection before handing it out, unless it proved itself moments ago (see
    /// [`Pooled`]): on PostgreSQL a ping is a round trip, which doubled the database's work
    /// on every request.
    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), diesel::r2d2::Error> {
        pooled.check(|conn| conn.ping().map_err(diesel::r2d2::Error::QueryError))
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        std::thread::panicking() || pooled.is_broken()
    }
}

/// Opens the database and builds the connection pool. A database that does not exist yet
/// (a missing SQLite file, an empty PostgreSQL schema) is created only when `creation`
/// allows it, and creating one is logged as a warning.
pub fn connect(
    database_url: &str,
    settings: PoolSettings,
    creation: Creation,
) -> Result<Pool, DbError> {
    let backend = Backend::of(database_url);
    let manager = Manager {
        url: database_url.to_owned(),
        backend,
    };
    if backend == Backend::Postgres {
        let pool = Pool::build(manager, settings, None)?;
        ensure_schema_or_creation(&pool, creation)?;
        return Ok(pool);
    }
    if is_plain_file(database_url) {
        prepare_sqlite_file(database_url, creation)?;
        return Pool::build(manager, settings, Some(Path::new(database_url)));
    }
    Pool::build(manager, settings, None)
}

/// A SQLite path naming a file, rather than `:memory:` or a `file:` URI (which say themselves
/// how to open it).
fn is_plain_file(path: &str) -> bool {
    path != ":memory:" && !path.starts_with("file:")
}

/// A PostgreSQL database without Gatehouse's tables is new: refuse it unless allowed.
fn ensure_schema_or_creation(pool: &Pool, creation: Creation) -> Result<(), DbError> {
    let mut conn = pool.get()?;
    let Conn::Postgresql(pg) = &mut **conn else {
        return Ok(());
    };
    let applied = pg.applied_migrations().map(|v| v.len()).unwrap_or(0);
    match (applied, creation) {
        (0, Creation::Refused) => Err(DbError::NoDatabase(
            "the PostgreSQL database has no Gatehouse tables: run `gatehouse migrate` to \
             create them, or set DATABASE_CREATE=true"
                .to_owned(),
        )),
        (0, Creation::Allowed) => {
            log::warn!("the PostgreSQL database is empty: creating Gatehouse's tables");
            Ok(())
        }
        _ => Ok(()),
    }
}

fn prepare_sqlite_file(path: &str, creation: Creation) -> Result<(), DbError> {
    if path.contains("://") {
        return Err(DbError::Migration(format!(
            "unsupported DATABASE_URL scheme in `{}`: give a SQLite file path or a \
             postgres:// URL",
            path.split("://").next().unwrap_or_default()
        )));
    }
    if !Path::new(path).exists() {
        if creation == Creation::Refused {
            return Err(DbError::NoDatabase(format!(
                "there is no database at {path}: restore it, or run `gatehouse migrate` (or \
                 set DATABASE_CREATE=true) to start a new, empty one"
            )));
        }
        log::warn!("there is no database at {path}: creating a new, empty one");
        if let Some(dir) = Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    DbError::Migration(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
    }
    warn_if_others_can_read(path);
    // Write-ahead logging (readers never block the writer) is a property of the file: set it
    // once, before the pool opens connections that would race to switch it.
    let mut first = SqliteConnection::establish(path)
        .map_err(|e| DbError::Migration(format!("cannot open {path}: {e}")))?;
    first.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
    Ok(())
}

/// A database file made before files were created private (or copied in with a loose mode)
/// holds password hashes that other local users could read: say so at every start.
fn warn_if_others_can_read(path: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                log::warn!(
                    "the database {path} can be read by other users (mode {mode:o}); \
                     `chmod 600` it and its -wal and -shm files"
                );
            }
        }
    }
}

/// The SQLite URI that opens `path` read-write, failing rather than creating it when it is
/// missing.
fn existing_file_uri(path: &str) -> String {
    if !is_plain_file(path) {
        return path.to_owned();
    }
    let escaped = path
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    format!("file:{escaped}?mode=rw")
}

/// Applies pending migrations, then fills in what SQL alone cannot (see
/// [`users::backfill_email_keys`]); returns the names of the migrations applied. Instances
/// starting together on one PostgreSQL take turns.
pub fn migrate(pool: &Pool) -> Result<Vec<String>, DbError> {
    let mut conn = pool.get()?;
    let conn: &mut Conn = &mut conn;
    if let Conn::Postgresql(pg) = conn {
        pg.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
    }
    let applied = migrate_locked(conn);
    if let Conn::Postgresql(pg) = conn {
        pg.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
    }
    applied
}

fn migrate_locked(conn: &mut Conn) -> Result<Vec<String>, DbError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    let applied: Vec<String> = match conn {
        Conn::Postgresql(pg) => pg
            .run_pending_migrations(MIGRATIONS)
            .map_err(failed)?
            .iter()
            .map(ToString::to_string)
            .collect(),
        Conn::Sqlite(sqlite) => sqlite
            .run_pending_migrations(MIGRATIONS)
            .map_err(failed)?
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    search::ensure_indexes(conn)?;
    let filled = write_transaction(conn, users::backfill_email_keys)?;
    if filled > 0 {
        log::info!("gave {filled} account(s) the look-alike key of their address");
    }
    Ok(applied)
}

/// A constant column: what a count selects, so that it reads no row's values.
pub(crate) fn one() -> diesel::expression::SqlLiteral<diesel::sql_types::Integer> {
    diesel::dsl::sql("1")
}

/// How many rows `query` (selecting [`one`]) yields, reading at most one beyond
/// [`crate::domain::COUNT_LIMIT`]: a count that never reads a whole table.
pub(crate) fn count_up_to_limit<'a, Q>(conn: &mut Conn, query: Q) -> Result<Total, DbError>
where
    Q: diesel::query_dsl::methods::LimitDsl,
    Q::Output: diesel::query_dsl::LoadQuery<'a, Conn, i32>,
{
    let counted = query
        .limit(crate::domain::COUNT_LIMIT + 1)
        .load::<i32>(conn)?
        .len();
    Ok(Total::of(counted as i64))
}

/// Runs `work` with a pooled connection on the blocking thread pool. Generic over the error
/// so that a service can keep its own rules inside one transaction.
pub async fn run<T, E, F>(pool: &Pool, work: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        let done = work(&mut conn);
        if done.is_err() {
            // Perhaps the connection lost its server: ping it before it serves again.
            conn.doubt();
        }
        done
    })
    .await
    .map_err(|_| DbError::Cancelled)?
}

/// Runs `work` in a transaction that holds the database's write lock from the start, so a
/// read followed by a write cannot interleave with another writer, on any instance; called
/// inside such a transaction, it simply runs `work` there. Its commit is checked: a write is
/// acknowledged only once it is stored (SQLite does not report a failed commit of a lone
/// `INSERT … RETURNING`, so every write goes through here, usually by [`write`]).
///
/// SQLite: `BEGIN IMMEDIATE`. SQLite has one writer at a time, and a writer that finds the
/// lock taken sleeps in growing steps (up to 100 ms) before it looks again; queueing this
/// process's write transactions on a mutex first hands the lock over the moment it is free.
/// PostgreSQL: a transaction-scoped advisory lock, which every instance's writers share.
pub fn write_transaction<T, E: From<DbError>>(
    conn: &mut Conn,
    work: impl FnOnce(&mut Conn) -> Result<T, E>,
) -> Result<T, E> {
    static WRITERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // Inside the caller's write transaction already: its commit covers this work.
    let depth = match conn {
        Conn::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map(|depth| depth.is_some()),
        Conn::Postgresql(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map(|depth| depth.is_some()),
    };
    if depth.map_err(DbError::from)? {
        return work(conn);
    }
    let _turn = match conn {
        Conn::Sqlite(c) => {
            let turn = WRITERS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
                .map_err(DbError::from)?;
            Some(turn)
        }
        Conn::Postgresql(c) => {
            AnsiTransactionManager::begin_transaction(c).map_err(DbError::from)?;
            let locked = c.batch_execute(&format!("SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})"));
            if let Err(e) = locked {
                let _ = AnsiTransactionManager::rollback_transaction(c);
                return Err(DbError::from(e).into());
            }
            None
        }
    };
    let outcome = work(conn);
    let ended = match (&outcome, conn) {
        (Ok(_), Conn::Sqlite(c)) => AnsiTransactionManager::commit_transaction(c),
        (Ok(_), Conn::Postgresql(c)) => AnsiTransactionManager::commit_transaction(c),
        (Err(_), Conn::Sqlite(c)) => AnsiTransactionManager::rollback_transaction(c),
        (Err(_), Conn::Postgresql(c)) => AnsiTransactionManager::rollback_transaction(c),
    };
    let value = outcome?;
    ended.map_err(DbError::from)?;
    Ok(value)
}

/// Runs `work` in a write transaction (see [`write_transaction`]) on the blocking pool.
pub async fn write<T, E, F>(pool: &Pool, work: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    // A write into a deleted or replaced file would be acknowledged and lost.
    pool.check_file()?;
    run(pool, move |conn| write_transaction(conn, work)).await
}

/// Proves the database can store data: changes the probe row and commits.
pub fn probe_write(conn: &mut Conn) -> Result<(), DbError> {
    use schema::health_probe;
    write_transaction(conn, |conn| {
        diesel::update(health_probe::table.find(1))
            .set(health_probe::checked_at.eq(health_probe::checked_at + 1))
            .execute(conn)?;
        Ok(())
    })
}

pub(crate) fn is_unique_violation(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Seconds since the Unix epoch: how every timestamp is stored.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    /// Diesel keys a migration by the part of its folder's name before the first `_`: two
    /// folders with one version would leave one of them silently unapplied.
    #[test]
    fn every_migration_has_a_version_of_its_own() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut versions: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .map(|name| name.split('_').next().unwrap_or_default().to_owned())
            .collect();
        let count = versions.len();
        versions.sort();
        versions.dedup();
        assert_eq!(versions.len(), count, "duplicate migration versions");
    }
}
