//! Storage faults, injected for real: a full disk (a small tmpfs), the database file moved
//! away under the running server, and a PostgreSQL server stopped and started again (a
//! failing write, injected with strace, is in `tests/cli/storage.rs`). In each: nothing acknowledged is missing, the answers during the
//! fault are 503 `SERVICE_UNAVAILABLE` with `Retry-After` within about a second, and the
//! service recovers without a restart.
//!
//! These tests bring their own databases, so the PostgreSQL run of the suite
//! (`TEST_DATABASE_URL`) skips them. Mounting needs root and PostgreSQL's server binaries:
//! without them the tests say so and skip, and under `CI=true` they fail instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_with_settings, test_settings, TestApp, TestDatabase, PASSWORD};

/// How long an answer during a fault may take: about a second, never a pool timeout.
const FAST: Duration = Duration::from_millis(2500);

/// Skips (or, under `CI=true`, fails) a test that cannot run here.
fn unavailable(what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}, and CI=true: this test must run");
    }
    eprintln!("skipping: {what}");
    true
}

fn on_own_database() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty())
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .status()
        .is_ok_and(|status| status.success())
}

/// A small tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().to_str()?;
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", path],
        )
        .then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left of the file system with a file; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // Down to the last byte: small writes until even those fail.
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.path().to_str().unwrap().to_owned();
        let _ = run("umount", &["-l", &path]);
    }
}

/// An app on a SQLite file in `dir` (which the caller keeps mounted).
async fn app_on_sqlite(dir: &Path) -> TestApp {
    let db = dir.join("gatehouse.db").display().to_string();
    let keep = tempfile::tempdir().unwrap();
    let settings = test_settings(&db, keep.path(), &[]);
    spawn_with_settings(settings, keep, TestDatabase::shared(&db)).await
}

/// Registers `email`; returns the status, after checking that a 503 is the contract's and
/// that the answer came quickly.
async fn register_during_fault(app: &TestApp, email: &str) -> u16 {
    let started = Instant::now();
    let response = app.register(email, PASSWORD).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    assert!(took < FAST, "{email}: {status} took {took:?}");
    match status {
        201 => {}
        503 => {
            assert!(response.headers().contains_key("retry-after"));
            let body: Value = response.json().await.unwrap();
            assert_eq!(body, json!({"detail": "SERVICE_UNAVAILABLE"}));
        }
        other => panic!("{email}: unexpected {other}"),
    }
    status
}

async fn health(app: &TestApp) -> u16 {
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    response.status().as_u16()
}

/// Polls `/health` until it says `status` (the verdict is cached for a second).
async fn wait_for_health(app: &TestApp, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(app).await != status {
        assert!(Instant::now() < deadline, "/health never said {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The addresses among `emails` that have no account in the database.
fn missing_from_database(app: &TestApp, emails: &[String]) -> Vec<String> {
    emails
        .iter()
        .filter(|email| app.user_row(email).is_none())
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_full_disk_answers_503_and_loses_no_acknowledged_registration() {
    if on_own_database() {
        return;
    }
    let Some(disk) = Tmpfs::mount("4m") else {
        unavailable("cannot mount a tmpfs (not root?)");
        return;
    };
    let app = app_on_sqlite(disk.path()).await;
    assert_eq!(register_during_fault(&app, "before@example.com").await, 201);
    let filler = disk.fill();

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for n in 0..400 {
        let email = format!("user{n}@example.com");
        match register_during_fault(&app, &email).await {
            201 => acknowledged.push(email),
            _ => refused += 1,
        }
        if refused >= 5 {
            break;
        }
    }
    assert!(refused >= 5, "a full disk never refused a registration");
    let missing = missing_from_database(&app, &acknowledged);
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    assert_eq!(health(&app).await, 503, "/health must see the full disk");

    // Space comes back: the service recovers by itself.
    std::fs::remove_file(filler).unwrap();
    wait_for_health(&app, 200).await;
    assert_eq!(register_during_fault(&app, "after@example.com").await, 201);
    assert!(app.user_row("after@example.com").is_some());
}

#[tokio::test]
async fn a_database_file_moved_away_is_noticed_and_its_return_recovers() {
    if on_own_database() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = app_on_sqlite(dir.path()).await;
    assert_eq!(register_during_fault(&app, "before@example.com").await, 201);
    let db = dir.path().join("gatehouse.db");
    let aside = dir.path().join("aside.db");
    std::fs::rename(&db, &aside).unwrap();

    // Writes into the moved file would be acknowledged and then lost to the next start.
    assert_eq!(register_during_fault(&app, "during@example.com").await, 503);
    wait_for_health(&app, 503).await;
    assert!(
        !db.exists(),
        "the server must not create a new, empty database"
    );

    std::fs::rename(&aside, &db).unwrap();
    wait_for_health(&app, 200).await;
    assert_eq!(register_during_fault(&app, "after@example.com").await, 201);
    assert!(app.user_row("before@example.com").is_some());
    assert!(app.user_row("after@example.com").is_some());
    assert!(app.user_row("during@example.com").is_none());
}

/// A PostgreSQL server of the test's own, run by the `postgres` system user.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    fn start() -> Option<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())?;
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-pg")
            .tempdir_in("/tmp")
            .ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let server = Postgres { dir, bin, port };
        let data = server.data();
        let ok = run("chown", &["postgres", server.dir.path().to_str()?])
            && server.as_postgres("initdb", &["-D", &data, "-A", "trust", "-U", "postgres"]);
        (ok && server.up()).then_some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) -> bool {
        let tool = self.bin.join(tool).display().to_string();
        let mut all = vec!["-u", "postgres", "--", tool.as_str()];
        all.extend(args);
        Command::new("runuser")
            .args(&all)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn up(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
    }

    fn down(&self) -> bool {
        self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

#[tokio::test]
async fn a_stopped_postgresql_answers_503_quickly_and_recovers_when_it_returns() {
    if on_own_database() {
        return;
    }
    let Some(postgres) = Postgres::start() else {
        unavailable("cannot start a PostgreSQL server (no postgresql package, or not root?)");
        return;
    };
    let keep = tempfile::tempdir().unwrap();
    let settings = test_settings(&postgres.url(), keep.path(), &[]);
    let app = spawn_with_settings(settings, keep, TestDatabase::shared(&postgres.url())).await;
    assert_eq!(register_during_fault(&app, "before@example.com").await, 201);

    assert!(postgres.down(), "stop PostgreSQL");
    for n in 0..5 {
        let email = format!("during{n}@example.com");
        assert_eq!(register_during_fault(&app, &email).await, 503);
    }
    let started = Instant::now();
    assert_eq!(health(&app).await, 503);
    assert!(
        started.elapsed() < FAST,
        "/health took {:?}",
        started.elapsed()
    );

    assert!(postgres.up(), "start PostgreSQL again");
    wait_for_health(&app, 200).await;
    assert_eq!(register_during_fault(&app, "after@example.com").await, 201);
    assert!(app.user_row("before@example.com").is_some());
    assert!(app.user_row("after@example.com").is_some());
}
