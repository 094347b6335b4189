//! `POST /auth/token`: the OAuth2 token endpoint (RFC 6749) and its three grants.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::tokens::{claims_of, now};

const ADMIN: &str = "admin@example.com";
const USER: &str = "user@example.com";

/// Asserts a 200 token response with no-store headers, and returns its body.
async fn token_body(response: reqwest::Response, what: &str) -> Value {
    let status = response.status();
    assert_no_store(&response, what);
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{what}: {body}");
    body
}

async fn assert_user_token_pair(response: reqwest::Response, what: &str) -> Tokens {
    let body = token_body(response, what).await;
    assert_eq!(
        keys_of(&body),
        ["access_token", "expires_in", "refresh_token", "token_type"],
        "{what}: {body}"
    );
    assert_eq!(body["token_type"], "bearer", "{what}");
    assert_eq!(body["expires_in"], 1800, "{what}");
    Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

async fn password_grant(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.token_request(&[
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ])
    .await
}

/// A client-credentials request with the credentials in the form, and `extra` fields.
async fn client_grant(
    app: &TestApp,
    client: &ClientCredentials,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret.as_str()),
    ];
    form.extend_from_slice(extra);
    app.token_request(&form).await
}

/// The `scope` a successful client-credentials response grants.
async fn granted_scope(response: reqwest::Response, what: &str) -> String {
    let body = token_body(response, what).await;
    body["scope"].as_str().unwrap().to_owned()
}

async fn email_of(app: &TestApp, access: &str) -> String {
    let response = app.get("/users/me", access).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    me["email"].as_str().unwrap().to_owned()
}

/// An app with a superuser and a client allowed `read:reports write:reports`.
async fn app_with_client() -> (TestApp, ClientCredentials) {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let client = app
        .machine_client(&admin.access, "reports", &["read:reports", "write:reports"])
        .await;
    (app, client)
}

async fn assert_invalid_client(response: reqwest::Response, what: &str) {
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Basic realm="gatehouse""#),
        "{what}"
    );
    assert_oauth_error(response, 401, "invalid_client", what).await;
}

// ---------------------------------------------------------------------------------------------
// The request itself

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let app = spawn_app().await;
    app.user(USER).await;

    for form in [
        vec![("username", USER), ("password", PASSWORD)],
        vec![
            ("grant_type", ""),
            ("username", USER),
            ("password", PASSWORD),
        ],
        vec![],
    ] {
        let what = format!("form {form:?}");
        assert_oauth_error(
            app.token_request(&form).await,
            400,
            "invalid_request",
            &what,
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_grant_types_are_unsupported() {
    let app = spawn_app().await;

    for grant_type in [
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "PASSWORD",
        "Client_Credentials",
        " password",
    ] {
        let response = app
            .token_request(&[
                ("grant_type", grant_type),
                ("username", USER),
                ("password", PASSWORD),
            ])
            .await;
        let what = format!("grant_type {grant_type:?}");
        assert_oauth_error(response, 400, "unsupported_grant_type", &what).await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_invalid_request() {
    let app = spawn_app().await;
    app.user(USER).await;
    let form = format!("grant_type=password&username={USER}&password=x");
    let url = app.url("/auth/token");

    let requests = [
        (
            "JSON",
            app.client
                .post(&url)
                .json(&json!({"grant_type": "password", "username": USER, "password": PASSWORD})),
        ),
        ("no content type", app.client.post(&url).body(form.clone())),
        (
            "text/plain",
            app.client
                .post(&url)
                .header(CONTENT_TYPE, "text/plain")
                .body(form.clone()),
        ),
        (
            "multipart",
            app.client.post(&url).multipart(
                reqwest::multipart::Form::new()
                    .text("grant_type", "password")
                    .text("username", USER)
                    .text("password", PASSWORD),
            ),
        ),
    ];
    for (what, request) in requests {
        let response = request.send().await.unwrap();
        assert_oauth_error(response, 400, "invalid_request", what).await;
    }
}

#[tokio::test]
async fn a_form_with_a_charset_parameter_is_accepted() {
    let app = spawn_app().await;
    app.user(USER).await;
    let body = serde_urlencoded::to_string([
        ("grant_type", "password"),
        ("username", USER),
        ("password", PASSWORD),
    ])
    .unwrap();

    let response = app
        .client
        .post(app.url("/auth/token"))
        .header(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body(body)
        .send()
        .await
        .unwrap();

    assert_user_token_pair(response, "charset=UTF-8").await;
}

#[tokio::test]
async fn the_form_media_type_is_case_insensitive() {
    let app = spawn_app().await;
    app.user(USER).await;
    let body = serde_urlencoded::to_string([
        ("grant_type", "password"),
        ("username", USER),
        ("password", PASSWORD),
    ])
    .unwrap();

    // RFC 9110 §8.3.1: type and subtype are case-insensitive.
    let response = app
        .client
        .post(app.url("/auth/token"))
        .header(CONTENT_TYPE, "Application/X-WWW-Form-URLEncoded")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_user_token_pair(response, "mixed-case media type").await;
}

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request() {
    let (app, client) = app_with_client().await;
    app.user(USER).await;

    let forms: [Vec<(&str, &str)>; 4] = [
        vec![
            ("grant_type", "password"),
            ("grant_type", "password"),
            ("username", USER),
            ("password", PASSWORD),
        ],
        vec![
            ("grant_type", "password"),
            ("username", USER),
            ("username", USER),
            ("password", PASSWORD),
        ],
        // Repeated, even when one of them is empty.
        vec![
            ("grant_type", "password"),
            ("username", USER),
            ("password", ""),
            ("password", PASSWORD),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
            ("scope", "read:reports"),
            ("scope", "write:reports"),
        ],
    ];
    for form in forms {
        let what = format!("form {form:?}");
        assert_oauth_error(
            app.token_request(&form).await,
            400,
            "invalid_request",
            &what,
        )
        .await;
    }
}

#[tokio::test]
async fn odd_form_bodies_without_a_grant_type_are_invalid_request() {
    let app = spawn_app().await;

    for body in ["%", "&&&", "=", "grant_type", "grant_type&grant_type="] {
        let response = app
            .client
            .post(app.url("/auth/token"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 400, "invalid_request", body).await;
    }
}

// ---------------------------------------------------------------------------------------------
// grant_type=password

#[tokio::test]
async fn password_grant_returns_the_login_token_pair() {
    let app = spawn_app().await;
    app.user(USER).await;

    let tokens =
        assert_user_token_pair(password_grant(&app, USER, PASSWORD).await, "password").await;

    assert_eq!(email_of(&app, &tokens.access).await, USER);
    let claims = claims_of(&tokens.access);
    assert!(claims["sid"].is_string(), "{claims}");
    assert!(claims.get("client_id").is_none(), "{claims}");
    assert!(claims.get("scope").is_none(), "{claims}");
}

#[tokio::test]
async fn password_grant_accepts_the_email_in_another_letter_case() {
    let app = spawn_app().await;
    app.user(USER).await;

    let tokens = assert_user_token_pair(
        password_grant(&app, "User@Example.COM", PASSWORD).await,
        "mixed case",
    )
    .await;

    assert_eq!(email_of(&app, &tokens.access).await, USER);
}

#[tokio::test]
async fn password_grant_refuses_bad_credentials_as_invalid_grant() {
    let app = spawn_app().await;
    app.user(USER).await;
    app.register("sleepy@example.com", PASSWORD).await;
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'sleepy@example.com'");

    for (username, password, what) in [
        (USER, "not the password", "wrong password"),
        ("nobody@example.com", PASSWORD, "unknown email"),
        ("sleepy@example.com", PASSWORD, "inactive user"),
        ("not an email", PASSWORD, "not an email"),
    ] {
        let response = password_grant(&app, username, password).await;
        assert_oauth_error(response, 400, "invalid_grant", what).await;
    }
}

#[tokio::test]
async fn password_grant_without_username_or_password_is_invalid_request() {
    let app = spawn_app().await;
    app.user(USER).await;

    let forms: [&[(&str, &str)]; 4] = [
        &[("grant_type", "password"), ("password", PASSWORD)],
        &[("grant_type", "password"), ("username", USER)],
        &[
            ("grant_type", "password"),
            ("username", ""),
            ("password", PASSWORD),
        ],
        &[
            ("grant_type", "password"),
            ("username", USER),
            ("password", ""),
        ],
    ];
    for form in forms {
        let what = format!("form {form:?}");
        assert_oauth_error(app.token_request(form).await, 400, "invalid_request", &what).await;
    }
}

#[tokio::test]
async fn password_grant_starts_a_session_that_lists_its_user_agent() {
    let app = spawn_app().await;
    app.user(USER).await;

    let response = app
        .client
        .post(app.url("/auth/token"))
        .header(reqwest::header::USER_AGENT, "reports-cli/2.1")
        .form(&[
            ("grant_type", "password"),
            ("username", USER),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let tokens = assert_user_token_pair(response, "password").await;

    let sessions: Value = app
        .get("/users/me/sessions", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    let current: Vec<&Value> = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "{sessions}");
    assert_eq!(current[0]["user_agent"], "reports-cli/2.1");
}

// ---------------------------------------------------------------------------------------------
// grant_type=refresh_token

#[tokio::test]
async fn refresh_grant_rotates_the_refresh_token() {
    let app = spawn_app().await;
    let login = app.user(USER).await;

    let renewed = assert_user_token_pair(app.refresh_grant(&login.refresh).await, "refresh").await;

    assert_ne!(renewed.refresh, login.refresh, "a new refresh token");
    assert_eq!(email_of(&app, &renewed.access).await, USER);
    assert_eq!(
        claims_of(&renewed.access)["sid"],
        claims_of(&login.access)["sid"],
        "the same session goes on"
    );
    let again = assert_user_token_pair(app.refresh_grant(&renewed.refresh).await, "refresh").await;
    assert_eq!(email_of(&app, &again.access).await, USER);
}

#[tokio::test]
async fn refresh_tokens_pass_between_the_token_endpoint_and_jwt_refresh() {
    let app = spawn_app().await;
    let login = app.user(USER).await;

    // From /auth/jwt/login to /auth/token ...
    let from_endpoint =
        assert_user_token_pair(app.refresh_grant(&login.refresh).await, "refresh grant").await;
    // ... to /auth/jwt/refresh ...
    let response = app.refresh(&from_endpoint.refresh).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let from_jwt_refresh = body["refresh_token"].as_str().unwrap();
    // ... and back.
    let last = assert_user_token_pair(app.refresh_grant(from_jwt_refresh).await, "back").await;
    assert_eq!(email_of(&app, &last.access).await, USER);

    // A password-grant refresh token works at /auth/jwt/refresh too.
    let granted = assert_user_token_pair(password_grant(&app, USER, PASSWORD).await, "pw").await;
    assert_eq!(app.refresh(&granted.refresh).await.status(), 200);
}

#[tokio::test]
async fn refresh_grant_without_a_refresh_token_is_invalid_request() {
    let app = spawn_app().await;

    for form in [
        vec![("grant_type", "refresh_token")],
        vec![("grant_type", "refresh_token"), ("refresh_token", "")],
    ] {
        let what = format!("form {form:?}");
        assert_oauth_error(
            app.token_request(&form).await,
            400,
            "invalid_request",
            &what,
        )
        .await;
    }
}

#[tokio::test]
async fn refresh_grant_refuses_unknown_tokens_as_invalid_grant() {
    let app = spawn_app().await;
    let login = app.user(USER).await;
    let mut altered = login.refresh.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });

    for token in [
        "garbage",
        "0",
        &"A".repeat(43),
        &altered,
        &login.access,
        &format!("{} ", login.refresh),
    ] {
        let what = format!("refresh_token {token:?}");
        assert_oauth_error(app.refresh_grant(token).await, 400, "invalid_grant", &what).await;
    }
    // The genuine token still works: the refusals were about the tokens.
    assert_user_token_pair(app.refresh_grant(&login.refresh).await, "genuine").await;
}

#[tokio::test]
async fn refresh_grant_after_logout_is_invalid_grant() {
    let app = spawn_app().await;
    let login = app.user(USER).await;
    let response = app
        .client
        .post(app.url("/auth/jwt/logout"))
        .bearer_auth(&login.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    assert_oauth_error(
        app.refresh_grant(&login.refresh).await,
        400,
        "invalid_grant",
        "after logout",
    )
    .await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_at_the_endpoint_revokes_the_family() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let login = app.user(USER).await;
    let child = assert_user_token_pair(app.refresh_grant(&login.refresh).await, "first").await;
    // The child reached its client, who has used it.
    assert_eq!(app.get("/users/me", &child.access).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_oauth_error(
        app.refresh_grant(&login.refresh).await,
        400,
        "invalid_grant",
        "the rotated parent",
    )
    .await;

    // The replay ended the session: the child and its access token are dead too.
    assert_oauth_error(
        app.refresh_grant(&child.refresh).await,
        400,
        "invalid_grant",
        "the child after reuse",
    )
    .await;
    assert_eq!(app.get("/users/me", &child.access).await.status(), 401);
}

// ---------------------------------------------------------------------------------------------
// grant_type=client_credentials: authenticating the client

#[tokio::test]
async fn client_credentials_in_the_form_get_an_access_token_without_refresh_token() {
    let (app, client) = app_with_client().await;

    let body = token_body(client_grant(&app, &client, &[]).await, "form credentials").await;

    assert_eq!(
        keys_of(&body),
        ["access_token", "expires_in", "scope", "token_type"],
        "{body}"
    );
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["scope"], "read:reports write:reports");
}

#[tokio::test]
async fn client_access_token_names_the_client_and_no_session() {
    let (app, client) = app_with_client().await;

    let token = app.client_token(&client).await;

    let claims = claims_of(&token);
    assert_eq!(claims["sub"], client.id.as_str(), "{claims}");
    assert_eq!(claims["client_id"], client.id.as_str(), "{claims}");
    assert_eq!(claims["scope"], "read:reports write:reports", "{claims}");
    assert_eq!(claims["token_use"], "access", "{claims}");
    assert_eq!(claims["aud"], json!(["fastapi-users:auth"]), "{claims}");
    assert_eq!(claims["iss"], "gatehouse", "{claims}");
    assert!(claims.get("sid").is_none(), "{claims}");
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - now()).abs() <= 60, "{claims}");
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 1800, "{claims}");
    uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).expect("jti is a UUID");
}

#[tokio::test]
async fn client_token_lifetime_follows_access_token_ttl() {
    let app = spawn_app_with(&[("ACCESS_TOKEN_TTL", "120")]).await;
    let admin = app.superuser(ADMIN).await;
    let client = app.machine_client(&admin.access, "short", &[]).await;

    let body = token_body(client_grant(&app, &client, &[]).await, "ttl").await;

    assert_eq!(body["expires_in"], 120);
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
}

#[tokio::test]
async fn client_credentials_by_http_basic_get_a_token() {
    let (app, client) = app_with_client().await;
    let basic = basic_authorization(&client.id, client.secret.as_str());

    let response = app
        .token_request_with_authorization(&basic, &[("grant_type", "client_credentials")])
        .await;

    let body = token_body(response, "Basic").await;
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["sub"],
        client.id.as_str()
    );
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn the_basic_scheme_name_is_case_insensitive() {
    let (app, client) = app_with_client().await;
    let credentials = basic_authorization(&client.id, &client.secret);
    let encoded = credentials.strip_prefix("Basic ").unwrap();

    for scheme in ["basic", "BASIC"] {
        let response = app
            .token_request_with_authorization(
                &format!("{scheme} {encoded}"),
                &[("grant_type", "client_credentials")],
            )
            .await;
        token_body(response, scheme).await;
    }
}

#[tokio::test]
async fn basic_credentials_are_percent_decoded() {
    let (app, client) = app_with_client().await;
    // `_` and `-` need no escaping, but an escaped form must decode to the same credentials.
    let escape = |s: &str| s.replace('_', "%5F").replace('-', "%2D");
    let pair = format!(
        "{}:{}",
        escape(client.id.as_str()),
        escape(client.secret.as_str())
    );
    assert!(pair.contains('%'), "the test escapes something: {pair}");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pair)
    );

    let response = app
        .token_request_with_authorization(&basic, &[("grant_type", "client_credentials")])
        .await;

    token_body(response, "percent-encoded Basic").await;
}

#[tokio::test]
async fn basic_with_the_same_client_id_in_the_form_is_accepted() {
    let (app, client) = app_with_client().await;
    let basic = basic_authorization(&client.id, client.secret.as_str());

    let response = app
        .token_request_with_authorization(
            &basic,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client.id.as_str()),
            ],
        )
        .await;

    token_body(response, "Basic plus the same client_id").await;
}

#[tokio::test]
async fn basic_and_a_form_secret_together_are_invalid_request() {
    let (app, client) = app_with_client().await;
    let basic = basic_authorization(&client.id, client.secret.as_str());

    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_secret", client.secret.as_str()),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ],
    ] {
        let response = app.token_request_with_authorization(&basic, &form).await;
        let what = format!("Basic plus {form:?}");
        assert_oauth_error(response, 400, "invalid_request", &what).await;
    }
}

#[tokio::test]
async fn basic_with_a_different_form_client_id_is_invalid_request() {
    let (app, client) = app_with_client().await;
    let admin = app.tokens(ADMIN, PASSWORD).await;
    let other = app.machine_client(&admin.access, "other", &[]).await;
    let basic = basic_authorization(&client.id, client.secret.as_str());

    let response = app
        .token_request_with_authorization(
            &basic,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", other.id.as_str()),
            ],
        )
        .await;

    assert_oauth_error(response, 400, "invalid_request", "two client ids").await;
}

#[tokio::test]
async fn a_non_basic_authorization_scheme_is_invalid_request() {
    let (app, client) = app_with_client().await;
    let user = app.user(USER).await;

    for authorization in [
        format!("Bearer {}", user.access),
        format!("Bearer {}", client.secret),
        "Digest username=\"x\"".to_owned(),
    ] {
        let response = app
            .token_request_with_authorization(
                &authorization,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client.id.as_str()),
                    ("client_secret", client.secret.as_str()),
                ],
            )
            .await;
        let what = format!("Authorization: {authorization}");
        assert_oauth_error(response, 400, "invalid_request", &what).await;
    }
}

#[tokio::test]
async fn missing_client_credentials_are_invalid_client() {
    let (app, client) = app_with_client().await;

    let forms: [&[(&str, &str)]; 4] = [
        &[("grant_type", "client_credentials")],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
        ],
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", client.secret.as_str()),
        ],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", ""),
        ],
    ];
    for form in forms {
        let what = format!("form {form:?}");
        assert_invalid_client(app.token_request(form).await, &what).await;
    }
}

#[tokio::test]
async fn unknown_client_or_wrong_secret_is_invalid_client() {
    let (app, client) = app_with_client().await;
    let admin = app.tokens(ADMIN, PASSWORD).await;
    let other = app.machine_client(&admin.access, "other", &[]).await;
    let unknown = format!("client_{}", "A".repeat(22));

    let cases = [
        (client.id.as_str(), "wrong-secret", "wrong secret"),
        (
            client.id.as_str(),
            other.secret.as_str(),
            "another client's secret",
        ),
        (unknown.as_str(), client.secret.as_str(), "unknown id"),
        ("not-a-client-id", client.secret.as_str(), "malformed id"),
        (&client.secret, &client.id, "swapped"),
    ];
    for (id, secret, what) in cases {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ];
        assert_invalid_client(app.token_request(&form).await, what).await;
        let basic = basic_authorization(id, secret);
        let response = app
            .token_request_with_authorization(&basic, &[("grant_type", "client_credentials")])
            .await;
        assert_invalid_client(response, &format!("{what}, by Basic")).await;
    }
}

#[tokio::test]
async fn malformed_basic_credentials_are_invalid_client() {
    let (app, client) = app_with_client().await;
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);

    for authorization in [
        "Basic".to_owned(),
        "Basic ".to_owned(),
        "Basic !!!not-base64!!!".to_owned(),
        format!("Basic {}", b64(client.id.as_str())),
        format!("Basic {}", b64(&format!("{}{}", client.id, client.secret))),
        format!("Basic {}", b64(&format!(":{}", client.secret))),
        format!("Basic {}", b64(&format!("{}:", client.id))),
        format!("Basic {}", b64(&format!("{}:%ZZ", client.id))),
    ] {
        let response = app
            .token_request_with_authorization(
                &authorization,
                &[("grant_type", "client_credentials")],
            )
            .await;
        let what = format!("Authorization: {authorization}");
        assert_invalid_client(response, &what).await;
    }
}

#[tokio::test]
async fn a_deleted_client_can_no_longer_get_tokens() {
    let (app, client) = app_with_client().await;
    let admin = app.tokens(ADMIN, PASSWORD).await;
    app.client_token(&client).await;

    let response = app
        .delete(&format!("/clients/{}", client.id), &admin.access)
        .await;
    assert_eq!(response.status(), 204);

    assert_invalid_client(client_grant(&app, &client, &[]).await, "deleted client").await;
}

// ---------------------------------------------------------------------------------------------
// grant_type=client_credentials: scopes

#[tokio::test]
async fn omitting_scope_grants_all_the_clients_scopes() {
    let (app, client) = app_with_client().await;

    for extra in [vec![], vec![("scope", "")]] {
        let what = format!("extra {extra:?}");
        let scope = granted_scope(client_grant(&app, &client, &extra).await, &what).await;
        assert_eq!(scope, "read:reports write:reports", "{what}");
    }
}

#[tokio::test]
async fn a_subset_of_the_clients_scopes_is_granted_as_asked() {
    let (app, client) = app_with_client().await;

    for (asked, granted) in [
        ("read:reports", "read:reports"),
        ("write:reports", "write:reports"),
        ("write:reports read:reports", "read:reports write:reports"),
        ("read:reports read:reports", "read:reports"),
    ] {
        let response = client_grant(&app, &client, &[("scope", asked)]).await;
        let body = token_body(response, asked).await;
        assert_eq!(body["scope"], granted, "asked {asked:?}");
        let claims = claims_of(body["access_token"].as_str().unwrap());
        assert_eq!(claims["scope"], granted, "asked {asked:?}");
    }
}

#[tokio::test]
async fn a_scope_the_client_does_not_have_is_invalid_scope() {
    let (app, client) = app_with_client().await;

    for asked in [
        "admin",
        "read:reports admin",
        "READ:REPORTS",
        "read:report",
        "read:reports write:reports delete:reports",
    ] {
        let response = client_grant(&app, &client, &[("scope", asked)]).await;
        assert_oauth_error(response, 400, "invalid_scope", asked).await;
    }
}

#[tokio::test]
async fn a_client_without_scopes_gets_a_token_with_none_and_can_ask_for_none() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let client = app.machine_client(&admin.access, "bare", &[]).await;

    let scope = granted_scope(client_grant(&app, &client, &[]).await, "no scope").await;
    assert_eq!(scope, "");

    let response = client_grant(&app, &client, &[("scope", "read")]).await;
    assert_oauth_error(response, 400, "invalid_scope", "a scope it lacks").await;
}

#[tokio::test]
async fn a_malformed_scope_is_invalid_scope() {
    let (app, client) = app_with_client().await;
    let too_long = "r".repeat(65);

    for asked in [
        "read:\"reports\"",
        "back\\slash",
        "caf\u{e9}",
        "tab\tseparated",
        "line\nbreak",
        too_long.as_str(),
    ] {
        let response = client_grant(&app, &client, &[("scope", asked)]).await;
        let what = format!("scope {asked:?}");
        assert_oauth_error(response, 400, "invalid_scope", &what).await;
    }
}

#[tokio::test]
async fn bad_credentials_are_refused_before_the_scope_is_looked_at() {
    let (app, client) = app_with_client().await;
    let wrong = ClientCredentials {
        id: client.id.clone(),
        secret: "not-the-secret".into(),
    };

    let response = client_grant(&app, &wrong, &[("scope", "back\\slash")]).await;

    assert_oauth_error(response, 401, "invalid_client", "bad secret, bad scope").await;
}

#[tokio::test]
async fn the_scope_parameter_does_not_matter_to_the_password_grant() {
    let app = spawn_app().await;
    app.user(USER).await;

    let response = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", USER),
            ("password", PASSWORD),
            ("scope", "anything at all"),
        ])
        .await;

    let tokens = assert_user_token_pair(response, "password with scope").await;
    assert!(claims_of(&tokens.access).get("scope").is_none());
}

// ---------------------------------------------------------------------------------------------
// What a client token opens

#[tokio::test]
async fn secret_names_a_client_caller_with_its_token_scopes() {
    let (app, client) = app_with_client().await;
    let response = client_grant(&app, &client, &[("scope", "read:reports")]).await;
    let body = token_body(response, "narrowed").await;
    let token = body["access_token"].as_str().unwrap();

    let response = app.get("/secret", token).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body["caller"],
        json!({
            "kind": "client",
            "client_id": client.id,
            "name": "reports",
            "scopes": ["read:reports"],
        })
    );
}

#[tokio::test]
async fn secret_names_a_user_caller() {
    let app = spawn_app().await;
    let tokens = app.user(USER).await;
    let id = app.user_id(USER);

    let response = app.get("/secret", &tokens.access).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["caller"],
        json!({"kind": "user", "id": id, "email": USER})
    );
}
