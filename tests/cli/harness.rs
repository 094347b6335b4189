//! What every command test shares: a sandbox directory with its database and port, running the
//! binary to completion or serving it, and reading keys and users back.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";
pub const KEY_FILE: &str = "gatehouse-dev-jwks.json";
/// 32 random bytes, base64url: an `MFA_KEY` production accepts.
pub const MFA_KEY: &str = "sJWu3YnW2AUhzQlLd1XADGmNzP3214ukQDLVB-EIzCE";
/// Commands that do their work and exit (migrate, create-superuser, keys generate).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a served process may take to answer `GET /health`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// The binary in `dir` with an empty environment except PATH.
pub fn bare_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args).current_dir(dir).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// A temporary working directory, the database inside it, and a free port.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temporary directory"),
            port: free_port(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file, in a `data/` directory that does not exist yet.
    pub fn db_path(&self) -> PathBuf {
        self.path().join("data").join("gatehouse.db")
    }

    /// Where a development run keeps its generated key: beside the database.
    pub fn key_file(&self) -> PathBuf {
        self.path().join("data").join(KEY_FILE)
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The binary with DATABASE_URL, BIND_ADDR and cheap argon2 settings (development mode).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = bare_command(self.path(), args);
        cmd.env("DATABASE_URL", self.db_path())
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .env("ARGON2_MEMORY_KIB", "8192")
            .env("ARGON2_ITERATIONS", "1");
        cmd
    }

    /// The binary started by `sh` after `umask {umask}`, as from an operator's shell, with the
    /// environment of [`Sandbox::command`].
    pub fn command_under_umask(&self, umask: &str, args: &[&str]) -> Command {
        let binary = self.command(args);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(binary.get_program())
            .args(binary.get_args())
            .current_dir(self.path())
            .env_clear();
        for (name, value) in binary.get_envs() {
            if let Some(value) = value {
                cmd.env(name, value);
            }
        }
        cmd
    }

    /// Serves with a command made by the caller (see [`Sandbox::command_under_umask`]).
    pub async fn serve_command(&self, cmd: Command) -> Server {
        Server::start(cmd, self.base_url()).await
    }

    /// Runs a command to completion.
    pub fn run(&self, args: &[&str], vars: &[(&str, &str)], stdin: Option<&str>) -> Finished {
        let mut cmd = self.command(args);
        cmd.envs(vars.iter().copied());
        run(cmd, stdin, COMMAND_TIMEOUT)
    }

    /// Starts `gatehouse serve` and waits until it answers `GET /health`.
    pub async fn serve(&self, vars: &[(&str, &str)]) -> Server {
        self.serve_args(&["serve"], vars).await
    }

    /// Starts `gatehouse serve` under an open-files limit, as `prlimit --nofile=SOFT:HARD`
    /// would.
    pub async fn serve_with_open_files(
        &self,
        (soft, hard): (u64, u64),
        vars: &[(&str, &str)],
    ) -> Server {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = self.command(&["serve"]);
        cmd.envs(vars.iter().copied());
        // SAFETY: the closure runs in the child between fork and exec and calls only setrlimit,
        // which is async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Server::start(cmd, self.base_url()).await
    }

    pub async fn serve_args(&self, args: &[&str], vars: &[(&str, &str)]) -> Server {
        let mut cmd = self.command(args);
        cmd.envs(vars.iter().copied());
        Server::start(cmd, self.base_url()).await
    }

    /// Every file below the sandbox whose name is `name`.
    pub fn files_named(&self, name: &str) -> Vec<PathBuf> {
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
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn describe(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "expected success\n{}",
            self.describe()
        );
    }

    pub fn assert_failure(&self) {
        assert!(
            !self.status.success() && self.status.code().is_some_and(|code| code != 0),
            "expected a non-zero exit code\n{}",
            self.describe()
        );
    }
}

/// Runs `cmd` with `stdin` (or none), killing it if it outlives `timeout`.
pub fn run(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Finished {
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
pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub client: reqwest::Client,
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Everything the process has written so far (stdout, then stderr).
    pub fn logs(&self) -> String {
        format!("{}{}", self.stdout.text(), self.stderr.text())
    }

    /// Kills the process and returns everything it wrote (stdout, then stderr).
    pub fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        format!("{}{}", self.stdout.finish(), self.stderr.finish())
    }

    /// Sends `request`, asserts the status, and returns the JSON body.
    pub async fn expect_json(request: reqwest::RequestBuilder, status: u16, what: &str) -> Value {
        let response = request.send().await.expect(what);
        let got = response.status();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(got, status, "{what}: {body}");
        body
    }

    pub async fn register(&self, email: &str, password: &str) -> Value {
        let request = self
            .client
            .post(self.url("/auth/register"))
            .json(&json!({"email": email, "password": password}));
        Self::expect_json(request, 201, &format!("register {email}")).await
    }

    /// Logs in; returns (access token, refresh token).
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
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

    pub async fn refresh(&self, refresh_token: &str) -> (String, String) {
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

    pub async fn me(&self, access_token: &str) -> Value {
        let request = self
            .client
            .get(self.url("/users/me"))
            .bearer_auth(access_token);
        Self::expect_json(request, 200, "GET /users/me").await
    }

    pub async fn jwks(&self) -> Value {
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

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

pub fn string_field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` is not a string in {body}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Keys and the database
// ---------------------------------------------------------------------------------------------

/// What `gatehouse keys generate` printed.
pub struct GeneratedKeys {
    /// The `JWT_JWKS=` value, as printed.
    pub encoded: String,
    /// The decoded private JWK set.
    pub private: Value,
    /// The JSON of the `# Public JWK set` comment.
    pub public: Value,
}

pub fn keys_generate(dir: &Path) -> (Finished, GeneratedKeys) {
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

/// The two keys of a set as `keys generate` and a development run make it: the EC key (first)
/// and the RSA key.
pub fn ec_and_rsa(set: &Value) -> (&Value, &Value) {
    let keys = set["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no `keys` array in {set}"));
    assert_eq!(keys.len(), 2, "expected an EC key and an RSA key in {set}");
    assert_eq!(keys[0]["kty"], "EC", "the first key is not EC: {set}");
    assert_eq!(keys[1]["kty"], "RSA", "the second key is not RSA: {set}");
    (&keys[0], &keys[1])
}

pub fn str_of<'a>(key: &'a Value, name: &str) -> &'a str {
    key[name]
        .as_str()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("`{name}` is missing or empty in {key}"))
}

#[derive(Debug, QueryableByName)]
pub struct UserRow {
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub hashed_password: String,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
    #[diesel(sql_type = Bool)]
    pub is_superuser: bool,
}

pub fn connect(db: &Path) -> SqliteConnection {
    assert!(db.exists(), "no database at {}", db.display());
    SqliteConnection::establish(db.to_str().expect("UTF-8 path")).expect("open the database")
}

/// Every user in the database (none if the file does not exist).
pub fn users(db: &Path) -> Vec<UserRow> {
    if !db.exists() {
        return Vec::new();
    }
    diesel::sql_query(
        "SELECT email, hashed_password, is_active, is_superuser FROM users ORDER BY email",
    )
    .load(&mut connect(db))
    .expect("query users")
}

pub fn user(db: &Path, email: &str) -> UserRow {
    let mut all = users(db);
    let index = all
        .iter()
        .position(|u| u.email == email)
        .unwrap_or_else(|| panic!("no user {email} in {all:?}"));
    all.swap_remove(index)
}
