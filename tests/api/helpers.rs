//! Spawns the real application on a random port with a fresh database: a SQLite file, or,
//! when `TEST_DATABASE_URL` names a PostgreSQL server, a new database on it.

use std::collections::HashMap;
use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use gatehouse::config::Settings;
use gatehouse::db::{Backend, Conn};
use gatehouse::startup::Application;
use reqwest::header::USER_AGENT;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The database the app runs on.
    pub database: TestDatabase,
    /// Keeps the temporary directory (database, generated key) alive for the test.
    pub dir: tempfile::TempDir,
}

/// Tokens returned by a successful login.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// A user row as stored, for assertions on the database's state.
#[derive(Debug)]
pub struct UserRow {
    pub id: String,
    pub hashed_password: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Spawns the app with extra environment variables layered over the test defaults.
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = TestDatabase::fresh(&dir);
    let settings = test_settings(&database.url, dir.path(), vars);
    spawn_with_settings(settings, dir, database).await
}

/// The test defaults for an app on `database_url` keeping its generated files in `data_dir`,
/// with `vars` layered over them.
pub fn test_settings(
    database_url: &str,
    data_dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> Settings {
    let mut env: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url.to_owned()),
        // The generated key and the outbox, whatever the database.
        ("DATA_DIR".into(), data_dir.display().to_string()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        // Cheap hashes keep the suite fast; tests about hashing set their own.
        ("ARGON2_MEMORY_KIB".into(), "8192".into()),
        ("ARGON2_ITERATIONS".into(), "1".into()),
        // Throttling has its own tests; the rest of the suite logs in far faster than a person.
        ("RATE_LIMIT".into(), "off".into()),
    ]);
    for (k, v) in vars {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::from_map(&env).expect("test settings")
}

pub async fn spawn_with_settings(
    settings: Settings,
    dir: tempfile::TempDir,
    database: TestDatabase,
) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        database,
        dir,
    }
}

/// A test's own database: a SQLite file in the test's directory or, with
/// `TEST_DATABASE_URL=postgres://…/postgres`, a new database on that server, dropped when the
/// test is over.
pub struct TestDatabase {
    pub url: String,
    /// The server and the database's name, for PostgreSQL.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub fn fresh(dir: &tempfile::TempDir) -> TestDatabase {
        let Some(server) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            return TestDatabase {
                url: dir.path().join("gatehouse.db").display().to_string(),
                postgres: None,
            };
        };
        let name = format!("gatehouse_test_{}", uuid::Uuid::new_v4().simple());
        PgConnection::establish(&server)
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL: cannot connect to {server}: {e}"))
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        let base = server
            .rsplit_once('/')
            .map_or(server.as_str(), |(base, _)| base);
        TestDatabase {
            url: format!("{base}/{name}"),
            postgres: Some((server, name)),
        }
    }
}

impl TestDatabase {
    /// Another app's database, which that app keeps (and drops).
    pub fn shared(url: &str) -> TestDatabase {
        TestDatabase {
            url: url.to_owned(),
            postgres: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.postgres {
            if let Ok(mut admin) = PgConnection::establish(server) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn register(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/register"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/jwt/login"))
            .form(&[("username", email), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    /// Registers `email` with [`PASSWORD`], logs in, and returns the tokens.
    pub async fn user(&self, email: &str) -> Tokens {
        let response = self.register(email, PASSWORD).await;
        assert_eq!(response.status(), 201, "register {email}");
        self.tokens(email, PASSWORD).await
    }

    /// Logs in and returns the tokens, failing the test on any error.
    pub async fn tokens(&self, email: &str, password: &str) -> Tokens {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), 200, "login {email}");
        let body: Value = response.json().await.unwrap();
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Registers a user, makes it a superuser in the database, and logs in.
    pub async fn superuser(&self, email: &str) -> Tokens {
        let response = self.register(email, PASSWORD).await;
        assert_eq!(response.status(), 201, "register {email}");
        self.execute(&format!(
            "UPDATE users SET is_superuser = TRUE WHERE email = '{email}'"
        ));
        self.tokens(email, PASSWORD).await
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/jwt/refresh"))
            .json(&serde_json::json!({"refresh_token": refresh_token}))
            .send()
            .await
            .unwrap()
    }

    /// A direct connection to the test database, for assertions on stored state.
    /// A direct connection to the test database, for assertions on stored state.
    pub fn db(&self) -> Conn {
        let url = &self.database.url;
        match Backend::of(url) {
            Backend::Postgres => Conn::Postgresql(PgConnection::establish(url).unwrap()),
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(url).unwrap();
                conn.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
                Conn::Sqlite(conn)
            }
        }
    }

    pub fn execute(&self, sql: &str) {
        self.db().batch_execute(sql).unwrap();
    }

    pub fn count(&self, sql: &str) -> i64 {
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM ({sql}) AS counted"))
            .get_result::<Count>(&mut self.db())
            .unwrap()
            .n
    }

    pub fn user_count(&self) -> i64 {
        self.count("SELECT id FROM users")
    }

    pub fn user_row(&self, email: &str) -> Option<UserRow> {
        use gatehouse::db::schema::users;
        users::table
            .filter(users::email.eq(email))
            .select((
                users::id,
                users::hashed_password,
                users::is_active,
                users::is_superuser,
                users::is_verified,
            ))
            .first::<(String, String, bool, bool, bool)>(&mut self.db())
            .optional()
            .unwrap()
            .map(
                |(id, hashed_password, is_active, is_superuser, is_verified)| UserRow {
                    id,
                    hashed_password,
                    is_active,
                    is_superuser,
                    is_verified,
                },
            )
    }
}

/// Asserts a `{"detail": "CODE"}` error body and status.
pub async fn assert_detail(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"detail": code}));
}

// ---------------------------------------------------------------------------------------------
// Machine clients and the OAuth2 token endpoint

/// A machine client's credentials, as `POST /clients` shows them (once).
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    /// `POST /clients` with `{name, scopes}`, authenticated by `token`.
    pub async fn create_client(
        &self,
        token: &str,
        name: &str,
        scopes: &[&str],
    ) -> reqwest::Response {
        self.client
            .post(self.url("/clients"))
            .bearer_auth(token)
            .json(&serde_json::json!({"name": name, "scopes": scopes}))
            .send()
            .await
            .unwrap()
    }

    /// Registers a machine client as the superuser `admin_token`, failing the test on any error.
    pub async fn machine_client(
        &self,
        admin_token: &str,
        name: &str,
        scopes: &[&str],
    ) -> ClientCredentials {
        let response = self.create_client(admin_token, name, scopes).await;
        assert_eq!(response.status(), 201, "create client {name}");
        let body: Value = response.json().await.unwrap();
        ClientCredentials {
            id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// `POST /auth/token` with a form body.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/auth/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// `POST /auth/token` with a form body and an `Authorization` header.
    pub async fn token_request_with_authorization(
        &self,
        authorization: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(self.url("/auth/token"))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A client-credentials access token (all the client's scopes), failing the test on any
    /// error.
    pub async fn client_token(&self, client: &ClientCredentials) -> String {
        let response = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client.id),
                ("client_secret", &client.secret),
            ])
            .await;
        assert_eq!(
            response.status(),
            200,
            "client_credentials for {}",
            client.id
        );
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// `Basic base64(id:secret)`, each part form-urlencoded first (RFC 6749 §2.3.1).
pub fn basic_authorization(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let encode =
        |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(id), encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Asserts an RFC 6749 §5.2 error: the status, `{"error": code, "error_description": text}`,
/// and the no-store headers every token endpoint answer carries.
pub async fn assert_oauth_error(response: reqwest::Response, status: u16, code: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert_no_store(&response, what);
    let body: Value = response.json().await.unwrap();
    let object = body.as_object().unwrap_or_else(|| panic!("{what}: {body}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["error", "error_description"], "{what}: {body}");
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{what}: {body}"
    );
}

/// Asserts `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn assert_no_store(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("pragma"), "no-cache", "{what}");
}

/// The hex SHA-256 of `text`: how refresh tokens and client secrets are stored.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Logs in through the API with a `User-Agent`, as a device would.
pub async fn login_from(app: &TestApp, email: &str, user_agent: &str) -> Tokens {
    let response = app
        .client
        .post(app.url("/auth/jwt/login"))
        .header(USER_AGENT, user_agent)
        .form(&[("username", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "login of {email} from {user_agent}");
    let body: Value = response.json().await.unwrap();
    Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// The sorted member names of a JSON object.
pub fn keys_of(body: &Value) -> Vec<String> {
    let mut keys: Vec<String> = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"))
        .keys()
        .cloned()
        .collect();
    keys.sort_unstable();
    keys
}

/// Asserts the session behind `tokens` is over: its access token is refused at once and its
/// refresh token no longer refreshes.
pub async fn assert_ended(app: &TestApp, tokens: &Tokens, what: &str) {
    crate::tokens::assert_invalid_token(app.get("/users/me", &tokens.access).await, what).await;
    assert_detail(
        app.refresh(&tokens.refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Email: the outbox, recovery and verification

/// The base of the links in emails, for apps spawned with [`spawn_mail_app_with`].
pub const PUBLIC_URL: &str = "http://gatehouse.test";

/// How long a message may take to reach the outbox after the request that queued it.
const OUTBOX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Spawns the app with `PUBLIC_URL` set to [`PUBLIC_URL`] and extra variables.
pub async fn spawn_mail_app_with(vars: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("PUBLIC_URL", PUBLIC_URL)];
    all.extend_from_slice(vars);
    spawn_app_with(&all).await
}

/// One message of the outbox, decoded.
#[derive(Debug, Clone)]
pub struct Email {
    /// The message's top-level headers, unfolded, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded `text/plain` part.
    pub text: String,
    /// The decoded `text/html` part.
    pub html: String,
    /// The `token` of the first link in the text part (empty if there is none).
    pub token: String,
    /// The link in the text part up to `?token=` (empty if there is none).
    pub link_base: String,
}

impl Email {
    /// The value of the first header called `name` (any letter case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the message is addressed to `address` (any letter case).
    pub fn is_to(&self, address: &str) -> bool {
        self.header("to").is_some_and(|to| {
            let to = to.trim();
            let bare = match (to.find('<'), to.rfind('>')) {
                (Some(start), Some(end)) if start < end => &to[start + 1..end],
                _ => to,
            };
            bare.trim().eq_ignore_ascii_case(address)
        })
    }
}

impl TestApp {
    /// Where messages go without `SMTP_URL`: `outbox/` beside the database.
    pub fn outbox_dir(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Every complete message in the outbox so far, oldest first.
    pub fn outbox(&self) -> Vec<Email> {
        let Ok(entries) = std::fs::read_dir(self.outbox_dir()) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.') && n.ends_with(".eml"))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| parse_email_message(&std::fs::read(path).unwrap()))
            .collect()
    }

    /// The messages to `address` so far, oldest first.
    pub fn emails_to(&self, address: &str) -> Vec<Email> {
        self.outbox()
            .into_iter()
            .filter(|email| email.is_to(address))
            .collect()
    }

    /// Waits for the `n`-th message (counting from 1) to `address` and returns it.
    pub async fn wait_for_email(&self, address: &str, n: usize) -> Email {
        let deadline = std::time::Instant::now() + OUTBOX_TIMEOUT;
        loop {
            let mut emails = self.emails_to(address);
            if emails.len() >= n {
                return emails.swap_remove(n - 1);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "message {n} to {address} did not arrive; the outbox holds {:?}",
                self.outbox()
                    .iter()
                    .map(|e| (
                        e.header("to").map(str::to_owned),
                        e.header("subject").map(str::to_owned)
                    ))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Asserts that no message to `address` arrives (after giving the background work a
    /// moment to run).
    pub async fn assert_no_email_to(&self, address: &str) {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let emails = self.emails_to(address);
        assert!(
            emails.is_empty(),
            "no message to {address} expected: {emails:?}"
        );
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn forgot_password(&self, email: &str) -> reqwest::Response {
        self.post_json("/auth/forgot-password", serde_json::json!({"email": email}))
            .await
    }

    pub async fn request_verify_token(&self, email: &str) -> reqwest::Response {
        self.post_json(
            "/auth/request-verify-token",
            serde_json::json!({"email": email}),
        )
        .await
    }

    pub async fn reset_password(&self, token: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/auth/reset-password",
            serde_json::json!({"token": token, "password": password}),
        )
        .await
    }

    pub async fn verify(&self, token: &str) -> reqwest::Response {
        self.post_json("/auth/verify", serde_json::json!({"token": token}))
            .await
    }

    /// Asks for a password reset for `email` and returns the token of the message it sends.
    pub async fn reset_token(&self, email: &str) -> String {
        let before = self.emails_to(email).len();
        assert_null(self.forgot_password(email).await, 202).await;
        self.wait_for_email(email, before + 1).await.token
    }

    /// Asks for a verification link for `email` and returns the token of the message it sends.
    pub async fn verify_token(&self, email: &str) -> String {
        let before = self.emails_to(email).len();
        assert_null(self.request_verify_token(email).await, 202).await;
        self.wait_for_email(email, before + 1).await.token
    }
}

/// Asserts a JSON `null` answer with `status`.
pub async fn assert_null(response: reqwest::Response, status: u16) {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type}"
    );
    assert_eq!(response.text().await.unwrap(), "null");
}

/// Parses an RFC 5322 message with a `text/plain` and a `text/html` part (or one of them).
fn parse_email_message(raw: &[u8]) -> Email {
    let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let headers = unfold_headers(head);
    let mut email = Email {
        headers,
        text: String::new(),
        html: String::new(),
        token: String::new(),
        link_base: String::new(),
    };
    let content_type = email
        .header("content-type")
        .unwrap_or("text/plain")
        .to_owned();
    let encoding = email
        .header("content-transfer-encoding")
        .unwrap_or("7bit")
        .to_owned();
    match boundary_of(&content_type) {
        Some(boundary) => {
            let delimiter = format!("--{boundary}");
            for part in body.split(&delimiter).skip(1) {
                if part.starts_with("--") {
                    break;
                }
                let part = part.strip_prefix('\n').unwrap_or(part);
                let (head, body) = part.split_once("\n\n").unwrap_or((part, ""));
                let headers = unfold_headers(head);
                let find = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                store_part(
                    &mut email,
                    &find("content-type"),
                    &find("content-transfer-encoding"),
                    body,
                );
            }
        }
        None => store_part(&mut email, &content_type, &encoding, body),
    }
    if let Some(at) = email.text.find("?token=") {
        let start = at + "?token=".len();
        email.token = email.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let line_start = email.text[..at]
            .rfind(char::is_whitespace)
            .map_or(0, |i| i + 1);
        email.link_base = email.text[line_start..at].to_owned();
    }
    email
}

fn store_part(email: &mut Email, content_type: &str, encoding: &str, body: &str) {
    let decoded = match encoding.trim().to_ascii_lowercase().as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            use base64::Engine as _;
            let compact: String = body.split_whitespace().collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("a base64 part"),
            )
            .into_owned()
        }
        _ => body.to_owned(),
    };
    let kind = content_type.to_ascii_lowercase();
    if kind.starts_with("text/plain") {
        email.text = decoded.replace("\r\n", "\n");
    } else if kind.starts_with("text/html") {
        email.html = decoded.replace("\r\n", "\n");
    }
}

fn unfold_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

fn boundary_of(content_type: &str) -> Option<String> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    let at = content_type.to_ascii_lowercase().find("boundary=")?;
    let rest = &content_type[at + "boundary=".len()..];
    let boundary = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([';', ' ']).next()?,
    };
    Some(boundary.to_owned())
}

/// Decodes quoted-printable text (RFC 2045 §6.7): soft line breaks go, `=XX` become bytes.
pub fn decode_quoted_printable(encoded: &str) -> String {
    let encoded = encoded.replace("=\r\n", "").replace("=\n", "");
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
