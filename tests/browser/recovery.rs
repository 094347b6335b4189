//! Getting back in by email: forgot password → the emailed link → a new password, and
//! verifying the address from the account page.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::app::{spawn_app, TestApp, PASSWORD};
use crate::harness::Browser;

const EMAIL: &str = "jules.marlow@example.com";
const NEW_PASSWORD: &str = "seven lanterns over the harbour";

/// Where the server writes messages without `SMTP_URL`: `outbox/` beside the database.
fn outbox(app: &TestApp) -> PathBuf {
    app.db_path
        .parent()
        .expect("the database's directory")
        .join("outbox")
}

/// Waits for a message with a link to `path` (e.g. `/verify`) and returns the link's path
/// and token, to be opened on this test server (whose port the configured public URL lacks).
pub(crate) async fn emailed_link(app: &TestApp, path: &str) -> String {
    let marker = format!("{path}?token=");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(token) = tokens_in(&outbox(app), &marker).pop() {
            return format!("{marker}{token}");
        }
        assert!(Instant::now() < deadline, "no email with {marker} arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tokens after `marker` in the outbox's messages.
fn tokens_in(dir: &Path, marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".eml")
        })
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .filter_map(|raw| {
            let text = decode_quoted_printable(&String::from_utf8_lossy(&raw));
            let start = text.find(marker)? + marker.len();
            let token: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            (token.len() == 43).then_some(token)
        })
        .collect()
}

/// Quoted-printable text (RFC 2045 §6.7) decoded: soft line breaks go, `=XX` become bytes.
fn decode_quoted_printable(encoded: &str) -> String {
    let joined = encoded.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = (bytes[i] == b'=')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match byte {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[tokio::test]
async fn forgot_password_link_sets_a_new_password() {
    let app = spawn_app().await;
    app.register(EMAIL, PASSWORD).await;
    let Some(browser) = Browser::launch("recovery", &app.base_url).await else {
        return;
    };

    // From the login page to the forgot-password form.
    browser.goto("/login").await;
    browser.find("a#forgot-password-link").await;
    browser.screenshot("login-with-forgot-link").await;
    browser.click("a#forgot-password-link").await;
    browser.wait_for_location("/forgot-password").await;
    browser
        .fill("form#forgot-password-form input[name=email]", EMAIL)
        .await;
    browser.screenshot("forgot-password-filled").await;
    browser.submit("form#forgot-password-form").await;

    browser.wait_for_location("/forgot-password/sent").await;
    browser
        .wait_for_text("#check-inbox", &format!("If an account exists for {EMAIL}"))
        .await;
    browser.screenshot("reset-link-sent").await;

    // The emailed link, then two passwords that differ.
    let link = emailed_link(&app, "/reset-password").await;
    browser.goto(&link).await;
    browser.find("form#reset-password-form").await;
    browser.screenshot("reset-form").await;
    browser
        .fill(
            "form#reset-password-form input[name=new_password]",
            NEW_PASSWORD,
        )
        .await;
    browser
        .fill(
            "form#reset-password-form input[name=new_password_confirm]",
            "not the same at all",
        )
        .await;
    browser.submit("form#reset-password-form").await;
    browser
        .wait_for_text("#new_password_confirm-error", "don’t match")
        .await;
    browser.screenshot("reset-mismatch").await;

    // Then the same one twice.
    browser
        .fill(
            "form#reset-password-form input[name=new_password]",
            NEW_PASSWORD,
        )
        .await;
    browser
        .fill(
            "form#reset-password-form input[name=new_password_confirm]",
            NEW_PASSWORD,
        )
        .await;
    browser.submit("form#reset-password-form").await;
    browser.wait_for_location("/login").await;
    browser
        .wait_for_text(".flash", "Your password has been reset")
        .await;
    browser.screenshot("password-reset").await;

    // The new password opens the account.
    browser.log_in(EMAIL, NEW_PASSWORD).await;
    browser.wait_for_location("/account").await;
    assert_eq!(browser.text("#account-email").await, EMAIL);
    browser.screenshot("account-after-reset").await;

    // The link is spent, and says so as it opens, before anyone types a password.
    browser.goto(&link).await;
    assert!(browser
        .find_all("form#reset-password-form")
        .await
        .is_empty());
    browser
        .wait_for_text("#bad-link", "already been used")
        .await;
    browser
        .find(r#"#bad-link a[href="/forgot-password"]"#)
        .await;
    browser.screenshot("reset-link-spent").await;
    // The 422 and 400 answers above are logged as failed loads; anything else is a fault.
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|error| !error.contains("the server responded with a status of 4"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    browser.close().await;

    assert_eq!(app.api_login(EMAIL, PASSWORD).await.0, 400);
    app.access_token(EMAIL, NEW_PASSWORD).await;
}

#[tokio::test]
async fn account_page_sends_a_verification_link_that_verifies_the_address() {
    let app = spawn_app().await;
    app.register(EMAIL, PASSWORD).await;
    let Some(browser) = Browser::launch("verification", &app.base_url).await else {
        return;
    };

    browser.goto("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser.wait_for_location("/account").await;
    browser.find("form#verify-email-form").await;
    browser.screenshot("account-unverified").await;
    browser.submit("form#verify-email-form").await;
    browser
        .wait_for_text(".flash", "We’ve sent a verification link")
        .await;
    browser.screenshot("verification-sent").await;

    // Opening the link shows a button; only pressing it verifies.
    let link = emailed_link(&app, "/verify").await;
    browser.goto(&link).await;
    browser.find("form#verify-form").await;
    browser.screenshot("verify-page").await;
    let token = app.access_token(EMAIL, PASSWORD).await;
    assert_eq!(
        app.get_json("/users/me", &token).await.1["is_verified"],
        false
    );

    browser.submit("form#verify-form").await;
    browser.wait_for_location("/account").await;
    browser
        .wait_for_text(".flash", "Your email address is verified.")
        .await;
    browser.wait_for_text(".badge-ok", "Verified").await;
    assert!(browser.find_all("form#verify-email-form").await.is_empty());
    browser.screenshot("account-verified").await;

    // A link with no token.
    browser.goto("/verify").await;
    browser.wait_for_text("#bad-link", "invalid").await;
    browser.screenshot("verify-link-invalid").await;
    browser.close().await;

    assert_eq!(
        app.get_json("/users/me", &token).await.1["is_verified"],
        true
    );
}

#[tokio::test]
async fn change_email_through_the_link_sent_to_the_new_address() {
    const NEW_EMAIL: &str = "jules.marlow@example.org";
    let app = spawn_app().await;
    app.register(EMAIL, PASSWORD).await;
    let Some(browser) = Browser::launch("change-email", &app.base_url).await else {
        return;
    };
    browser.goto("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser.wait_for_location("/account").await;

    browser
        .fill("form#email-form input[name=new_email]", NEW_EMAIL)
        .await;
    browser
        .fill("form#email-form input[name=email_password]", PASSWORD)
        .await;
    browser.scroll_to("#change-email").await;
    browser.screenshot("email-form-filled").await;
    browser.submit("form#email-form").await;
    browser
        .wait_for_text(".flash", &format!("Check your inbox at {NEW_EMAIL}"))
        .await;
    assert_eq!(browser.text("#account-email").await, EMAIL, "not yet");

    let link = emailed_link(&app, "/account/email/confirm").await;
    browser.goto(&link).await;
    browser.screenshot("confirm-new-email").await;
    browser.submit("form#confirm-email-form").await;
    browser.wait_for_location("/account").await;
    browser
        .wait_for_text(".flash", &format!("Your email address is now {NEW_EMAIL}"))
        .await;
    assert_eq!(browser.text("#account-email").await, NEW_EMAIL);
    browser.screenshot("email-changed").await;
    browser.close().await;

    assert_eq!(app.api_login(EMAIL, PASSWORD).await.0, 400);
    app.access_token(NEW_EMAIL, PASSWORD).await;
}
