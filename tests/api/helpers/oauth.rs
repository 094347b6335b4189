//! Machine clients and the OAuth2 token endpoint: registering clients, token requests, and the
//! RFC 6749 error and caching rules every answer follows.

use serde_json::Value;

use super::app::TestApp;

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

    /// How many machine clients are stored.
    pub fn client_count(&self) -> i64 {
        self.count("SELECT id FROM clients")
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

    /// `POST /auth/token` with the refresh-token grant.
    pub async fn refresh_grant(&self, refresh_token: &str) -> reqwest::Response {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
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
