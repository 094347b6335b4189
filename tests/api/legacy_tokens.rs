//! `LEGACY_JWT_SECRET`: access tokens of the old fastapi-users backend (HS256, `sub`, `aud`,
//! `exp`, no issuer) work on the user routes while clients move, for users here who are
//! active, until they expire; logging out, a password change and a deactivation end them; a
//! counter tells operators when they are no longer used. (`tests/cli/import_fastapi_users.rs`
//! does this with a token fastapi-users itself made.)

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::tokens::assert_invalid_token;

/// A secret as fastapi-users' documentation writes it: any string.
const SECRET: &str = "SECRET";
const LEGACY: [(&str, &str); 1] = [("LEGACY_JWT_SECRET", SECRET)];

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// What fastapi-users' `JWTStrategy.write_token` signs, with `extra` claims over it.
fn old_token(user_id: &str, secret: &str, extra: Value) -> String {
    let mut claims = json!({
        "sub": user_id,
        "aud": ["fastapi-users:auth"],
        "exp": now() + 3600,
    });
    for (key, value) in extra.as_object().unwrap() {
        claims[key] = value.clone();
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn registered(app: &TestApp, email: &str) -> String {
    let response = app.register(email, PASSWORD).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn accepted_count(app: &TestApp) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("gatehouse_legacy_tokens_accepted_total "))
        .unwrap_or_else(|| panic!("no legacy counter in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_old_backends_token_works_on_the_user_routes_and_is_counted() {
    let app = spawn_app_with(&LEGACY).await;
    let id = registered(&app, "alice@example.com").await;
    assert_eq!(accepted_count(&app).await, 0.0);
    let token = old_token(&id, SECRET, json!({}));

    let me = app.get("/users/me", &token).await;
    assert_eq!(me.status(), 200);
    assert_user_read(&me.json().await.unwrap(), "alice@example.com");
    let patched = app
        .patch("/users/me", &token, json!({"is_superuser": true}))
        .await;
    assert_eq!(
        patched.status(),
        200,
        "a write, with no CSRF token: it is a bearer token"
    );
    assert_eq!(app.get("/users/me/sessions", &token).await.status(), 200);
    assert_eq!(accepted_count(&app).await, 3.0);

    // Gatehouse's own tokens work beside them, and are not counted.
    let own = app.tokens("alice@example.com", PASSWORD).await;
    assert_eq!(app.get("/users/me", &own.access).await.status(), 200);
    assert_eq!(accepted_count(&app).await, 3.0);
}

#[tokio::test]
async fn without_the_setting_or_with_another_secret_they_are_refused() {
    let plain = spawn_app().await;
    let id = registered(&plain, "alice@example.com").await;
    let token = old_token(&id, SECRET, json!({}));
    assert_invalid_token(plain.get("/users/me", &token).await, "no LEGACY_JWT_SECRET").await;

    let app = spawn_app_with(&LEGACY).await;
    let id = registered(&app, "bob@example.com").await;
    for (token, what) in [
        (old_token(&id, "ANOTHER", json!({})), "another secret"),
        (
            old_token(&id, SECRET, json!({"exp": now() - 60})),
            "expired",
        ),
        (
            old_token(&id, SECRET, json!({"aud": "fastapi-users:reset"})),
            "a reset token of the old backend",
        ),
        (
            old_token(&uuid::Uuid::new_v4().to_string(), SECRET, json!({})),
            "a user who is not here",
        ),
        (old_token("1", SECRET, json!({})), "a subject that is no id"),
    ] {
        assert_invalid_token(app.get("/users/me", &token).await, what).await;
    }
    // Never as the cookie: only a bearer token may be the old backend's.
    let cookie = app
        .client
        .get(app.url("/users/me"))
        .header(
            "Cookie",
            format!(
                "__Host-gatehouse_access={}",
                old_token(&id, SECRET, json!({}))
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), 401);
}

#[tokio::test]
async fn tokens_gatehouse_issues_never_use_the_old_secret() {
    let app = spawn_app_with(&[
        ("LEGACY_JWT_SECRET", SECRET),
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET", "q3Pz0dXv8C2k1yJmS0nV4cYtR7bWfLhE9uAiKgQpZxM"),
    ])
    .await;
    registered(&app, "alice@example.com").await;
    let own = app.tokens("alice@example.com", PASSWORD).await;
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&own.access).unwrap();
    assert_eq!(claims["iss"], "gatehouse", "{claims}");
    let mut strict = jsonwebtoken::Validation::new(Algorithm::HS256);
    strict.validate_aud = false;
    let with_old_secret = jsonwebtoken::decode::<Value>(
        &own.access,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &strict,
    );
    assert!(with_old_secret.is_err());
}

#[tokio::test]
async fn an_inactive_user_is_refused_and_a_deactivation_ends_the_token_for_good() {
    let app = spawn_app_with(&LEGACY).await;
    let admin = app.superuser("admin@example.com").await;
    let id = registered(&app, "alice@example.com").await;
    let token = old_token(&id, SECRET, json!({}));
    assert_eq!(app.get("/users/me", &token).await.status(), 200);

    let path = format!("/users/{id}");
    let off = app
        .patch(&path, &admin.access, json!({"is_active": false}))
        .await;
    assert_eq!(off.status(), 200);
    assert_invalid_token(app.get("/users/me", &token).await, "inactive").await;
    let on = app
        .patch(&path, &admin.access, json!({"is_active": true}))
        .await;
    assert_eq!(on.status(), 200);
    assert_invalid_token(app.get("/users/me", &token).await, "issued before").await;
}

#[tokio::test]
async fn a_password_change_ends_every_old_token_issued_before_it() {
    let app = spawn_app_with(&LEGACY).await;
    let id = registered(&app, "alice@example.com").await;
    let old = old_token(&id, SECRET, json!({}));
    let with_iat = old_token(&id, SECRET, json!({"iat": now() - 60}));
    let own = app.tokens("alice@example.com", PASSWORD).await;
    assert_eq!(app.get("/users/me", &old).await.status(), 200);

    let changed = app
        .patch(
            "/users/me",
            &own.access,
            json!({"password": "a brand new passphrase", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_invalid_token(app.get("/users/me", &old).await, "no iat: made before").await;
    assert_invalid_token(app.get("/users/me", &with_iat).await, "iat before").await;
    // A token that says it was issued after the change (the old backend still running): the
    // change is moved ten seconds back rather than waiting for the clock.
    app.execute("UPDATE legacy_token_cutoffs SET cutoff_at = cutoff_at - 10");
    let later = old_token(&id, SECRET, json!({"iat": now() - 5}));
    assert_eq!(app.get("/users/me", &later).await.status(), 200);
    assert_invalid_token(app.get("/users/me", &with_iat).await, "still before").await;
    assert_invalid_token(app.get("/users/me", &old).await, "still of unknown age").await;
}

#[tokio::test]
async fn changing_the_password_with_an_old_token_ends_it_too() {
    let app = spawn_app_with(&LEGACY).await;
    let id = registered(&app, "alice@example.com").await;
    let old = old_token(&id, SECRET, json!({}));
    let changed = app
        .patch(
            "/users/me",
            &old,
            json!({"password": "a brand new passphrase", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_invalid_token(app.get("/users/me", &old).await, "after its own change").await;
    app.tokens("alice@example.com", "a brand new passphrase")
        .await;
}

#[tokio::test]
async fn logging_out_with_an_old_token_ends_the_old_tokens_of_the_user_only() {
    let app = spawn_app_with(&LEGACY).await;
    let alice = registered(&app, "alice@example.com").await;
    let bob = registered(&app, "bob@example.com").await;
    let own = app.tokens("alice@example.com", PASSWORD).await;
    let first = old_token(&alice, SECRET, json!({}));
    let second = old_token(&alice, SECRET, json!({"exp": now() + 1800}));
    let bobs = old_token(&bob, SECRET, json!({}));

    let out = app
        .client
        .post(app.url("/auth/jwt/logout"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_invalid_token(app.get("/users/me", &first).await, "logged out").await;
    assert_invalid_token(app.get("/users/me", &second).await, "indistinguishable").await;
    assert_eq!(
        app.get("/users/me", &own.access).await.status(),
        200,
        "her session lives"
    );
    assert_eq!(
        app.get("/users/me", &bobs).await.status(),
        200,
        "bob's token lives"
    );

    // "Log out everywhere" with Gatehouse's token ends the old backend's too.
    let everywhere = app
        .client
        .post(app.url("/auth/jwt/logout?scope=global"))
        .bearer_auth(&own.access)
        .send()
        .await
        .unwrap();
    assert_eq!(everywhere.status(), 204);
    let bob_own = app.tokens("bob@example.com", PASSWORD).await;
    let global = app
        .client
        .post(app.url("/auth/jwt/logout?scope=global"))
        .bearer_auth(&bob_own.access)
        .send()
        .await
        .unwrap();
    assert_eq!(global.status(), 204);
    assert_invalid_token(app.get("/users/me", &bobs).await, "logged out everywhere").await;
}
