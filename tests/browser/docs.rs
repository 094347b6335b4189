//! The API viewer at `/docs`: Swagger UI's "Authorize" logs in with the password flow the
//! document declares, and "Try it out" on `GET /users/me` then answers with the user.

use crate::app::{spawn_app, PASSWORD};
use crate::harness::Browser;

const EMAIL: &str = "swagger@example.com";

/// JavaScript: marks the password-flow section of the Authorize dialog (the one naming
/// `OAuth2PasswordBearer`) with an id, so its fields can be found; true when found.
const MARK_PASSWORD_FLOW: &str = r#"
const section = Array.from(document.querySelectorAll('.modal-ux .auth-container'))
    .find(container => container.textContent.includes('OAuth2PasswordBearer'));
if (section) { section.id = 'password-flow'; }
return Boolean(section);
"#;

#[tokio::test]
async fn authorize_logs_in_and_try_it_out_reads_the_user() {
    let app = spawn_app().await;
    let id = app.register(EMAIL, PASSWORD).await;
    let Some(browser) = Browser::launch("docs-authorize", &app.base_url).await else {
        return;
    };

    browser.goto("/docs/").await;
    browser.click(".auth-wrapper .btn.authorize").await;
    browser.find(".modal-ux .auth-container").await;
    let marked = browser
        .client()
        .execute(MARK_PASSWORD_FLOW, Vec::new())
        .await
        .expect("look for the password flow");
    assert_eq!(
        marked, true,
        "no OAuth2PasswordBearer section in the dialog"
    );
    browser
        .fill("#password-flow input#oauth_username", EMAIL)
        .await;
    browser
        .fill("#password-flow input#oauth_password", PASSWORD)
        .await;
    browser.screenshot("authorize-dialog").await;
    browser
        .click("#password-flow .auth-btn-wrapper .authorize")
        .await;
    // Once logged in, the section offers "Logout" instead.
    browser
        .wait_for_text("#password-flow .auth-btn-wrapper", "Logout")
        .await;
    browser.screenshot("authorized").await;
    browser.click(".modal-ux .close-modal").await;

    browser
        .click(".opblock-get .opblock-summary-path[data-path='/users/me']")
        .await;
    let operation = ".opblock-get:has(.opblock-summary-path[data-path='/users/me'])";
    // The viewer opens operations ready to try (`tryItOutEnabled`): "Execute" is there.
    let execute = format!("{operation} .btn.execute");
    browser.scroll_to(&execute).await;
    browser.click(&execute).await;
    let status = format!("{operation} .live-responses-table .response .response-col_status");
    browser.wait_for_text(&status, "200").await;
    let body = browser
        .text(&format!(
            "{operation} .live-responses-table .response .highlight-code"
        ))
        .await;
    assert!(body.contains(&id) && body.contains(EMAIL), "{body}");
    // The request the viewer shows was sent with the token the dialog obtained.
    let curl = browser.text(&format!("{operation} .curl-command")).await;
    assert!(curl.contains("Authorization: Bearer ey"), "{curl}");
    browser.screenshot("try-it-out").await;
    browser.close().await;
}
