//! The open-files limit, and how many connections it leaves room for; and how the allocator
//! gives memory back.
//!
//! Every connection is an open file. A server that accepts until the limit fails to accept
//! (`EMFILE`) and can open nothing else either: a database file, an email for the outbox. So
//! Gatehouse raises its soft limit as far as it may, keeps files aside for everything that is
//! not a connection, and serves at most `MAX_CONNECTIONS` connections at once; a connection
//! beyond that is refused with a 503 at once (`routes::web::connections`).

/// Allocations from this size up are mapped on their own and unmapped when freed.
const MAPPED_FROM_BYTES: libc::c_int = 4 << 20;

/// Makes glibc hand large buffers back to the system as they are freed. By default it raises
/// its mapping threshold after the first large free, and serves the next argon2 buffers
/// (19 MiB by default) from heap arenas that it keeps: a soak of logins grew RSS to 250 MiB
/// and left it there. A fixed threshold keeps RSS near idle between hashes.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; any value is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_FROM_BYTES);
    }
}

/// Open files kept for what is not a connection, besides the database: logs, the signing key,
/// the outbox, SMTP, and what the libraries open.
const RESERVED_FILES: u64 = 40;
/// Open files per pooled database connection (SQLite: the database, its write-ahead log and
/// its shared memory; PostgreSQL: one socket).
const FILES_PER_POOLED_CONNECTION: u64 = 3;

/// The soft open-files limit after [`raise_open_files_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub limit: u64,
    /// The soft limit before, when it was raised.
    pub raised_from: Option<u64>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as far as the kernel allows a process).
/// Returns the limit in force; if it cannot be read, assumes the usual 1024.
pub fn raise_open_files_limit() -> OpenFiles {
    let mut limits = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given, which lives on this stack frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limits) } != 0 {
        log::warn!(
            "cannot read the open-files limit ({}); assuming 1024",
            std::io::Error::last_os_error()
        );
        return OpenFiles {
            limit: 1024,
            raised_from: None,
        };
    }
    let (soft, hard) = (limits.rlim_cur, limits.rlim_max);
    // An unlimited hard limit still stops at the kernel's ceiling for one process.
    let target = if hard == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(1 << 20)
    } else {
        hard
    };
    if soft != libc::RLIM_INFINITY && soft < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: hard,
        };
        // SAFETY: setrlimit only reads the struct it is given; failing leaves the limit as it was.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return OpenFiles {
                limit: target,
                raised_from: Some(soft),
            };
        }
        log::warn!(
            "cannot raise the open-files limit from {soft} to {target}: {}",
            std::io::Error::last_os_error()
        );
    }
    OpenFiles {
        limit: soft,
        raised_from: None,
    }
}

/// How many connections the server takes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once (`MAX_CONNECTIONS`); beyond, new ones are refused with 503.
    pub served: usize,
    /// What each worker accepts at most, refused ones included: the open files left once the
    /// reserve is set aside, shared among the workers. Never reached unless connections come
    /// faster than refusing them takes.
    pub per_worker: usize,
    /// `MAX_CONNECTIONS` as configured, when the open-files limit cannot hold it.
    pub lowered_from: Option<usize>,
}

impl ConnectionLimits {
    /// The limits under `open_files`, with `pool_size` database connections and `workers`
    /// workers, and `configured` connections asked for (`MAX_CONNECTIONS`). A quarter of what
    /// the files allow stays free for connections being refused.
    pub fn new(
        open_files: u64,
        pool_size: u32,
        workers: usize,
        configured: Option<usize>,
    ) -> ConnectionLimits {
        let workers = workers.max(1);
        let reserved = RESERVED_FILES + FILES_PER_POOLED_CONNECTION * u64::from(pool_size);
        let for_connections = usize::try_from(open_files.saturating_sub(reserved))
            .unwrap_or(usize::MAX)
            .min(usize::MAX / 4);
        let per_worker = (for_connections / workers).max(1);
        let most = (per_worker * workers * 3 / 4).max(1);
        let (served, lowered_from) = match configured {
            Some(asked) if asked > most => (most, Some(asked)),
            Some(asked) => (asked, None),
            None => (most, None),
        };
        ConnectionLimits {
            served,
            per_worker,
            lowered_from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_serves_three_quarters_of_the_files_left_after_the_reserve() {
        // 1024 files, 8 pooled connections: 64 reserved, 960 for connections.
        let limits = ConnectionLimits::new(1024, 8, 2, None);
        assert_eq!(
            limits,
            ConnectionLimits {
                served: 720,
                per_worker: 480,
                lowered_from: None,
            }
        );
        // A larger pool keeps more aside.
        assert_eq!(ConnectionLimits::new(1024, 40, 4, None).per_worker, 216);
        assert_eq!(ConnectionLimits::new(256, 8, 2, None).served, 144);
        assert_eq!(
            ConnectionLimits::new(1 << 20, 8, 8, None).served,
            ((1 << 20) - 64) * 3 / 4
        );
    }

    #[test]
    fn a_configured_cap_is_kept_within_what_the_files_allow() {
        let limits = ConnectionLimits::new(1024, 8, 2, Some(100));
        assert_eq!((limits.served, limits.per_worker), (100, 480));
        assert_eq!(limits.lowered_from, None);
        let limits = ConnectionLimits::new(1024, 8, 2, Some(5000));
        assert_eq!((limits.served, limits.lowered_from), (720, Some(5000)));
    }

    #[test]
    fn tiny_limits_still_serve_something() {
        for open_files in [0, 1, 64, 65] {
            let limits = ConnectionLimits::new(open_files, 8, 4, None);
            assert!(limits.served >= 1 && limits.per_worker >= 1, "{limits:?}");
        }
        assert_eq!(ConnectionLimits::new(1024, 8, 0, None).per_worker, 960);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let open = raise_open_files_limit();
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in raise_open_files_limit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!(open.limit, now.rlim_cur);
        if now.rlim_max != libc::RLIM_INFINITY {
            assert_eq!(now.rlim_cur, now.rlim_max);
        }
    }
}
