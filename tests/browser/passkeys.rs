//! Passkeys in a real browser, with Chromium's virtual authenticator: add one from the security
//! page (its recovery codes shown once), sign in with it alone from the login page, then use it
//! as the second step after the password.

use crate::app::{spawn_app, PASSWORD};
use crate::harness::Browser;

const EMAIL: &str = "grace.hopper@example.com";
const NAME: &str = "Work laptop";

async fn log_out(browser: &Browser) {
    browser.submit("form#logout-form").await;
    browser.wait_for_location("/").await;
}

#[tokio::test]
async fn add_a_passkey_then_sign_in_with_it_alone_and_as_second_step() {
    let app = spawn_app().await;
    let Some(browser) = Browser::launch("passkeys", &app.base_url).await else {
        return;
    };
    let authenticator = browser.add_virtual_authenticator().await;

    // Sign up, then the security page: no passkey yet.
    browser.goto("/signup").await;
    browser
        .fill("form#signup-form input[name=email]", EMAIL)
        .await;
    browser
        .fill("form#signup-form input[name=password]", PASSWORD)
        .await;
    browser
        .fill("form#signup-form input[name=password_confirm]", PASSWORD)
        .await;
    browser.submit("form#signup-form").await;
    browser.wait_for_location("/account").await;
    browser.click("#security-link").await;
    browser.wait_for_location("/account/security").await;
    browser.find("#passkeys-empty").await;
    browser.screenshots("security-no-passkey").await;

    // Add one: the script un-hid its form; the first factor's recovery codes are shown once.
    browser.fill("#passkey-name", NAME).await;
    browser.click("button[data-passkey=register]").await;
    browser
        .wait_for_text("#passkey-recovery-codes", "Save your recovery codes")
        .await;
    let codes = browser.texts("#passkey-recovery-codes ol li code").await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    let focused = browser
        .client()
        .execute("return document.activeElement.id;", Vec::new())
        .await
        .expect("the focused element");
    assert_eq!(
        focused, "passkey-recovery-codes",
        "the codes take the focus"
    );
    assert!(browser
        .find_all("#passkey-add-form:not([hidden])")
        .await
        .is_empty());
    assert!(browser
        .find_all("#passkeys-empty:not([hidden])")
        .await
        .is_empty());
    browser
        .screenshots_at("passkey-recovery-codes", "#passkeys")
        .await;
    let held = browser.authenticator_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost", "{held:?}");

    // Listed, and two-factor is on.
    browser.click("#passkey-codes-saved").await;
    browser.wait_for_location("/account/security").await;
    browser.wait_for_text(".passkey-name", NAME).await;
    browser.wait_for_text("#mfa-summary", "on").await;
    assert_eq!(browser.text("#recovery-left").await, "10 of 10 left");
    browser
        .screenshots_at("security-with-passkey", "#passkeys")
        .await;
    browser.click(".passkey-manage summary").await;
    browser.find(".passkey-rename-form input[name=name]").await;
    browser
        .screenshots_at("security-passkey-manage", "#passkeys")
        .await;

    // Sign out; sign in with the passkey alone, no email or password.
    log_out(&browser).await;
    browser.goto("/login").await;
    browser.find("form#passkey-signin-form:not([hidden])").await;
    browser.screenshots("login").await;
    browser.click("button[data-passkey=signin]").await;
    browser.wait_for_location("/account").await;
    assert_eq!(browser.text("#account-email").await, EMAIL);

    // Sign out; the password, then the passkey as the second step.
    log_out(&browser).await;
    browser.goto("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser.wait_for_location("/login/verify").await;
    // A passkey is offered first, a recovery code one link away.
    browser
        .find("button[data-passkey=second-factor]:not([hidden])")
        .await;
    browser.find("#use-recovery-code").await;
    assert!(browser.find_all("#recovery_code").await.is_empty());
    browser.screenshots("second-step-passkey").await;
    browser.click("button[data-passkey=second-factor]").await;
    browser.wait_for_location("/account").await;
    assert_eq!(browser.text("#account-email").await, EMAIL);

    // The security page says when it was last used.
    browser.goto("/account/security").await;
    browser.wait_for_text("#passkey-list", "last used").await;

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
