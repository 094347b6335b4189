//! `POST /auth/jwt/login`: both form encodings, one answer for every failure, sessions, re-hashing.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use serde_json::{json, Value};

use crate::helpers::*;

const LOGIN: &str = "/auth/jwt/login";

async fn login_multipart(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    app.client
        .post(app.url(LOGIN))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn login_form(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(LOGIN))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Asserts a successful token response and returns its body.
async fn assert_token_response(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        ["access_token", "expires_in", "refresh_token", "token_type"],
        "{body}"
    );
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3, "a JWT: {access}");
    assert!(!body["refresh_token"].as_str().unwrap().is_empty());
    body
}

/// Asserts the single bad-credentials answer and returns the raw body.
async fn assert_bad_credentials(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body, json!({"detail": "LOGIN_BAD_CREDENTIALS"}));
    text
}

fn session_count(app: &TestApp) -> i64 {
    app.count("SELECT id FROM sessions")
}

/// A PHC string of `password` made with explicit (older) Argon2id parameters.
fn hash_with(password: &str, memory_kib: u32, iterations: u32) -> String {
    let params = Params::new(memory_kib, iterations, 1, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), b"a-fixed-test-salt")
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn login_with_a_urlencoded_form_returns_working_tokens() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;

    let body = assert_token_response(app.login("alice@example.com", PASSWORD).await).await;

    let me = app
        .get("/users/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "alice@example.com");
}

#[tokio::test]
async fn login_with_a_multipart_form_returns_working_tokens() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;

    let response = login_multipart(
        &app,
        &[("username", "alice@example.com"), ("password", PASSWORD)],
    )
    .await;

    let body = assert_token_response(response).await;
    let me = app
        .get("/users/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn login_accepts_the_optional_oauth2_fields() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;
    let fields = [
        ("grant_type", "password"),
        ("username", "alice@example.com"),
        ("password", PASSWORD),
        ("scope", ""),
        ("client_id", "some-client"),
        ("client_secret", "some-secret"),
    ];

    assert_token_response(login_form(&app, &fields).await).await;
    assert_token_response(login_multipart(&app, &fields).await).await;
}

#[tokio::test]
async fn login_gives_one_answer_for_every_bad_credential() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;
    app.register("bob@example.com", "bobs own passphrase").await;
    app.register("carol@example.com", PASSWORD).await;
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'carol@example.com'");

    let unknown = assert_bad_credentials(app.login("nobody@example.com", PASSWORD).await).await;
    let wrong =
        assert_bad_credentials(app.login("alice@example.com", "not the password").await).await;
    let others =
        assert_bad_credentials(app.login("alice@example.com", "bobs own passphrase").await).await;
    let inactive = assert_bad_credentials(app.login("carol@example.com", PASSWORD).await).await;
    let empty = assert_bad_credentials(app.login("alice@example.com", "").await).await;
    let multipart = assert_bad_credentials(
        login_multipart(
            &app,
            &[("username", "alice@example.com"), ("password", "nope")],
        )
        .await,
    )
    .await;

    for body in [&wrong, &others, &inactive, &empty, &multipart] {
        assert_eq!(body, &unknown);
    }
    assert_eq!(session_count(&app), 0);
    assert_eq!(app.count("SELECT token_hash FROM refresh_tokens"), 0);
}

#[tokio::test]
async fn login_refuses_an_inactive_user_with_the_right_password() {
    let app = spawn_app().await;
    app.user("alice@example.com").await;
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'alice@example.com'");
    let sessions_before = session_count(&app);

    assert_bad_credentials(app.login("alice@example.com", PASSWORD).await).await;

    assert_eq!(session_count(&app), sessions_before);
}

#[tokio::test]
async fn login_rejects_missing_fields_with_422() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;

    let entries = assert_validation_error(login_form(&app, &[("password", PASSWORD)]).await).await;
    assert!(
        entries
            .iter()
            .any(|e| e["loc"] == json!(["body", "username"])),
        "{entries:?}"
    );

    let entries =
        assert_validation_error(login_form(&app, &[("username", "alice@example.com")]).await).await;
    assert!(
        entries
            .iter()
            .any(|e| e["loc"] == json!(["body", "password"])),
        "{entries:?}"
    );

    let entries =
        assert_validation_error(login_multipart(&app, &[("username", "alice@example.com")]).await)
            .await;
    assert!(
        entries
            .iter()
            .any(|e| e["loc"] == json!(["body", "password"])),
        "{entries:?}"
    );

    assert_validation_error(login_form(&app, &[]).await).await;
    assert_eq!(session_count(&app), 0);
}

#[tokio::test]
async fn login_rejects_a_json_body_with_422() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;

    let response = app
        .client
        .post(app.url(LOGIN))
        .json(&json!({"username": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();

    assert_validation_error(response).await;
    assert_eq!(session_count(&app), 0);
}

#[tokio::test]
async fn login_records_a_session_and_a_hashed_refresh_token() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;
    let user_id = app.user_id("alice@example.com");

    let response = app
        .client
        .post(app.url(LOGIN))
        .header("user-agent", "GatehouseTest/1.0 (login)")
        .form(&[("username", "alice@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let body = assert_token_response(response).await;

    assert_eq!(session_count(&app), 1);
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM sessions WHERE user_id = '{user_id}' \
             AND user_agent = 'GatehouseTest/1.0 (login)' AND revoked_at IS NULL \
             AND expires_at > created_at"
        )),
        1
    );
    assert_eq!(
        app.count(
            "SELECT r.token_hash FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
             WHERE r.rotated_at IS NULL"
        ),
        1
    );
    let refresh = body["refresh_token"].as_str().unwrap().replace('\'', "''");
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM refresh_tokens WHERE token_hash = '{refresh}'"
        )),
        0,
        "the refresh token is stored only as a hash"
    );

    app.tokens("alice@example.com", PASSWORD).await;
    assert_eq!(session_count(&app), 2);
    assert_eq!(app.count("SELECT token_hash FROM refresh_tokens"), 2);
}

#[tokio::test]
async fn login_rehashes_a_password_stored_with_old_parameters() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;
    let old_hash = hash_with(PASSWORD, 4096, 1);
    assert!(old_hash.starts_with("$argon2id$v=19$m=4096,t=1,p=1$"));
    app.execute(&format!(
        "UPDATE users SET hashed_password = '{old_hash}' WHERE email = 'alice@example.com'"
    ));

    // A failed login must not touch the stored hash.
    assert_bad_credentials(app.login("alice@example.com", "not the password").await).await;
    assert_eq!(
        app.user_row("alice@example.com").unwrap().hashed_password,
        old_hash
    );

    assert_token_response(app.login("alice@example.com", PASSWORD).await).await;

    let new_hash = app.user_row("alice@example.com").unwrap().hashed_password;
    assert!(
        new_hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
        "{new_hash}"
    );
    assert_ne!(new_hash, old_hash);
    assert_token_response(app.login("alice@example.com", PASSWORD).await).await;
}

#[tokio::test]
async fn login_keeps_a_hash_whose_parameters_are_current() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;
    let before = app.user_row("alice@example.com").unwrap().hashed_password;

    assert_token_response(app.login("alice@example.com", PASSWORD).await).await;

    assert_eq!(
        app.user_row("alice@example.com").unwrap().hashed_password,
        before
    );
}

#[tokio::test]
async fn a_login_flood_beyond_the_hashing_queue_is_shed_with_503_and_retry_after() {
    let app = spawn_app_with(&[
        ("ARGON2_CONCURRENCY", "1"),
        ("ARGON2_QUEUE", "1"),
        ("ARGON2_ITERATIONS", "4"),
    ])
    .await;
    app.user("flood@example.com").await;

    let flood = (0..16).map(|_| app.login("flood@example.com", PASSWORD));
    let responses = futures_util::future::join_all(flood).await;

    let mut shed = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => {}
            503 => {
                shed += 1;
                assert_eq!(response.headers()["retry-after"], "1");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body, json!({"detail": "SERVICE_UNAVAILABLE"}));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        shed > 0,
        "one hash running and one waiting cannot take 16 logins"
    );
    // Once the flood has passed, logins work again.
    assert_eq!(app.login("flood@example.com", PASSWORD).await.status(), 200);
}

/// Finding 11: a password is one password however it is composed. Typed with `é` as one
/// character at signup, it logs in typed as `e` and a combining accent, and the other way
/// round; an account whose hash was made of the typed form before passwords were normalized
/// still logs in, and from then on with any spelling.
#[tokio::test]
async fn a_password_logs_in_however_its_accents_are_composed() {
    let app = spawn_app().await;
    let composed = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e";
    let decomposed = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e";
    assert_eq!(
        app.register("nfc@example.com", composed).await.status(),
        201
    );
    app.tokens("nfc@example.com", decomposed).await;
    assert_eq!(
        app.register("nfd@example.com", decomposed).await.status(),
        201
    );
    app.tokens("nfd@example.com", composed).await;

    // A hash of the decomposed spelling as typed, as an older version stored it.
    app.user("legacy@example.com").await;
    let legacy = hash_with(decomposed, 8192, 1);
    app.execute(&format!(
        "UPDATE users SET hashed_password = '{legacy}' WHERE email = 'legacy@example.com'"
    ));
    app.tokens("legacy@example.com", decomposed).await;
    let moved = app.user_row("legacy@example.com").unwrap().hashed_password;
    assert_ne!(moved, legacy, "the hash moves to the normal form at login");
    app.tokens("legacy@example.com", composed).await;
    app.tokens("legacy@example.com", decomposed).await;
    assert_bad_credentials(app.login("legacy@example.com", "cafe creme brulee").await).await;
}
