//! Spawning the application on its own database, the `TestApp` handle with its HTTP helpers,
//! and direct access to the database for assertions on stored state.

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use gatehouse::config::Settings;
use gatehouse::db::{Backend, Conn};
use gatehouse::startup::{Application, Stopper};
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
    /// Asks the application to stop, as SIGTERM would.
    stopper: Stopper,
    /// The application's run, until [`TestApp::stop`].
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
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
    start(app, dir, database)
}

/// Runs a built application until the returned handle stops it (or the test ends).
pub fn start(app: Application, dir: tempfile::TempDir, database: TestDatabase) -> TestApp {
    let address = format!("http://127.0.0.1:{}", app.port());
    let stopper = app.stopper();
    let running = tokio::spawn(app.run_until_stopped());
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
        stopper,
        running: Some(running),
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
    /// Another instance of the application on this one's database, with the same signing key
    /// (generated into the shared data directory) and `vars` over the test defaults: a second
    /// server behind a load balancer, or this one started again after [`TestApp::stop`].
    pub async fn another_instance(&self, vars: &[(&str, &str)]) -> TestApp {
        let settings = test_settings(&self.database.url, self.dir.path(), vars);
        let dir = tempfile::tempdir().unwrap();
        spawn_with_settings(settings, dir, TestDatabase::shared(&self.database.url)).await
    }

    /// Stops the application as SIGTERM would, and waits until it has (its database stays).
    pub async fn stop(&mut self) {
        self.stopper.stop();
        let running = self.running.take().expect("the application is running");
        tokio::time::timeout(std::time::Duration::from_secs(30), running)
            .await
            .expect("the application stops within 30 s")
            .expect("the application's task ends")
            .expect("the application served");
    }

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

    /// A JSON `POST` with a bearer token.
    pub async fn post_authorized(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A `DELETE` with a bearer token and a JSON body (a current password, say).
    pub async fn delete_with_body(
        &self,
        path: &str,
        token: &str,
        body: Value,
    ) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .json(&body)
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

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

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

    /// The id of the stored user `email`.
    pub fn user_id(&self, email: &str) -> String {
        self.user_row(email).expect("user exists").id
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

/// Asserts a 400 password-policy error with `code` and a non-empty human reason.
pub async fn assert_policy_error(response: reqwest::Response, code: &str) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let detail = body["detail"].as_object().expect("detail is an object");
    assert_eq!(detail.len(), 2, "detail has code and reason only: {body}");
    assert_eq!(detail["code"], code, "{body}");
    let reason = detail["reason"].as_str().expect("reason is a string");
    assert!(!reason.trim().is_empty(), "reason is empty: {body}");
}

/// Asserts a 422 validation error whose entries are `{loc, msg, type}`; returns the entries.
pub async fn assert_validation_error(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let entries = body["detail"]
        .as_array()
        .expect("detail is an array")
        .clone();
    assert!(!entries.is_empty(), "detail is empty: {body}");
    for entry in &entries {
        let loc = entry["loc"].as_array().expect("loc is an array");
        assert_eq!(loc.first(), Some(&serde_json::json!("body")), "{body}");
        assert!(entry["msg"].is_string(), "{body}");
        assert!(entry["type"].is_string(), "{body}");
    }
    entries
}

/// Asserts that `body` is exactly a fastapi-users `UserRead` for `email`: `id` (a UUID),
/// `email`, and the booleans `is_active`, `is_superuser` and `is_verified`; no other member, so
/// no password or hash.
pub fn assert_user_read(body: &Value, email: &str) {
    assert_eq!(
        keys_of(body),
        ["email", "id", "is_active", "is_superuser", "is_verified"],
        "UserRead keys in {body}"
    );
    let id = body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id is not a string in {body}"));
    uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("id is not a UUID ({e}) in {body}"));
    assert_eq!(body["email"], email, "{body}");
    for flag in ["is_active", "is_superuser", "is_verified"] {
        assert!(body[flag].is_boolean(), "{flag} is not a boolean in {body}");
    }
    assert!(!body.to_string().contains("argon2"), "a hash in {body}");
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
