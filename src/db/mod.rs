//! The database: a pool of diesel connections to SQLite or PostgreSQL, the embedded
//! migrations, and the queries.
//!
//! Queries are synchronous functions taking `&mut Conn`; async code reaches them only through
//! [`run`], which moves the work onto the blocking pool. `Conn` is diesel's `MultiConnection`
//! over both backends, so each query is written once. What differs between the backends lives
//! in this file: connecting, migrating, the write transaction, and [`per_backend!`] for the
//! few statements (upserts) that diesel only builds for one backend at a time.

/// Runs one statement on whichever backend `conn` is connected to: the statement is written
/// once and compiled for each. For what `MultiConnection` cannot express (`ON CONFLICT`).
macro_rules! per_backend {
    ($conn:expr, $c:ident => $statement:expr) => {
        match $conn {
            $crate::db::Conn::Postgresql($c) => $statement,
            $crate::db::Conn::Sqlite($c) => $statement,
        }
    };
}

pub mod audit;
pub mod clients;
pub mod email_tokens;
pub mod models;
pub mod outbox;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::path::Path;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use crate::config::{Backend, PoolSettings};
pub use crate::domain::{Listing, Page};

pub(crate) use users::escape_like;

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum Conn {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = diesel::r2d2::Pool<Manager>;

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
    #[error("no such row")]
    NotFound,
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("the blocking task was cancelled")]
    Cancelled,
}

/// Opens connections to the configured backend (rather than guessing from the URL, as
/// `MultiConnection::establish` does, which would hide PostgreSQL's error behind SQLite's).
#[derive(Debug)]
pub struct Manager {
    url: String,
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Conn, diesel::r2d2::Error> {
        let conn = match self.backend {
            Backend::Postgres => PgConnection::establish(&self.url).map(Conn::Postgresql),
            Backend::Sqlite => SqliteConnection::establish(&self.url).map(Conn::Sqlite),
        };
        let mut conn = conn.map_err(diesel::r2d2::Error::ConnectionError)?;
        if let Conn::Sqlite(sqlite) = &mut conn {
            // A busy timeout instead of an immediate "database is locked", `synchronous =
            // NORMAL` (safe with write-ahead logging) and foreign keys.
            sqlite
                .batch_execute(
                    "PRAGMA busy_timeout = 5000;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), diesel::r2d2::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Opens (creating a SQLite file if needed) the database and builds the connection pool.
pub fn connect(database_url: &str, settings: PoolSettings) -> Result<Pool, DbError> {
    let backend = Backend::of(database_url);
    if backend == Backend::Sqlite {
        prepare_sqlite_file(database_url)?;
    }
    let manager = Manager {
        url: database_url.to_owned(),
        backend,
    };
    let pool = diesel::r2d2::Pool::builder()
        .max_size(settings.size)
        .connection_timeout(settings.timeout)
        .build(manager)?;
    Ok(pool)
}

fn prepare_sqlite_file(path: &str) -> Result<(), DbError> {
    if path.contains("://") && !path.starts_with("file:") {
        return Err(DbError::Migration(format!(
            "unsupported DATABASE_URL scheme in `{}`: give a SQLite file path or a \
             postgres:// URL",
            path.split("://").next().unwrap_or_default()
        )));
    }
    if let Some(dir) = Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Migration(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    // Write-ahead logging (readers never block the writer) is a property of the file: set it
    // once, before the pool opens connections that would race to switch it.
    let mut first = SqliteConnection::establish(path)
        .map_err(|e| DbError::Migration(format!("cannot open {path}: {e}")))?;
    first.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
    Ok(())
}

/// Applies pending migrations; returns the names of those applied. Instances starting
/// together on one PostgreSQL take turns.
pub fn migrate(pool: &Pool) -> Result<Vec<String>, DbError> {
    let mut conn = pool.get()?;
    let conn = &mut *conn;
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    let applied = match conn {
        Conn::Postgresql(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
            let applied = pg.run_pending_migrations(MIGRATIONS).map_err(failed);
            let applied = applied.map(|names| names.iter().map(ToString::to_string).collect());
            pg.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
            applied
        }
        Conn::Sqlite(sqlite) => sqlite
            .run_pending_migrations(MIGRATIONS)
            .map_err(failed)
            .map(|names| names.iter().map(ToString::to_string).collect()),
    };
    applied
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
        let mut conn = pool.get().map_err(DbError::from)?;
        work(&mut conn)
    })
    .await
    .map_err(|_| DbError::Cancelled)?
}

/// Runs `work` in a transaction that holds the database's write lock from the start, so a
/// read followed by a write cannot interleave with another writer, on any instance.
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
    run(pool, move |conn| write_transaction(conn, work)).await
}

/// Answers whether the database responds.
pub fn ping(conn: &mut Conn) -> Result<(), DbError> {
    conn.batch_execute("SELECT 1")?;
    Ok(())
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
