//! The database: a pool of diesel connections, the embedded migrations, and the queries.
//!
//! Queries are synchronous functions taking `&mut Conn`; async code reaches them only through
//! [`run`], which moves the work onto the blocking pool.

pub mod audit;
pub mod clients;
pub mod email_tokens;
pub mod models;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::path::Path;
use std::time::Duration;

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub(crate) use users::escape_like;

pub type Conn = SqliteConnection;
pub type Pool = diesel::r2d2::Pool<ConnectionManager<Conn>>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Everything that can go wrong below the service layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("no such row")]
    NotFound,
    #[error("the change would leave no active superuser")]
    LastSuperuser,
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

/// Applies SQLite's per-connection settings to every new connection: a busy timeout instead of
/// an immediate "database is locked", `synchronous = NORMAL` (safe with write-ahead logging)
/// and foreign keys.
#[derive(Debug)]
struct SqliteSettings;

impl CustomizeConnection<Conn, diesel::r2d2::Error> for SqliteSettings {
    fn on_acquire(&self, conn: &mut Conn) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens (creating if needed) the database and builds the connection pool.
pub fn connect(database_url: &str, pool_size: u32) -> Result<Pool, DbError> {
    if database_url.contains("://") && !database_url.starts_with("file:") {
        return Err(DbError::Migration(format!(
            "unsupported DATABASE_URL scheme in `{}`: give a SQLite file path",
            database_url.split("://").next().unwrap_or_default()
        )));
    }
    if let Some(dir) = Path::new(database_url).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Migration(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    // Write-ahead logging (readers never block the writer) is a property of the file: set it
    // once, before the pool opens connections that would race to switch it.
    let mut first = <Conn as diesel::Connection>::establish(database_url)
        .map_err(|e| DbError::Migration(format!("cannot open {database_url}: {e}")))?;
    first.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
    drop(first);
    let manager = ConnectionManager::<Conn>::new(database_url);
    let pool = diesel::r2d2::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(SqliteSettings))
        .build(manager)?;
    Ok(pool)
}

/// Applies pending migrations; returns the names of those applied.
pub fn migrate(pool: &Pool) -> Result<Vec<String>, DbError> {
    let mut conn = pool.get()?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Runs `work` with a pooled connection on the blocking thread pool.
pub async fn run<T, F>(pool: &Pool, work: F) -> Result<T, DbError>
where
    F: FnOnce(&mut Conn) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await
    .map_err(|_| DbError::Cancelled)?
}

/// Runs `work` in a transaction that takes the write lock up front, so a read followed by a
/// write cannot interleave with another writer (and SQLite never fails the upgrade with BUSY).
///
/// SQLite has one writer at a time, and a writer that finds the lock taken sleeps in growing
/// steps (up to 100 ms) before it looks again. Queueing this process's write transactions on
/// a mutex first hands the lock over the moment it is free instead.
pub fn write_transaction<T>(
    conn: &mut Conn,
    work: impl FnOnce(&mut Conn) -> Result<T, DbError>,
) -> Result<T, DbError> {
    static WRITERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = WRITERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    conn.immediate_transaction(work)
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
/// Which slice of a long list to load: page numbers start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: i64,
    pub size: i64,
}

impl Page {
    fn offset(&self) -> i64 {
        (self.number.max(1) - 1).saturating_mul(self.size)
    }
}

/// One page of a list, and how many items the whole list holds.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub total: i64,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
