//! The superusers' pages: find a user and promote them; open a user's page and sign out one
//! of their sessions; deactivate several users at once.

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
    // It asks first.
    browser.find("#confirm-promote-form").await;
    browser.screenshot("promote-confirmation").await;
    browser.submit("#confirm-promote-form").await;
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

const SAFARI_ON_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
                                AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 \
                                Mobile/15E148 Safari/604.1";
const FIRST: &str = "robin.ashdown@example.com";
const SECOND: &str = "kit.marlowe@example.com";

/// Whether the page fits the window's width (no sideways scrolling).
async fn fits_the_width(browser: &Browser) -> bool {
    browser
        .client()
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            Vec::new(),
        )
        .await
        .unwrap()
        == Value::Bool(true)
}

/// Screenshots at 1280 and 375 px, checking at 375 that the page does not scroll sideways.
async fn look_at(browser: &Browser, step: &str) {
    browser.screenshot(step).await;
    browser.resize(375, 1200).await;
    browser.screenshot(&format!("{step}-375")).await;
    let fits = fits_the_width(browser).await;
    browser.resize(1280, 900).await;
    assert!(fits, "{step}: no sideways scrolling at 375 px");
}

#[tokio::test]
async fn superuser_signs_out_a_session_from_a_users_page_and_deactivates_two_at_once() {
    let app = spawn_app().await;
    app.register_superuser(ADMIN, PASSWORD).await;
    let member_id = app.register(MEMBER, PASSWORD).await;
    app.api_login_from(MEMBER, PASSWORD, SAFARI_ON_IPHONE).await;
    app.api_login_from(MEMBER, PASSWORD, "curl/8.5").await;
    app.register(FIRST, PASSWORD).await;
    app.register(SECOND, PASSWORD).await;
    let Some(browser) = Browser::launch("admin-user", &app.base_url).await else {
        return;
    };
    browser.goto("/login").await;
    browser.log_in(ADMIN, PASSWORD).await;
    browser.wait_for_location("/account").await;

    // The list: one's own row marked, each email a link to its page.
    browser.goto("/admin/users").await;
    let mut emails = browser.texts("#users-table td.email a").await;
    emails.sort();
    assert_eq!(emails, [SECOND, ADMIN, FIRST, MEMBER]);
    browser
        .find(&format!(
            r#"#users-table tr.you[data-email="{ADMIN}"] .you-badge"#
        ))
        .await;
    look_at(&browser, "list").await;
    browser
        .screenshots_at("own-row", "#users-table tr.you")
        .await;

    browser
        .click(&format!(
            r#"#users-table td.email a[href="/admin/users/{member_id}"]"#
        ))
        .await;
    browser
        .wait_for_location(&format!("/admin/users/{member_id}"))
        .await;
    assert_eq!(browser.text("#user-email").await, MEMBER);
    let mut names = browser.texts("#sessions-table .device-name").await;
    names.sort();
    assert_eq!(names, ["API client (curl/8.5)", "Safari on iPhone"]);
    look_at(&browser, "user-page").await;

    // Sign out the iPhone: its button says which session it ends.
    browser
        .click(r#"#sessions-table button[aria-label^="Sign out Safari on iPhone"]"#)
        .await;
    browser
        .wait_for_text(".flash-success", "That session of")
        .await;
    assert_eq!(
        browser.texts("#sessions-table .device-name").await,
        ["API client (curl/8.5)"]
    );
    let events = browser.texts("#events-table .event-label").await;
    assert!(events.iter().any(|e| e == "Session ended"), "{events:?}");
    browser
        .screenshots_at("session-signed-out", "#sessions")
        .await;

    // Select two users and deactivate them, through one confirmation.
    browser.goto("/admin/users").await;
    for email in [FIRST, SECOND] {
        browser
            .click(&format!(
                r#"#users-table tr[data-email="{email}"] input[name=user]"#
            ))
            .await;
    }
    // The script's "select all" box tells that some, not all, are selected.
    let partly: Value = browser
        .client()
        .execute(
            "return document.getElementById('select-all').indeterminate;",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(partly, Value::Bool(true));
    let select = browser.find("#bulk-action").await;
    select
        .select_by_value("deactivate")
        .await
        .expect("choosing the bulk action");
    browser.submit("#bulk-form").await;
    browser.find("#confirm-bulk-form").await;
    assert_eq!(browser.text("h1").await, "Deactivate 2 users?");
    let mut chosen = browser.texts("#bulk-accounts strong").await;
    chosen.sort();
    assert_eq!(chosen, [SECOND, FIRST]);
    look_at(&browser, "bulk-confirmation").await;
    browser.submit("#confirm-bulk-form").await;
    browser.wait_for_location("/admin/users").await;
    let report = browser.text(".flash-success").await;
    assert!(
        report.starts_with("Deactivated and signed out:"),
        "{report}"
    );
    for email in [FIRST, SECOND] {
        assert!(report.contains(email), "{report}");
        let badge = browser
            .text(&format!(
                r#"#users-table tr[data-email="{email}"] .badge-off"#
            ))
            .await;
        assert_eq!(badge, "Inactive");
    }
    assert!(browser
        .find_all(&format!(
            r#"#users-table tr[data-email="{MEMBER}"] .badge-off"#
        ))
        .await
        .is_empty());
    look_at(&browser, "bulk-done").await;
    browser.close().await;
}
