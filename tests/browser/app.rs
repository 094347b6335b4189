//! Spawns the real application on a random port with a fresh SQLite file,
//! and reaches it through the JSON API for setup and checks.

use std::collections::HashMap;
use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use gatehouse::config::Settings;
use gatehouse::startup::Application;
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    /// `http://localhost:{port}`, the address the browser uses.
    pub base_url: String,
    pub http: reqwest::Client,
    pub db_path: PathBuf,
    /// Keeps the temporary directory (database, generated key) alive for the test.
    _dir: tempfile::TempDir,
}

/// Starts the application on a free port of `localhost`, with `PUBLIC_URL` at that port: the
/// relying party of passkeys is `localhost`, whose origin must match the browser's exactly.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db_path = dir.path().join("gatehouse.db");
    let _ = env_logger::builder().is_test(true).try_init();
    let mut failures = Vec::new();
    // A port taken between choosing and binding is retried with another.
    for _ in 0..3 {
        let port = free_port();
        let base_url = format!("http://localhost:{port}");
        let env: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), db_path.display().to_string()),
            ("BIND_ADDR".into(), format!("127.0.0.1:{port}")),
            ("PUBLIC_URL".into(), base_url.clone()),
            ("ARGON2_MEMORY_KIB".into(), "8192".into()),
            ("ARGON2_ITERATIONS".into(), "1".into()),
            // The browser talks plain HTTP to the test server.
            ("COOKIE_SECURE".into(), "false".into()),
        ]);
        let settings = Settings::from_map(&env).expect("test settings");
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(err) => {
                failures.push(err.to_string());
                continue;
            }
        };
        assert_eq!(app.port(), port);
        tokio::spawn(app.run_until_stopped());
        // Connections idle for a second are not reused: the server closes idle ones after
        // its keep-alive (5 s), and a request sent on one as it closes fails.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(std::time::Duration::from_secs(1))
            .build()
            .unwrap();
        return TestApp {
            base_url,
            http,
            db_path,
            _dir: dir,
        };
    }
    panic!("the application did not start: {failures:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Registers a user through the JSON API and returns its id.
    pub async fn register(&self, email: &str, password: &str) -> String {
        let response = self
            .http
            .post(self.url("/auth/register"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "register {email}");
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().expect("the new user's id").to_owned()
    }

    /// Registers a user and makes it a superuser in the database; returns its id.
    pub async fn register_superuser(&self, email: &str, password: &str) -> String {
        let id = self.register(email, password).await;
        let updated = diesel::sql_query("UPDATE users SET is_superuser = 1 WHERE email = ?")
            .bind::<Text, _>(email)
            .execute(&mut self.db())
            .unwrap();
        assert_eq!(updated, 1, "promote {email} in the database");
        id
    }

    /// Logs in through the JSON API: the status and, on success, the access token.
    pub async fn api_login(&self, email: &str, password: &str) -> (u16, Option<String>) {
        let response = self
            .http
            .post(self.url("/auth/jwt/login"))
            .form(&[("username", email), ("password", password)])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let token = body["access_token"].as_str().map(str::to_owned);
        (status, token)
    }

    /// Logs in through the JSON API as a client with this `User-Agent` (another device).
    pub async fn api_login_from(&self, email: &str, password: &str, user_agent: &str) {
        let response = self
            .http
            .post(self.url("/auth/jwt/login"))
            .header("user-agent", user_agent)
            .form(&[("username", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            200,
            "API login from {user_agent}"
        );
    }

    /// An access token for `email`, failing the test if the login is refused.
    pub async fn access_token(&self, email: &str, password: &str) -> String {
        match self.api_login(email, password).await {
            (200, Some(token)) => token,
            (status, _) => panic!("API login of {email} answered {status}"),
        }
    }

    /// `GET path` with a bearer token; the status and the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn db(&self) -> SqliteConnection {
        let mut conn = SqliteConnection::establish(self.db_path.to_str().unwrap()).unwrap();
        conn.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
        conn
    }
}
