//! The OpenID Connect provider's contract (section 8) in the details a relying-party library
//! does not exercise: discovery's values, every error of `/oauth/authorize`, the rules of
//! codes, the ID and access tokens' claims checked with keys and code of the tests' own
//! (`p256`, `rsa`), consent, userinfo, logout, revocation, introspection, "Remove access",
//! and the registration of applications.

use std::collections::{BTreeSet, HashMap};

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Response, Url};
use serde_json::{json, Value};

use crate::helpers::totp::{code_at, now};
use crate::helpers::*;
use crate::page_client::{csrf_in, input_value, location};

const USER: &str = "mary.somerville@example.com";

/// A provider with a superuser, the user [`USER`] and one registered application.
struct Provider {
    app: TestApp,
    admin: String,
    client: RegisteredApp,
}

async fn provider() -> Provider {
    provider_with(AppSpec::default()).await
}

async fn provider_with(spec: AppSpec) -> Provider {
    let app = spawn_oidc_app().await;
    let admin = app.superuser("root@example.com").await.access;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let client = app.application(&admin, &spec).await;
    Provider { app, admin, client }
}

impl Provider {
    /// A browser signed in to the pages as [`USER`].
    async fn browser(&self) -> OidcBrowser {
        OidcBrowser::signed_in(&self.app, USER).await
    }

    fn request(&self, scope: &str) -> AuthRequest {
        AuthRequest::new(&self.client, scope)
    }

    /// A code for `scope` through `browser` (consenting if asked); the request and the code.
    async fn code(&self, browser: &OidcBrowser, scope: &str) -> (AuthRequest, String) {
        let request = self.request(scope);
        let code = browser.code(&self.app, &request, USER).await;
        (request, code)
    }

    /// A new browser's sign-in for `scope`, exchanged: the request and the token response.
    async fn tokens(&self, scope: &str) -> (AuthRequest, Value) {
        let browser = self.browser().await;
        self.tokens_in(&browser, scope).await
    }

    async fn tokens_in(&self, browser: &OidcBrowser, scope: &str) -> (AuthRequest, Value) {
        let (request, code) = self.code(browser, scope).await;
        let tokens = self
            .app
            .code_tokens(&self.client, &code, &request.verifier)
            .await;
        (request, tokens)
    }

    /// Another application, registered with `spec`.
    async fn another(&self, spec: AppSpec) -> RegisteredApp {
        self.app.application(&self.admin, &spec).await
    }
}

fn text(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_owned()
}

fn set_of(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn scopes_of(scope: &str) -> BTreeSet<String> {
    scope.split(' ').map(str::to_owned).collect()
}

fn header(response: &Response, name: reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The query of the redirect `response` makes to `redirect_uri` (a 302 or 303).
fn redirect_query(response: &Response, redirect_uri: &str) -> HashMap<String, String> {
    let status = response.status().as_u16();
    assert!(
        status == 303 || status == 302,
        "a redirect to {redirect_uri}, not {status}"
    );
    let to = Url::parse(&location(response)).expect("an absolute redirect");
    assert!(is_redirect_to(&to, redirect_uri), "{to}");
    query_of(&to)
}

/// Asserts an authorization error sent back to the application (RFC 6749 §4.1.2.1,
/// RFC 9207): `error`, a description, the request's `state`, and `iss`.
fn assert_error_redirect(response: &Response, p: &Provider, request: &AuthRequest, error: &str) {
    let query = redirect_query(response, &p.client.redirect_uri);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some(error),
        "{query:?}"
    );
    assert!(
        query
            .get("error_description")
            .is_some_and(|d| !d.is_empty()),
        "{query:?}"
    );
    assert_eq!(query.get("state"), Some(&request.state), "{query:?}");
    assert_eq!(query.get("iss"), Some(&p.app.address), "{query:?}");
    assert!(!query.contains_key("code"), "{query:?}");
}

/// Asserts the HTML error page of a request that must not go back to the application.
async fn assert_error_page(response: Response, what: &str) {
    assert_eq!(response.status(), 400, "{what}");
    assert!(response.headers().get("location").is_none(), "{what}");
    assert!(
        header(&response, CONTENT_TYPE).starts_with("text/html"),
        "{what}"
    );
}

async fn oauth_error(response: Response, status: u16, what: &str) -> String {
    assert_eq!(response.status(), status, "{what}");
    let body: Value = response.json().await.unwrap();
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {body}"))
        .to_owned()
}

async fn assert_invalid_grant(response: Response, what: &str) {
    assert_eq!(
        oauth_error(response, 400, what).await,
        "invalid_grant",
        "{what}"
    );
}

async fn assert_unauthorized(response: Response, what: &str) {
    assert_eq!(response.status(), 401, "{what}");
    assert!(
        header(&response, WWW_AUTHENTICATE).starts_with("Bearer"),
        "{what}"
    );
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[tokio::test]
async fn discovery_announces_every_endpoint_under_the_issuer_and_the_contracts_values() {
    let app = spawn_oidc_app().await;
    let response = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(header(&response, CONTENT_TYPE).starts_with("application/json"));
    let d: Value = response.json().await.unwrap();
    let issuer = &app.address;

    assert_eq!(d["issuer"], issuer.as_str(), "{d}");
    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/auth/token"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("end_session_endpoint", "/oauth/logout"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
    ] {
        assert_eq!(d[field], format!("{issuer}{path}"), "{field} in {d}");
    }
    for (field, value) in d.as_object().unwrap() {
        if field.ends_with("_endpoint") || field == "jwks_uri" {
            let url = value.as_str().unwrap_or_else(|| panic!("{field}: {value}"));
            assert!(url.starts_with(&format!("{issuer}/")), "{field}: {url}");
            Url::parse(url).unwrap_or_else(|e| panic!("{field} is not absolute ({e}): {url}"));
        }
    }
    assert_eq!(d["response_types_supported"], json!(["code"]), "{d}");
    assert_eq!(
        d["code_challenge_methods_supported"],
        json!(["S256"]),
        "{d}"
    );
    assert_eq!(
        set_of(&d["scopes_supported"]),
        set(&["openid", "email", "profile", "offline_access"])
    );
    assert_eq!(
        set_of(&d["token_endpoint_auth_methods_supported"]),
        set(&["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(d["subject_types_supported"], json!(["public"]), "{d}");
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    let grants = set_of(&d["grant_types_supported"]);
    for grant in ["authorization_code", "refresh_token"] {
        assert!(grants.contains(grant), "{grant} in {grants:?}");
    }
    let claims = set_of(&d["claims_supported"]);
    for claim in ["sub", "iss", "aud", "email", "email_verified"] {
        assert!(claims.contains(claim), "{claim} in {claims:?}");
    }

    // The keys: public parts only.
    let jwks: Value = app
        .client
        .get(text(&d, "jwks_uri"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["kty"] == "EC"), "{jwks}");
    for key in keys {
        assert!(key["kid"].is_string(), "{key}");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none(), "a private {private} in {key}");
        }
    }
}

#[tokio::test]
async fn rs256_is_offered_with_an_rsa_key_in_the_development_key_set() {
    let app = spawn_oidc_app().await;
    let d: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        set_of(&d["id_token_signing_alg_values_supported"]),
        set(&["ES256", "RS256"]),
        "{d}"
    );
    let jwks = app.jwks().await;
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap_or_else(|| panic!("an RSA key in {jwks}"));
    assert_eq!(rsa["alg"], "RS256", "{rsa}");
    assert!(rsa["n"].is_string() && rsa["e"].is_string(), "{rsa}");
}

#[tokio::test]
async fn discovery_is_off_under_hs256() {
    let app = spawn_oidc_app_with(&[
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET", "an-hs256-test-secret-of-well-over-32-bytes"),
    ])
    .await;
    let response = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

// ---------------------------------------------------------------------------------------------
// /oauth/authorize

#[tokio::test]
async fn an_unknown_client_gets_an_error_page_signed_in_or_not() {
    let p = provider().await;
    let request = p.request("openid").with("client_id", "no-such-application");
    for browser in [OidcBrowser::new(&p.app), p.browser().await] {
        assert_error_page(browser.get(&request.path()).await, "unknown client").await;
    }
}

#[tokio::test]
async fn a_redirect_uri_that_is_not_registered_exactly_gets_an_error_page() {
    let p = provider().await;
    let browser = p.browser().await;
    for uri in [
        "https://evil.example.com/callback",
        "https://notes.example.com/callback/",
        "https://notes.example.com/callback?next=/",
        "https://notes.example.com/other",
        "http://notes.example.com/callback",
    ] {
        let request = p.request("openid").with("redirect_uri", uri);
        assert_error_page(browser.get(&request.path()).await, uri).await;
        assert_error_page(OidcBrowser::new(&p.app).get(&request.path()).await, uri).await;
    }
}

#[tokio::test]
async fn pkce_is_required_and_only_s256() {
    let p = provider().await;
    let browser = p.browser().await;

    let request = p
        .request("openid")
        .without("code_challenge")
        .without("code_challenge_method");
    assert_error_redirect(
        &browser.get(&request.path()).await,
        &p,
        &request,
        "invalid_request",
    );

    let request = p.request("openid").without("code_challenge_method");
    let response = browser.get(&request.path()).await;
    assert_error_redirect(&response, &p, &request, "invalid_request");

    let request = p.request("openid").with("code_challenge_method", "plain");
    let response = browser.get(&request.path()).await;
    assert_error_redirect(&response, &p, &request, "invalid_request");
    assert_eq!(browser.consents.get(), 0, "no consent page on the way");
}

#[tokio::test]
async fn only_the_code_response_type_is_supported() {
    let p = provider().await;
    let browser = p.browser().await;
    for response_type in ["token", "id_token", "code id_token"] {
        let request = p.request("openid").with("response_type", response_type);
        let response = browser.get(&request.path()).await;
        assert_error_redirect(&response, &p, &request, "unsupported_response_type");
    }
}

#[tokio::test]
async fn a_request_without_the_openid_scope_is_refused() {
    let p = provider().await;
    let browser = p.browser().await;
    let request = p.request("email");
    let response = browser.get(&request.path()).await;
    let query = redirect_query(&response, &p.client.redirect_uri);
    let error = query.get("error").map(String::as_str);
    assert!(
        matches!(error, Some("invalid_scope" | "invalid_request")),
        "{query:?}"
    );
    assert_eq!(query.get("state"), Some(&request.state));
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let p = provider().await;
    let request = p.request("openid").with("prompt", "none");
    let response = OidcBrowser::new(&p.app).get(&request.path()).await;
    assert_error_redirect(&response, &p, &request, "login_required");
}

#[tokio::test]
async fn prompt_none_signed_in_without_consent_is_consent_required_and_with_it_a_code() {
    let p = provider().await;
    let browser = p.browser().await;
    let request = p.request("openid email").with("prompt", "none");
    let response = browser.get(&request.path()).await;
    assert_error_redirect(&response, &p, &request, "consent_required");

    p.code(&browser, "openid email").await;
    let request = p.request("openid email").with("prompt", "none");
    let query = redirect_query(&browser.get(&request.path()).await, &p.client.redirect_uri);
    assert!(query.contains_key("code"), "{query:?}");
    assert_eq!(query.get("state"), Some(&request.state));
}

#[tokio::test]
async fn deny_sends_access_denied_back_with_the_state() {
    let p = provider().await;
    let request = p.request("openid email");
    let browser = OidcBrowser::new(&p.app);
    let back = browser
        .authorize(&request.path(), USER, Decision::Deny)
        .await;
    assert_eq!(browser.consents.get(), 1);
    assert!(is_redirect_to(&back, &p.client.redirect_uri), "{back}");
    let query = query_of(&back);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(query.get("state"), Some(&request.state));
    assert_eq!(query.get("iss"), Some(&p.app.address));
    assert!(!query.contains_key("code"));
    // Nothing was remembered: the next request asks again.
    let response = browser.get(&p.request("openid email").path()).await;
    assert_eq!(response.status(), 200);
    assert!(is_consent_page(&response.text().await.unwrap()));
}

#[tokio::test]
async fn a_visitor_signs_in_on_the_way_and_comes_back_to_the_request() {
    let p = provider().await;
    let browser = OidcBrowser::new(&p.app);
    let request = p.request("openid email").with("login_hint", USER);

    let response = browser.get(&request.path()).await;
    assert_eq!(response.status(), 303);
    let login = browser.resolve(&location(&response));
    assert_eq!(login.path(), "/login", "{login}");
    let next = query_of(&login).get("next").cloned().expect("a next");
    assert!(next.starts_with("/oauth/authorize?"), "{next}");
    let html = browser.get(&login[url::Position::BeforePath..]).await;
    let html = html.text().await.unwrap();
    assert_eq!(
        input_value(&html, "email").as_deref(),
        Some(USER),
        "login_hint prefills the email"
    );

    let code = browser.code(&p.app, &request, USER).await;
    assert_eq!(browser.logins.get(), 1);
    assert_eq!(browser.consents.get(), 1);
    let tokens = p.app.code_tokens(&p.client, &code, &request.verifier).await;
    let (_, claims) = jws_parts(&text(&tokens, "id_token"));
    assert_eq!(claims["sub"], p.app.user_id(USER).as_str());
}

#[tokio::test]
async fn a_user_with_an_authenticator_app_passes_the_second_step_on_the_way() {
    let p = provider().await;
    let tokens = p.app.tokens(USER, PASSWORD).await;
    let begun = p
        .app
        .post_authorized(
            "/users/me/mfa/totp",
            &tokens.access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(begun.status(), 200);
    let secret = text(&begun.json::<Value>().await.unwrap(), "secret");
    // The previous step's code turns it on; the login below uses the current one.
    let confirmed = p
        .app
        .post_authorized(
            "/users/me/mfa/totp/confirm",
            &tokens.access,
            json!({"code": code_at(&secret, now() - 30)}),
        )
        .await;
    assert_eq!(confirmed.status(), 200);

    let mut browser = OidcBrowser::new(&p.app);
    browser.totp_secret = Some(secret);
    let (request, tokens) = p.tokens_in(&browser, "openid").await;
    let (_, claims) = verify_jws(&text(&tokens, "id_token"), &p.app.jwks().await);
    assert_eq!(claims["nonce"], request.nonce.as_str());
    let amr = set_of(&claims["amr"]);
    assert!(amr.contains("pwd") && amr.contains("mfa"), "{amr:?}");
}

// ---------------------------------------------------------------------------------------------
// Codes

#[tokio::test]
async fn the_token_response_carries_the_granted_scopes_and_no_refresh_token_without_offline_access()
{
    let p = provider().await;
    let browser = p.browser().await;
    let (request, code) = p.code(&browser, "openid email").await;
    let response = p
        .app
        .exchange_code(&p.client, &code, &p.client.redirect_uri, &request.verifier)
        .await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response, "the code exchange");
    let body: Value = response.json().await.unwrap();
    assert_eq!(text(&body, "token_type").to_ascii_lowercase(), "bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0), "{body}");
    assert_eq!(scopes_of(&text(&body, "scope")), set(&["openid", "email"]));
    assert!(body["id_token"].is_string(), "{body}");
    assert!(
        body.get("refresh_token").is_none_or(Value::is_null),
        "{body}"
    );

    // With offline_access, a refresh token (and client_secret_basic works as well).
    let (request, code) = p.code(&browser, "openid email offline_access").await;
    let response = p
        .app
        .token_request_with_authorization(
            &p.client.basic(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &p.client.redirect_uri),
                ("code_verifier", &request.verifier),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["refresh_token"].is_string(), "{body}");
    assert_eq!(
        scopes_of(&text(&body, "scope")),
        set(&["openid", "email", "offline_access"])
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_ends_the_tokens_it_gave() {
    let p = provider().await;
    let browser = p.browser().await;
    let (request, code) = p.code(&browser, "openid email offline_access").await;
    let first = p.app.code_tokens(&p.client, &code, &request.verifier).await;
    let access = text(&first, "access_token");
    let refresh = text(&first, "refresh_token");
    assert_eq!(p.app.userinfo(&access).await.status(), 200);

    let again = p
        .app
        .exchange_code(&p.client, &code, &p.client.redirect_uri, &request.verifier)
        .await;
    assert_invalid_grant(again, "the code again").await;

    assert_unauthorized(p.app.userinfo(&access).await, "the first access token").await;
    assert_invalid_grant(
        p.app.app_refresh(&p.client, &refresh).await,
        "the first refresh token",
    )
    .await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let p = provider().await;
    let browser = p.browser().await;
    let (request, code) = p.code(&browser, "openid").await;
    assert_eq!(
        p.app.count(&format!(
            "SELECT code_hash FROM authorization_codes WHERE code_hash = '{}'",
            sha256_hex(&code)
        )),
        1,
        "the code is stored as its SHA-256"
    );
    p.app.execute(&format!(
        "UPDATE authorization_codes SET expires_at = {} WHERE code_hash = '{}'",
        unix_now() - 1,
        sha256_hex(&code)
    ));
    let response = p
        .app
        .exchange_code(&p.client, &code, &p.client.redirect_uri, &request.verifier)
        .await;
    assert_invalid_grant(response, "an expired code").await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_verifier() {
    let p = provider().await;
    let browser = p.browser().await;
    let (_, code) = p.code(&browser, "openid").await;
    let wrong = Pkce::new().verifier;
    let response = p
        .app
        .exchange_code(&p.client, &code, &p.client.redirect_uri, &wrong)
        .await;
    assert_invalid_grant(response, "another verifier").await;

    let (_, code) = p.code(&browser, "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", p.client.redirect_uri.as_str()),
    ];
    let response = p.app.token_request(&p.client.authenticated(&form)).await;
    let error = oauth_error(response, 400, "no verifier").await;
    assert!(
        error == "invalid_grant" || error == "invalid_request",
        "{error}"
    );
}

#[tokio::test]
async fn a_code_is_bound_to_its_client() {
    let p = provider().await;
    let other = p
        .another(AppSpec {
            name: "Other Notes".into(),
            ..AppSpec::default()
        })
        .await;
    let browser = p.browser().await;
    let (request, code) = p.code(&browser, "openid").await;
    let response = p
        .app
        .exchange_code(&other, &code, &p.client.redirect_uri, &request.verifier)
        .await;
    assert_invalid_grant(response, "another client").await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_redirect_uri() {
    let second = "https://notes.example.com/other-callback";
    let p = provider_with(AppSpec {
        redirect_uris: vec![REDIRECT_URI.into(), second.into()],
        ..AppSpec::default()
    })
    .await;
    let browser = p.browser().await;
    let (request, code) = p.code(&browser, "openid").await;
    let response = p
        .app
        .exchange_code(&p.client, &code, second, &request.verifier)
        .await;
    assert_invalid_grant(response, "another registered redirect URI").await;
}

#[tokio::test]
async fn a_confidential_client_must_authenticate_at_the_token_endpoint() {
    let p = provider().await;
    let browser = p.browser().await;
    let (request, code) = p.code(&browser, "openid").await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", p.client.redirect_uri.as_str()),
        ("code_verifier", request.verifier.as_str()),
    ];
    let mut without_secret = base.to_vec();
    without_secret.push(("client_id", &p.client.id));
    let error = oauth_error(p.app.token_request(&without_secret).await, 401, "no secret").await;
    assert_eq!(error, "invalid_client");
    let mut wrong_secret = without_secret.clone();
    wrong_secret.push(("client_secret", "not-the-secret"));
    let error = oauth_error(
        p.app.token_request(&wrong_secret).await,
        401,
        "a wrong secret",
    )
    .await;
    assert_eq!(error, "invalid_client");
}

#[tokio::test]
async fn a_refresh_token_serves_only_its_application() {
    let p = provider().await;
    let other = p
        .another(AppSpec {
            name: "Other Notes".into(),
            ..AppSpec::default()
        })
        .await;
    let (_, tokens) = p.tokens("openid offline_access").await;
    let refresh = text(&tokens, "refresh_token");
    assert_invalid_grant(
        p.app.app_refresh(&other, &refresh).await,
        "another client's refresh token",
    )
    .await;
}

#[tokio::test]
async fn an_applications_refresh_token_is_refused_once_its_successors_access_token_was_used() {
    let app = spawn_oidc_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let admin = app.superuser("root@example.com").await.access;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let client = app.application(&admin, &AppSpec::default()).await;
    let p = Provider { app, admin, client };
    let (_, tokens) = p.tokens("openid offline_access").await;
    let first = text(&tokens, "refresh_token");

    let response = p.app.app_refresh(&p.client, &first).await;
    assert_eq!(response.status(), 200);
    let successor: Value = response.json().await.unwrap();
    assert_eq!(
        p.app
            .userinfo(&text(&successor, "access_token"))
            .await
            .status(),
        200,
        "the successor reached the application and is in use"
    );
    // The rotation happened a minute ago: no refresh racing it can still be under way.
    p.app.execute(
        "UPDATE refresh_tokens SET rotated_at = rotated_at - 60 WHERE rotated_at IS NOT NULL",
    );

    let replay = p.app.app_refresh(&p.client, &first).await;
    let status = replay.status();
    let body: Value = replay.json().await.unwrap();
    let same = body["refresh_token"] == successor["refresh_token"];
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the first refresh token again (the successor handed out again: {same}): {body}"
    );
    assert_unauthorized(
        p.app.userinfo(&text(&successor, "access_token")).await,
        "the replay ends the family",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Tokens, checked here

#[tokio::test]
async fn the_id_token_is_es256_with_every_claim_of_the_contract() {
    let p = provider().await;
    let (request, tokens) = p.tokens("openid email").await;
    let jwks = p.app.jwks().await;
    let access = text(&tokens, "access_token");

    let (header, claims) = verify_jws(&text(&tokens, "id_token"), &jwks);
    assert_eq!(header["alg"], "ES256", "{header}");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    assert_eq!(key["kty"], "EC");
    assert_eq!(claims["iss"], p.app.address.as_str(), "{claims}");
    assert_eq!(claims["sub"], p.app.user_id(USER).as_str(), "{claims}");
    assert!(audience_is(&claims["aud"], &p.client.id), "{claims}");
    assert_eq!(claims["nonce"], request.nonce.as_str(), "{claims}");
    assert_eq!(claims["at_hash"], at_hash(&access).as_str(), "{claims}");
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    let auth_time = claims["auth_time"].as_i64().expect("auth_time, an integer");
    assert!(exp > iat && exp > unix_now(), "{claims}");
    assert!(auth_time <= iat, "{claims}");
    assert!(set_of(&claims["amr"]).contains("pwd"), "{claims}");
    assert_eq!(claims["email"], USER, "{claims}");
    assert_eq!(claims["email_verified"], false, "a boolean: {claims}");

    // Without the email scope, no email.
    let (_, tokens) = p.tokens("openid").await;
    let (_, claims) = verify_jws(&text(&tokens, "id_token"), &jwks);
    assert!(claims.get("email").is_none(), "{claims}");
    assert!(claims.get("email_verified").is_none(), "{claims}");
}

#[tokio::test]
async fn the_access_token_is_an_rfc_9068_jwt_for_the_application() {
    let p = provider().await;
    let (_, tokens) = p.tokens("openid email").await;
    let (header, claims) = verify_jws(&text(&tokens, "access_token"), &p.app.jwks().await);
    assert_eq!(header["alg"], "ES256", "{header}");
    let typ = text(&header, "typ").to_ascii_lowercase();
    assert!(typ == "at+jwt" || typ == "application/at+jwt", "{header}");
    assert_eq!(claims["iss"], p.app.address.as_str(), "{claims}");
    assert_eq!(claims["sub"], p.app.user_id(USER).as_str(), "{claims}");
    assert_eq!(claims["client_id"], p.client.id.as_str(), "{claims}");
    assert!(audience_is(&claims["aud"], &p.client.id), "{claims}");
    assert_eq!(
        scopes_of(&text(&claims, "scope")),
        set(&["openid", "email"])
    );

    // Not a key to the user's own API.
    let response = p.app.get("/users/me", &text(&tokens, "access_token")).await;
    assert_eq!(
        response.status(),
        401,
        "an application's token at /users/me"
    );
}

#[tokio::test]
async fn an_rs256_application_gets_id_tokens_signed_with_the_rsa_key() {
    let p = provider_with(AppSpec {
        alg: Some("RS256".into()),
        ..AppSpec::default()
    })
    .await;
    let (request, tokens) = p.tokens("openid").await;
    let jwks = p.app.jwks().await;
    let (header, claims) = verify_jws(&text(&tokens, "id_token"), &jwks);
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(claims["nonce"], request.nonce.as_str());
    assert_eq!(
        claims["at_hash"],
        at_hash(&text(&tokens, "access_token")).as_str()
    );
    // Access tokens keep the pinned algorithm.
    let (header, _) = verify_jws(&text(&tokens, "access_token"), &jwks);
    assert_eq!(header["alg"], "ES256", "{header}");
}

// ---------------------------------------------------------------------------------------------
// Consent

#[tokio::test]
async fn consent_is_remembered_for_the_user_across_browsers() {
    let p = provider().await;
    let browser = p.browser().await;
    p.code(&browser, "openid email").await;
    assert_eq!(browser.consents.get(), 1);

    p.code(&browser, "openid email").await;
    p.code(&browser, "openid").await;
    assert_eq!(browser.consents.get(), 1, "no second consent page");

    let other = p.browser().await;
    p.code(&other, "openid email").await;
    assert_eq!(other.consents.get(), 0, "a new browser skips it too");
}

#[tokio::test]
async fn more_scopes_or_prompt_consent_ask_again() {
    let p = provider().await;
    let browser = p.browser().await;
    p.code(&browser, "openid").await;
    assert_eq!(browser.consents.get(), 1);

    p.code(&browser, "openid email").await;
    assert_eq!(browser.consents.get(), 2, "a new scope asks again");

    let request = p.request("openid email").with("prompt", "consent");
    browser.code(&p.app, &request, USER).await;
    assert_eq!(browser.consents.get(), 3, "prompt=consent asks again");
}

#[tokio::test]
async fn the_consent_page_names_the_application_and_what_it_asks() {
    let p = provider().await;
    let browser = p.browser().await;
    let response = browser
        .get(&p.request("openid email offline_access").path())
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Acme Notes"), "{html}");
    assert!(html.contains(USER) || html.contains("email"), "{html}");
    assert!(
        html.contains("name=\"decision\" value=\"allow\"")
            && html.contains("name=\"decision\" value=\"deny\""),
        "{html}"
    );
    // The form needs its CSRF token.
    let fields: Vec<(String, String)> = consent_fields(&html)
        .into_iter()
        .filter(|(name, _)| name != "csrf_token")
        .chain([("decision".to_owned(), "allow".to_owned())])
        .collect();
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = browser.post_form("/oauth/consent", &pairs).await;
    assert_eq!(response.status(), 403, "consent without its CSRF token");
}

#[tokio::test]
async fn a_first_party_application_skips_consent() {
    let p = provider_with(AppSpec {
        skip_consent: true,
        ..AppSpec::default()
    })
    .await;
    let browser = p.browser().await;
    p.code(&browser, "openid email").await;
    assert_eq!(browser.consents.get(), 0);
}

// ---------------------------------------------------------------------------------------------
// Userinfo

#[tokio::test]
async fn userinfo_answers_get_and_post_with_what_the_scopes_allow() {
    let p = provider().await;
    let (_, tokens) = p.tokens("openid email").await;
    let access = text(&tokens, "access_token");
    let sub = p.app.user_id(USER);

    let response = p.app.userinfo(&access).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, CACHE_CONTROL).contains("no-store"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"sub": sub, "email": USER, "email_verified": false})
    );

    let response = p
        .app
        .client
        .post(p.app.url("/oauth/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), body);

    let (_, tokens) = p.tokens("openid").await;
    let body: Value = p
        .app
        .userinfo(&text(&tokens, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"sub": sub}), "no email scope, no email");
}

#[tokio::test]
async fn userinfo_needs_an_applications_access_token() {
    let p = provider().await;
    let response = p
        .app
        .client
        .get(p.app.url("/oauth/userinfo"))
        .send()
        .await
        .unwrap();
    assert_unauthorized(response, "no token").await;
    let response = p.app.userinfo("not-a-token").await;
    assert_eq!(response.status(), 401);
    assert!(header(&response, WWW_AUTHENTICATE).contains("invalid_token"));
}

// ---------------------------------------------------------------------------------------------
// Logout

#[tokio::test]
async fn logout_with_a_valid_hint_redirects_at_once_and_ends_the_session() {
    let p = provider().await;
    let browser = p.browser().await;
    let (_, tokens) = p.tokens_in(&browser, "openid").await;
    let hint = text(&tokens, "id_token");
    assert_eq!(browser.get("/account").await.status(), 200);

    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &hint)
        .append_pair("post_logout_redirect_uri", POST_LOGOUT_URI)
        .append_pair("state", "see-you")
        .finish();
    let response = browser.get(&format!("/oauth/logout?{query}")).await;
    let back = redirect_query(&response, POST_LOGOUT_URI);
    assert_eq!(back.get("state").map(String::as_str), Some("see-you"));

    let response = browser.get("/account").await;
    assert_eq!(response.status(), 303, "the page session ended");
    assert!(location(&response).starts_with("/login"));
}

#[tokio::test]
async fn logout_redirects_only_to_a_registered_uri() {
    let p = provider().await;
    let browser = p.browser().await;
    let (_, tokens) = p.tokens_in(&browser, "openid").await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &text(&tokens, "id_token"))
        .append_pair("post_logout_redirect_uri", "https://evil.example.com/")
        .finish();
    let response = browser.get(&format!("/oauth/logout?{query}")).await;
    let to = header(&response, reqwest::header::LOCATION);
    assert!(!to.contains("evil.example.com"), "redirected to {to}");
}

#[tokio::test]
async fn logout_without_a_hint_asks_first() {
    let p = provider().await;
    let browser = p.browser().await;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("post_logout_redirect_uri", POST_LOGOUT_URI)
        .finish();
    let response = browser.get(&format!("/oauth/logout?{query}")).await;
    assert_eq!(response.status(), 200, "a page that asks");
    let html = response.text().await.unwrap();
    assert!(html.contains("action=\"/oauth/logout\""), "{html}");
    assert_eq!(
        browser.get("/account").await.status(),
        200,
        "still signed in"
    );
}

// ---------------------------------------------------------------------------------------------
// Revocation and introspection

#[tokio::test]
async fn revocation_answers_200_for_any_token_and_ends_a_known_one_at_once() {
    let p = provider().await;
    let (_, tokens) = p.tokens("openid offline_access").await;
    let access = text(&tokens, "access_token");
    let refresh = text(&tokens, "refresh_token");

    assert_eq!(p.app.revoke(&p.client, "never-issued").await.status(), 200);

    assert_eq!(p.app.revoke(&p.client, &access).await.status(), 200);
    assert_unauthorized(p.app.userinfo(&access).await, "a revoked access token").await;
    assert_eq!(
        p.app.introspect(&p.client, &access).await,
        json!({"active": false})
    );

    assert_eq!(p.app.revoke(&p.client, &refresh).await.status(), 200);
    assert_invalid_grant(
        p.app.app_refresh(&p.client, &refresh).await,
        "a revoked refresh token",
    )
    .await;
}

#[tokio::test]
async fn introspection_describes_a_live_token_and_nothing_else() {
    let p = provider().await;
    let (_, tokens) = p.tokens("openid email").await;
    let access = text(&tokens, "access_token");

    let live = p.app.introspect(&p.client, &access).await;
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["sub"], p.app.user_id(USER).as_str(), "{live}");
    assert_eq!(live["client_id"], p.client.id.as_str(), "{live}");
    assert!(
        live["exp"].as_i64().is_some_and(|exp| exp > unix_now()),
        "{live}"
    );
    assert_eq!(scopes_of(&text(&live, "scope")), set(&["openid", "email"]));

    assert_eq!(
        p.app.introspect(&p.client, "not-a-token").await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn revocation_and_introspection_need_client_authentication() {
    let p = provider().await;
    let (_, tokens) = p.tokens("openid").await;
    let access = text(&tokens, "access_token");
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let response = p
            .app
            .client
            .post(p.app.url(path))
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path} without a client");
        let response = p
            .app
            .client
            .post(p.app.url(path))
            .header(
                reqwest::header::AUTHORIZATION,
                basic_authorization(&p.client.id, "not-the-secret"),
            )
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path} with a wrong secret");
    }
    assert_eq!(p.app.userinfo(&access).await.status(), 200, "not revoked");
}

// ---------------------------------------------------------------------------------------------
// The account page

#[tokio::test]
async fn remove_access_on_the_account_page_ends_the_apps_tokens_and_consent() {
    let p = provider().await;
    let browser = p.browser().await;
    let (_, tokens) = p.tokens_in(&browser, "openid email offline_access").await;
    let access = text(&tokens, "access_token");
    let refresh = text(&tokens, "refresh_token");

    let response = browser.get("/account").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Connected apps"), "{html}");
    assert!(html.contains("Acme Notes"), "{html}");
    let action = format!("/account/apps/{}/remove", p.client.id);
    assert!(html.contains(&format!("action=\"{action}\"")), "{html}");

    let csrf = csrf_in(&html);
    let response = browser
        .post_form(&action, &[("csrf_token", csrf.as_str())])
        .await;
    assert_eq!(response.status(), 303, "one click");

    assert_unauthorized(p.app.userinfo(&access).await, "after Remove access").await;
    assert_invalid_grant(
        p.app.app_refresh(&p.client, &refresh).await,
        "after Remove access",
    )
    .await;
    let html = browser.get("/account").await.text().await.unwrap();
    assert!(!html.contains(&format!("action=\"{action}\"")), "{html}");
    let response = browser.get(&p.request("openid email").path()).await;
    assert_eq!(response.status(), 200, "consent is asked again");
    assert!(is_consent_page(&response.text().await.unwrap()));
    // The Gatehouse session itself goes on.
    assert_eq!(browser.get("/account").await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Registering applications

#[tokio::test]
async fn registering_an_application_returns_its_settings_and_a_secret_unless_public() {
    let app = spawn_oidc_app().await;
    let admin = app.superuser("root@example.com").await.access;
    let spec = AppSpec {
        redirect_uris: vec![
            REDIRECT_URI.into(),
            "http://127.0.0.1:9000/cb".into(),
            "http://localhost/cb".into(),
            "http://[::1]:8080/cb".into(),
        ],
        skip_consent: true,
        alg: Some("ES256".into()),
        ..AppSpec::default()
    };
    let response = app.post_client(&admin, spec.body()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["client_id"].is_string(), "{body}");
    assert!(body["client_secret"].is_string(), "{body}");
    assert_eq!(body["redirect_uris"], json!(spec.redirect_uris), "{body}");
    assert_eq!(
        body["post_logout_redirect_uris"],
        json!([POST_LOGOUT_URI]),
        "{body}"
    );
    assert_eq!(body["public"], false, "{body}");
    assert_eq!(body["skip_consent"], true, "{body}");
    assert_eq!(body["id_token_signed_response_alg"], "ES256", "{body}");

    let public = AppSpec {
        public: true,
        ..AppSpec::default()
    };
    let response = app.post_client(&admin, public.body()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("client_secret").is_none_or(Value::is_null),
        "a public client has no secret: {body}"
    );
    assert_eq!(body["public"], true, "{body}");
}

#[tokio::test]
async fn redirect_uris_must_be_https_or_loopback_http_without_a_fragment() {
    let app = spawn_oidc_app().await;
    let admin = app.superuser("root@example.com").await.access;
    let before = app.client_count();
    for uri in [
        "http://notes.example.com/callback",
        "http://192.168.1.10/callback",
        "https://notes.example.com/callback#section",
        "not a url",
        "javascript:alert(1)",
    ] {
        let response = app
            .post_client(&admin, AppSpec::redirecting_to(uri).body())
            .await;
        assert_eq!(response.status(), 422, "{uri}");
        let response = app
            .post_client(
                &admin,
                AppSpec {
                    post_logout_redirect_uris: vec![uri.into()],
                    ..AppSpec::default()
                }
                .body(),
            )
            .await;
        assert_eq!(response.status(), 422, "post-logout {uri}");
    }
    let response = app
        .post_client(
            &admin,
            AppSpec {
                alg: Some("HS256".into()),
                ..AppSpec::default()
            }
            .body(),
        )
        .await;
    assert_eq!(response.status(), 422, "an ID token algorithm not offered");
    assert_eq!(app.client_count(), before, "nothing was stored");
}

#[tokio::test]
async fn prompt_login_asks_a_signed_in_visitor_to_log_in_again_once() {
    let p = provider().await;
    let browser = p.browser().await;
    p.code(&browser, "openid").await;
    let logins = browser.logins.get();

    let request = p.request("openid").with("prompt", "login");
    let response = browser.get(&request.path()).await;
    assert_eq!(response.status(), 303);
    assert_eq!(browser.resolve(&location(&response)).path(), "/login");

    let code = browser.code(&p.app, &request, USER).await;
    assert_eq!(browser.logins.get(), logins + 1, "one fresh login, no loop");
    let tokens = p.app.code_tokens(&p.client, &code, &request.verifier).await;
    let (_, claims) = jws_parts(&text(&tokens, "id_token"));
    let auth_time = claims["auth_time"].as_i64().expect("an integer auth_time");
    assert!(
        unix_now() - auth_time < 60,
        "the new login's time: {claims}"
    );
}

#[tokio::test]
async fn max_age_zero_asks_for_a_fresh_login_and_prompt_none_refuses() {
    let p = provider().await;
    let browser = p.browser().await;
    p.code(&browser, "openid").await;

    let request = p
        .request("openid")
        .with("max_age", "0")
        .with("prompt", "none");
    let response = browser.get(&request.path()).await;
    assert_error_redirect(&response, &p, &request, "login_required");

    let logins = browser.logins.get();
    let request = p.request("openid").with("max_age", "0");
    let code = browser.code(&p.app, &request, USER).await;
    assert_eq!(browser.logins.get(), logins + 1, "one fresh login, no loop");
    let tokens = p.app.code_tokens(&p.client, &code, &request.verifier).await;
    let (_, claims) = jws_parts(&text(&tokens, "id_token"));
    assert!(unix_now() - claims["auth_time"].as_i64().unwrap() < 60);

    // A login within max_age needs none.
    let request = p.request("openid").with("max_age", "600");
    browser.code(&p.app, &request, USER).await;
    assert_eq!(browser.logins.get(), logins + 1);
}

#[tokio::test]
async fn consent_given_and_removed_and_a_replayed_code_are_audited() {
    let p = provider().await;
    let browser = p.browser().await;
    let (request, code) = p.code(&browser, "openid email").await;
    p.app.code_tokens(&p.client, &code, &request.verifier).await;
    let replay = p
        .app
        .exchange_code(&p.client, &code, &p.client.redirect_uri, &request.verifier)
        .await;
    assert_eq!(replay.status(), 400);

    let events = |name: &str| {
        p.app.count(&format!(
            "SELECT id FROM audit_events WHERE event = '{name}' AND subject_id = '{}'",
            p.app.user_id(USER)
        ))
    };
    assert_eq!(events("consent_given"), 1);
    assert_eq!(events("authorization_code_replayed"), 1);
    assert_eq!(events("consent_removed"), 0);

    let account = browser.get("/account").await.text().await.unwrap();
    let csrf = input_value(&account, "csrf_token").expect("a CSRF token");
    let path = format!("/account/apps/{}/remove", p.client.id);
    let response = browser.post_form(&path, &[("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(events("consent_removed"), 1);
    assert_eq!(
        p.app.count("SELECT user_id FROM oauth_consents"),
        0,
        "the consent is forgotten"
    );
}

#[tokio::test]
async fn switched_to_hs256_an_application_gets_a_page_and_no_code() {
    let mut p = provider().await;
    p.app.stop().await;
    let hs256 = p
        .app
        .another_instance(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ])
        .await;
    let request = p.request("openid");
    let response = OidcBrowser::new(&hs256).get(&request.path()).await;
    assert_error_page(response, "the provider is off under HS256").await;
}
