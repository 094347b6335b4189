//! The harness itself: the browser reaches the application.

use serde_json::{json, Value};

use crate::app::spawn_app;
use crate::harness::Browser;

#[tokio::test]
async fn chromium_reaches_the_health_endpoint() {
    let app = spawn_app().await;
    let Some(browser) = Browser::launch("health", &app.base_url).await else {
        return;
    };

    browser.goto("/health").await;

    assert_eq!(browser.location().await, "/health");
    let text = browser.text("body").await;
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"));
    assert_eq!(body, json!({"status": "ok"}));
    browser.screenshot("health").await;
    browser.close().await;
}
