//! The email outbox: a message is a row of the database, written with the token it carries;
//! workers deliver it by SMTP with retries, never twice, and a restart loses nothing. A message
//! that fails every attempt stays, marked failed, and `/metrics` counts it.

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::helpers::*;
use crate::metrics::{scrape, value};

const NEW_PASSWORD: &str = "another horse battery staple";

/// Waits (up to 15 s) until `sql` selects at least `n` rows.
async fn wait_for_rows(app: &TestApp, what: &str, sql: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.count(sql) < n {
        assert!(Instant::now() < deadline, "waited for {what}: {sql}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reset_email_queued_while_smtp_is_down_arrives_after_a_restart() {
    // Nothing listens on the mail server's port yet.
    let port = unused_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let vars = [
        ("PUBLIC_URL", PUBLIC_URL),
        ("SMTP_URL", smtp_url.as_str()),
        ("EMAIL_RETRY_DELAYS", "1,1,1,1"),
    ];
    let mut app = spawn_app_with(&vars).await;
    app.user("ada@example.com").await;

    assert_null(app.forgot_password("ada@example.com").await, 202).await;
    wait_for_rows(
        &app,
        "a failed first attempt",
        "SELECT id FROM email_outbox WHERE status = 'pending' AND last_error IS NOT NULL",
        1,
    )
    .await;
    app.stop().await;
    assert_eq!(
        app.count(
            "SELECT id FROM email_outbox WHERE recipient = 'ada@example.com' \
             AND subject = 'Reset your Gatehouse password' AND status = 'pending' \
             AND message IS NOT NULL AND sent_at IS NULL"
        ),
        1,
        "the message waits in the outbox"
    );
    assert_eq!(app.count("SELECT token_hash FROM email_tokens"), 1);
    assert!(app.outbox().is_empty(), "with SMTP, no .eml file");

    // The mail server comes back, and the service starts again on the same database.
    let sink = SmtpSink::start_on(port).await;
    let restarted = app.another_instance(&vars).await;
    let email = sink.wait_for_email("ada@example.com", 1).await;
    assert_eq!(
        email.header("subject"),
        Some("Reset your Gatehouse password")
    );
    assert_eq!(email.link_base, format!("{PUBLIC_URL}/reset-password"));
    assert_eq!(sink.received()[0].mail_from, "gatehouse@localhost");

    assert_null(
        restarted.reset_password(&email.token, NEW_PASSWORD).await,
        200,
    )
    .await;
    restarted.tokens("ada@example.com", NEW_PASSWORD).await;
    wait_for_rows(
        &restarted,
        "the sent mark",
        "SELECT id FROM email_outbox WHERE status = 'sent' AND message IS NULL",
        1,
    )
    .await;
    assert_eq!(sink.received().len(), 1, "delivered once");
}

#[tokio::test]
async fn two_instances_deliver_each_message_exactly_once() {
    let sink = SmtpSink::start().await;
    let smtp_url = sink.url();
    let vars = [("PUBLIC_URL", PUBLIC_URL), ("SMTP_URL", smtp_url.as_str())];
    let a = spawn_app_with(&vars).await;
    let b = a.another_instance(&vars).await;
    let users: Vec<String> = (0..16).map(|n| format!("user{n}@example.com")).collect();
    for user in &users {
        assert_eq!(a.register(user, PASSWORD).await.status(), 201);
    }

    // At once, half on each instance: both workers claim from the one outbox.
    let requests = users.iter().enumerate().map(|(n, user)| {
        let app = if n % 2 == 0 { &a } else { &b };
        app.forgot_password(user)
    });
    for response in join_all(requests).await {
        assert_null(response, 202).await;
    }

    sink.wait_for_count(users.len(), Duration::from_secs(15))
        .await;
    wait_for_rows(
        &a,
        "every sent mark",
        "SELECT id FROM email_outbox WHERE status = 'sent'",
        users.len() as i64,
    )
    .await;
    // Time for a duplicate to show up, if a message were claimed twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), users.len());
    for user in &users {
        assert_eq!(sink.emails_to(user).len(), 1, "{user}");
    }
}

#[tokio::test]
async fn a_message_that_fails_every_attempt_is_kept_as_failed_and_counted() {
    let smtp_url = format!("smtp://127.0.0.1:{}", unused_port());
    let app = spawn_mail_app_with(&[
        ("SMTP_URL", smtp_url.as_str()),
        ("EMAIL_RETRY_DELAYS", "0,0"),
    ])
    .await;
    app.user("ada@example.com").await;

    assert_null(app.forgot_password("ada@example.com").await, 202).await;
    wait_for_rows(
        &app,
        "the give-up",
        "SELECT id FROM email_outbox WHERE status = 'failed'",
        1,
    )
    .await;
    assert_eq!(
        app.count(
            "SELECT id FROM email_outbox WHERE recipient = 'ada@example.com' \
             AND status = 'failed' AND attempts = 3 AND last_error IS NOT NULL \
             AND failed_at IS NOT NULL AND message IS NULL"
        ),
        1,
        "kept with its attempts and last error; its link erased"
    );

    let samples = scrape(&app, None).await;
    assert_eq!(value(&samples, "gatehouse_email_outbox_failed", &[]), 1.0);
    assert_eq!(value(&samples, "gatehouse_email_outbox_pending", &[]), 0.0);
    assert_eq!(
        value(
            &samples,
            "gatehouse_email_outbox_oldest_pending_age_seconds",
            &[]
        ),
        0.0
    );
}

#[tokio::test]
async fn metrics_show_the_queue_depth_and_the_age_of_the_oldest_message() {
    let smtp_url = format!("smtp://127.0.0.1:{}", unused_port());
    let app = spawn_mail_app_with(&[("SMTP_URL", smtp_url.as_str())]).await;
    let samples = scrape(&app, None).await;
    assert_eq!(value(&samples, "gatehouse_email_outbox_pending", &[]), 0.0);

    for user in ["ada@example.com", "bob@example.com"] {
        app.user(user).await;
        assert_null(app.forgot_password(user).await, 202).await;
    }
    wait_for_rows(
        &app,
        "both messages",
        "SELECT id FROM email_outbox WHERE status = 'pending'",
        2,
    )
    .await;
    // The first has waited two minutes (its retries are 5 s, 30 s, … apart).
    app.execute(
        "UPDATE email_outbox SET created_at = created_at - 120 \
         WHERE recipient = 'ada@example.com'",
    );

    let samples = scrape(&app, None).await;
    assert_eq!(value(&samples, "gatehouse_email_outbox_pending", &[]), 2.0);
    assert_eq!(value(&samples, "gatehouse_email_outbox_failed", &[]), 0.0);
    let age = value(
        &samples,
        "gatehouse_email_outbox_oldest_pending_age_seconds",
        &[],
    );
    assert!((120.0..180.0).contains(&age), "{age}");
}

#[tokio::test]
async fn a_token_is_stored_only_with_its_message() {
    let app = spawn_mail_app_with(&[]).await;
    app.user("ada@example.com").await;
    // An outbox that refuses the message: the transaction that stores the token fails too.
    app.execute("ALTER TABLE email_outbox RENAME TO email_outbox_away");

    assert_null(app.forgot_password("ada@example.com").await, 202).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.count("SELECT token_hash FROM email_tokens"), 0);
    app.assert_no_email_to("ada@example.com").await;

    app.execute("ALTER TABLE email_outbox_away RENAME TO email_outbox");
    let token = app.reset_token("ada@example.com").await;
    assert_null(app.reset_password(&token, NEW_PASSWORD).await, 200).await;
    assert_eq!(app.count("SELECT token_hash FROM email_tokens"), 1);
}
