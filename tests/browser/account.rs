//! A person's own account: sign up, log out, log in, change the password.

use crate::app::{spawn_app, PASSWORD};
use crate::harness::Browser;

const EMAIL: &str = "robin.ashdown@example.com";
const NEW_PASSWORD: &str = "purple elephants dance at midnight";

async fn log_out(browser: &Browser) {
    browser.submit("form#logout-form").await;
    browser.wait_for_location("/").await;
    browser.find(".flash").await;
}

#[tokio::test]
async fn signup_logout_failed_login_login_change_password() {
    let app = spawn_app().await;
    let Some(browser) = Browser::launch("account", &app.base_url).await else {
        return;
    };

    // Sign up from the home page.
    browser.goto("/").await;
    browser.find(r#"a[href="/login"]"#).await;
    browser.screenshot("home-anonymous").await;
    browser.click(r#"a[href="/signup"]"#).await;
    browser.wait_for_location("/signup").await;
    browser
        .fill("form#signup-form input[name=email]", EMAIL)
        .await;
    browser
        .fill("form#signup-form input[name=password]", PASSWORD)
        .await;
    browser
        .fill("form#signup-form input[name=password_confirm]", PASSWORD)
        .await;
    browser.screenshot("signup-filled").await;
    browser.submit("form#signup-form").await;

    browser.wait_for_location("/account").await;
    assert_eq!(browser.text("#account-email").await, EMAIL);
    browser.wait_for_text(".flash", "Welcome").await;
    browser.screenshot("account-after-signup").await;

    // Signed in, the home page leads to the account.
    browser.goto("/").await;
    browser.find(r#"a[href="/account"]"#).await;
    assert!(browser.find_all(r#"a[href="/signup"]"#).await.is_empty());
    browser.screenshot("home-signed-in").await;

    // Log out: back home, anonymous again.
    log_out(&browser).await;
    browser.find(r#"a[href="/login"]"#).await;
    assert!(browser.find_all("form#logout-form").await.is_empty());
    browser.screenshot("home-after-logout").await;

    // A wrong password: the form again, with one error.
    browser.click(r#"a[href="/login"]"#).await;
    browser.wait_for_location("/login").await;
    browser.log_in(EMAIL, "not the right password at all").await;
    browser
        .wait_for_text(".error-summary", "Incorrect email or password")
        .await;
    assert_eq!(browser.find_all(".error-summary li").await.len(), 1);
    assert_eq!(browser.current_url().await.path(), "/login");
    browser.find("form#login-form").await;
    browser.screenshot("login-refused").await;

    // The right password.
    browser.log_in(EMAIL, PASSWORD).await;
    browser.wait_for_location("/account").await;
    assert_eq!(browser.text("#account-email").await, EMAIL);
    browser.screenshot("account-after-login").await;

    // Change the password.
    browser
        .fill("form#password-form input[name=current_password]", PASSWORD)
        .await;
    browser
        .fill("form#password-form input[name=new_password]", NEW_PASSWORD)
        .await;
    browser
        .fill(
            "form#password-form input[name=new_password_confirm]",
            NEW_PASSWORD,
        )
        .await;
    browser.screenshot("password-form-filled").await;
    browser.submit("form#password-form").await;
    browser.wait_for_text(".flash", "Password changed").await;
    assert_eq!(browser.current_url().await.path(), "/account");
    browser.screenshot("password-changed").await;

    log_out(&browser).await;

    // The old password no longer works; the new one does.
    browser.goto("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser
        .wait_for_text(".error-summary", "Incorrect email or password")
        .await;
    assert_eq!(browser.current_url().await.path(), "/login");
    browser.screenshot("old-password-refused").await;

    browser.log_in(EMAIL, NEW_PASSWORD).await;
    browser.wait_for_location("/account").await;
    assert_eq!(browser.text("#account-email").await, EMAIL);
    browser.screenshot("new-password-accepted").await;
    browser.close().await;

    // The JSON API agrees.
    assert_eq!(app.api_login(EMAIL, PASSWORD).await.0, 400);
    app.access_token(EMAIL, NEW_PASSWORD).await;
}

#[tokio::test]
async fn account_page_sends_anonymous_visitors_to_log_in() {
    let app = spawn_app().await;
    let Some(browser) = Browser::launch("account-anonymous", &app.base_url).await else {
        return;
    };

    browser.goto("/account").await;

    browser.wait_for_location("/login?next=%2Faccount").await;
    assert_eq!(
        browser
            .attr("form#login-form input[name=next]", "value")
            .await
            .as_deref(),
        Some("/account")
    );
    browser.screenshot("login").await;
    browser.close().await;
}

#[tokio::test]
async fn delete_the_account_with_its_password() {
    let app = spawn_app().await;
    app.register(EMAIL, PASSWORD).await;
    let Some(browser) = Browser::launch("delete-account", &app.base_url).await else {
        return;
    };
    browser.goto("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser.wait_for_location("/account").await;

    // A wrong password: the summary takes the focus and names the field.
    browser
        .fill(
            "form#delete-account-form input[name=delete_password]",
            "not my password",
        )
        .await;
    browser.submit("form#delete-account-form").await;
    browser
        .wait_for_text("#error-summary", "That is not your current password.")
        .await;
    browser.screenshot("delete-refused").await;

    browser
        .fill(
            "form#delete-account-form input[name=delete_password]",
            PASSWORD,
        )
        .await;
    browser.scroll_to("#delete-account").await;
    browser.screenshot("delete-form").await;
    browser.submit("form#delete-account-form").await;
    browser.wait_for_location("/").await;
    browser
        .wait_for_text(".flash", "Your account has been deleted")
        .await;
    assert!(browser.find_all("form#logout-form").await.is_empty());
    browser.close().await;

    assert_eq!(app.api_login(EMAIL, PASSWORD).await.0, 400);
}
