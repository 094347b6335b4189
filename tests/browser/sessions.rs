//! The account page's sessions, as their owner recognises them.

use crate::app::{spawn_app, PASSWORD};
use crate::harness::Browser;

const EMAIL: &str = "ada.quill@example.com";
const SAFARI_ON_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
                                AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 \
                                Mobile/15E148 Safari/604.1";

#[tokio::test]
async fn sessions_are_named_for_their_devices_and_signed_out_by_name() {
    let app = spawn_app().await;
    app.register(EMAIL, PASSWORD).await;
    app.api_login_from(EMAIL, PASSWORD, SAFARI_ON_IPHONE).await;
    app.api_login_from(EMAIL, PASSWORD, "curl/8.5").await;
    let Some(browser) = Browser::launch("sessions", &app.base_url).await else {
        return;
    };

    browser.goto("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser.wait_for_location("/account").await;

    let mut names = browser.texts("#sessions-table .device-name").await;
    names.sort();
    assert_eq!(
        names,
        [
            "API client (curl/8.5)",
            "Chrome on Linux",
            "Safari on iPhone"
        ]
    );
    let this = browser
        .text("#sessions-table tr:has(.badge) .device-name")
        .await;
    assert_eq!(this, "Chrome on Linux", "headless Chromium is this device");
    assert_eq!(
        browser.texts("#sessions-table .session-active time").await[0],
        "just now"
    );
    browser.scroll_to("#sessions").await;
    browser.screenshot("sessions").await;

    // The iPhone's button says which session it ends.
    let button = r#"button[aria-label="Sign out Safari on iPhone"]"#;
    browser.click(button).await;
    browser
        .wait_for_text(".flash", "That session has been signed out")
        .await;
    let mut names = browser.texts("#sessions-table .device-name").await;
    names.sort();
    assert_eq!(names, ["API client (curl/8.5)", "Chrome on Linux"]);
    assert!(browser.find_all(button).await.is_empty());

    // On a phone, the page does not scroll sideways (the table scrolls in its own box, which
    // holds even its visually hidden header).
    browser.resize(375, 800).await;
    browser.goto("/account").await;
    let fits = browser
        .client()
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            Vec::new(),
        )
        .await
        .unwrap();
    browser.scroll_to("#sessions").await;
    browser.screenshot("sessions-375").await;
    assert_eq!(fits, serde_json::Value::Bool(true), "no sideways scrolling");
    browser.close().await;
}
