//! "New sign-in to your Gatehouse account": a login from a device the account has not been
//! seen on (no device cookie of the account, no earlier session from the same user agent at
//! the same address) emails the account's owner; a familiar one, and the first ever, do not.

use crate::helpers::*;
use crate::page_client::*;

const EMAIL: &str = "traveller@example.com";
const CURL: &str = "curl/8.5.0";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

async fn app() -> TestApp {
    spawn_mail_app_with(&[("COOKIE_SECURE", "false")]).await
}

/// Waits until `n` notices have reached `address`, then a moment more for any extra one.
async fn notices(app: &TestApp, address: &str, n: usize) -> Vec<Email> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.sign_in_notices_to(address).len() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.sign_in_notices_to(address)
}

#[tokio::test]
async fn a_login_from_an_unseen_device_is_told_to_the_owner_once() {
    let app = app().await;
    app.register(EMAIL, PASSWORD).await;

    login_from(&app, EMAIL, CURL).await;
    login_from(&app, EMAIL, CURL).await;
    assert!(
        notices(&app, EMAIL, 0).await.is_empty(),
        "the first sign-in, and the same client again, are not news"
    );

    login_from(&app, EMAIL, FIREFOX).await;
    let sent = notices(&app, EMAIL, 1).await;
    assert_eq!(sent.len(), 1);
    let notice = &sent[0];
    assert!(notice.text.contains("Firefox on Linux"), "{}", notice.text);
    assert!(notice.text.contains("127.0.0.1"), "{}", notice.text);
    assert!(notice
        .text
        .contains(&format!("{PUBLIC_URL}/forgot-password")));
    assert!(notice.text.contains(&format!("{PUBLIC_URL}/account")));
    assert!(notice.html.contains("Firefox on Linux"));

    login_from(&app, EMAIL, FIREFOX).await;
    assert_eq!(notices(&app, EMAIL, 1).await.len(), 1, "seen now");
}

#[tokio::test]
async fn failed_logins_and_signups_send_no_notice() {
    let app = app().await;
    let browser = PageClient::new(&app);
    assert_eq!(
        browser.sign_up(EMAIL, PASSWORD, PASSWORD).await.status(),
        303
    );

    let wrong = app
        .client
        .post(app.url("/auth/jwt/login"))
        .header(reqwest::header::USER_AGENT, FIREFOX)
        .form(&[("username", EMAIL), ("password", "not the password")])
        .send()
        .await
        .unwrap();

    assert_eq!(wrong.status(), 400);
    assert!(notices(&app, EMAIL, 0).await.is_empty());
}

#[tokio::test]
async fn a_browser_with_the_accounts_device_cookie_is_familiar_whatever_its_user_agent() {
    let app = app().await;
    app.register(EMAIL, PASSWORD).await;
    login_from(&app, EMAIL, CURL).await;
    let browser = PageClient::logged_in(&app, EMAIL).await;
    assert_eq!(
        notices(&app, EMAIL, 1).await.len(),
        1,
        "the browser was new"
    );
    assert!(browser.cookie("gatehouse_device").is_some());
    browser.submit("/logout", &[]).await;

    // The same browser, updated: another user agent, but the device cookie it was given.
    let token = browser.csrf_token("/login").await;
    let fields = [("email", EMAIL), ("password", PASSWORD)];
    let response = browser
        .post_form_with(
            "/login",
            &with_token(&fields, &token),
            &[("user-agent", FIREFOX)],
        )
        .await;

    assert_eq!(response.status(), 303);
    assert_eq!(notices(&app, EMAIL, 1).await.len(), 1, "no second notice");
}
