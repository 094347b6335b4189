//! Password recovery: `POST /auth/forgot-password` emails a single-use link, and
//! `POST /auth/reset-password` redeems it for a new password and ends every session.

use serde_json::{json, Value};

use crate::helpers::*;

const USER: &str = "user@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase for recovery";

async fn mail_app() -> TestApp {
    spawn_mail_app_with(&[]).await
}

/// Asserts a `{"detail": "RESET_PASSWORD_BAD_TOKEN"}` answer.
async fn assert_bad_token(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 400, "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"detail": "RESET_PASSWORD_BAD_TOKEN"}),
        "{what}"
    );
}

/// Asserts that `password` still logs `email` in, and `refused` does not.
async fn assert_password(app: &TestApp, email: &str, password: &str, refused: &str) {
    assert_eq!(app.login(email, password).await.status(), 200, "{password}");
    assert_detail(
        app.login(email, refused).await,
        400,
        "LOGIN_BAD_CREDENTIALS",
    )
    .await;
}

/// Status, body and headers (all but `date`) of an answer, to compare two answers.
async fn fingerprint(response: reqwest::Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("<binary>").to_owned(),
            )
        })
        .collect();
    headers.sort();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn reset_tokens_of(app: &TestApp, email: &str, condition: &str) -> i64 {
    let id = app.user_id(email);
    app.count(&format!(
        "SELECT token_hash FROM email_tokens WHERE user_id = '{id}' AND purpose = 'reset' \
         AND {condition}"
    ))
}

// ---------------------------------------------------------------------------------------------
// POST /auth/forgot-password

#[tokio::test]
async fn forgot_password_emails_a_reset_link_to_an_active_account() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    assert_null(app.forgot_password(USER).await, 202).await;

    let email = app.wait_for_email(USER, 1).await;
    assert_eq!(
        email.header("subject"),
        Some("Reset your Gatehouse password")
    );
    assert!(
        email
            .header("content-type")
            .is_some_and(|t| t.starts_with("multipart/alternative")),
        "{:?}",
        email.headers
    );
    assert_eq!(email.link_base, format!("{PUBLIC_URL}/reset-password"));
    assert!(
        email.text.contains(&format!(
            "{PUBLIC_URL}/reset-password?token={}",
            email.token
        )),
        "{}",
        email.text
    );
    assert_eq!(email.token.len(), 43, "{}", email.token);
    assert!(email.html.contains(&email.token), "{}", email.html);
    assert_eq!(app.emails_to(USER).len(), 1);
}

#[tokio::test]
async fn messages_are_written_as_nanos_dash_uuid_dot_eml() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    app.reset_token(USER).await;

    let names: Vec<String> = std::fs::read_dir(app.outbox_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let stem = names[0].strip_suffix(".eml").expect("an .eml file");
    let (nanos, id) = stem.split_once('-').expect("<nanos>-<uuid>");
    assert!(
        nanos.len() >= 19 && nanos.bytes().all(|b| b.is_ascii_digit()),
        "{stem}"
    );
    uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("a UUID: {stem}"));
}

#[tokio::test]
async fn the_reset_token_is_stored_only_as_its_sha256() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let user = app.user_row(USER).unwrap();

    let token = app.reset_token(USER).await;

    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM email_tokens WHERE token_hash = '{}' AND user_id = '{}' \
             AND purpose = 'reset' AND email_normalized = '{USER}' AND used_at IS NULL \
             AND expires_at > created_at",
            sha256_hex(&token),
            user.id
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM email_tokens WHERE token_hash = '{token}' \
             OR email_normalized = '{token}' OR purpose = '{token}'"
        )),
        0,
        "the raw token is not stored"
    );
}

#[tokio::test]
async fn forgot_password_matches_the_address_in_any_letter_case() {
    let app = mail_app().await;
    assert_eq!(
        app.register("Ada@Example.com", PASSWORD).await.status(),
        201
    );

    assert_null(app.forgot_password("  ada@EXAMPLE.com ").await, 202).await;

    let email = app.wait_for_email("Ada@Example.com", 1).await;
    assert_eq!(email.token.len(), 43);
    assert_null(app.reset_password(&email.token, NEW_PASSWORD).await, 200).await;
    assert_password(&app, "ada@example.com", NEW_PASSWORD, PASSWORD).await;
}

#[tokio::test]
async fn forgot_password_answers_alike_for_known_unknown_and_inactive_addresses() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    assert_eq!(
        app.register("inactive@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'inactive@example.com'");

    let unknown = fingerprint(app.forgot_password("nobody@example.com").await).await;
    let inactive = fingerprint(app.forgot_password("inactive@example.com").await).await;
    let known = fingerprint(app.forgot_password(USER).await).await;

    assert_eq!(known.0, 202);
    assert_eq!(known.2, b"null");
    assert_eq!(unknown, known, "unknown address");
    assert_eq!(inactive, known, "inactive account");
    app.wait_for_email(USER, 1).await;
    app.assert_no_email_to("nobody@example.com").await;
    app.assert_no_email_to("inactive@example.com").await;
    assert_eq!(reset_tokens_of(&app, "inactive@example.com", "TRUE"), 0);
    assert_eq!(app.count("SELECT token_hash FROM email_tokens"), 1);
}

#[tokio::test]
async fn forgot_password_rejects_a_missing_or_invalid_email_with_422() {
    let app = mail_app().await;
    for (body, what) in [
        (json!({}), "missing email"),
        (json!({"email": "not-an-email"}), "invalid email"),
        (json!({"email": 42}), "email of the wrong type"),
        (json!({"email": null}), "null email"),
    ] {
        let response = app.post_json("/auth/forgot-password", body).await;
        assert_eq!(response.status(), 422, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["body", "email"]),
            "{what}: {body}"
        );
    }
    let response = app
        .client
        .post(app.url("/auth/forgot-password"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "bad JSON");
    app.assert_no_email_to("not-an-email").await;
    assert!(app.outbox().is_empty());
}

// ---------------------------------------------------------------------------------------------
// POST /auth/reset-password: success

#[tokio::test]
async fn reset_password_sets_the_new_password() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let before = app.user_row(USER).unwrap().hashed_password;
    let token = app.reset_token(USER).await;

    assert_null(app.reset_password(&token, NEW_PASSWORD).await, 200).await;

    assert_password(&app, USER, NEW_PASSWORD, PASSWORD).await;
    let after = app.user_row(USER).unwrap().hashed_password;
    assert_ne!(after, before);
    assert!(after.starts_with("$argon2id$"), "{after}");
    assert_eq!(reset_tokens_of(&app, USER, "used_at IS NOT NULL"), 1);
}

#[tokio::test]
async fn reset_password_ends_every_earlier_session() {
    let app = mail_app().await;
    let laptop = app.user(USER).await;
    let phone = app.tokens(USER, PASSWORD).await;
    let token = app.reset_token(USER).await;

    assert_null(app.reset_password(&token, NEW_PASSWORD).await, 200).await;

    assert_ended(&app, &laptop, "the laptop's session").await;
    assert_ended(&app, &phone, "the phone's session").await;
    let user = app.user_row(USER).unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM sessions WHERE user_id = '{}' AND revoked_at IS NULL",
            user.id
        )),
        0
    );
    // A session started after the reset works.
    let fresh = app.tokens(USER, NEW_PASSWORD).await;
    assert_eq!(app.get("/users/me", &fresh.access).await.status(), 200);
}

#[tokio::test]
async fn a_reset_token_works_once() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.reset_token(USER).await;
    assert_null(app.reset_password(&token, NEW_PASSWORD).await, 200).await;

    assert_bad_token(
        app.reset_password(&token, "yet another fine passphrase")
            .await,
        "a used token",
    )
    .await;

    assert_password(&app, USER, NEW_PASSWORD, "yet another fine passphrase").await;
}

#[tokio::test]
async fn a_reset_uses_up_every_other_reset_token_of_the_user() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let first = app.reset_token(USER).await;
    let second = app.reset_token(USER).await;
    assert_ne!(first, second);
    assert_eq!(reset_tokens_of(&app, USER, "used_at IS NULL"), 2);

    assert_null(app.reset_password(&second, NEW_PASSWORD).await, 200).await;

    assert_eq!(reset_tokens_of(&app, USER, "used_at IS NULL"), 0);
    assert_bad_token(
        app.reset_password(&first, "yet another fine passphrase")
            .await,
        "an earlier token",
    )
    .await;
    assert_password(&app, USER, NEW_PASSWORD, PASSWORD).await;
}

#[tokio::test]
async fn concurrent_resets_with_one_token_succeed_exactly_once() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.reset_token(USER).await;
    let passwords = [
        "first concurrent passphrase",
        "second concurrent passphrase",
        "third concurrent passphrase",
        "fourth concurrent passphrase",
    ];

    let answers =
        futures_util::future::join_all(passwords.iter().map(|p| app.reset_password(&token, p)))
            .await;

    let mut winners = Vec::new();
    for (answer, password) in answers.into_iter().zip(passwords) {
        match answer.status().as_u16() {
            200 => winners.push(password),
            _ => assert_bad_token(answer, "the losing reset").await,
        }
    }
    assert_eq!(winners.len(), 1, "exactly one reset wins: {winners:?}");
    assert_eq!(app.login(USER, winners[0]).await.status(), 200);
    assert_detail(
        app.login(USER, PASSWORD).await,
        400,
        "LOGIN_BAD_CREDENTIALS",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// POST /auth/reset-password: refusals

#[tokio::test]
async fn reset_password_refuses_garbage_and_unknown_tokens() {
    let app = mail_app().await;
    let tokens = app.user(USER).await;
    let unknown = "A".repeat(43);
    let long = "A".repeat(5000);
    for (token, what) in [
        ("", "an empty token"),
        ("garbage", "garbage"),
        (unknown.as_str(), "a well-formed unknown token"),
        (long.as_str(), "a very long token"),
        ("../../etc/passwd'; --", "an injection attempt"),
        (tokens.refresh.as_str(), "a refresh token"),
        (tokens.access.as_str(), "an access token"),
    ] {
        assert_bad_token(app.reset_password(token, NEW_PASSWORD).await, what).await;
    }
    assert_password(&app, USER, PASSWORD, NEW_PASSWORD).await;
}

#[tokio::test]
async fn reset_password_refuses_a_verification_token() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.verify_token(USER).await;

    assert_bad_token(
        app.reset_password(&token, NEW_PASSWORD).await,
        "a verify token",
    )
    .await;

    assert_password(&app, USER, PASSWORD, NEW_PASSWORD).await;
}

#[tokio::test]
async fn reset_password_refuses_an_expired_token() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.reset_token(USER).await;
    app.execute("UPDATE email_tokens SET expires_at = 0");

    assert_bad_token(
        app.reset_password(&token, NEW_PASSWORD).await,
        "an expired token",
    )
    .await;

    assert_password(&app, USER, PASSWORD, NEW_PASSWORD).await;
}

#[tokio::test]
async fn reset_password_refuses_the_token_of_a_deactivated_user() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.reset_token(USER).await;
    app.execute(&format!(
        "UPDATE users SET is_active = FALSE WHERE email = '{USER}'"
    ));

    assert_bad_token(
        app.reset_password(&token, NEW_PASSWORD).await,
        "an inactive user",
    )
    .await;

    let row = app.user_row(USER).unwrap();
    app.execute(&format!(
        "UPDATE users SET is_active = TRUE WHERE email = '{USER}'"
    ));
    assert_password(&app, USER, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        app.user_row(USER).unwrap().hashed_password,
        row.hashed_password
    );
}

#[tokio::test]
async fn reset_password_refuses_a_token_sent_before_the_email_changed() {
    let app = mail_app().await;
    let tokens = app.user(USER).await;
    let token = app.reset_token(USER).await;
    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"email": "moved@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);

    assert_bad_token(
        app.reset_password(&token, NEW_PASSWORD).await,
        "an old address",
    )
    .await;

    assert_password(&app, "moved@example.com", PASSWORD, NEW_PASSWORD).await;
}

#[tokio::test]
async fn a_weak_password_is_refused_without_using_up_the_token() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.reset_token(USER).await;

    for weak in ["password", "short", ""] {
        let response = app.reset_password(&token, weak).await;
        assert_eq!(response.status(), 400, "{weak:?}");
        let body: Value = response.json().await.unwrap();
        let detail = body["detail"].as_object().expect("detail is an object");
        assert_eq!(keys_of(&body["detail"]), ["code", "reason"], "{body}");
        assert_eq!(detail["code"], "RESET_PASSWORD_INVALID_PASSWORD", "{body}");
        assert!(
            detail["reason"]
                .as_str()
                .is_some_and(|r| !r.trim().is_empty()),
            "{body}"
        );
    }
    assert_eq!(reset_tokens_of(&app, USER, "used_at IS NULL"), 1);
    assert_password(&app, USER, PASSWORD, NEW_PASSWORD).await;

    assert_null(app.reset_password(&token, NEW_PASSWORD).await, 200).await;
    assert_password(&app, USER, NEW_PASSWORD, PASSWORD).await;
}

#[tokio::test]
async fn reset_password_rejects_malformed_bodies_with_422() {
    let app = mail_app().await;
    for (body, field) in [
        (json!({"password": NEW_PASSWORD}), "token"),
        (json!({"token": "A".repeat(43)}), "password"),
        (json!({"token": 42, "password": NEW_PASSWORD}), "token"),
    ] {
        let response = app.post_json("/auth/reset-password", body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["body", field]),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_reset_token_is_not_an_access_token() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.reset_token(USER).await;

    crate::tokens::assert_invalid_token(app.get("/users/me", &token).await, "a reset token").await;
    assert_detail(app.refresh(&token).await, 401, "REFRESH_TOKEN_INVALID").await;

    // Neither attempt used it up.
    assert_null(app.reset_password(&token, NEW_PASSWORD).await, 200).await;
}
