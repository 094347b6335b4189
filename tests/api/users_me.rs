//! `GET /users/me` and `PATCH /users/me`: reading, changing email and password, and what they revoke.

use serde_json::{json, Value};

use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Asserts a plain 401 with a Bearer challenge.
async fn assert_unauthorized(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"detail": "Unauthorized"}));
}

async fn me(app: &TestApp, token: &str) -> Value {
    let response = app.get("/users/me", token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn get_me_returns_the_current_user() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;

    let body = me(&app, &tokens.access).await;

    assert_user_read(&body, "alice@example.com");
    let row = app.user_row("alice@example.com").unwrap();
    assert_eq!(body["id"], row.id.as_str());
    assert_eq!(body["is_active"], true);
    assert_eq!(body["is_superuser"], false);
    assert_eq!(body["is_verified"], false);
}

#[tokio::test]
async fn get_me_reflects_the_stored_flags() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    app.execute("UPDATE users SET is_verified = TRUE WHERE email = 'alice@example.com'");

    let body = me(&app, &tokens.access).await;

    assert_eq!(body["is_verified"], true);
}

#[tokio::test]
async fn users_me_without_a_valid_token_is_401() {
    let app = spawn_app().await;
    app.user("alice@example.com").await;

    let response = app.client.get(app.url("/users/me")).send().await.unwrap();
    assert_unauthorized(response).await;

    let response = app
        .client
        .patch(app.url("/users/me"))
        .json(&json!({"email": "new@example.com"}))
        .send()
        .await
        .unwrap();
    assert_unauthorized(response).await;
    assert!(app.user_row("new@example.com").is_none());

    let response = app.get("/users/me", "not-a-jwt").await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_unauthorized(response).await;
}

#[tokio::test]
async fn patch_me_changes_the_email_and_resets_verification() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    app.execute("UPDATE users SET is_verified = TRUE WHERE email = 'alice@example.com'");
    let id = app.user_id("alice@example.com");

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"email": "Alicia@Example.com", "current_password": PASSWORD}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_user_read(&body, "Alicia@Example.com");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["is_verified"], false);
    assert!(app.user_row("alice@example.com").is_none());
    let row = app.user_row("Alicia@Example.com").unwrap();
    assert_eq!(row.id, id);
    assert!(!row.is_verified);
    assert_eq!(
        app.count("SELECT id FROM users WHERE email_normalized = 'alicia@example.com'"),
        1
    );
    // An email change alone is not a password change: the token keeps working.
    assert_eq!(
        me(&app, &tokens.access).await["email"],
        "Alicia@Example.com"
    );
    app.tokens("alicia@example.com", PASSWORD).await;
}

#[tokio::test]
async fn patch_me_refuses_an_email_taken_in_any_case() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    app.register("bob@example.com", PASSWORD).await;
    app.execute("UPDATE users SET is_verified = TRUE WHERE email = 'alice@example.com'");

    for email in ["bob@example.com", "BOB@example.com", "  Bob@Example.Com "] {
        let response = app
            .patch(
                "/users/me",
                &tokens.access,
                json!({"email": email, "current_password": PASSWORD}),
            )
            .await;
        assert_detail(response, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS").await;
    }

    let alice = app.user_row("alice@example.com").unwrap();
    assert!(alice.is_verified);
    assert!(app.user_row("bob@example.com").is_some());
    assert_eq!(app.user_count(), 2);
}

#[tokio::test]
async fn patch_me_rejects_an_invalid_email_with_422() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"email": "not-an-email"}),
        )
        .await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let entries = body["detail"].as_array().expect("detail is an array");
    assert!(
        entries.iter().any(|e| e["loc"] == json!(["body", "email"])),
        "{body}"
    );
    assert!(app.user_row("alice@example.com").is_some());
}

#[tokio::test]
async fn patch_me_password_requires_the_current_password() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    let before = app.user_row("alice@example.com").unwrap().hashed_password;

    let missing = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"password": NEW_PASSWORD}),
        )
        .await;
    assert_detail(missing, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;

    let wrong = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"password": NEW_PASSWORD, "current_password": "not the password"}),
        )
        .await;
    assert_detail(wrong, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;

    let null = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"password": NEW_PASSWORD, "current_password": null}),
        )
        .await;
    assert_detail(null, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;

    assert_eq!(
        app.user_row("alice@example.com").unwrap().hashed_password,
        before
    );
    assert_eq!(app.get("/users/me", &tokens.access).await.status(), 200);
    app.tokens("alice@example.com", PASSWORD).await;
    assert_eq!(
        app.count("SELECT id FROM sessions WHERE revoked_at IS NOT NULL"),
        0
    );
}

#[tokio::test]
async fn patch_me_with_a_wrong_current_password_changes_nothing_at_all() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({
                "email": "alicia@example.com",
                "password": NEW_PASSWORD,
                "current_password": "not the password",
            }),
        )
        .await;

    assert_detail(response, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;
    assert!(app.user_row("alice@example.com").is_some());
    assert!(app.user_row("alicia@example.com").is_none());
}

#[tokio::test]
async fn patch_me_password_change_revokes_every_session() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    let other_session = app.tokens("alice@example.com", PASSWORD).await;
    let bob = app.user("bob@example.com").await;
    let alice_id = app.user_id("alice@example.com");
    let before = app.user_row("alice@example.com").unwrap().hashed_password;

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"password": NEW_PASSWORD, "current_password": PASSWORD}),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_user_read(&response.json().await.unwrap(), "alice@example.com");
    let after = app.user_row("alice@example.com").unwrap().hashed_password;
    assert_ne!(after, before);
    assert!(after.starts_with("$argon2id$"), "{after}");

    assert_eq!(app.get("/users/me", &tokens.access).await.status(), 401);
    assert_eq!(
        app.get("/users/me", &other_session.access).await.status(),
        401
    );
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM sessions WHERE user_id = '{alice_id}' AND revoked_at IS NULL"
        )),
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM sessions WHERE user_id = '{alice_id}' AND revoked_at IS NOT NULL"
        )),
        2
    );
    assert_eq!(app.refresh(&tokens.refresh).await.status(), 401);
    assert_eq!(app.refresh(&other_session.refresh).await.status(), 401);

    // Other users' sessions are untouched.
    assert_eq!(app.get("/users/me", &bob.access).await.status(), 200);

    let old = app.login("alice@example.com", PASSWORD).await;
    assert_detail(old, 400, "LOGIN_BAD_CREDENTIALS").await;
    let fresh = app.tokens("alice@example.com", NEW_PASSWORD).await;
    assert_eq!(me(&app, &fresh.access).await["email"], "alice@example.com");
}

#[tokio::test]
async fn patch_me_enforces_the_password_policy() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    let before = app.user_row("alice@example.com").unwrap().hashed_password;

    let too_long = "x".repeat(129);
    for password in [
        "short1!",
        "password123",
        "alice-in-wonderland",
        too_long.as_str(),
    ] {
        let response = app
            .patch(
                "/users/me",
                &tokens.access,
                json!({"password": password, "current_password": PASSWORD}),
            )
            .await;
        assert_policy_error(response, "UPDATE_USER_INVALID_PASSWORD").await;
    }

    assert_eq!(
        app.user_row("alice@example.com").unwrap().hashed_password,
        before
    );
    assert_eq!(app.get("/users/me", &tokens.access).await.status(), 200);
}

#[tokio::test]
async fn patch_me_ignores_privileged_fields() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    let before = me(&app, &tokens.access).await;

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "is_active": false,
                "is_superuser": true,
                "is_verified": true,
            }),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, before);
    let row = app.user_row("alice@example.com").unwrap();
    assert_eq!(before["id"], row.id.as_str());
    assert!(row.is_active);
    assert!(!row.is_superuser);
    assert!(!row.is_verified);
    assert_eq!(me(&app, &tokens.access).await, before);
}

#[tokio::test]
async fn patch_me_treats_null_and_absent_fields_as_no_change() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    let before = me(&app, &tokens.access).await;
    let hash = app.user_row("alice@example.com").unwrap().hashed_password;

    for body in [
        json!({}),
        json!({"email": null, "password": null}),
        json!({"email": null, "password": null, "current_password": null}),
        json!({"unknown_field": "ignored"}),
    ] {
        let response = app.patch("/users/me", &tokens.access, body.clone()).await;
        assert_eq!(response.status(), 200, "{body}");
        assert_eq!(response.json::<Value>().await.unwrap(), before, "{body}");
    }

    let row = app.user_row("alice@example.com").unwrap();
    assert_eq!(row.hashed_password, hash);
    assert_eq!(me(&app, &tokens.access).await, before);
}

/// Finding 2: a stolen access token (or a browser left signed in) is not enough to move an
/// account to another address: `PATCH /users/me` with a new `email` needs the current
/// password, and without it nothing changes and nothing is sent, so the attacker cannot
/// then reset the password through an address they read.
#[tokio::test]
async fn changing_the_email_needs_the_current_password() {
    let app = spawn_mail_app_with(&[]).await;
    let stolen = app.user("alice@example.com").await;

    for body in [
        json!({"email": "mallory@example.com"}),
        json!({"email": "mallory@example.com", "current_password": null}),
        json!({"email": "mallory@example.com", "current_password": ""}),
        json!({"email": "mallory@example.com", "current_password": "not the password"}),
    ] {
        let response = app.patch("/users/me", &stolen.access, body.clone()).await;
        assert_detail(response, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;
    }
    assert!(app.user_row("alice@example.com").is_some());
    assert!(app.user_row("mallory@example.com").is_none());

    // The takeover's second step finds no account at the attacker's address.
    assert_null(app.forgot_password("mallory@example.com").await, 202).await;
    app.assert_no_email_to("mallory@example.com").await;
    app.assert_no_email_to("alice@example.com").await;

    // The same address again (in any case) is no change and needs nothing.
    let same = app
        .patch(
            "/users/me",
            &stolen.access,
            json!({"email": "alice@example.com"}),
        )
        .await;
    assert_eq!(same.status(), 200);
}

/// Finding 2: with the right password the address changes; the old address is told what
/// happened and how to recover; every other session of the user ends, while the session that
/// made the change goes on.
#[tokio::test]
async fn an_email_change_notifies_the_old_address_and_ends_other_sessions() {
    let app = spawn_mail_app_with(&[]).await;
    let this = app.user("alice@example.com").await;
    let other = app.tokens("alice@example.com", PASSWORD).await;
    let bob = app.user("bob@example.com").await;

    let response = app
        .patch(
            "/users/me",
            &this.access,
            json!({"email": "alice@new.example", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_user_read(&response.json().await.unwrap(), "alice@new.example");

    assert_eq!(me(&app, &this.access).await["email"], "alice@new.example");
    assert_eq!(app.refresh(&this.refresh).await.status(), 200);
    assert_ended(&app, &other, "another session of the user").await;
    assert_eq!(app.get("/users/me", &bob.access).await.status(), 200);

    let notice = app.wait_for_email("alice@example.com", 1).await;
    assert_eq!(
        notice.header("subject"),
        Some("Your Gatehouse email address was changed")
    );
    for body in [&notice.text, &notice.html] {
        assert!(body.contains("alice@new.example"), "{body}");
        assert!(body.contains("127.0.0.1"), "{body}");
        assert!(body.contains("administrator"), "how to recover: {body}");
        assert!(
            body.contains(&format!("{PUBLIC_URL}/forgot-password")),
            "{body}"
        );
    }
    assert!(notice.token.is_empty(), "the notice carries no token");
    app.assert_no_email_to("alice@new.example").await;
}

/// Finding 2: a superuser's change of someone's address is notified to the old address too,
/// and ends that user's sessions.
#[tokio::test]
async fn a_superuser_changing_an_email_notifies_and_ends_the_users_sessions() {
    let app = spawn_mail_app_with(&[]).await;
    let admin = app.superuser("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    let id = app.user_id("alice@example.com");

    let response = app
        .patch(
            &format!("/users/{id}"),
            &admin.access,
            json!({"email": "alice@new.example"}),
        )
        .await;
    assert_eq!(response.status(), 200);

    assert_ended(&app, &alice, "the user's session").await;
    assert_eq!(app.get("/users/me", &admin.access).await.status(), 200);
    let notice = app.wait_for_email("alice@example.com", 1).await;
    assert!(notice.text.contains("alice@new.example"), "{}", notice.text);
    assert!(
        notice.text.contains("by an administrator"),
        "{}",
        notice.text
    );
    app.tokens("alice@new.example", PASSWORD).await;
}
