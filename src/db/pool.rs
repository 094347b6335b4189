//! The connection pool, and what it knows of the database's health.
//!
//! - A circuit breaker: when connections cannot be made, requests stop waiting the whole pool
//!   timeout and fail within [`FAST_ACQUIRE`], until a connection succeeds again.
//! - For SQLite, the identity of the file that was opened: a file deleted or replaced while
//!   the server runs is noticed, instead of writes going on into a file nobody will read.
//! - For each connection, when it last proved it reaches the database ([`Pooled`]).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::r2d2::{self, HandleError, PooledConnection, R2D2Connection};

use super::{Backend, Conn, DbError, Manager, PoolSettings};

/// How long a request waits for a connection while the database is known to be failing, and
/// the step in which a healthy pool's longer wait checks whether it has started failing.
pub const FAST_ACQUIRE: Duration = Duration::from_millis(500);

/// How long a health verdict stands before the database is probed again, so that health
/// checks stay cheap however often they come.
const HEALTH_VERDICT_TTL: Duration = Duration::from_secs(1);

/// How long a connection that answered stays trusted without a ping: under load each one is
/// still pinged about once a second, where pinging at every checkout doubled PostgreSQL's
/// round trips.
const PROVEN_FOR: Duration = Duration::from_secs(1);

/// A pooled connection, and when it last proved that it reaches the database: a ping that
/// answered, or its opening. A connection whose work failed is doubted, so it is pinged before
/// it serves again, and replaced if its server is gone.
pub struct Pooled {
    conn: Conn,
    proven_at: Option<Instant>,
}

impl Pooled {
    pub(super) fn proven(conn: Conn) -> Pooled {
        Pooled {
            conn,
            proven_at: Some(Instant::now()),
        }
    }

    /// Runs `ping` unless the connection proved itself within [`PROVEN_FOR`].
    pub(super) fn check<E>(
        &mut self,
        ping: impl FnOnce(&mut Conn) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.proven_at.is_some_and(|at| at.elapsed() < PROVEN_FOR) {
            return Ok(());
        }
        self.proven_at = None;
        ping(&mut self.conn)?;
        self.proven_at = Some(Instant::now());
        Ok(())
    }

    /// Makes the next checkout ping the connection first.
    pub fn doubt(&mut self) {
        self.proven_at = None;
    }

    pub(super) fn is_broken(&mut self) -> bool {
        self.conn.is_broken()
    }
}

impl Deref for Pooled {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// A pool of connections to the database.
#[derive(Clone)]
pub struct Pool {
    connections: r2d2::Pool<Manager>,
    timeout: Duration,
    breaker: Arc<Breaker>,
    file: Option<Arc<FileIdentity>>,
    /// The last health probe: when, and whether the database could store data.
    health: Arc<Mutex<Option<(Instant, bool)>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("max_size", &self.connections.max_size())
            .field("failing", &self.is_failing())
            .finish()
    }
}

impl Pool {
    pub(super) fn build(
        manager: Manager,
        settings: PoolSettings,
        sqlite_file: Option<&Path>,
    ) -> Result<Pool, DbError> {
        let backend = manager.backend;
        let breaker = Arc::new(Breaker::default());
        let connections = r2d2::Pool::builder()
            .max_size(settings.size)
            .connection_timeout(settings.timeout)
            .error_handler(Box::new(TripOnError(breaker.clone())))
            .build(manager)
            .map_err(|e| DbError::Down(e.to_string()))?;
        let file = match (backend, sqlite_file) {
            (Backend::Sqlite, Some(path)) => Some(Arc::new(FileIdentity::of(path)?)),
            _ => None,
        };
        Ok(Pool {
            connections,
            timeout: settings.timeout,
            breaker,
            file,
            health: Arc::default(),
        })
    }

    /// A connection: within the pool timeout while the database is healthy, within
    /// [`FAST_ACQUIRE`] once it is known to be failing.
    pub fn get(&self) -> Result<PooledConnection<Manager>, DbError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.connections.get_timeout(FAST_ACQUIRE.min(left)) {
                Ok(conn) => {
                    self.breaker.reset();
                    return Ok(conn);
                }
                Err(e) if self.is_failing() || left <= FAST_ACQUIRE => {
                    return Err(DbError::Down(e.to_string()));
                }
                // Busy, not failing: keep waiting for a connection to come back.
                Err(_) => {}
            }
        }
    }

    /// Whether connections could not be made lately.
    pub fn is_failing(&self) -> bool {
        self.breaker.failing.load(Ordering::Relaxed)
    }

    /// The last health verdict, if it is recent enough to stand.
    pub fn recent_health(&self) -> Option<bool> {
        let last = *self.health.lock().unwrap_or_else(|e| e.into_inner());
        last.filter(|(at, _)| at.elapsed() < HEALTH_VERDICT_TTL)
            .map(|(_, healthy)| healthy)
    }

    pub fn remember_health(&self, healthy: bool) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), healthy));
    }

    /// Connections open and idle.
    pub fn state(&self) -> r2d2::State {
        self.connections.state()
    }

    pub fn max_size(&self) -> u32 {
        self.connections.max_size()
    }

    /// For SQLite: fails when the file at the configured path is no longer the one the server
    /// opened (deleted, or replaced by another), and logs that as an error.
    pub fn check_file(&self) -> Result<(), DbError> {
        let Some(opened) = &self.file else {
            return Ok(());
        };
        match FileIdentity::of(&opened.path) {
            Ok(now) if now.same_file(opened) => Ok(()),
            _ => {
                let cause = format!(
                    "the database file {} was deleted or replaced while the server ran; \
                     restore it and restart",
                    opened.path.display()
                );
                if !opened.reported.swap(true, Ordering::Relaxed) {
                    log::error!("{cause}");
                }
                Err(DbError::Storage(cause))
            }
        }
    }
}

/// Open while connections fail; logs each change once.
#[derive(Debug, Default)]
struct Breaker {
    failing: AtomicBool,
}

impl Breaker {
    fn trip(&self, cause: &dyn fmt::Display) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            log::error!("database unavailable: {cause}; answering 503 until a connection succeeds");
        }
    }

    fn reset(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            log::warn!("database available again");
        }
    }
}

/// r2d2 reports here each connection that could not be made.
#[derive(Debug)]
struct TripOnError(Arc<Breaker>);

impl<E: fmt::Display> HandleError<E> for TripOnError {
    fn handle_error(&self, error: E) {
        self.0.trip(&error);
    }
}

/// Which file a path named when it was opened.
#[derive(Debug)]
struct FileIdentity {
    path: PathBuf,
    device: u64,
    inode: u64,
    /// Whether its loss has been logged already.
    reported: AtomicBool,
}

impl FileIdentity {
    fn of(path: &Path) -> Result<FileIdentity, DbError> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| DbError::Storage(format!("cannot read {}: {e}", path.display())))?;
        Ok(FileIdentity {
            path: path.to_owned(),
            device: meta.dev(),
            inode: meta.ino(),
            reported: AtomicBool::new(false),
        })
    }

    fn same_file(&self, other: &FileIdentity) -> bool {
        self.device == other.device && self.inode == other.inode
    }
}

#[cfg(test)]
mod tests {
    use diesel::{Connection, SqliteConnection};

    use super::*;

    fn pooled() -> Pooled {
        Pooled::proven(Conn::Sqlite(
            SqliteConnection::establish(":memory:").unwrap(),
        ))
    }

    fn pinged(pooled: &mut Pooled, answers: bool) -> (bool, Result<(), ()>) {
        let mut asked = false;
        let result = pooled.check(|_| {
            asked = true;
            if answers {
                Ok(())
            } else {
                Err(())
            }
        });
        (asked, result)
    }

    #[test]
    fn a_connection_that_just_answered_is_not_pinged() {
        let mut conn = pooled();
        assert_eq!(pinged(&mut conn, true), (false, Ok(())));
    }

    #[test]
    fn a_doubted_connection_is_pinged_until_it_answers() {
        let mut conn = pooled();
        conn.doubt();
        assert_eq!(pinged(&mut conn, false), (true, Err(())));
        assert_eq!(pinged(&mut conn, false), (true, Err(())), "still doubted");
        assert_eq!(pinged(&mut conn, true), (true, Ok(())));
        assert_eq!(pinged(&mut conn, true), (false, Ok(())), "proven again");
    }

    #[test]
    fn a_connection_idle_for_longer_is_pinged() {
        let mut conn = pooled();
        conn.proven_at = Instant::now().checked_sub(PROVEN_FOR);
        assert_eq!(pinged(&mut conn, true), (true, Ok(())));
    }
}
