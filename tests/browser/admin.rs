//! The superusers' page: find a user and promote them.

use serde_json::Value;

use crate::app::{spawn_app, PASSWORD};
use crate::harness::Browser;

const ADMIN: &str = "morgan.keeper@example.com";
const MEMBER: &str = "sasha.fielding@example.com";
const SEARCH: &str = "/admin/users?q=fielding";

#[tokio::test]
async fn superuser_promotes_a_user_through_the_admin_page() {
    let app = spawn_app().await;
    app.register_superuser(ADMIN, PASSWORD).await;
    let member_id = app.register(MEMBER, PASSWORD).await;
    let Some(browser) = Browser::launch("admin", &app.base_url).await else {
        return;
    };

    // Anonymous: sent to log in, with the search kept for afterwards.
    browser.goto(SEARCH).await;
    browser.wait_for_location("/login").await;
    let next: Vec<String> = browser
        .current_url()
        .await
        .query_pairs()
        .filter(|(key, _)| key == "next")
        .map(|(_, value)| value.into_owned())
        .collect();
    assert_eq!(next, [SEARCH]);
    assert_eq!(
        browser
            .attr("form#login-form input[name=next]", "value")
            .await
            .as_deref(),
        Some(SEARCH)
    );
    browser.screenshot("login-required").await;

    browser
        .fill("form#login-form input[name=email]", ADMIN)
        .await;
    browser
        .fill("form#login-form input[name=password]", PASSWORD)
        .await;
    browser.submit("form#login-form").await;

    // Back at the search, which finds the member and not the superuser.
    browser.wait_for_location(SEARCH).await;
    assert_eq!(
        browser
            .attr("form#user-search input[name=q]", "value")
            .await
            .as_deref(),
        Some("fielding")
    );
    let row = format!(r#"#users-table tr[data-email="{MEMBER}"]"#);
    browser.find(&row).await;
    let admin_row = format!(r#"#users-table tr[data-email="{ADMIN}"]"#);
    assert!(
        browser.find_all(&admin_row).await.is_empty(),
        "the search for `fielding` lists {ADMIN}"
    );
    browser.screenshot("search-results").await;

    // Promote: the list again, with a success message.
    assert!(browser.find_all(".flash").await.is_empty());
    browser
        .click(&format!("{row} form.action-promote button"))
        .await;
    browser.find(".flash-success").await;
    assert_eq!(browser.current_url().await.path(), "/admin/users");
    browser.screenshot("promoted").await;
    browser.close().await;

    let token = app.access_token(ADMIN, PASSWORD).await;
    let (status, user): (u16, Value) = app.get_json(&format!("/users/{member_id}"), &token).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["email"], MEMBER);
    assert_eq!(user["is_superuser"], true, "{user}");
}
