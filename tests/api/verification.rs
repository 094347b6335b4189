//! Address verification: `POST /auth/request-verify-token` emails a link, `POST /auth/verify`
//! redeems it; with `REQUIRE_VERIFICATION=true`, signup sends the link and unverified users
//! cannot log in.

use serde_json::{json, Value};

use crate::helpers::*;

const USER: &str = "user@example.com";
const ADMIN: &str = "admin@example.com";

async fn mail_app() -> TestApp {
    spawn_mail_app_with(&[]).await
}

async fn strict_app() -> TestApp {
    spawn_mail_app_with(&[("REQUIRE_VERIFICATION", "true")]).await
}

fn is_verified(app: &TestApp, email: &str) -> bool {
    app.user_row(email).unwrap().is_verified
}

fn verify_tokens_of(app: &TestApp, email: &str, condition: &str) -> i64 {
    let id = app.user_id(email);
    app.count(&format!(
        "SELECT token_hash FROM email_tokens WHERE user_id = '{id}' AND purpose = 'verify' \
         AND {condition}"
    ))
}

// ---------------------------------------------------------------------------------------------
// POST /auth/request-verify-token

#[tokio::test]
async fn request_verify_token_emails_a_confirmation_link() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    assert_null(app.request_verify_token(USER).await, 202).await;

    let email = app.wait_for_email(USER, 1).await;
    assert_eq!(email.header("subject"), Some("Confirm your email address"));
    assert_eq!(email.link_base, format!("{PUBLIC_URL}/verify"));
    assert_eq!(email.token.len(), 43, "{}", email.token);
    assert!(email.html.contains(&email.token), "{}", email.html);
    assert_eq!(
        verify_tokens_of(
            &app,
            USER,
            &format!(
                "token_hash = '{}' AND used_at IS NULL",
                sha256_hex(&email.token)
            )
        ),
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM email_tokens WHERE token_hash = '{}'",
            email.token
        )),
        0,
        "the raw token is not stored"
    );
    assert!(!is_verified(&app, USER));
}

#[tokio::test]
async fn request_verify_token_answers_alike_for_every_address() {
    let app = mail_app().await;
    for email in [USER, "verified@example.com", "inactive@example.com"] {
        assert_eq!(app.register(email, PASSWORD).await.status(), 201);
    }
    app.execute("UPDATE users SET is_verified = TRUE WHERE email = 'verified@example.com'");
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'inactive@example.com'");

    for email in [
        "nobody@example.com",
        "verified@example.com",
        "inactive@example.com",
    ] {
        assert_null(app.request_verify_token(email).await, 202).await;
    }
    assert_null(app.request_verify_token(USER).await, 202).await;

    app.wait_for_email(USER, 1).await;
    for email in [
        "nobody@example.com",
        "verified@example.com",
        "inactive@example.com",
    ] {
        app.assert_no_email_to(email).await;
    }
    assert_eq!(app.count("SELECT token_hash FROM email_tokens"), 1);
}

#[tokio::test]
async fn request_verify_token_rejects_a_missing_or_invalid_email_with_422() {
    let app = mail_app().await;
    for body in [
        json!({}),
        json!({"email": "nope"}),
        json!({"email": ["a@b.c"]}),
    ] {
        let response = app
            .post_json("/auth/request-verify-token", body.clone())
            .await;
        assert_eq!(response.status(), 422, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["body", "email"]),
            "{answer}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// POST /auth/verify

#[tokio::test]
async fn verify_marks_the_account_verified() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let id = app.user_id(USER);
    let token = app.verify_token(USER).await;

    let response = app.verify(&token).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "id": id,
            "email": USER,
            "is_active": true,
            "is_superuser": false,
            "is_verified": true,
        })
    );
    assert!(is_verified(&app, USER));
    assert_eq!(verify_tokens_of(&app, USER, "used_at IS NULL"), 0);
}

#[tokio::test]
async fn the_same_token_again_says_already_verified() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.verify_token(USER).await;
    assert_eq!(app.verify(&token).await.status(), 200);

    assert_detail(
        app.verify(&token).await,
        400,
        "VERIFY_USER_ALREADY_VERIFIED",
    )
    .await;

    assert!(is_verified(&app, USER));
}

#[tokio::test]
async fn concurrent_verifications_with_one_token_succeed_exactly_once() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.verify_token(USER).await;

    let answers = futures_util::future::join_all((0..4).map(|_| app.verify(&token))).await;

    let mut succeeded = 0;
    for answer in answers {
        if answer.status() == 200 {
            succeeded += 1;
        } else {
            assert_detail(answer, 400, "VERIFY_USER_ALREADY_VERIFIED").await;
        }
    }
    assert_eq!(succeeded, 1);
    assert_eq!(
        app.count("SELECT id FROM audit_events WHERE event = 'email_verified'"),
        1
    );
}

#[tokio::test]
async fn an_earlier_token_after_verification_says_already_verified() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let first = app.verify_token(USER).await;
    let second = app.verify_token(USER).await;
    assert_eq!(app.verify(&second).await.status(), 200);

    assert_detail(
        app.verify(&first).await,
        400,
        "VERIFY_USER_ALREADY_VERIFIED",
    )
    .await;
}

#[tokio::test]
async fn a_token_after_a_superuser_verified_the_account_says_already_verified() {
    let app = mail_app().await;
    let admin = app.superuser(ADMIN).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let id = app.user_id(USER);
    let token = app.verify_token(USER).await;
    let response = app
        .patch(
            &format!("/users/{id}"),
            &admin.access,
            json!({"is_verified": true}),
        )
        .await;
    assert_eq!(response.status(), 200);

    assert_detail(
        app.verify(&token).await,
        400,
        "VERIFY_USER_ALREADY_VERIFIED",
    )
    .await;
}

#[tokio::test]
async fn verify_refuses_garbage_unknown_and_reset_tokens() {
    let app = mail_app().await;
    let tokens = app.user(USER).await;
    let reset = app.reset_token(USER).await;
    let unknown = "B".repeat(43);
    let long = "B".repeat(5000);
    for (token, what) in [
        ("", "an empty token"),
        ("garbage", "garbage"),
        (unknown.as_str(), "a well-formed unknown token"),
        (long.as_str(), "a very long token"),
        (reset.as_str(), "a reset token"),
        (tokens.refresh.as_str(), "a refresh token"),
        (tokens.access.as_str(), "an access token"),
    ] {
        let response = app.verify(token).await;
        assert_eq!(response.status(), 400, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"detail": "VERIFY_USER_BAD_TOKEN"}), "{what}");
    }
    assert!(!is_verified(&app, USER));
}

#[tokio::test]
async fn verify_refuses_an_expired_token() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.verify_token(USER).await;
    app.execute("UPDATE email_tokens SET expires_at = 0");

    assert_detail(app.verify(&token).await, 400, "VERIFY_USER_BAD_TOKEN").await;

    assert!(!is_verified(&app, USER));
}

#[tokio::test]
async fn verify_refuses_the_token_of_a_deactivated_user() {
    let app = mail_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.verify_token(USER).await;
    app.execute(&format!(
        "UPDATE users SET is_active = FALSE WHERE email = '{USER}'"
    ));

    assert_detail(app.verify(&token).await, 400, "VERIFY_USER_BAD_TOKEN").await;

    assert!(!is_verified(&app, USER));
}

#[tokio::test]
async fn changing_the_email_invalidates_earlier_verify_and_reset_tokens() {
    let app = mail_app().await;
    let tokens = app.user(USER).await;
    let verify = app.verify_token(USER).await;
    let reset = app.reset_token(USER).await;

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"email": "moved@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);

    assert_detail(app.verify(&verify).await, 400, "VERIFY_USER_BAD_TOKEN").await;
    assert_detail(
        app.reset_password(&reset, "a brand new passphrase").await,
        400,
        "RESET_PASSWORD_BAD_TOKEN",
    )
    .await;
    assert!(!is_verified(&app, "moved@example.com"));
    // The new address gets a link of its own, which works.
    let fresh = app.verify_token("moved@example.com").await;
    assert_eq!(app.verify(&fresh).await.status(), 200);
    assert!(is_verified(&app, "moved@example.com"));
}

#[tokio::test]
async fn tokens_stay_dead_when_the_email_changes_back() {
    let app = mail_app().await;
    let tokens = app.user(USER).await;
    let verify = app.verify_token(USER).await;
    let reset = app.reset_token(USER).await;

    for email in ["moved@example.com", USER] {
        let response = app
            .patch(
                "/users/me",
                &tokens.access,
                json!({"email": email, "current_password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 200, "{email}");
    }

    assert_detail(app.verify(&verify).await, 400, "VERIFY_USER_BAD_TOKEN").await;
    assert_detail(
        app.reset_password(&reset, "a brand new passphrase").await,
        400,
        "RESET_PASSWORD_BAD_TOKEN",
    )
    .await;
}

#[tokio::test]
async fn changing_the_email_of_a_verified_account_makes_it_unverified_and_a_new_link_works() {
    let app = mail_app().await;
    let tokens = app.user(USER).await;
    let token = app.verify_token(USER).await;
    assert_eq!(app.verify(&token).await.status(), 200);

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"email": "moved@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(!is_verified(&app, "moved@example.com"));

    assert_detail(app.verify(&token).await, 400, "VERIFY_USER_BAD_TOKEN").await;
    let fresh = app.verify_token("moved@example.com").await;
    assert_eq!(app.verify(&fresh).await.status(), 200);
}

#[tokio::test]
async fn verify_rejects_a_missing_token_with_422() {
    let app = mail_app().await;
    let response = app.post_json("/auth/verify", json!({})).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "token"]), "{body}");
}

// ---------------------------------------------------------------------------------------------
// REQUIRE_VERIFICATION

#[tokio::test]
async fn by_default_register_sends_no_email_and_unverified_users_log_in() {
    let app = mail_app().await;

    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    assert_eq!(app.login(USER, PASSWORD).await.status(), 200);
    assert!(!is_verified(&app, USER));
    app.assert_no_email_to(USER).await;
    assert_eq!(app.count("SELECT token_hash FROM email_tokens"), 0);
}

#[tokio::test]
async fn with_required_verification_register_sends_the_verification_email() {
    let app = strict_app().await;

    let response = app.register(USER, PASSWORD).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["is_verified"], false);
    let email = app.wait_for_email(USER, 1).await;
    assert_eq!(email.header("subject"), Some("Confirm your email address"));
    assert_eq!(email.link_base, format!("{PUBLIC_URL}/verify"));
    assert_eq!(verify_tokens_of(&app, USER, "used_at IS NULL"), 1);
}

#[tokio::test]
async fn with_required_verification_an_unverified_user_cannot_log_in() {
    let app = strict_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    assert_detail(
        app.login(USER, PASSWORD).await,
        400,
        "LOGIN_USER_NOT_VERIFIED",
    )
    .await;
    assert_detail(
        app.login(USER, "not the password at all").await,
        400,
        "LOGIN_BAD_CREDENTIALS",
    )
    .await;
    assert_oauth_error(
        app.token_request(&[
            ("grant_type", "password"),
            ("username", USER),
            ("password", PASSWORD),
        ])
        .await,
        400,
        "invalid_grant",
        "the token endpoint",
    )
    .await;
    let cookie = app
        .client
        .post(app.url("/auth/cookie/login"))
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_detail(cookie, 400, "LOGIN_USER_NOT_VERIFIED").await;
    assert_eq!(app.count("SELECT id FROM sessions"), 0);
}

#[tokio::test]
async fn with_required_verification_a_verified_user_logs_in() {
    let app = strict_app().await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.wait_for_email(USER, 1).await.token;

    assert_eq!(app.verify(&token).await.status(), 200);

    let tokens = app.tokens(USER, PASSWORD).await;
    assert_eq!(app.get("/users/me", &tokens.access).await.status(), 200);
    let response = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", USER),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(response.status(), 200);
}
