//! Open files and connections: the server raises its open-files limit, and a flood of idle
//! connections beyond `MAX_CONNECTIONS` is refused at once instead of using up the open files,
//! so a health probe on a new connection is still answered at once.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::*;

/// How long "at once" may take on a busy machine. Without a cap, a server out of open files
/// takes about five seconds (the time it gives a silent connection) to answer a new one.
const PROMPTLY: Duration = Duration::from_secs(2);

/// How a `GET /health` on a new connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// An answer with this status.
    Answered(u16),
    /// The server closed or reset the connection without an answer: refused.
    Refused,
    /// Nothing within the time allowed.
    Hung,
}

fn address(server: &Server) -> SocketAddr {
    server
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("a socket address in the base URL")
}

fn probe_health(address: SocketAddr) -> Probe {
    let hung = |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    let mut stream = match TcpStream::connect_timeout(&address, PROMPTLY) {
        Ok(stream) => stream,
        Err(e) if hung(&e) => return Probe::Hung,
        Err(_) => return Probe::Refused,
    };
    stream.set_read_timeout(Some(PROMPTLY)).unwrap();
    let request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return Probe::Refused;
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if hung(&e) => return Probe::Hung,
            Err(_) => break,
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    match text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
    {
        Some(status) => Probe::Answered(status.parse().expect("a status code")),
        None => Probe::Refused,
    }
}

/// Opens `n` connections that never send anything; keeps those that connected.
fn idle_connections(address: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok())
        .collect()
}

/// This test process holds the client ends: let it open as many files as it may.
fn raise_own_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct on this stack frame.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[tokio::test]
async fn the_soft_open_files_limit_is_raised_so_idle_connections_do_not_exhaust_it() {
    raise_own_open_files_limit();
    let sandbox = Sandbox::new();
    let server = sandbox.serve_with_open_files((128, 1024), &[]).await;
    let address = address(&server);

    // More idle connections than the soft limit the server was started with.
    let idle = idle_connections(address, 200);
    let started = Instant::now();
    let probe = tokio::task::spawn_blocking(move || probe_health(address))
        .await
        .unwrap();

    let logs = server.logs();
    assert_eq!(
        probe,
        Probe::Answered(200),
        "after {:?}, with {} idle connections\n{logs}",
        started.elapsed(),
        idle.len()
    );
    assert!(
        logs.contains("open-files limit raised from 128 to 1024"),
        "{logs}"
    );
    assert!(!logs.contains("Too many open files"), "{logs}");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_at_once_and_health_still_answers() {
    raise_own_open_files_limit();
    let sandbox = Sandbox::new();
    // 256 files, no raising possible: 64 are kept for the database and the rest, and three
    // quarters of the other 192 are served (144, or a little less for an odd number of
    // workers); the default cap.
    let server = sandbox.serve_with_open_files((256, 256), &[]).await;
    let address = address(&server);

    // More idle connections than the cap, and than the server has open files.
    let idle = idle_connections(address, 300);
    let started = Instant::now();
    let probe = tokio::task::spawn_blocking(move || probe_health(address))
        .await
        .unwrap();
    let waited = started.elapsed();

    let logs = server.logs();
    assert!(
        matches!(probe, Probe::Answered(200 | 503) | Probe::Refused),
        "GET /health on a new connection: {probe:?} after {waited:?}, with {} idle \
         connections\n{logs}",
        idle.len()
    );
    assert!(waited < PROMPTLY, "{probe:?} took {waited:?}\n{logs}");
    let served: usize = logs
        .split("serving at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line on the connections served\n{logs}"));
    assert!(
        (100..=144).contains(&served) && served < idle.len(),
        "{served}\n{logs}"
    );
    assert!(!logs.contains("Too many open files"), "{logs}");
    assert!(logs.contains("connection(s) refused with 503"), "{logs}");

    // Once the flood is gone, health answers 200 again.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let probe = tokio::task::spawn_blocking(move || probe_health(address))
            .await
            .unwrap();
        if probe == Probe::Answered(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {probe:?} after the flood\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
