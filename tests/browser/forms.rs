//! Forms that help: the error summary takes the focus, and a password can be shown.

use crate::app::{spawn_app, PASSWORD};
use crate::harness::Browser;

async fn script(browser: &Browser, js: &str) -> serde_json::Value {
    browser
        .client()
        .execute(js, Vec::new())
        .await
        .unwrap_or_else(|err| panic!("running `{js}`: {err}"))
}

#[tokio::test]
async fn the_error_summary_takes_the_focus_and_passwords_can_be_shown() {
    let app = spawn_app().await;
    let Some(browser) = Browser::launch("forms", &app.base_url).await else {
        return;
    };

    browser.goto("/signup").await;
    browser
        .fill("form#signup-form input[name=email]", "not-an-email")
        .await;
    browser
        .fill("form#signup-form input[name=password]", "short")
        .await;
    browser.submit("form#signup-form").await;

    browser
        .wait_for_text("#error-summary", "There is a problem")
        .await;
    assert_eq!(
        browser.texts("#error-summary li").await,
        [
            "Enter a valid email address, like name@example.com",
            "Password should be at least 8 characters long.",
            "Enter the password again to confirm it",
        ]
    );
    assert_eq!(
        script(&browser, "return document.activeElement.id;").await,
        "error-summary",
        "the summary has the focus"
    );
    let title = script(&browser, "return document.title;").await;
    assert!(title.as_str().unwrap().starts_with("Error: "), "{title}");
    browser.screenshot("signup-error-summary").await;

    // The summary's links lead to their fields.
    browser
        .click(r##"#error-summary a[href="#password"]"##)
        .await;
    assert_eq!(browser.current_url().await.fragment(), Some("password"));

    // Show the password, then hide it again.
    browser
        .fill("form#signup-form input[name=password]", PASSWORD)
        .await;
    let toggle = "#password + button.password-toggle";
    assert_eq!(browser.text(toggle).await, "Show");
    assert_eq!(
        browser.attr(toggle, "aria-label").await.as_deref(),
        Some("Show password")
    );
    browser.click(toggle).await;
    assert_eq!(
        browser.attr("#password", "type").await.as_deref(),
        Some("text")
    );
    assert_eq!(browser.text(toggle).await, "Hide");
    browser.screenshot("password-shown").await;
    browser.click(toggle).await;
    assert_eq!(
        browser.attr("#password", "type").await.as_deref(),
        Some("password")
    );
    // The 422 above is logged as a failed load; anything else is a fault.
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|error| !error.contains("the server responded with a status of 4"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    browser.close().await;
}
