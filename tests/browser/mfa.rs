//! Two-factor sign-in in a real browser: set up an authenticator app from the security page,
//! save the recovery codes, then sign in with a code from the app and with a recovery code.
//! The codes come from the tests' own TOTP, reading the setup key off the page.

use crate::app::{spawn_app, PASSWORD};
use crate::harness::Browser;
use crate::totp::{code_at, code_now, now};

const EMAIL: &str = "kit.marlowe@example.com";

async fn log_out(browser: &Browser) {
    browser.submit("form#logout-form").await;
    browser.wait_for_location("/").await;
}

async fn log_in_to_second_step(browser: &Browser) {
    browser.goto("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser.wait_for_location("/login/verify").await;
}

#[tokio::test]
async fn set_up_an_app_then_sign_in_with_its_code_and_with_a_recovery_code() {
    let app = spawn_app().await;
    app.register(EMAIL, PASSWORD).await;
    let Some(browser) = Browser::launch("mfa", &app.base_url).await else {
        return;
    };

    browser.goto("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser.wait_for_location("/account").await;
    browser.click("#security-link").await;
    browser.wait_for_location("/account/security").await;
    assert_eq!(browser.text("#totp-status").await, "Off");
    browser.screenshots("security-off").await;

    // Set up the app: the password, then the QR code and the key.
    browser.fill("#setup-password", PASSWORD).await;
    browser.submit("form#totp-setup-form").await;
    browser.wait_for_location("/account/security/totp").await;
    let qr = browser.find("#totp-qr svg").await;
    let size = qr.rectangle().await.expect("the QR code's size");
    assert!(
        size.2 >= 150.0 && size.3 >= 150.0,
        "a scannable QR code: {size:?}"
    );
    let secret: String = browser
        .text("#totp-secret")
        .await
        .split_whitespace()
        .collect();
    assert!(secret.len() >= 26, "{secret}");
    browser.screenshots("enrolment").await;

    // A wrong code first: the same page, the error beside the field.
    browser.fill("#code", "000000").await;
    browser.submit("form#totp-confirm-form").await;
    browser.wait_for_text("#code-error", "didn’t match").await;
    assert_eq!(
        browser.attr("#code", "aria-describedby").await.as_deref(),
        Some("code-error")
    );
    browser.screenshot("enrolment-wrong-code").await;
    // The browser logs the re-rendered form's 422 as an error; that one is expected.
    for message in browser.console_errors().await {
        assert!(message.contains("422"), "{message}");
    }

    // The previous step's code turns it on (the login below uses the current one).
    browser.fill("#code", &code_at(&secret, now() - 30)).await;
    browser.submit("form#totp-confirm-form").await;
    browser
        .wait_for_text("h1", "Save your recovery codes")
        .await;
    let codes = browser.texts("#recovery-code-list code").await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    browser.screenshots("recovery-codes").await;

    // The download works under the page's Content-Security-Policy.
    browser.click("#download-codes").await;
    let file = browser.downloaded("gatehouse-recovery-codes.txt").await;
    for code in &codes {
        assert!(file.contains(code.as_str()), "{code} in {file}");
    }
    browser.click("#codes-saved").await;
    browser.wait_for_location("/account/security").await;
    assert_eq!(browser.text("#totp-status").await, "On");
    assert_eq!(browser.text("#recovery-left").await, "10 of 10 left");
    browser.screenshot("security-on").await;

    // Sign in again: the password, then the app's code.
    log_out(&browser).await;
    log_in_to_second_step(&browser).await;
    assert_eq!(
        browser.attr("#code", "autocomplete").await.as_deref(),
        Some("one-time-code")
    );
    browser.screenshots("second-step").await;
    browser.fill("#code", &code_now(&secret)).await;
    browser.submit("form#verify-form").await;
    browser.wait_for_location("/account").await;
    assert_eq!(browser.text("#account-email").await, EMAIL);

    // And with a recovery code instead.
    log_out(&browser).await;
    log_in_to_second_step(&browser).await;
    browser.click("#use-recovery-code").await;
    browser
        .wait_for_location("/login/verify?method=recovery_code")
        .await;
    browser.fill("#recovery_code", &codes[0]).await;
    browser.screenshots("second-step-recovery-code").await;
    browser.submit("form#verify-form").await;
    browser.wait_for_location("/account").await;
    assert_eq!(browser.text("#account-email").await, EMAIL);
    browser.goto("/account/security").await;
    assert_eq!(browser.text("#recovery-left").await, "9 of 10 left");

    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|message| !message.contains("/favicon.ico"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;

    // The API agrees: a password alone no longer signs in.
    assert_eq!(app.api_login(EMAIL, PASSWORD).await, (400, None));
}
