//! The database as storage: a write that fails while serving, never starting silently on an
//! empty database, and files no other user can read.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

/// Skips (or, under `CI=true`, fails) a test that cannot run here.
fn unavailable(what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}, and CI=true: this test must run");
    }
    eprintln!("skipping: {what}");
    true
}

/// Registers `email` and returns the status, checking that a refusal is quick and the
/// contract's 503.
async fn register(server: &Server, email: &str) -> u16 {
    let started = Instant::now();
    let response = server
        .client
        .post(server.url("/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    let status = response.status().as_u16();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{email}: slow {status}"
    );
    if status == 503 {
        assert!(response.headers().contains_key("retry-after"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, json!({"detail": "SERVICE_UNAVAILABLE"}));
    }
    status
}

async fn health(server: &Server) -> u16 {
    let response = server.client.get(server.url("/health")).send().await;
    response.expect("GET /health").status().as_u16()
}

/// Every write of the server fails with EIO (injected into `pwrite64` by strace) while the
/// guard lives; detaching ends the fault.
struct FailingWrites(std::process::Child);

impl FailingWrites {
    fn inject(pid: u32) -> Option<FailingWrites> {
        let mut strace = Command::new("strace")
            .args(["-f", "-p", &pid.to_string(), "-o", "/dev/null"])
            .args(["-e", "trace=pwrite64", "-e", "inject=pwrite64:error=EIO"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        // strace says "Process N attached" once every thread is traced.
        let mut stderr = strace.stderr.take()?;
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("attached") {
            match std::io::Read::read(&mut stderr, &mut byte) {
                Ok(1) => seen.push(byte[0]),
                _ => {
                    let _ = strace.kill();
                    return None;
                }
            }
        }
        Some(FailingWrites(strace))
    }
}

impl Drop for FailingWrites {
    fn drop(&mut self) {
        // SIGINT: strace detaches cleanly and the server runs on untouched.
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_failing_write_answers_503_stores_nothing_and_the_service_recovers() {
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[]).await;
    assert_eq!(register(&server, "before@example.com").await, 201);

    let Some(fault) = FailingWrites::inject(server.child.id()) else {
        unavailable("strace cannot attach (not installed, or ptrace not allowed)");
        return;
    };
    for n in 0..3 {
        assert_eq!(
            register(&server, &format!("during{n}@example.com")).await,
            503
        );
    }
    // Past the second that a verdict of /health stands.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(health(&server).await, 503);
    drop(fault);

    // Without a restart: writes work at once, and /health once its verdict is renewed.
    assert_eq!(register(&server, "after@example.com").await, 201);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(health(&server).await, 200);
    let log = server.stop();
    assert!(
        log.contains("disk I/O error"),
        "the cause is logged:\n{log}"
    );

    let emails: Vec<String> = users(&sandbox.db_path())
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert!(emails.contains(&"before@example.com".to_owned()));
    assert!(emails.contains(&"after@example.com".to_owned()));
    assert!(
        !emails.iter().any(|e| e.starts_with("during")),
        "a refused write was stored: {emails:?}"
    );
}

#[test]
fn production_refuses_to_start_on_a_missing_database_until_migrate_creates_it() {
    let sandbox = Sandbox::new();
    let (_, keys) = keys_generate(sandbox.path());
    let production = [
        ("GATEHOUSE_ENV", "production"),
        ("MFA_KEY", MFA_KEY),
        ("JWT_JWKS", keys.encoded.as_str()),
        ("ARGON2_MEMORY_KIB", "19456"),
        ("ARGON2_ITERATIONS", "2"),
        ("PUBLIC_URL", "https://auth.example.com"),
    ];
    let out = sandbox.run(&["serve"], &production, None);
    out.assert_failure();
    assert!(
        out.stderr.contains("gatehouse migrate") && out.stderr.contains("DATABASE_CREATE"),
        "{}",
        out.describe()
    );
    assert!(!sandbox.db_path().exists(), "a database was created");

    sandbox
        .run(&["migrate"], &production, None)
        .assert_success();
    assert!(sandbox.db_path().exists());
}

#[tokio::test]
async fn development_says_so_when_it_creates_a_new_database() {
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[("RUST_LOG", "warn")]).await;
    let log = server.stop();
    assert!(
        log.contains("creating a new, empty one"),
        "a new database must be announced:\n{log}"
    );

    // The next start finds it and says nothing of the kind.
    let mut server = sandbox.serve(&[("RUST_LOG", "warn")]).await;
    let log = server.stop();
    assert!(!log.contains("creating a new"), "{log}");
}

/// The permission bits of `path`.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file and directory below `dir`, with its mode.
fn modes_below(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        found.push((path.clone(), mode_of(&path)));
        if path.is_dir() {
            found.extend(modes_below(&path));
        }
    }
    found
}

/// Finding 7: started from a shell whose umask is the usual 022, Gatehouse still creates its
/// data directory, the database and its `-wal`/`-shm` files, the development key, the outbox
/// and every `.eml` in it (live reset links) readable by its own user only.
#[tokio::test]
async fn files_it_creates_are_private_whatever_the_umask() {
    let sandbox = Sandbox::new();
    let migrate = run(
        sandbox.command_under_umask("022", &["migrate"]),
        None,
        COMMAND_TIMEOUT,
    );
    migrate.assert_success();
    let data = sandbox.db_path().parent().unwrap().to_path_buf();
    assert_eq!(mode_of(&data), 0o700, "the data directory");
    assert_eq!(mode_of(&sandbox.db_path()), 0o600, "the database");

    let server = sandbox
        .serve_command(sandbox.command_under_umask("022", &["serve"]))
        .await;
    server.register("ada@example.com", PASSWORD).await;
    let forgot = server
        .client
        .post(server.url("/auth/forgot-password"))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forgot.status(), 202);
    let outbox = data.join("outbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    let eml = loop {
        let written = std::fs::read_dir(&outbox).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "eml"))
        });
        if let Some(path) = written {
            break path;
        }
        assert!(
            Instant::now() < deadline,
            "no reset email in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let db = sandbox.db_path().display().to_string();
    for (what, path) in [
        ("the outbox", outbox.clone()),
        ("a reset email", eml),
        ("the write-ahead log", format!("{db}-wal").into()),
        ("the shared-memory index", format!("{db}-shm").into()),
        ("the development key", sandbox.key_file()),
    ] {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode_of(&path), expected, "{what}: {}", path.display());
    }
    for (path, mode) in modes_below(&data) {
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
    }
}
