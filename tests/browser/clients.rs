//! Registering a client on the clients page: POST → 303 → GET, the secret shown once with a
//! button that copies it, and a reload that neither registers another client nor shows the
//! secret again.

use serde_json::{json, Value};

use crate::app::{spawn_app, TestApp, PASSWORD};
use crate::harness::Browser;

const ADMIN: &str = "grace.hopper@example.com";

/// The clients the API lists.
async fn clients(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.get_json("/clients", token).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

/// JavaScript: what the clipboard holds, or `error: …` when the page may not read it.
const READ_CLIPBOARD: &str = r#"
const done = arguments[arguments.length - 1];
navigator.clipboard.readText().then(done, err => done('error: ' + err));
"#;

#[tokio::test]
async fn a_new_client_is_shown_once_copied_and_not_registered_again_on_reload() {
    let app = spawn_app().await;
    app.register_superuser(ADMIN, PASSWORD).await;
    let token = app.access_token(ADMIN, PASSWORD).await;
    let Some(browser) = Browser::launch("clients", &app.base_url).await else {
        return;
    };
    browser.goto("/login").await;
    browser.log_in(ADMIN, PASSWORD).await;
    browser.wait_for_location("/account").await;

    browser.goto("/admin/clients").await;
    browser.fill("#name", "Reports exporter").await;
    browser.fill("#scopes", "read:reports").await;
    browser.submit("form#client-form").await;

    // The answer to the POST was a redirect: the browser is on a GET of the page.
    browser
        .wait_for_text("#created-client h2", "Reports exporter")
        .await;
    assert_eq!(browser.location().await, "/admin/clients");
    let navigation = browser
        .eval("return performance.getEntriesByType('navigation')[0].type;")
        .await;
    assert_eq!(
        navigation, "navigate",
        "the page after the form is a fresh GET"
    );
    let client_id = browser.text("#created-client-id").await;
    let secret = browser.text("#created-client-secret").await;
    let listed = clients(&app, &token).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["client_id"], json!(client_id));

    // The copy button, added by the script beside the secret, puts it on the clipboard.
    browser
        .cdp(
            "Browser.grantPermissions",
            json!({
                "origin": app.base_url,
                "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            }),
        )
        .await;
    browser
        .click("button[aria-label='Copy client secret']")
        .await;
    browser
        .wait_for_text("#copy-status", "Copied the client secret.")
        .await;
    assert_eq!(
        browser.text("#created-client-secret + .copy-button").await,
        "Copied"
    );
    let copied = browser
        .client()
        .execute_async(READ_CLIPBOARD, Vec::new())
        .await
        .unwrap_or_else(|err| panic!("reading the clipboard: {err}"));
    assert_eq!(copied, json!(secret), "the clipboard holds the secret");
    browser.screenshots("client-created").await;

    // A reload is a GET: no second client, and the secret is gone.
    browser
        .client()
        .refresh()
        .await
        .unwrap_or_else(|err| panic!("reloading: {err}"));
    browser.wait_for_text("h1", "Clients").await;
    browser
        .wait_for_text("#clients-list", "Reports exporter")
        .await;
    assert!(browser.find_all("#created-client").await.is_empty());
    let source = browser.client().source().await.expect("the page's source");
    assert!(!source.contains(&secret), "the secret is shown again");
    assert!(browser.find_all(".copy-button").await.is_empty());
    assert_eq!(clients(&app, &token).await.len(), 1, "a second client");
    browser.screenshots("after-reload").await;

    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|message| !message.contains("/favicon.ico"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    browser.close().await;
}
