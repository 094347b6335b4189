//! The `gatehouse` binary, run as an operator would run it.
//!
//! Every test runs the real executable in a fresh temporary directory (so no `.env` of the
//! repository is read) with an empty environment plus only the variables it means. Served
//! processes are killed by a guard when the test ends, pass or fail.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";
const KEY_FILE: &str = "gatehouse-dev-jwks.json";
/// Commands that do their work and exit (migrate, create-superuser, keys generate).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Refusals to start must come quickly, before anything is served.
const QUICK_EXIT: Duration = Duration::from_secs(10);
/// How long a served process may take to answer `GET /health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// The binary in `dir` with an empty environment except PATH.
fn bare_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args).current_dir(dir).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// A temporary working directory, the database inside it, and a free port.
struct Sandbox {
    dir: tempfile::TempDir,
    port: u16,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temporary directory"),
            port: free_port(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file, in a `data/` directory that does not exist yet.
    fn db_path(&self) -> PathBuf {
        self.path().join("data").join("gatehouse.db")
    }

    /// Where a development run keeps its generated key: beside the database.
    fn key_file(&self) -> PathBuf {
        self.path().join("data").join(KEY_FILE)
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The binary with DATABASE_URL, BIND_ADDR and cheap argon2 settings (development mode).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = bare_command(self.path(), args);
        cmd.env("DATABASE_URL", self.db_path())
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .env("ARGON2_MEMORY_KIB", "8192")
            .env("ARGON2_ITERATIONS", "1");
        cmd
    }

    /// Runs a command to completion.
    fn run(&self, args: &[&str], vars: &[(&str, &str)], stdin: Option<&str>) -> Finished {
        let mut cmd = self.command(args);
        cmd.envs(vars.iter().copied());
        run(cmd, stdin, COMMAND_TIMEOUT)
    }

    /// Starts `gatehouse serve` and waits until it answers `GET /health`.
    async fn serve(&self, vars: &[(&str, &str)]) -> Server {
        self.serve_args(&["serve"], vars).await
    }

    async fn serve_args(&self, args: &[&str], vars: &[(&str, &str)]) -> Server {
        let mut cmd = self.command(args);
        cmd.envs(vars.iter().copied());
        Server::start(cmd, self.base_url()).await
    }

    /// Every file below the sandbox whose name is `name`.
    fn files_named(&self, name: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("read directory").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, name, found);
                } else if entry.file_name() == name {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        walk(self.path(), name, &mut found);
        found
    }
}

/// Reads a pipe on a thread into a buffer that can be looked at while it fills.
struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Capture {
    fn new(mut pipe: impl Read + Send + 'static) -> Capture {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
        });
        Capture {
            buffer,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }

    /// Waits for the end of the pipe (the process has exited), then returns everything.
    fn finish(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.text()
    }
}

/// A command that ran to completion.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn describe(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    fn assert_success(&self) {
        assert!(
            self.status.success(),
            "expected success\n{}",
            self.describe()
        );
    }

    fn assert_failure(&self) {
        assert!(
            !self.status.success() && self.status.code().is_some_and(|code| code != 0),
            "expected a non-zero exit code\n{}",
            self.describe()
        );
    }
}

/// Runs `cmd` with `stdin` (or none), killing it if it outlives `timeout`.
fn run(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Finished {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn gatehouse");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        // The process may exit without reading; a broken pipe is its answer, not ours.
        let _ = pipe.write_all(input.as_bytes());
    }
    let mut stdout = Capture::new(child.stdout.take().expect("stdout pipe"));
    let mut stderr = Capture::new(child.stderr.take().expect("stderr pipe"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for gatehouse") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "gatehouse {:?} did not exit within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                cmd.get_args().collect::<Vec<_>>(),
                stdout.finish(),
                stderr.finish()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: stdout.finish(),
        stderr: stderr.finish(),
    }
}

/// A served process; killed when dropped.
struct Server {
    child: Child,
    base_url: String,
    client: reqwest::Client,
    stdout: Capture,
    stderr: Capture,
}

impl Server {
    async fn start(mut cmd: Command, base_url: String) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn gatehouse serve");
        let stdout = Capture::new(child.stdout.take().expect("stdout pipe"));
        let stderr = Capture::new(child.stderr.take().expect("stderr pipe"));
        let mut server = Server {
            child,
            base_url,
            client: http_client(),
            stdout,
            stderr,
        };
        server.wait_until_healthy().await;
        server
    }

    async fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll gatehouse serve") {
                panic!(
                    "gatehouse serve exited ({status}) before answering /health\n{}",
                    self.stop()
                );
            }
            let health = self
                .client
                .get(self.url("/health"))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if let Ok(response) = health {
                if response.status() == reqwest::StatusCode::OK {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "gatehouse serve did not answer GET /health with 200 within {STARTUP_TIMEOUT:?}\n{}",
                    self.stop()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Kills the process and returns everything it wrote (stdout, then stderr).
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        format!("{}{}", self.stdout.finish(), self.stderr.finish())
    }

    /// Sends `request`, asserts the status, and returns the JSON body.
    async fn expect_json(request: reqwest::RequestBuilder, status: u16, what: &str) -> Value {
        let response = request.send().await.expect(what);
        let got = response.status();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(got, status, "{what}: {body}");
        body
    }

    async fn register(&self, email: &str, password: &str) -> Value {
        let request = self
            .client
            .post(self.url("/auth/register"))
            .json(&json!({"email": email, "password": password}));
        Self::expect_json(request, 201, &format!("register {email}")).await
    }

    /// Logs in; returns (access token, refresh token).
    async fn login(&self, email: &str, password: &str) -> (String, String) {
        let request = self
            .client
            .post(self.url("/auth/jwt/login"))
            .form(&[("username", email), ("password", password)]);
        let body = Self::expect_json(request, 200, &format!("login {email}")).await;
        (
            string_field(&body, "access_token"),
            string_field(&body, "refresh_token"),
        )
    }

    async fn refresh(&self, refresh_token: &str) -> (String, String) {
        let request = self
            .client
            .post(self.url("/auth/jwt/refresh"))
            .json(&json!({"refresh_token": refresh_token}));
        let body = Self::expect_json(request, 200, "refresh").await;
        (
            string_field(&body, "access_token"),
            string_field(&body, "refresh_token"),
        )
    }

    async fn me(&self, access_token: &str) -> Value {
        let request = self
            .client
            .get(self.url("/users/me"))
            .bearer_auth(access_token);
        Self::expect_json(request, 200, "GET /users/me").await
    }

    async fn jwks(&self) -> Value {
        let response = self
            .client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("GET /.well-known/jwks.json");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON JWKS")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

fn string_field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` is not a string in {body}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Keys and the database
// ---------------------------------------------------------------------------------------------

/// What `gatehouse keys generate` printed.
struct GeneratedKeys {
    /// The `JWT_JWKS=` value, as printed.
    encoded: String,
    /// The decoded private JWK set.
    private: Value,
    /// The JSON of the `# Public JWK set` comment.
    public: Value,
}

fn keys_generate(dir: &Path) -> (Finished, GeneratedKeys) {
    let finished = run(
        bare_command(dir, &["keys", "generate"]),
        None,
        COMMAND_TIMEOUT,
    );
    finished.assert_success();
    let encoded = finished
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("JWT_JWKS="))
        .unwrap_or_else(|| panic!("no JWT_JWKS= line\n{}", finished.describe()))
        .to_owned();
    let decoded = STANDARD
        .decode(encoded.trim())
        .unwrap_or_else(|e| panic!("JWT_JWKS is not standard base64 ({e}): {encoded}"));
    let private: Value = serde_json::from_slice(&decoded).expect("JWT_JWKS decodes to JSON");
    let public_line = finished
        .stdout
        .lines()
        .find(|line| line.starts_with("# Public JWK set"))
        .unwrap_or_else(|| panic!("no `# Public JWK set` line\n{}", finished.describe()));
    let start = public_line
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in {public_line}"));
    let public: Value = serde_json::from_str(&public_line[start..])
        .unwrap_or_else(|e| panic!("public JWK set is not JSON ({e}): {public_line}"));
    (
        finished,
        GeneratedKeys {
            encoded,
            private,
            public,
        },
    )
}

/// The only key of a JWK set.
fn only_key(set: &Value) -> &Value {
    let keys = set["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no `keys` array in {set}"));
    assert_eq!(keys.len(), 1, "expected exactly one key in {set}");
    &keys[0]
}

fn str_of<'a>(key: &'a Value, name: &str) -> &'a str {
    key[name]
        .as_str()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("`{name}` is missing or empty in {key}"))
}

/// The decoded header of a JWT.
fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url header"))
        .expect("JSON header")
}

#[derive(Debug, QueryableByName)]
struct UserRow {
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    hashed_password: String,
    #[diesel(sql_type = Bool)]
    is_active: bool,
    #[diesel(sql_type = Bool)]
    is_superuser: bool,
}

#[derive(Debug, QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

fn connect(db: &Path) -> SqliteConnection {
    assert!(db.exists(), "no database at {}", db.display());
    SqliteConnection::establish(db.to_str().expect("UTF-8 path")).expect("open the database")
}

/// Every user in the database (none if the file does not exist).
fn users(db: &Path) -> Vec<UserRow> {
    if !db.exists() {
        return Vec::new();
    }
    diesel::sql_query(
        "SELECT email, hashed_password, is_active, is_superuser FROM users ORDER BY email",
    )
    .load(&mut connect(db))
    .expect("query users")
}

fn user(db: &Path, email: &str) -> UserRow {
    let mut all = users(db);
    let index = all
        .iter()
        .position(|u| u.email == email)
        .unwrap_or_else(|| panic!("no user {email} in {all:?}"));
    all.swap_remove(index)
}

fn tables(db: &Path) -> Vec<String> {
    diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .load::<TableName>(&mut connect(db))
        .expect("list tables")
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// How many migrations the source tree ships.
fn migration_count() -> usize {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"))
        .expect("migrations directory")
        .flatten()
        .filter(|e| e.path().is_dir())
        .count()
}

// ---------------------------------------------------------------------------------------------
// --help
// ---------------------------------------------------------------------------------------------

fn help(args: &[&str]) -> (Sandbox, Finished) {
    let sandbox = Sandbox::new();
    let finished = sandbox.run(args, &[], None);
    finished.assert_success();
    assert!(
        !sandbox.db_path().exists() && !sandbox.key_file().exists(),
        "--help must not touch the database or keys"
    );
    (sandbox, finished)
}

#[test]
fn top_level_help_lists_every_command() {
    let (_sandbox, out) = help(&["--help"]);
    for command in ["serve", "migrate", "create-superuser", "keys"] {
        assert!(
            out.stdout.contains(command),
            "`{command}` missing\n{}",
            out.describe()
        );
    }
}

#[test]
fn serve_help_describes_serving() {
    let (_sandbox, out) = help(&["serve", "--help"]);
    assert!(out.stdout.contains("serve HTTP"), "{}", out.describe());
    assert!(out.stdout.contains("BIND_ADDR"), "{}", out.describe());
}

#[test]
fn migrate_help_describes_migrating() {
    let (_sandbox, out) = help(&["migrate", "--help"]);
    assert!(out.stdout.contains("migrations"), "{}", out.describe());
}

#[test]
fn create_superuser_help_describes_its_options() {
    let (_sandbox, out) = help(&["create-superuser", "--help"]);
    assert!(out.stdout.contains("superuser"), "{}", out.describe());
    assert!(out.stdout.contains("--email"), "{}", out.describe());
    assert!(
        out.stdout.contains("--password-stdin"),
        "{}",
        out.describe()
    );
}

#[test]
fn keys_generate_help_mentions_jwt_jwks() {
    let (_sandbox, out) = help(&["keys", "generate", "--help"]);
    assert!(out.stdout.contains("ES256"), "{}", out.describe());
    assert!(out.stdout.contains("JWT_JWKS"), "{}", out.describe());
}

// ---------------------------------------------------------------------------------------------
// migrate
// ---------------------------------------------------------------------------------------------

#[test]
fn migrate_creates_the_database_then_reports_it_up_to_date() {
    let sandbox = Sandbox::new();
    let db = sandbox.db_path();
    assert!(!db.exists());

    let first = sandbox.run(&["migrate"], &[], None);
    first.assert_success();
    let applied = first
        .stdout
        .lines()
        .filter(|line| line.starts_with("applied "))
        .count();
    assert_eq!(
        applied,
        migration_count(),
        "one `applied …` line per migration\n{}",
        first.describe()
    );
    assert!(db.exists(), "migrate did not create {}", db.display());
    let tables = tables(&db);
    for table in ["users", "sessions", "refresh_tokens"] {
        assert!(
            tables.iter().any(|t| t == table),
            "no {table} in {tables:?}"
        );
    }
    assert!(users(&db).is_empty());

    let second = sandbox.run(&["migrate"], &[], None);
    second.assert_success();
    assert!(
        second.stdout.contains("up to date"),
        "second run\n{}",
        second.describe()
    );
    assert!(
        !second.stdout.contains("applied "),
        "second run applied again\n{}",
        second.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// keys generate
// ---------------------------------------------------------------------------------------------

#[test]
fn keys_generate_prints_a_private_p256_key_and_its_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let (out, keys) = keys_generate(dir.path());

    let private = only_key(&keys.private);
    assert_eq!(private["kty"], "EC", "{private}");
    assert_eq!(private["crv"], "P-256", "{private}");
    assert_eq!(private["alg"], "ES256", "{private}");
    let (d, x, y, kid) = (
        str_of(private, "d"),
        str_of(private, "x"),
        str_of(private, "y"),
        str_of(private, "kid"),
    );
    // d is really the private half of (x, y).
    let secret = p256::SecretKey::from_jwk_str(
        &json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "d": d}).to_string(),
    )
    .expect("d, x, y form a P-256 key");
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    assert_eq!(URL_SAFE_NO_PAD.encode(point.x().unwrap()), x);
    assert_eq!(URL_SAFE_NO_PAD.encode(point.y().unwrap()), y);

    let public = only_key(&keys.public);
    assert!(public.get("d").is_none(), "public key leaks d: {public}");
    assert!(
        !out.stdout
            .lines()
            .filter(|line| line.starts_with('#'))
            .any(|line| line.contains(d)),
        "a comment line carries the private key\n{}",
        out.stdout
    );
    assert_eq!(str_of(public, "kid"), kid);
    assert_eq!(str_of(public, "x"), x);
    assert_eq!(str_of(public, "y"), y);
    assert_eq!(public["kty"], "EC");
    assert_eq!(public["crv"], "P-256");

    let left_behind: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert!(
        left_behind.is_empty(),
        "keys generate wrote files: {left_behind:?}"
    );
}

#[test]
fn keys_generate_makes_a_new_key_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_, first) = keys_generate(dir.path());
    let (_, second) = keys_generate(dir.path());
    assert_ne!(first.encoded, second.encoded);
    assert_ne!(
        str_of(only_key(&first.private), "kid"),
        str_of(only_key(&second.private), "kid")
    );
}

#[tokio::test]
async fn production_serve_publishes_exactly_the_configured_key_and_signs_with_it() {
    let sandbox = Sandbox::new();
    let (_, keys) = keys_generate(sandbox.path());
    let configured = only_key(&keys.private);
    let jwt_jwks = keys.encoded.clone();

    let mut server = sandbox
        .serve(&[
            ("GATEHOUSE_ENV", "production"),
            ("JWT_JWKS", jwt_jwks.as_str()),
            ("ARGON2_MEMORY_KIB", "19456"),
            ("ARGON2_ITERATIONS", "2"),
            ("PUBLIC_URL", "https://auth.example.com"),
        ])
        .await;

    let published = server.jwks().await;
    let key = only_key(&published);
    assert!(key.get("d").is_none(), "the JWKS publishes d: {published}");
    assert_eq!(str_of(key, "kid"), str_of(configured, "kid"));
    assert_eq!(str_of(key, "x"), str_of(configured, "x"));
    assert_eq!(str_of(key, "y"), str_of(configured, "y"));
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");

    server.register("signer@example.com", PASSWORD).await;
    let (access, _) = server.login("signer@example.com", PASSWORD).await;
    let header = jwt_header(&access);
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["kid"].as_str(), Some(str_of(configured, "kid")));

    let logs = server.stop();
    assert!(
        sandbox.files_named(KEY_FILE).is_empty(),
        "a key file was generated although JWT_JWKS was set\n{logs}"
    );
    assert!(
        !logs.contains(str_of(configured, "d")),
        "the private key was logged\n{logs}"
    );
}

// ---------------------------------------------------------------------------------------------
// Refusing to start
// ---------------------------------------------------------------------------------------------

#[test]
fn production_serve_without_keys_refuses_naming_jwt_jwks() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("GATEHOUSE_ENV", "production")
        .env("ARGON2_MEMORY_KIB", "19456")
        .env("ARGON2_ITERATIONS", "2");
    let out = run(cmd, None, QUICK_EXIT);
    out.assert_failure();
    assert!(out.stderr.contains("JWT_JWKS"), "{}", out.describe());
    assert!(
        sandbox.files_named(KEY_FILE).is_empty(),
        "production generated a development key"
    );
}

#[test]
fn production_serve_with_weak_hashing_refuses_naming_argon2_memory() {
    let sandbox = Sandbox::new();
    let (_, keys) = keys_generate(sandbox.path());
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("GATEHOUSE_ENV", "production")
        .env("JWT_JWKS", &keys.encoded)
        .env("ARGON2_MEMORY_KIB", "8192")
        .env("ARGON2_ITERATIONS", "2");
    let out = run(cmd, None, QUICK_EXIT);
    out.assert_failure();
    assert!(
        out.stderr.contains("ARGON2_MEMORY_KIB"),
        "{}",
        out.describe()
    );
}

#[test]
fn an_invalid_setting_refuses_to_serve_naming_the_variable() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("ACCESS_TOKEN_TTL", "soon");
    let out = run(cmd, None, QUICK_EXIT);
    out.assert_failure();
    assert!(
        out.stderr.contains("ACCESS_TOKEN_TTL"),
        "{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Development serve
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn development_serve_generates_a_private_key_file_and_reuses_it_after_restart() {
    use std::os::unix::fs::PermissionsExt as _;

    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file();
    let mut first = sandbox.serve(&[]).await;
    let first_jwks = first.jwks().await;
    first.register("dev@example.com", PASSWORD).await;
    let (access, _) = first.login("dev@example.com", PASSWORD).await;
    let first_logs = first.stop();

    assert!(
        first_logs.contains(&key_file.display().to_string()),
        "no log line names the generated key file {}\n{first_logs}",
        key_file.display()
    );
    assert!(
        first_logs.contains(&format!("http://127.0.0.1:{}", sandbox.port)),
        "the startup line does not give the address\n{first_logs}"
    );
    assert!(key_file.is_file(), "no key file at {}", key_file.display());
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode is {mode:o}");
    let key_contents = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(sandbox.files_named(KEY_FILE), vec![key_file.clone()]);

    let mut second = sandbox.serve(&[]).await;
    let second_jwks = second.jwks().await;
    assert_eq!(
        str_of(only_key(&second_jwks), "kid"),
        str_of(only_key(&first_jwks), "kid"),
        "the key changed across a restart"
    );
    assert_eq!(only_key(&second_jwks), only_key(&first_jwks));
    // A token issued before the restart is still accepted.
    let me = second.me(&access).await;
    assert_eq!(me["email"], "dev@example.com");
    let second_logs = second.stop();
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key_contents);
    assert!(
        !second_logs.contains("generated"),
        "the restart claims to have generated a key\n{second_logs}"
    );
}

#[tokio::test]
async fn running_without_a_command_serves() {
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve_args(&[], &[]).await;
    let jwks = server.jwks().await;
    only_key(&jwks);
    let logs = server.stop();
    assert!(
        logs.contains(&format!("http://127.0.0.1:{}", sandbox.port)),
        "{logs}"
    );
}

// ---------------------------------------------------------------------------------------------
// create-superuser
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_superuser_with_password_stdin_creates_a_superuser_who_can_log_in() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &[
            "create-superuser",
            "--email",
            "admin@example.com",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    out.assert_success();
    assert!(
        out.stdout.contains("admin@example.com"),
        "{}",
        out.describe()
    );
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));

    let row = user(&sandbox.db_path(), "admin@example.com");
    assert!(row.is_superuser && row.is_active, "{row:?}");

    let server = sandbox.serve(&[]).await;
    let (access, _) = server.login("admin@example.com", PASSWORD).await;
    let me = server.me(&access).await;
    assert_eq!(me["email"], "admin@example.com");
    assert_eq!(me["is_superuser"], true, "{me}");
    assert_eq!(me["is_active"], true, "{me}");
}

#[test]
fn create_superuser_refuses_weak_passwords_with_a_reason_and_creates_nobody() {
    for (password, reason) in [
        ("password\n", "too common"),
        ("short\n", "at least 8 characters"),
    ] {
        let sandbox = Sandbox::new();
        let out = sandbox.run(
            &[
                "create-superuser",
                "--email",
                "admin@example.com",
                "--password-stdin",
            ],
            &[],
            Some(password),
        );
        out.assert_failure();
        assert!(
            out.stderr.contains(reason),
            "no human reason\n{}",
            out.describe()
        );
        assert!(
            users(&sandbox.db_path()).is_empty(),
            "a user was created: {:?}",
            users(&sandbox.db_path())
        );
    }
}

#[tokio::test]
async fn create_superuser_promotes_a_registered_user_without_asking_for_a_password() {
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[]).await;
    let registered = server.register("alice@example.com", PASSWORD).await;
    assert_eq!(registered["is_superuser"], false);
    server.stop();
    let before = user(&sandbox.db_path(), "alice@example.com");
    assert!(!before.is_superuser);

    // No --password-stdin and no terminal: prompting would fail.
    let out = sandbox.run(
        &["create-superuser", "--email", "alice@example.com"],
        &[],
        None,
    );
    out.assert_success();
    assert!(
        out.stdout.contains("alice@example.com"),
        "{}",
        out.describe()
    );

    let after = user(&sandbox.db_path(), "alice@example.com");
    assert!(after.is_superuser && after.is_active, "{after:?}");
    assert_eq!(
        after.hashed_password, before.hashed_password,
        "promotion changed the password"
    );
    assert_eq!(users(&sandbox.db_path()).len(), 1);
}

#[test]
fn create_superuser_again_promotes_and_reactivates_with_empty_stdin() {
    let sandbox = Sandbox::new();
    let args = [
        "create-superuser",
        "--email",
        "admin@example.com",
        "--password-stdin",
    ];
    sandbox
        .run(&args, &[], Some(&format!("{PASSWORD}\n")))
        .assert_success();
    let db = sandbox.db_path();
    let created = user(&db, "admin@example.com");
    diesel::sql_query("UPDATE users SET is_superuser = 0, is_active = 0")
        .execute(&mut connect(&db))
        .expect("demote and deactivate");

    let out = sandbox.run(&args, &[], Some(""));
    out.assert_success();

    let all = users(&db);
    assert_eq!(all.len(), 1, "{all:?}");
    let promoted = user(&db, "admin@example.com");
    assert!(promoted.is_superuser, "{promoted:?}");
    assert!(
        promoted.is_active,
        "promotion did not reactivate: {promoted:?}"
    );
    assert_eq!(promoted.hashed_password, created.hashed_password);
}

// ---------------------------------------------------------------------------------------------
// clients create
// ---------------------------------------------------------------------------------------------

/// The value of the `key=` line of a command's output.
fn printed(out: &Finished, key: &str) -> String {
    out.stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no `{key}=` line\n{}", out.describe()))
        .to_owned()
}

/// How many machine clients the database holds (none if it does not exist).
fn client_count(db: &Path) -> i64 {
    if !db.exists() {
        return 0;
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT COUNT(*) AS n FROM clients")
        .get_result::<Count>(&mut connect(db))
        .map(|c| c.n)
        .unwrap_or(0)
}

#[tokio::test]
async fn clients_create_prints_credentials_that_work_at_the_token_endpoint() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &[
            "clients",
            "create",
            "--name",
            "billing service",
            "--scope",
            "write:invoices",
            "--scope",
            "read:invoices",
        ],
        &[],
        None,
    );
    out.assert_success();
    let client_id = printed(&out, "client_id");
    let client_secret = printed(&out, "client_secret");
    assert!(client_id.starts_with("client_"), "{}", out.describe());
    assert!(client_secret.len() >= 32, "{}", out.describe());
    assert_eq!(printed(&out, "scopes"), "read:invoices write:invoices");
    assert!(
        out.stdout.lines().any(|line| line.starts_with('#')),
        "a comment line\n{}",
        out.describe()
    );
    assert!(
        !out.stderr.contains(&client_secret),
        "the secret goes to stdout only"
    );
    assert_eq!(client_count(&sandbox.db_path()), 1);

    let server = sandbox.serve(&[]).await;
    let request = server.client.post(server.url("/auth/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id.as_str()),
        ("client_secret", client_secret.as_str()),
    ]);
    let token = Server::expect_json(request, 200, "client_credentials").await;
    assert_eq!(token["scope"], "read:invoices write:invoices");
    assert!(token.get("refresh_token").is_none(), "{token}");
    let request = server
        .client
        .get(server.url("/secret"))
        .bearer_auth(string_field(&token, "access_token"));
    let secret = Server::expect_json(request, 200, "GET /secret").await;
    assert_eq!(
        secret["caller"],
        json!({
            "kind": "client",
            "client_id": client_id,
            "name": "billing service",
            "scopes": ["read:invoices", "write:invoices"],
        })
    );
}

#[test]
fn clients_create_refuses_a_bad_name_or_scope_and_creates_nothing() {
    let long_name = "n".repeat(101);
    for (args, topic) in [
        (vec!["--name", ""], "name"),
        (vec!["--name", "   "], "name"),
        (vec!["--name", long_name.as_str()], "name"),
        (vec!["--name", "ok", "--scope", "two words"], "scope"),
        (vec!["--name", "ok", "--scope", "quo\"te"], "scope"),
    ] {
        let sandbox = Sandbox::new();
        let mut full = vec!["clients", "create"];
        full.extend_from_slice(&args);
        let out = sandbox.run(&full, &[], None);
        out.assert_failure();
        assert!(
            out.stderr.to_lowercase().contains(topic),
            "no message about the {topic}\n{}",
            out.describe()
        );
        assert!(!out.stdout.contains("client_secret="), "{}", out.describe());
        assert_eq!(client_count(&sandbox.db_path()), 0, "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn debug_logs_carry_request_lines_but_no_password_token_or_hash() {
    const WRONG_PASSWORD: &str = "not the right passphrase at all";
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[("RUST_LOG", "debug")]).await;

    server.register("carol@example.com", PASSWORD).await;
    let failed = server
        .client
        .post(server.url("/auth/jwt/login"))
        .form(&[
            ("username", "carol@example.com"),
            ("password", WRONG_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 400);
    let (access, refresh) = server.login("carol@example.com", PASSWORD).await;
    let (next_access, next_refresh) = server.refresh(&refresh).await;
    server.me(&access).await;
    server.me(&next_access).await;
    let refused = server
        .client
        .get(server.url("/users/me"))
        .bearer_auth(format!("{next_access}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let logs = server.stop();
    let hash = user(&sandbox.db_path(), "carol@example.com").hashed_password;
    for (what, secret) in [
        ("the password", PASSWORD),
        ("a wrong password", WRONG_PASSWORD),
        ("the access token", access.as_str()),
        ("the refreshed access token", next_access.as_str()),
        ("the refresh token", refresh.as_str()),
        ("the next refresh token", next_refresh.as_str()),
        ("the password hash", hash.as_str()),
    ] {
        assert!(!logs.contains(secret), "the logs contain {what}\n{logs}");
    }
    // Nor a recognizable part of a token (its signature).
    for token in [&access, &next_access] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(signature),
            "the logs contain a token signature"
        );
    }
    assert!(
        logs.contains(" DEBUG "),
        "RUST_LOG=debug produced no debug line\n{logs}"
    );
    for line in [
        "POST /auth/register",
        "POST /auth/jwt/login",
        "POST /auth/jwt/refresh",
        "GET /users/me",
    ] {
        assert!(logs.contains(line), "no request line `{line}`\n{logs}");
    }
}

// ---------------------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------------------

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
    assert!(logs.contains("Gatehouse stopped"), "{logs}");
}

#[tokio::test]
async fn the_metrics_token_never_reaches_the_logs() {
    const TOKEN: &str = "metrics-token-that-must-stay-secret";
    let sandbox = Sandbox::new();
    let mut server = sandbox
        .serve(&[("RUST_LOG", "debug"), ("METRICS_TOKEN", TOKEN)])
        .await;
    for (token, status) in [(TOKEN, 200), ("metrics-token-that-must-stay-secreT", 401)] {
        let response = server
            .client
            .get(server.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }

    let logs = server.stop();
    assert!(logs.contains("GET /metrics"), "no request line\n{logs}");
    assert!(
        !logs.contains("must-stay-secre"),
        "the logs hold the token\n{logs}"
    );
}
