//! A superuser invites someone; the invitation's link sets their password; they log in.

use crate::app::{spawn_app, PASSWORD};
use crate::harness::Browser;
use crate::recovery::emailed_link;

const ADMIN: &str = "harriet.gatekeeper@example.com";
const INVITEE: &str = "noor.bellamy@example.com";
const INVITEE_PASSWORD: &str = "lanterns along the quiet canal";

#[tokio::test]
async fn an_invited_person_chooses_a_password_and_logs_in() {
    let app = spawn_app().await;
    app.register_superuser(ADMIN, PASSWORD).await;
    let Some(browser) = Browser::launch("invitation", &app.base_url).await else {
        return;
    };

    browser.goto("/login").await;
    browser.log_in(ADMIN, PASSWORD).await;
    browser.wait_for_location("/account").await;
    browser.goto("/admin/users/new").await;
    browser
        .fill("form#new-user-form input[name=email]", INVITEE)
        .await;
    browser.screenshots("add-a-user").await;
    browser.submit("form#new-user-form").await;
    browser
        .wait_for_text(".flash", &format!("{INVITEE} has been invited"))
        .await;
    assert!(browser.location().await.starts_with("/admin/users/"));
    browser.submit("form#logout-form").await;
    browser.wait_for_location("/").await;

    let link = emailed_link(&app, "/invitation").await;
    browser.goto(&link).await;
    browser.find("form#invitation-form").await;
    browser.screenshots("invitation").await;
    browser
        .fill(
            "form#invitation-form input[name=new_password]",
            INVITEE_PASSWORD,
        )
        .await;
    browser
        .fill(
            "form#invitation-form input[name=new_password_confirm]",
            INVITEE_PASSWORD,
        )
        .await;
    browser.submit("form#invitation-form").await;
    browser.wait_for_location("/login").await;
    browser
        .wait_for_text(".flash", "Your password is set")
        .await;

    browser.log_in(INVITEE, INVITEE_PASSWORD).await;
    browser.wait_for_location("/account").await;
    browser.wait_for_text("main", INVITEE).await;

    // The link has done its work: opened again, it says so.
    browser.goto(&link).await;
    browser
        .wait_for_text("#bad-link", "This link doesn’t work")
        .await;
    browser.close().await;
}
