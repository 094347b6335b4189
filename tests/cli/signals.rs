//! Stopping a served process: SIGTERM and SIGINT drain the requests in flight, a second signal
//! ends them.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::Value;

use crate::harness::*;

/// How long a stop may take: generous, because password hashing runs at a low priority and a
/// busy machine (a parallel build) can stretch a login well beyond its usual time.
const SHUTDOWN_TIMEOUT_SECS: u64 = 60;

impl Server {
    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) only sends a signal, to the child this guard owns (it has not been
        // reaped, so the pid cannot have been reused).
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    /// Waits for the process to exit on its own; returns its status and everything it wrote.
    fn wait_for_exit(&mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll gatehouse serve") {
                return (status, self.stop());
            }
            if Instant::now() > deadline {
                panic!(
                    "gatehouse serve did not exit within {timeout:?}\n{}",
                    self.stop()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn port(&self) -> u16 {
        self.base_url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("a port in the base URL")
    }
}

/// Whether a new TCP connection to `port` is refused (nobody listens any more).
fn refused(port: u16) -> bool {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
    }
}

/// Whether a login of `email` is under way: each attempt counts against the account in the
/// database before the password is hashed, and a success clears the count.
fn login_under_way(db: &Path, email: &str) -> bool {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT COUNT(*) AS n FROM throttle_counters WHERE counter_key = ?")
        .bind::<Text, _>(format!("login:{email}"))
        .get_result::<Count>(&mut connect(db))
        .is_ok_and(|c| c.n > 0)
}

#[tokio::test]
async fn sigterm_lets_the_login_in_flight_finish_then_exits_cleanly() {
    const EMAIL: &str = "inflight@example.com";
    let sandbox = Sandbox::new();
    let timeout = SHUTDOWN_TIMEOUT_SECS.to_string();
    // argon2id at 64 MiB and 8 passes: a login takes about half a second here, fifty times
    // what it takes to see it in flight (the account limits, on by default, show it).
    let mut server = sandbox
        .serve(&[
            ("ARGON2_MEMORY_KIB", "65536"),
            ("ARGON2_ITERATIONS", "8"),
            ("SHUTDOWN_TIMEOUT", &timeout),
        ])
        .await;
    server.register(EMAIL, PASSWORD).await;

    let request = server
        .client
        .post(server.url("/auth/jwt/login"))
        .form(&[("username", EMAIL), ("password", PASSWORD)]);
    let login = tokio::spawn(request.send());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !login_under_way(&sandbox.db_path(), EMAIL) {
        assert!(
            !login.is_finished(),
            "the login was answered before it was seen in flight: make hashing slower"
        );
        assert!(Instant::now() < deadline, "the login never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal(libc::SIGTERM);
    let signalled = Instant::now();
    assert!(
        !login.is_finished(),
        "the login was answered before the signal: make hashing slower"
    );

    // The listener closes at once: new connections are refused while the login finishes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !refused(server.port()) {
        assert!(
            Instant::now() < deadline,
            "still accepting connections after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let response = login
        .await
        .unwrap()
        .expect("the login in flight is answered");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON body");
    string_field(&body, "access_token");
    string_field(&body, "refresh_token");

    let (status, logs) = server.wait_for_exit(Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 5));
    assert!(status.success(), "exit status {status}\n{logs}");
    assert!(
        signalled.elapsed() < Duration::from_secs(SHUTDOWN_TIMEOUT_SECS),
        "took {:?} to stop\n{logs}",
        signalled.elapsed()
    );
    assert!(refused(server.port()), "a connection after the exit");
    let stopping = logs
        .find("SIGTERM received: stopping")
        .unwrap_or_else(|| panic!("no line on stopping\n{logs}"));
    let answered = logs
        .find("login succeeded for inflight@example.com")
        .unwrap_or_else(|| panic!("no line on the login\n{logs}"));
    let stopped = logs
        .find("Gatehouse stopped")
        .unwrap_or_else(|| panic!("no line on having stopped\n{logs}"));
    assert!(stopping < answered && answered < stopped, "{logs}");
    // The pool was closed: SQLite checkpointed and removed its write-ahead log.
    assert!(
        !sandbox.db_path().with_extension("db-wal").exists(),
        "the database was left open\n{logs}"
    );
}

#[tokio::test]
async fn sigint_stops_an_idle_server_cleanly() {
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[]).await;
    server.register("idle@example.com", PASSWORD).await;

    server.signal(libc::SIGINT);
    let (status, logs) = server.wait_for_exit(Duration::from_secs(10));

    assert!(status.success(), "exit status {status}\n{logs}");
    assert!(logs.contains("SIGINT received: stopping"), "{logs}");
    assert!(logs.contains("Gatehouse stopped"), "{logs}");
    assert!(refused(server.port()));
}

#[tokio::test]
async fn a_second_signal_ends_the_requests_in_flight() {
    const EMAIL: &str = "nobody@example.com";
    let sandbox = Sandbox::new();
    // A login takes some 2.5 s here (an unknown address costs a hash all the same); the forced
    // stop takes at most a second.
    let mut server = sandbox
        .serve(&[("ARGON2_MEMORY_KIB", "65536"), ("ARGON2_ITERATIONS", "40")])
        .await;
    let request = server
        .client
        .post(server.url("/auth/jwt/login"))
        .form(&[("username", EMAIL), ("password", PASSWORD)]);
    let login = tokio::spawn(request.send());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !login_under_way(&sandbox.db_path(), EMAIL) {
        assert!(Instant::now() < deadline, "the login never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.signal(libc::SIGINT);

    let answer = login.await.unwrap();
    assert!(
        answer.is_err(),
        "the login was answered: {:?}",
        answer.map(|r| r.status())
    );
    let (status, logs) = server.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}\n{logs}");
    assert!(
        logs.contains("SIGINT received again: ending the requests in flight now"),
        "{logs}"
    );
    assert!(logs.contains("1 request(s) cut at shutdown"), "{logs}");
    assert!(logs.contains("Gatehouse stopped"), "{logs}");
}

#[tokio::test]
async fn a_request_still_running_at_the_shutdown_timeout_is_cut_and_counted() {
    const EMAIL: &str = "slow@example.com";
    let sandbox = Sandbox::new();
    // A login takes some 6 s here (an unknown address costs a hash all the same); the stop
    // gives it one second, and ends it at most a second after that.
    let mut server = sandbox
        .serve(&[
            ("ARGON2_MEMORY_KIB", "65536"),
            ("ARGON2_ITERATIONS", "100"),
            ("SHUTDOWN_TIMEOUT", "1"),
        ])
        .await;
    let request = server
        .client
        .post(server.url("/auth/jwt/login"))
        .form(&[("username", EMAIL), ("password", PASSWORD)]);
    let login = tokio::spawn(request.send());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !login_under_way(&sandbox.db_path(), EMAIL) {
        assert!(Instant::now() < deadline, "the login never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.signal(libc::SIGTERM);
    let signalled = Instant::now();

    let answer = login.await.unwrap();
    assert!(
        answer.is_err(),
        "the login was answered: {:?}",
        answer.map(|r| r.status())
    );
    let (status, logs) = server.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}\n{logs}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?} to stop\n{logs}",
        signalled.elapsed()
    );
    assert!(
        logs.contains("1 request(s) cut at shutdown"),
        "no count of the cut request\n{logs}"
    );
    assert!(logs.contains("Gatehouse stopped"), "{logs}");
}
