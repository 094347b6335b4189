//! Two instances on one database, as behind a load balancer: what one does, the other sees.
//! With `TEST_DATABASE_URL` (as CI sets it) they share a PostgreSQL database; without it, a
//! SQLite file.

use futures_util::future::join_all;

use crate::helpers::*;

async fn two_instances(vars: &[(&str, &str)]) -> (TestApp, TestApp) {
    let a = spawn_app_with(vars).await;
    let b = a.another_instance(vars).await;
    (a, b)
}

#[tokio::test]
async fn a_user_registered_on_one_instance_logs_in_on_the_other() {
    let (a, b) = two_instances(&[]).await;
    assert_eq!(a.register("ada@example.com", PASSWORD).await.status(), 201);

    let tokens = b.tokens("ada@example.com", PASSWORD).await;
    // Access tokens verify on either instance.
    for app in [&a, &b] {
        let me = app.get("/users/me", &tokens.access).await;
        assert_eq!(me.status(), 200);
    }
}

#[tokio::test]
async fn logout_on_one_instance_revokes_the_refresh_token_on_the_other() {
    let (a, b) = two_instances(&[]).await;
    let tokens = a.user("ada@example.com").await;

    let logout = a
        .client
        .post(a.url("/auth/jwt/logout"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    assert_ended(&b, &tokens, "logged out on the other instance").await;
}

#[tokio::test]
async fn a_duplicate_email_is_refused_across_instances() {
    let (a, b) = two_instances(&[]).await;
    assert_eq!(a.register("ada@example.com", PASSWORD).await.status(), 201);

    assert_detail(
        b.register("ADA@example.com", PASSWORD).await,
        400,
        "REGISTER_USER_ALREADY_EXISTS",
    )
    .await;
    assert_eq!(a.user_count(), 1);
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_across_instances_create_one_user() {
    let (a, b) = two_instances(&[]).await;
    let attempts = (0..32).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.register("race@example.com", PASSWORD)
    });
    let statuses: Vec<u16> = join_all(attempts)
        .await
        .iter()
        .map(|response| response.status().as_u16())
        .collect();

    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        31,
        "{statuses:?}"
    );
    assert_eq!(a.user_count(), 1);
}

#[tokio::test]
async fn failed_logins_count_on_every_instance() {
    let limits = [
        ("RATE_LIMIT", "on"),
        ("RATE_LIMIT_LOGIN_PER_IP", "1000/60"),
        ("RATE_LIMIT_LOGIN_FAILURES", "3"),
    ];
    let (a, b) = two_instances(&limits).await;
    assert_eq!(a.register("ada@example.com", PASSWORD).await.status(), 201);

    for app in [&a, &b, &a] {
        let wrong = app.login("ada@example.com", "not the password").await;
        assert_detail(wrong, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    assert_detail(
        b.login("ada@example.com", PASSWORD).await,
        429,
        "TOO_MANY_REQUESTS",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_token_rotated_on_one_instance_is_reuse_on_the_other() {
    let (a, b) = two_instances(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let tokens = a.user("ada@example.com").await;
    let response = a.refresh(&tokens.refresh).await;
    assert_eq!(response.status(), 200);
    let child: serde_json::Value = response.json().await.unwrap();
    // The child reaches its client, who uses it on the other instance; a while later, the
    // rotated parent is presented again.
    let child_access = child["access_token"].as_str().unwrap();
    assert_eq!(b.get("/users/me", child_access).await.status(), 200);
    a.execute(
        "UPDATE refresh_tokens SET rotated_at = rotated_at - 60 WHERE rotated_at IS NOT NULL",
    );

    assert_detail(
        b.refresh(&tokens.refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
    assert_eq!(
        a.count("SELECT id FROM sessions WHERE revoked_at IS NOT NULL"),
        1,
        "reuse revoked the session"
    );
}
