//! Spawns the real application on a random port with a fresh SQLite file.

use std::collections::HashMap;
use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use gatehouse::config::Settings;
use gatehouse::startup::Application;
use reqwest::header::USER_AGENT;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
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
#[derive(Debug, QueryableByName)]
pub struct UserRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub hashed_password: String,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
    #[diesel(sql_type = Bool)]
    pub is_superuser: bool,
    #[diesel(sql_type = Bool)]
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
    let db_path = dir.path().join("gatehouse.db");
    let mut env: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db_path.display().to_string()),
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
    let settings = Settings::from_map(&env).expect("test settings");
    spawn_with_settings(settings, dir).await
}

pub async fn spawn_with_settings(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let db_path = PathBuf::from(&settings.database_url);
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
        db_path,
        dir,
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
    pub fn db(&self) -> SqliteConnection {
        let mut conn = SqliteConnection::establish(self.db_path.to_str().unwrap()).unwrap();
        conn.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
        conn
    }

    pub fn execute(&self, sql: &str) {
        self.db().batch_execute(sql).unwrap();
    }

    pub fn count(&self, sql: &str) -> i64 {
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM ({sql})"))
            .get_result::<Count>(&mut self.db())
            .unwrap()
            .n
    }

    pub fn user_count(&self) -> i64 {
        self.count("SELECT id FROM users")
    }

    pub fn user_row(&self, email: &str) -> Option<UserRow> {
        diesel::sql_query(
            "SELECT id, hashed_password, is_active, is_superuser, is_verified \
             FROM users WHERE email = ?",
        )
        .bind::<Text, _>(email)
        .get_result(&mut self.db())
        .optional()
        .unwrap()
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
