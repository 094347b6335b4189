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

/// JavaScript: the `/static/` stylesheets of the page, each with the number
/// of rules the browser parsed from it (`-1` when it did not load).
const STYLESHEETS: &str = r#"
return Array.from(document.querySelectorAll('link[rel="stylesheet"]'))
    .filter(link => new URL(link.href).pathname.startsWith('/static/'))
    .map(link => [link.getAttribute('href'), link.sheet ? link.sheet.cssRules.length : -1]);
"#;

#[tokio::test]
async fn pages_load_their_stylesheet_without_console_errors() {
    let app = spawn_app().await;
    let Some(browser) = Browser::launch("static", &app.base_url).await else {
        return;
    };

    for (path, name) in [("/", "home"), ("/signup", "signup"), ("/login", "login")] {
        browser.goto(path).await;
        browser.find("body").await;

        let sheets = browser
            .client()
            .execute(STYLESHEETS, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("listing the stylesheets of {path}: {err}"));
        let sheets = sheets.as_array().cloned().unwrap_or_default();
        assert!(!sheets.is_empty(), "{path} links no /static/ stylesheet");
        for sheet in &sheets {
            assert!(sheet[1].as_i64() > Some(0), "{path}: {sheet} did not load");
        }
        let errors: Vec<String> = browser
            .console_errors()
            .await
            .into_iter()
            // The browser asks for an icon no page links; that is not the page's error.
            .filter(|message| !message.contains("/favicon.ico"))
            .collect();
        assert!(errors.is_empty(), "{path} logs errors: {errors:#?}");
        browser.screenshot(name).await;
    }
    browser.close().await;
}
