//! `/admin/users/{id}`: one account's page for superusers (status, factors, sessions and their
//! sign-out, recent events, the actions), and when an account last signed in.

use serde_json::{json, Value};

use crate::helpers::totp::code_now;
use crate::helpers::*;
use crate::page_client::*;

const ADMIN: &str = "admin@example.com";
const TARGET: &str = "target@example.com";
const LIST: &str = "/admin/users";
const CHROME_ON_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

async fn admin_app() -> (TestApp, PageClient) {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    (app, admin)
}

fn user_page(app: &TestApp, email: &str) -> String {
    format!("/admin/users/{}", app.user_id(email))
}

/// The ids of the live sessions listed on the page, in order.
fn listed_sessions(html: &str) -> Vec<String> {
    attribute_values(html, "data-session-id")
}

/// Gives `email` a confirmed authenticator app through the API, as its owner would.
async fn enrol_totp(app: &TestApp, tokens: &Tokens) {
    let begun = app
        .post_authorized(
            "/users/me/mfa/totp",
            &tokens.access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(begun.status(), 200);
    let secret = begun.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirmed = app
        .post_authorized(
            "/users/me/mfa/totp/confirm",
            &tokens.access,
            json!({"code": code_now(&secret)}),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
}

fn last_login_at(app: &TestApp, email: &str) -> Option<i64> {
    use diesel::prelude::*;
    use gatehouse::db::schema::users;
    users::table
        .filter(users::email.eq(email))
        .select(users::last_login_at)
        .first::<Option<i64>>(&mut app.db())
        .unwrap()
}

/// The id of the session started from `user_agent`.
fn session_from(app: &TestApp, user_agent: &str) -> String {
    use diesel::prelude::*;
    use gatehouse::db::schema::sessions;
    sessions::table
        .filter(sessions::user_agent.eq(user_agent))
        .select(sessions::id)
        .first::<String>(&mut app.db())
        .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// What the page shows

#[tokio::test]
async fn the_page_shows_status_factors_sessions_and_recent_events() {
    let (app, admin) = admin_app().await;
    let tokens = app.user(TARGET).await;
    // A second session from a browser people recognise, before the app makes logins ask
    // for a code.
    login_from(&app, TARGET, CHROME_ON_WINDOWS).await;
    enrol_totp(&app, &tokens).await;
    let id = app.user_id(TARGET);
    app.execute(&format!(
        "INSERT INTO passkeys (id, user_id, name, credential_id, credential, created_at) \
         VALUES ('6f1c1c1e-1111-4111-8111-111111111111', '{id}', 'Work security key', 'cred', \
         '{{}}', 1700000000)"
    ));
    assert_see_other(
        &admin
            .submit(
                &format!("/admin/users/{id}/verify"),
                &[("next", &user_page(&app, TARGET))],
            )
            .await,
        &user_page(&app, TARGET),
    );

    let response = admin.get(&user_page(&app, TARGET)).await;

    assert_eq!(response.status(), 200);
    assert_html(&response);
    let html = response.text().await.unwrap();
    assert_eq!(text_of(&html, "id=\"user-email\"").unwrap(), TARGET);
    assert_eq!(text_of(&html, "id=\"user-id\"").unwrap(), id);
    let badges = html
        .split("id=\"user-badges\"")
        .nth(1)
        .unwrap()
        .split("</p>")
        .next()
        .unwrap();
    assert!(badges.contains(">Active<"), "{badges}");
    assert!(badges.contains(">Verified<"), "{badges}");
    assert!(!badges.contains(">Superuser<"), "{badges}");
    assert!(!badges.contains(">You<"), "{badges}");
    // Factors: the app, the passkey by its name, the recovery codes left.
    assert!(text_of(&html, "id=\"factor-totp\"").is_some());
    assert!(html.contains("id=\"factor-totp\"><span class=\"badge badge-ok\">Set up"));
    assert!(html.contains("<span class=\"passkey-name\">Work security key</span>"));
    assert_eq!(
        text_of(&html, "id=\"factor-recovery-codes\"").unwrap(),
        "10 left"
    );
    // Sessions: both live ones, each with a sign-out named for its device.
    assert_eq!(listed_sessions(&html).len(), 2, "{html}");
    assert_eq!(live_sessions(&app, TARGET), 2);
    assert!(html.contains(">Chrome on Windows<"), "{html}");
    assert!(html.contains("aria-label=\"Sign out Chrome on Windows, signed in just now\""));
    // Recent events, and the way to the rest.
    let labels: Vec<&str> = html
        .match_indices("<td class=\"event-label\">")
        .map(|(at, marker)| {
            let rest = &html[at + marker.len()..];
            &rest[..rest.find('<').unwrap()]
        })
        .collect();
    for label in ["Email verified", "Logged in", "Signed up"] {
        assert!(labels.contains(&label), "{label}: {labels:?}");
    }
    assert!(
        html.contains(&format!("href=\"/admin/audit?q={id}\"")),
        "{html}"
    );
}

#[tokio::test]
async fn the_page_shows_at_most_ten_events_and_counts_the_rest() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    for _ in 0..12 {
        app.login(TARGET, PASSWORD).await;
    }
    let id = app.user_id(TARGET);

    let html = admin.page(&user_page(&app, TARGET)).await;

    assert_eq!(html.matches("class=\"event-row\"").count(), 10);
    let total = app.count(&format!(
        "SELECT id FROM audit_events WHERE actor_id = '{id}' OR subject_id = '{id}'"
    ));
    assert!(total > 10);
    assert_eq!(
        text_of(&html, "id=\"all-events\"").unwrap(),
        format!("All {total} events")
    );
}

#[tokio::test]
async fn an_account_that_never_signed_in_says_so() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;

    let html = admin.page(&user_page(&app, TARGET)).await;

    assert_eq!(text_of(&html, "id=\"user-last-sign-in\"").unwrap(), "Never");
    assert!(html.contains("id=\"no-sessions\""), "{html}");
    assert!(html.contains("id=\"factor-totp\"><span class=\"badge\">None"));
    assert_eq!(
        text_of(&html, "id=\"factor-recovery-codes\"").unwrap(),
        "0 left"
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_the_404_page() {
    let (app, admin) = admin_app().await;

    for path in [
        "/admin/users/00000000-0000-4000-8000-000000000000",
        "/admin/users/not-a-uuid",
        "/admin/users/%3Cscript%3E",
    ] {
        let response = admin.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_html(&response);
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("This page doesn’t exist"));
    }
    let unknown = "/admin/users/00000000-0000-4000-8000-000000000000/sessions/\
                   00000000-0000-4000-8000-000000000000/end";
    let before = snapshot(&app);
    assert_eq!(admin.submit(unknown, &[]).await.status(), 404);
    assert_eq!(snapshot(&app), before);
}

// ---------------------------------------------------------------------------------------------
// Actions from the page

#[tokio::test]
async fn signing_out_one_session_ends_that_one_only_and_is_audited() {
    let (app, admin) = admin_app().await;
    let kept = app.user(TARGET).await;
    let ended = login_from(&app, TARGET, CHROME_ON_WINDOWS).await;
    let page = user_page(&app, TARGET);
    let html = admin.page(&page).await;
    assert_eq!(listed_sessions(&html).len(), 2);
    let windows = &session_from(&app, CHROME_ON_WINDOWS);
    assert!(html.contains(&format!("action=\"{page}/sessions/{windows}/end\"")));

    let response = admin
        .submit(&format!("{page}/sessions/{windows}/end"), &[])
        .await;

    assert_see_other(&response, &page);
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM sessions WHERE id = '{windows}' AND revoked_at IS NOT NULL"
        )),
        1
    );
    assert_eq!(live_sessions(&app, TARGET), 1);
    assert_eq!(
        app.get("/users/me", &ended.access).await.status(),
        401,
        "that session's token stops working"
    );
    assert_eq!(app.get("/users/me", &kept.access).await.status(), 200);
    let html = admin.page(&page).await;
    assert_eq!(
        flashes_in(&html),
        [Flash::success(&format!(
            "That session of {TARGET} has been signed out."
        ))]
    );
    assert_eq!(listed_sessions(&html).len(), 1);
    let id = app.user_id(TARGET);
    let admin_id = app.user_id(ADMIN);
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM audit_events WHERE event = 'session_ended' AND subject_id = '{id}' \
             AND actor_id = '{admin_id}' AND detail = 'session {windows}'"
        )),
        1
    );

    // Again: it has ended already.
    let response = admin
        .submit(&format!("{page}/sessions/{windows}/end"), &[])
        .await;
    assert_see_other(&response, &page);
    assert_eq!(
        admin.flashes_on(&page).await,
        [Flash::error("That session had already ended.")]
    );
}

#[tokio::test]
async fn another_users_session_cannot_be_ended_through_this_page() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    let other = app.user("other@example.com").await;
    let html = admin.page(&user_page(&app, "other@example.com")).await;
    let session = listed_sessions(&html).remove(0);
    let before = snapshot(&app);

    let response = admin
        .submit(
            &format!("{}/sessions/{session}/end", user_page(&app, TARGET)),
            &[],
        )
        .await;

    assert_see_other(&response, &user_page(&app, TARGET));
    assert_eq!(snapshot(&app), before);
    assert_eq!(app.get("/users/me", &other.access).await.status(), 200);
}

#[tokio::test]
async fn signing_out_a_session_needs_the_csrf_token() {
    let (app, admin) = admin_app().await;
    app.user(TARGET).await;
    let page = user_page(&app, TARGET);
    let session = listed_sessions(&admin.page(&page).await).remove(0);
    let before = snapshot(&app);

    let response = admin
        .post_form(&format!("{page}/sessions/{session}/end"), &[])
        .await;

    assert_eq!(response.status(), 403);
    assert_csrf_page(response).await;
    assert_eq!(snapshot(&app), before);
}

#[tokio::test]
async fn each_action_has_its_place_and_comes_back_to_the_page() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    let id = app.user_id(TARGET);
    let page = user_page(&app, TARGET);

    let html = admin.page(&page).await;
    for action in [
        "promote",
        "deactivate",
        "verify",
        "end-sessions",
        "reset-mfa",
        "delete",
    ] {
        assert!(
            html.contains(&format!("action=\"/admin/users/{id}/{action}\"")),
            "{action}"
        );
    }
    assert_eq!(input_value(&html, "next").unwrap(), page);

    let response = admin
        .submit(&format!("{page}/verify"), &[("next", &page)])
        .await;
    assert_see_other(&response, &page);
    let response = admin
        .submit(
            &format!("{page}/promote"),
            &[("next", &page), ("confirm", "yes")],
        )
        .await;
    assert_see_other(&response, &page);
    let html = admin.page(&page).await;
    assert!(html.contains(&format!("action=\"/admin/users/{id}/demote\"")));
    assert!(!html.contains(&format!("action=\"/admin/users/{id}/verify\"")));
    assert!(app.user_row(TARGET).unwrap().is_superuser);

    // Deleting from the page goes back to the list: the page is gone.
    let response = admin
        .submit(
            &format!("{page}/delete"),
            &[("next", &page), ("confirm", "yes")],
        )
        .await;
    assert_see_other(&response, LIST);
    assert!(app.user_row(TARGET).is_none());
    assert_eq!(admin.get(&page).await.status(), 404);
}

#[tokio::test]
async fn ones_own_page_disables_what_would_lock_one_out() {
    let (app, admin) = admin_app().await;
    let id = app.user_id(ADMIN);

    let html = admin.page(&user_page(&app, ADMIN)).await;

    assert!(html.contains("you-badge"), "{html}");
    assert!(html.contains("id=\"self-hint\""));
    for action in ["demote", "deactivate", "reset-mfa", "delete"] {
        assert!(
            !html.contains(&format!("action=\"/admin/users/{id}/{action}\"")),
            "{action}"
        );
        let button = format!("action-{action}\" disabled aria-disabled=\"true\" title=\"");
        assert!(html.contains(&button), "{action}: {html}");
    }
    assert!(html.contains(&format!("action=\"/admin/users/{id}/end-sessions\"")));
}

// ---------------------------------------------------------------------------------------------
// Last sign-in

#[tokio::test]
async fn a_page_login_and_an_api_login_record_the_last_sign_in() {
    let app = spawn_page_app().await;
    app.register(TARGET, PASSWORD).await;
    app.register("api@example.com", PASSWORD).await;
    assert_eq!(
        last_login_at(&app, TARGET),
        None,
        "signing up is no sign-in"
    );
    let before = now();

    PageClient::logged_in(&app, TARGET).await;
    app.tokens("api@example.com", PASSWORD).await;

    for email in [TARGET, "api@example.com"] {
        let at = last_login_at(&app, email).expect("recorded");
        assert!(at >= before && at <= now(), "{email}: {at}");
    }
    // A failed login is no sign-in.
    app.register("failed@example.com", PASSWORD).await;
    let refused = app.login("failed@example.com", "wrong password!").await;
    assert_eq!(refused.status(), 400);
    assert_eq!(last_login_at(&app, "failed@example.com"), None);
}

#[tokio::test]
async fn a_refresh_is_no_new_sign_in() {
    let app = spawn_page_app().await;
    let tokens = app.user(TARGET).await;
    app.execute(&format!(
        "UPDATE users SET last_login_at = 1000 WHERE email = '{TARGET}'"
    ));

    assert_eq!(app.refresh(&tokens.refresh).await.status(), 200);

    assert_eq!(last_login_at(&app, TARGET), Some(1000));
}
