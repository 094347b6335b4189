//! Refresh tokens: rotation, lost answers given again, reuse detection and family revocation,
//! logout and password changes.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::tokens::{assert_invalid_token, claims_of, now, session_of, www_authenticate};

fn live_sessions(app: &TestApp, session_id: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM sessions WHERE id = '{session_id}' AND revoked_at IS NULL"
    ))
}

fn revoked_sessions(app: &TestApp, session_id: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM sessions WHERE id = '{session_id}' AND revoked_at IS NOT NULL"
    ))
}

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Refreshes and returns the 200 body, failing the test on anything else.
async fn refreshed(app: &TestApp, refresh_token: &str) -> Value {
    let response = app.refresh(refresh_token).await;
    assert_eq!(response.status(), 200, "refresh succeeds");
    response.json().await.unwrap()
}

async fn assert_refresh_refused(app: &TestApp, refresh_token: &str) {
    assert_detail(
        app.refresh(refresh_token).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
}

#[tokio::test]
async fn refresh_rotates_and_returns_a_working_access_token() {
    let app = spawn_app().await;
    let login = app.user("rotate@example.com").await;
    let session = session_of(&login.access);

    let body = refreshed(&app, &login.refresh).await;

    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    let access = body["access_token"].as_str().unwrap();
    let child = body["refresh_token"].as_str().unwrap();
    assert_ne!(child, login.refresh, "a new refresh token");
    assert_ne!(access, login.access, "a new access token");
    assert_eq!(session_of(access), session, "the same family");
    let me: Value = app.get("/users/me", access).await.json().await.unwrap();
    assert_eq!(me["email"], "rotate@example.com");

    // Stored as hashes: the old one is marked rotated, the child is live.
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM refresh_tokens WHERE session_id = '{session}'"
        )),
        2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM refresh_tokens \
             WHERE session_id = '{session}' AND rotated_at IS NOT NULL"
        )),
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM refresh_tokens WHERE token_hash IN ('{}', '{}')",
            login.refresh, child
        )),
        0,
        "refresh tokens are never stored in clear"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM refresh_tokens \
             WHERE token_hash = '{}' AND session_id = '{session}' AND rotated_at IS NULL",
            sha256_hex(child)
        )),
        1,
        "the live child is stored as its SHA-256"
    );

    // The child rotates in its turn.
    let grandchild = refreshed(&app, child).await;
    assert_ne!(grandchild["refresh_token"], child);
}

#[tokio::test]
async fn rotated_token_within_the_grace_window_yields_the_same_child() {
    let app = spawn_app().await;
    let login = app.user("lost-response@example.com").await;
    let session = session_of(&login.access);

    let first = refreshed(&app, &login.refresh).await;
    let again = refreshed(&app, &login.refresh).await;

    assert_eq!(again["refresh_token"], first["refresh_token"]);
    let access = again["access_token"].as_str().unwrap();
    assert_eq!(app.get("/users/me", access).await.status(), 200);
    // Nothing was revoked: the family lives on and the child still rotates.
    assert_eq!(live_sessions(&app, &session), 1);
    assert_eq!(app.get("/users/me", &login.access).await.status(), 200);
    refreshed(&app, first["refresh_token"].as_str().unwrap()).await;
}

/// A grace window of one second; times are whole seconds, so this waits until a rotation is
/// certainly older than the window.
const GRACE: [(&str, &str); 1] = [("REFRESH_REUSE_GRACE", "1")];
const PAST_THE_GRACE: Duration = Duration::from_millis(2100);

#[tokio::test]
async fn a_lost_answer_is_given_again_after_the_grace_window() {
    let app = spawn_app_with(&GRACE).await;
    let login = app.user("crashed@example.com").await;
    let session = session_of(&login.access);
    // The rotation commits, but its answer never reaches the client (the server crashed, the
    // connection dropped) ...
    let lost = refreshed(&app, &login.refresh).await;

    // ... which retries with the token it still has, long after the grace window.
    tokio::time::sleep(PAST_THE_GRACE).await;
    let retry = refreshed(&app, &login.refresh).await;

    assert_eq!(
        retry["refresh_token"], lost["refresh_token"],
        "the same child"
    );
    let access = retry["access_token"].as_str().unwrap();
    assert_eq!(app.get("/users/me", access).await.status(), 200);
    assert_eq!(live_sessions(&app, &session), 1, "the session lives on");
    assert_eq!(app.get("/users/me", &login.access).await.status(), 200);
    // The chain goes on from the child.
    let child = retry["refresh_token"].as_str().unwrap();
    let grandchild = refreshed(&app, child).await;
    let access = grandchild["access_token"].as_str().unwrap();
    assert_eq!(app.get("/users/me", access).await.status(), 200);
    assert_eq!(live_sessions(&app, &session), 1);
}

/// Presenting `parent` again, after the grace window, once its child has been used: reuse.
async fn assert_replay_revokes_the_family(app: &TestApp, parent: &Tokens, child: &Tokens) {
    let session = session_of(&parent.access);
    tokio::time::sleep(PAST_THE_GRACE).await;
    assert_refresh_refused(app, &parent.refresh).await;

    assert_eq!(
        revoked_sessions(app, &session),
        1,
        "sessions.revoked_at is set"
    );
    assert_refresh_refused(app, &child.refresh).await;
    assert_invalid_token(app.get("/users/me", &child.access).await, "child access").await;
    assert_invalid_token(app.get("/users/me", &parent.access).await, "first access").await;
}

fn tokens_of(body: &Value) -> Tokens {
    Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn replaying_a_token_whose_child_was_rotated_revokes_the_family() {
    let app = spawn_app_with(&GRACE).await;
    let login = app.user("stolen@example.com").await;
    let child = tokens_of(&refreshed(&app, &login.refresh).await);
    let grandchild = tokens_of(&refreshed(&app, &child.refresh).await);
    assert_eq!(app.get("/users/me", &grandchild.access).await.status(), 200);

    assert_replay_revokes_the_family(&app, &login, &grandchild).await;
    // The user can still log in again.
    let fresh = app.tokens("stolen@example.com", PASSWORD).await;
    assert_eq!(app.get("/users/me", &fresh.access).await.status(), 200);
}

#[tokio::test]
async fn replaying_a_token_whose_child_authenticated_a_request_revokes_the_family() {
    let app = spawn_app_with(&GRACE).await;
    let login = app.user("copied@example.com").await;
    let child = tokens_of(&refreshed(&app, &login.refresh).await);
    // The child reached its client: its access token has been used, though the child itself
    // has not been rotated yet.
    assert_eq!(app.get("/users/me", &child.access).await.status(), 200);

    assert_replay_revokes_the_family(&app, &login, &child).await;
}

#[tokio::test]
async fn a_child_used_at_once_does_not_make_a_racing_refresh_reuse() {
    let app = spawn_app().await;
    let login = app.user("two-tabs@example.com").await;
    let session = session_of(&login.access);
    // One tab refreshes and uses its new access token at once; another tab's refresh of the
    // same token arrives a moment later, within the grace window.
    let first = tokens_of(&refreshed(&app, &login.refresh).await);
    assert_eq!(app.get("/users/me", &first.access).await.status(), 200);
    let second = tokens_of(&refreshed(&app, &login.refresh).await);

    assert_eq!(second.refresh, first.refresh);
    assert_eq!(app.get("/users/me", &second.access).await.status(), 200);
    assert_eq!(live_sessions(&app, &session), 1);
}

#[tokio::test]
async fn the_first_request_an_access_token_authenticates_marks_its_refresh_token_in_use() {
    let app = spawn_app().await;
    let login = app.user("marked@example.com").await;
    let session = session_of(&login.access);
    let in_use = |generation: i64| {
        app.count(&format!(
            "SELECT token_hash FROM refresh_tokens WHERE session_id = '{session}' \
             AND generation = {generation} AND access_used_at IS NOT NULL"
        ))
    };
    assert_eq!(claims_of(&login.access)["rgen"], 0);
    assert_eq!(in_use(0), 0, "not before the access token is used");
    assert_eq!(app.get("/users/me", &login.access).await.status(), 200);
    assert_eq!(in_use(0), 1);

    let child = tokens_of(&refreshed(&app, &login.refresh).await);
    assert_eq!(claims_of(&child.access)["rgen"], 1);
    assert_eq!(in_use(1), 0, "a refresh is not a use of the child");
    // The older access token is still valid, and says nothing about the child.
    assert_eq!(app.get("/users/me", &login.access).await.status(), 200);
    assert_eq!(in_use(1), 0);
    assert_eq!(app.get("/users/me", &child.access).await.status(), 200);
    assert_eq!(app.get("/users/me", &child.access).await.status(), 200);
    assert_eq!(in_use(1), 1);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_share_one_child() {
    let app = spawn_app().await;
    let login = app.user("racer@example.com").await;
    let session = session_of(&login.access);

    let responses = join_all((0..8).map(|_| app.refresh(&login.refresh))).await;

    let mut children = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        children.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert!(
        children.iter().all(|child| *child == children[0]),
        "one child for all: {children:?}"
    );
    assert_ne!(children[0], login.refresh);
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM refresh_tokens WHERE session_id = '{session}'"
        )),
        2
    );
    assert_eq!(live_sessions(&app, &session), 1);
    refreshed(&app, &children[0]).await;
}

#[tokio::test]
async fn garbage_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    let login = app.user("garbage@example.com").await;
    let mut altered = login.refresh.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });

    for token in [
        String::new(),
        "garbage".to_owned(),
        "x".repeat(10_000),
        "' OR 1=1 --".to_owned(),
        "żółć".to_owned(),
        altered,
        login.access.clone(),
    ] {
        assert_refresh_refused(&app, &token).await;
    }
    // The genuine token is untouched by the attempts above.
    refreshed(&app, &login.refresh).await;
}

#[tokio::test]
async fn malformed_refresh_bodies_are_422() {
    let app = spawn_app().await;

    for body in [
        "{}",
        r#"{"refresh_token": 123}"#,
        r#"{"refresh_token": null}"#,
        r#"{"refresh_token": ["a"]}"#,
        r#"{"refresh_token": "#,
        "[]",
        "",
    ] {
        let response = app
            .client
            .post(app.url("/auth/jwt/refresh"))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "body {body:?}");
        let json: Value = response.json().await.unwrap();
        let detail = json["detail"].as_array().expect("a list of problems");
        assert!(!detail.is_empty(), "body {body:?}");
        assert!(detail
            .iter()
            .all(|d| d["msg"].is_string() && d["type"].is_string()));
        if body == "{}" {
            assert_eq!(detail[0]["loc"], json!(["body", "refresh_token"]));
        }
    }
}

#[tokio::test]
async fn expired_refresh_token_is_refused() {
    let app = spawn_app().await;
    let login = app.user("expired-refresh@example.com").await;
    let session = session_of(&login.access);

    app.execute(&format!(
        "UPDATE refresh_tokens SET expires_at = {} WHERE session_id = '{session}'",
        now() - 60
    ));

    assert_refresh_refused(&app, &login.refresh).await;
}

#[tokio::test]
async fn logout_revokes_the_session() {
    let app = spawn_app().await;
    let login = app.user("leaving@example.com").await;
    let other = app.tokens("leaving@example.com", PASSWORD).await;
    let session = session_of(&login.access);

    let response = app
        .client
        .post(app.url("/auth/jwt/logout"))
        .bearer_auth(&login.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    assert_eq!(
        revoked_sessions(&app, &session),
        1,
        "sessions.revoked_at is set"
    );
    assert_invalid_token(app.get("/users/me", &login.access).await, "logged-out").await;
    assert_refresh_refused(&app, &login.refresh).await;
    // Another device's session is not this session.
    assert_eq!(app.get("/users/me", &other.access).await.status(), 200);
    refreshed(&app, &other.refresh).await;
}

#[tokio::test]
async fn logout_needs_a_valid_token() {
    let app = spawn_app().await;
    let login = app.user("twice@example.com").await;
    let logout = |token: Option<&str>| {
        let request = app.client.post(app.url("/auth/jwt/logout"));
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send()
    };

    let response = logout(None).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(www_authenticate(&response).starts_with("Bearer"));
    assert_detail(response, 401, "Unauthorized").await;

    assert_eq!(logout(Some(&login.access)).await.unwrap().status(), 204);
    let again = logout(Some(&login.access)).await.unwrap();
    assert_invalid_token(again, "second logout").await;
}

#[tokio::test]
async fn password_change_revokes_older_tokens() {
    let app = spawn_app().await;
    let email = "changer@example.com";
    let first = app.user(email).await;
    let second = app.tokens(email, PASSWORD).await;
    let new_password = "an entirely different passphrase 42";

    let response = app
        .patch(
            "/users/me",
            &first.access,
            json!({"password": new_password, "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);

    for (what, tokens) in [("first session", &first), ("second session", &second)] {
        assert_invalid_token(app.get("/users/me", &tokens.access).await, what).await;
        assert_refresh_refused(&app, &tokens.refresh).await;
    }
    let user = app.user_row(email).unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM sessions WHERE user_id = '{}' AND revoked_at IS NULL",
            user.id
        )),
        0,
        "every session is revoked"
    );
    assert_detail(
        app.login(email, PASSWORD).await,
        400,
        "LOGIN_BAD_CREDENTIALS",
    )
    .await;
    let fresh = app.tokens(email, new_password).await;
    assert_eq!(app.get("/users/me", &fresh.access).await.status(), 200);
    refreshed(&app, &fresh.refresh).await;
}

#[tokio::test]
async fn deactivated_user_cannot_refresh() {
    let app = spawn_app().await;
    let login = app.user("benched@example.com").await;

    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'benched@example.com'");

    assert_refresh_refused(&app, &login.refresh).await;
}

/// Finding 6: refreshing every second kept a session alive forever, each rotation pushing its
/// expiry. `SESSION_MAX_LIFETIME` caps a session from its login whatever the refreshes; the
/// refresh TTL stays the idle timeout.
#[tokio::test]
async fn no_refresh_extends_a_session_past_its_absolute_lifetime() {
    let app = spawn_app_with(&[("SESSION_MAX_LIFETIME", "4"), ("REFRESH_TOKEN_TTL", "600")]).await;
    let login = app.user("forever@example.com").await;
    let session = session_of(&login.access);
    let created: i64 = app.count(&format!(
        "SELECT id FROM sessions WHERE id = '{session}' AND expires_at <= created_at + 4"
    ));
    assert_eq!(created, 1, "a new session expires within its lifetime");

    let started = std::time::Instant::now();
    let mut refresh = login.refresh;
    // Stamps are whole seconds: the lifetime ends between 3 and 4 s from now.
    while started.elapsed() < Duration::from_millis(2000) {
        let body = refreshed(&app, &refresh).await;
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.count(&format!(
                "SELECT id FROM sessions WHERE id = '{session}' AND expires_at <= created_at + 4"
            )),
            1,
            "a rotation never moves the expiry past the lifetime"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(4100).saturating_sub(started.elapsed())).await;

    assert_refresh_refused(&app, &refresh).await;
}
