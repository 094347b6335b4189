//! The OpenID Connect provider as a relying party meets it (contract section 8): the app on a
//! port of its own whose address is its issuer, applications registered through
//! `POST /clients`, PKCE pairs and JWS checks computed here (`sha2`, `p256`, `rsa`: none of
//! the server's code), and a browser that signs in through the login page and answers the
//! consent page.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use gatehouse::startup::Application;
use rand_core::RngCore as _;
use reqwest::cookie::Jar;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Response, Url};
use serde_json::{json, Value};
use sha2::Digest as _;

use super::app::{start, test_settings, TestApp, TestDatabase, PASSWORD};
use super::oauth::basic_authorization;
use super::totp::code_now;
use crate::page_client::{csrf_in, input_value, location, unescape};

/// Where the test applications send their users back: never visited by the API tests, which
/// read the redirect instead of following it.
pub const REDIRECT_URI: &str = "https://notes.example.com/callback";
/// Where the test applications ask to land after a logout.
pub const POST_LOGOUT_URI: &str = "https://notes.example.com/signed-out";

// ---------------------------------------------------------------------------------------------
// The app

/// The app as an OpenID provider: on a free loopback port with `PUBLIC_URL` (the issuer) at
/// that very address, so that what discovery announces is where it was fetched from; cookies
/// without `Secure`, since the browser speaks plain HTTP.
pub async fn spawn_oidc_app() -> TestApp {
    spawn_oidc_app_with(&[]).await
}

/// [`spawn_oidc_app`] with extra environment variables.
pub async fn spawn_oidc_app_with(vars: &[(&str, &str)]) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = TestDatabase::fresh(&dir);
    let mut failures = Vec::new();
    // A port taken between choosing and binding is retried with another.
    for _ in 0..3 {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let issuer = format!("http://127.0.0.1:{port}");
        let mut all = vec![
            ("BIND_ADDR", bind.as_str()),
            ("PUBLIC_URL", issuer.as_str()),
            ("COOKIE_SECURE", "false"),
        ];
        all.extend_from_slice(vars);
        let settings = test_settings(&database.url, dir.path(), &all);
        match Application::build(settings).await {
            Ok(built) => {
                let app = start(built, dir, database);
                assert_eq!(app.address, issuer, "the app listens at its issuer");
                return app;
            }
            Err(err) => failures.push(err.to_string()),
        }
    }
    panic!("the application did not start: {failures:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

// ---------------------------------------------------------------------------------------------
// Applications

/// What `POST /clients` is given to register an application.
#[derive(Debug, Clone)]
pub struct AppSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub skip_consent: bool,
    /// `id_token_signed_response_alg`, when given.
    pub alg: Option<String>,
}

impl Default for AppSpec {
    /// "Acme Notes" and a few random letters: client names are unique.
    fn default() -> AppSpec {
        AppSpec {
            name: format!("Acme Notes {}", &random_string()[..6]),
            redirect_uris: vec![REDIRECT_URI.into()],
            post_logout_redirect_uris: vec![POST_LOGOUT_URI.into()],
            public: false,
            skip_consent: false,
            alg: None,
        }
    }
}

impl AppSpec {
    /// A confidential application sending its users back to `redirect_uri`.
    pub fn redirecting_to(redirect_uri: &str) -> AppSpec {
        AppSpec {
            redirect_uris: vec![redirect_uri.into()],
            ..AppSpec::default()
        }
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "name": self.name,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "public": self.public,
            "skip_consent": self.skip_consent,
        });
        if let Some(alg) = &self.alg {
            body["id_token_signed_response_alg"] = json!(alg);
        }
        body
    }
}

/// A registered application: its id, its secret (none when public), its first redirect URI.
#[derive(Debug, Clone)]
pub struct RegisteredApp {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

impl RegisteredApp {
    /// `form` with this application's client authentication: `client_secret_post` for a
    /// confidential one, `client_id` alone for a public one.
    pub fn authenticated<'a>(&'a self, form: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = form.to_vec();
        all.push(("client_id", &self.id));
        if let Some(secret) = &self.secret {
            all.push(("client_secret", secret));
        }
        all
    }

    /// `Authorization: Basic …` (`client_secret_basic`).
    pub fn basic(&self) -> String {
        basic_authorization(
            &self.id,
            self.secret.as_deref().expect("a confidential app"),
        )
    }
}

impl TestApp {
    /// `POST /clients` as the superuser `admin_token` with `body`.
    pub async fn post_client(&self, admin_token: &str, body: Value) -> Response {
        self.post_authorized("/clients", admin_token, body).await
    }

    /// Registers an application, failing the test on any error.
    pub async fn application(&self, admin_token: &str, spec: &AppSpec) -> RegisteredApp {
        let response = self.post_client(admin_token, spec.body()).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            status, 201,
            "register the application {}: {body}",
            spec.name
        );
        RegisteredApp {
            id: body["client_id"].as_str().expect("a client_id").to_owned(),
            secret: body["client_secret"].as_str().map(str::to_owned),
            redirect_uri: spec.redirect_uris[0].clone(),
        }
    }

    /// The published JWK set.
    pub async fn jwks(&self) -> Value {
        let response = self
            .client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the JWK set");
        response.json().await.unwrap()
    }

    /// `POST /auth/token` exchanging `code` for `client` (`client_secret_post`, or `client_id`
    /// alone for a public client).
    pub async fn exchange_code(
        &self,
        client: &RegisteredApp,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Response {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        self.token_request(&client.authenticated(&form)).await
    }

    /// [`TestApp::exchange_code`], failing the test unless it answers 200; the JSON body.
    pub async fn code_tokens(&self, client: &RegisteredApp, code: &str, verifier: &str) -> Value {
        let response = self
            .exchange_code(client, code, &client.redirect_uri, verifier)
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "exchange the code: {body}");
        body
    }

    /// `POST /auth/token` with the refresh-token grant and `client`'s authentication.
    pub async fn app_refresh(&self, client: &RegisteredApp, refresh_token: &str) -> Response {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        self.token_request(&client.authenticated(&form)).await
    }

    /// `GET /oauth/userinfo` with `access_token`.
    pub async fn userinfo(&self, access_token: &str) -> Response {
        self.get("/oauth/userinfo", access_token).await
    }

    /// A client-authenticated form `POST` (`client_secret_basic`) to `path`.
    pub async fn client_post(
        &self,
        client: &RegisteredApp,
        path: &str,
        form: &[(&str, &str)],
    ) -> Response {
        self.client
            .post(self.url(path))
            .header(AUTHORIZATION, client.basic())
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// `POST /oauth/introspect` of `token` as `client`.
    pub async fn introspect(&self, client: &RegisteredApp, token: &str) -> Value {
        let response = self
            .client_post(client, "/oauth/introspect", &[("token", token)])
            .await;
        assert_eq!(response.status(), 200, "introspection");
        response.json().await.unwrap()
    }

    /// `POST /oauth/revoke` of `token` as `client`.
    pub async fn revoke(&self, client: &RegisteredApp, token: &str) -> Response {
        self.client_post(client, "/oauth/revoke", &[("token", token)])
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization requests

/// A PKCE pair (RFC 7636, S256), computed here.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random_string();
        let challenge = s256(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// `BASE64URL(SHA256(verifier))`, unpadded.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// 32 random bytes, base64url: a verifier, a state, a nonce.
pub fn random_string() -> String {
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An authorization request: its parameters (in order, editable) and the secrets the relying
/// party keeps (the PKCE verifier, the state, the nonce).
#[derive(Debug, Clone)]
pub struct AuthRequest {
    params: Vec<(String, String)>,
    pub verifier: String,
    pub state: String,
    pub nonce: String,
}

impl AuthRequest {
    /// A code request from `client` for `scope`, with a fresh PKCE pair, state and nonce.
    pub fn new(client: &RegisteredApp, scope: &str) -> AuthRequest {
        let pkce = Pkce::new();
        let state = random_string();
        let nonce = random_string();
        let params = [
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", &client.redirect_uri),
            ("scope", scope),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        AuthRequest {
            params,
            verifier: pkce.verifier,
            state,
            nonce,
        }
    }

    /// Sets (replacing) a parameter.
    pub fn with(mut self, key: &str, value: &str) -> AuthRequest {
        self.params.retain(|(k, _)| k != key);
        self.params.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Leaves a parameter out.
    pub fn without(mut self, key: &str) -> AuthRequest {
        self.params.retain(|(k, _)| k != key);
        self
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `/oauth/authorize?…`
    pub fn path(&self) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.params)
            .finish();
        format!("/oauth/authorize?{query}")
    }
}

impl Default for Pkce {
    fn default() -> Pkce {
        Pkce::new()
    }
}

/// The query parameters of a URL (the last value of each name).
pub fn query_of(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Whether `url` is where `redirect_uri` points (scheme, host, port and path; any query).
pub fn is_redirect_to(url: &Url, redirect_uri: &str) -> bool {
    let target = Url::parse(redirect_uri).unwrap();
    url.origin() == target.origin() && url.path() == target.path()
}

// ---------------------------------------------------------------------------------------------
// The browser

/// One browser visiting the provider: a cookie jar, no automatic redirects, and the user's
/// steps through the login page (and its second step) and the consent page.
pub struct OidcBrowser {
    pub client: reqwest::Client,
    base: Url,
    /// The authenticator app's secret, when the account has a second factor.
    pub totp_secret: Option<String>,
    /// How many times the walk went through the login page, and the consent page.
    pub logins: std::cell::Cell<u32>,
    pub consents: std::cell::Cell<u32>,
}

/// What the user answers on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn value(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

impl OidcBrowser {
    pub fn new(app: &TestApp) -> OidcBrowser {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(Arc::new(Jar::default()))
            .build()
            .unwrap();
        OidcBrowser {
            client,
            base: Url::parse(&app.address).unwrap(),
            totp_secret: None,
            logins: Default::default(),
            consents: Default::default(),
        }
    }

    /// A browser signed in to the pages as `email` (an existing user).
    pub async fn signed_in(app: &TestApp, email: &str) -> OidcBrowser {
        let browser = OidcBrowser::new(app);
        let to = browser.log_in_at("/login", email).await;
        assert_eq!(to.path(), "/account", "page login of {email}");
        browser
    }

    /// `path_or_url` resolved against the provider.
    pub fn resolve(&self, path_or_url: &str) -> Url {
        self.base.join(path_or_url).unwrap()
    }

    /// A navigation: `GET` asking for HTML.
    pub async fn get(&self, path_or_url: &str) -> Response {
        self.client
            .get(self.resolve(path_or_url))
            .header(ACCEPT, "text/html")
            .send()
            .await
            .unwrap()
    }

    /// Fills the login form of the page at `login` (`/login?next=…`) as `email` and submits
    /// it, going through the second step when the account has one; where the provider then
    /// sends the browser.
    pub async fn log_in_at(&self, login: &str, email: &str) -> Url {
        self.logins.set(self.logins.get() + 1);
        let response = self.get(login).await;
        assert_eq!(response.status(), 200, "GET {login}");
        let html = response.text().await.unwrap();
        let csrf = csrf_in(&html);
        let next = input_value(&html, "next").unwrap_or_default();
        let response = self
            .post_form(
                "/login",
                &[
                    ("email", email),
                    ("password", PASSWORD),
                    ("next", &next),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "login of {email} at {login}");
        let to = self.resolve(&location(&response));
        if to.path() != "/login/verify" {
            return to;
        }
        let secret = self
            .totp_secret
            .as_deref()
            .expect("a second step for an account without a known factor");
        let verify = &to[url::Position::BeforePath..];
        let html = self.get(verify).await.text().await.unwrap();
        let csrf = csrf_in(&html);
        let response = self
            .post_form(
                "/login/verify",
                &[("code", &code_now(secret)), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(response.status(), 303, "second step of {email}");
        self.resolve(&location(&response))
    }

    /// Posts a form to the provider.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.resolve(path))
            .header(ACCEPT, "text/html")
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Answers the consent page `html` with `decision`: its form's fields as the page has
    /// them, and the button pressed.
    pub async fn decide(&self, html: &str, decision: Decision) -> Response {
        self.consents.set(self.consents.get() + 1);
        let mut fields = consent_fields(html);
        fields.push(("decision".into(), decision.value().into()));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post_form("/oauth/consent", &pairs).await
    }

    /// The whole walk from `start` (an authorization request's path or URL) as the user
    /// `email`: the login page when the provider asks for it, the consent page answered with
    /// `decision`, until the provider sends the browser away; that redirect's URL.
    pub async fn authorize(&self, start: &str, email: &str, decision: Decision) -> Url {
        let mut response = self.get(start).await;
        for _ in 0..10 {
            match response.status().as_u16() {
                302 | 303 => {
                    let to = self.resolve(&location(&response));
                    if to.origin() != self.base.origin() {
                        return to;
                    }
                    let path = &to[url::Position::BeforePath..];
                    response = if to.path() == "/login" {
                        let next = self.log_in_at(path, email).await;
                        self.get(next.as_str()).await
                    } else {
                        self.get(path).await
                    };
                }
                200 => {
                    let html = response.text().await.unwrap();
                    assert!(
                        is_consent_page(&html),
                        "neither a redirect nor consent: {html}"
                    );
                    response = self.decide(&html, decision).await;
                }
                status => {
                    let body = response.text().await.unwrap_or_default();
                    panic!("the authorization walk got {status}: {body}");
                }
            }
        }
        panic!("the authorization walk went round in circles");
    }

    /// [`OidcBrowser::authorize`] with "Allow", expecting a code for `request`: the code, after
    /// checking the redirect's `state` and `iss`.
    pub async fn code(&self, app: &TestApp, request: &AuthRequest, email: &str) -> String {
        let to = self
            .authorize(&request.path(), email, Decision::Allow)
            .await;
        let redirect_uri = request.param("redirect_uri").unwrap();
        assert!(is_redirect_to(&to, redirect_uri), "back to the app: {to}");
        let query = query_of(&to);
        assert_eq!(query.get("state"), Some(&request.state), "{to}");
        assert_eq!(query.get("iss"), Some(&app.address), "{to}");
        query
            .get("code")
            .unwrap_or_else(|| panic!("a code in {to}"))
            .clone()
    }
}

/// Whether `html` is the consent page (its form posts to `/oauth/consent`).
pub fn is_consent_page(html: &str) -> bool {
    html.contains("action=\"/oauth/consent\"")
}

/// The named inputs of the consent form, values unescaped.
pub fn consent_fields(html: &str) -> Vec<(String, String)> {
    let at = html
        .find("action=\"/oauth/consent\"")
        .unwrap_or_else(|| panic!("no consent form in {html}"));
    let form = &html[html[..at].rfind("<form").unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    form.match_indices("<input")
        .filter_map(|(start, _)| {
            let tag = &form[start..start + form[start..].find('>').unwrap()];
            Some((
                attribute(tag, "name")?,
                attribute(tag, "value").unwrap_or_default(),
            ))
        })
        .collect()
}

/// The unescaped value of `name="…"` in one tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    Some(unescape(&tag[start..start + tag[start..].find('"')?]))
}

// ---------------------------------------------------------------------------------------------
// JWS, checked here

/// A compact JWS's header and claims, decoded without any check.
pub fn jws_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode = |what: &str| -> Value {
        let part = parts
            .next()
            .unwrap_or_else(|| panic!("no {what} in {token}"));
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    (decode("header"), decode("claims"))
}

/// Verifies the signature of the compact JWS `token` with the key of `jwks` its header names
/// (`kid`), ES256 with `p256` or RS256 with `rsa`; the header and the claims.
pub fn verify_jws(token: &str, jwks: &Value) -> (Value, Value) {
    let (header, claims) = jws_parts(token);
    let kid = header["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("no kid in {header}"));
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid)
        .unwrap_or_else(|| panic!("no key {kid} in {jwks}"));
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let bytes = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(
                key[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name} in {key}")),
            )
            .unwrap()
    };
    match header["alg"].as_str() {
        Some("ES256") => {
            use p256::ecdsa::signature::Verifier as _;
            assert_eq!(key["kty"], "EC", "{key}");
            assert_eq!(key["crv"], "P-256", "{key}");
            let point = p256::EncodedPoint::from_affine_coordinates(
                bytes("x").as_slice().into(),
                bytes("y").as_slice().into(),
                false,
            );
            let verifier = p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap();
            let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
            verifier
                .verify(input.as_bytes(), &signature)
                .unwrap_or_else(|e| panic!("the ES256 signature of {token} does not verify: {e}"));
        }
        Some("RS256") => {
            use rsa::signature::Verifier as _;
            assert_eq!(key["kty"], "RSA", "{key}");
            let public = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&bytes("n")),
                rsa::BigUint::from_bytes_be(&bytes("e")),
            )
            .unwrap();
            let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public);
            let signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
            verifier
                .verify(input.as_bytes(), &signature)
                .unwrap_or_else(|e| panic!("the RS256 signature of {token} does not verify: {e}"));
        }
        other => panic!("an unexpected alg {other:?} in {header}"),
    }
    (header, claims)
}

/// `at_hash` for an access token under ES256 or RS256: the left half of its SHA-256,
/// base64url.
pub fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(access_token.as_bytes())[..16])
}

/// Whether the `aud` claim names `client_id` alone (as a string, or an array of one).
pub fn audience_is(aud: &Value, client_id: &str) -> bool {
    aud == client_id || *aud == json!([client_id])
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
