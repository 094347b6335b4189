//! Sessions on the pages: the account page's table of signed-in devices and its forms, and a
//! superuser's "sign out everywhere" on the admin list.

use crate::helpers::*;
use crate::page_client::*;
use crate::tokens::session_of;

const USER: &str = "user@example.com";
const OTHER: &str = "other@example.com";
const ADMIN: &str = "admin@example.com";
const PHONE: &str = "Mozilla/5.0 (iPhone) Phone";
const TABLET: &str = "Mozilla/5.0 (iPad) Tablet";
const ACCOUNT: &str = "/account";
const LIST: &str = "/admin/users";

/// The rows of `#sessions-table`: each session id with the HTML of its row.
fn session_rows(html: &str) -> Vec<(String, String)> {
    let table = &html[html
        .find("id=\"sessions-table\"")
        .expect("a #sessions-table")..];
    let table = &table[..table.find("</table>").unwrap()];
    const MARK: &str = "<tr data-session-id=\"";
    table
        .match_indices(MARK)
        .map(|(at, _)| {
            let rest = &table[at + MARK.len()..];
            let id = rest[..rest.find('"').unwrap()].to_owned();
            let row = rest[..rest.find("</tr>").unwrap()].to_owned();
            (id, row)
        })
        .collect()
}

fn row<'a>(rows: &'a [(String, String)], id: &str) -> &'a str {
    &rows
        .iter()
        .find(|(row_id, _)| row_id == id)
        .unwrap_or_else(|| panic!("no row for session {id} in {rows:?}"))
        .1
}

fn end_path(session_id: &str) -> String {
    format!("/account/sessions/{session_id}/end")
}

async fn assert_live(app: &TestApp, tokens: &Tokens, what: &str) {
    assert_eq!(
        app.get("/users/me", &tokens.access).await.status(),
        200,
        "{what}"
    );
}

/// A user signed in in a browser, and on a phone through the API.
async fn browser_and_phone(app: &TestApp) -> (PageClient, Tokens) {
    let browser = PageClient::user(app, USER).await;
    let phone = login_from(app, USER, PHONE).await;
    (browser, phone)
}

// ---------------------------------------------------------------------------------------------
// The account page's table

#[tokio::test]
async fn the_account_page_lists_each_session_and_marks_this_device() {
    let app = spawn_page_app().await;
    let (browser, phone) = browser_and_phone(&app).await;
    let here = browser.session();

    let html = browser.page(ACCOUNT).await;

    let rows = session_rows(&html);
    let mut ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    ids.sort_unstable();
    let mut expected = vec![here.clone(), session_of(&phone.access)];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    let this = row(&rows, &here);
    assert!(this.contains("This device"), "{this}");
    assert!(
        this.contains("Unknown device"),
        "no User-Agent was sent: {this}"
    );
    assert!(
        !this.contains("<form"),
        "no sign-out button for this device: {this}"
    );

    let other = row(&rows, &session_of(&phone.access));
    assert!(other.contains(PHONE), "{other}");
    assert!(!other.contains("This device"), "{other}");
    assert!(
        other.contains(&format!(
            "action=\"{}\"",
            end_path(&session_of(&phone.access))
        )),
        "{other}"
    );
    assert!(other.contains("name=\"csrf_token\""), "{other}");
    assert!(
        html.contains("action=\"/account/sessions/end-others\""),
        "{html}"
    );
}

#[tokio::test]
async fn a_lone_session_has_no_sign_out_others_form() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;

    let html = browser.page(ACCOUNT).await;

    let rows = session_rows(&html);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, browser.session());
    assert!(!html.contains("/account/sessions/end-others"), "{html}");
}

#[tokio::test]
async fn only_this_users_live_sessions_are_shown() {
    let app = spawn_page_app().await;
    let (browser, phone) = browser_and_phone(&app).await;
    let other = app.user(OTHER).await;
    let tablet = login_from(&app, USER, TABLET).await;
    let response = app
        .client
        .post(app.url("/auth/jwt/logout"))
        .bearer_auth(&tablet.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let rows = session_rows(&browser.page(ACCOUNT).await);

    let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&session_of(&phone.access).as_str()));
    assert!(
        !ids.contains(&session_of(&other.access).as_str()),
        "another user's session"
    );
    assert!(
        !ids.contains(&session_of(&tablet.access).as_str()),
        "an ended session"
    );
}

#[tokio::test]
async fn a_user_agent_with_markup_is_escaped() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;
    let hostile = "Evil\"><script>alert(1)</script>";
    let phone = login_from(&app, USER, hostile).await;

    let html = browser.page(ACCOUNT).await;

    assert_not_raw(&html, "<script>alert(1)</script>");
    assert_not_raw(&html, "Evil\">");
    let rows = session_rows(&html);
    let shown = row(&rows, &session_of(&phone.access));
    assert!(unescape(shown).contains(hostile), "{shown}");
}

const CHROME_ON_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                                 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SAFARI_ON_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
                                AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 \
                                Mobile/15E148 Safari/604.1";

#[tokio::test]
async fn sessions_are_named_as_people_name_their_devices() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;
    let cases = [
        (CHROME_ON_WINDOWS, "Chrome on Windows"),
        (SAFARI_ON_IPHONE, "Safari on iPhone"),
        ("curl/8.5", "API client (curl/8.5)"),
    ];
    let mut sessions = Vec::new();
    for (agent, _) in cases {
        sessions.push(session_of(&login_from(&app, USER, agent).await.access));
    }

    let html = browser.page(ACCOUNT).await;

    let rows = session_rows(&html);
    for ((agent, name), id) in cases.iter().zip(&sessions) {
        let shown = row(&rows, id);
        assert_eq!(
            text_of(shown, "class=\"device-name\"").as_deref(),
            Some(*name),
            "{agent}"
        );
        assert!(
            unescape(shown).contains(&format!("title=\"{agent}\"")),
            "the whole user agent on hover: {shown}"
        );
        assert!(
            shown.contains(&format!("aria-label=\"Sign out {name}\"")),
            "the button names its session: {shown}"
        );
    }
    let this = row(&rows, &browser.session());
    assert_eq!(
        text_of(this, "class=\"device-name\"").as_deref(),
        Some("Unknown device")
    );
}

#[tokio::test]
async fn sessions_show_their_address_and_when_in_words_with_the_exact_time() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;
    let phone = login_from(&app, USER, PHONE).await;
    let phone = session_of(&phone.access);
    let three_days_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 3 * 86_400 - 100;
    app.execute(&format!(
        "UPDATE sessions SET created_at = {three_days_ago}, \
         last_used_at = {three_days_ago} + 86400 WHERE id = '{phone}'"
    ));

    let html = browser.page(ACCOUNT).await;

    let rows = session_rows(&html);
    let shown = row(&rows, &phone);
    assert_eq!(
        text_of(shown, "class=\"device-address").as_deref(),
        Some("127.0.0.1"),
        "{shown}"
    );
    let started = &shown[shown.find("class=\"session-started\"").unwrap()..];
    assert_eq!(text_of(started, "<time").as_deref(), Some("3 days ago"));
    let exact = text_of(started, "class=\"when-exact\"").unwrap();
    assert!(exact.ends_with(" UTC"), "the exact time, shown: {exact}");
    assert!(
        started.contains(&format!("title=\"{exact}\"")),
        "and on hover: {started}"
    );
    let datetime = &started[started.find("datetime=\"").unwrap() + 10..];
    let datetime = &datetime[..datetime.find('"').unwrap()];
    assert!(
        datetime.len() == 20 && datetime.ends_with('Z'),
        "machine-readable: {datetime}"
    );
    let active = &shown[shown.find("class=\"session-active\"").unwrap()..];
    assert_eq!(text_of(active, "<time").as_deref(), Some("2 days ago"));
    let here = row(&rows, &browser.session());
    let here_active = &here[here.find("class=\"session-active\"").unwrap()..];
    assert_eq!(text_of(here_active, "<time").as_deref(), Some("just now"));
}

#[tokio::test]
async fn expired_sessions_are_not_listed() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;
    let phone = session_of(&login_from(&app, USER, PHONE).await.access);
    app.execute(&format!(
        "UPDATE sessions SET expires_at = 1 WHERE id = '{phone}'"
    ));

    let rows = session_rows(&browser.page(ACCOUNT).await);

    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, browser.session());
}

// ---------------------------------------------------------------------------------------------
// Signing out one other session

#[tokio::test]
async fn signing_out_another_session_from_the_account_page() {
    let app = spawn_page_app().await;
    let (browser, phone) = browser_and_phone(&app).await;
    let here = browser.session();

    let response = browser
        .submit(&end_path(&session_of(&phone.access)), &[])
        .await;

    assert_see_other(&response, ACCOUNT);
    assert_ended(&app, &phone, "the phone").await;
    let html = browser.page(ACCOUNT).await;
    assert_eq!(
        flashes_in(&html),
        [Flash::success("That session has been signed out.")]
    );
    let rows = session_rows(&html);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, here, "this browser is still signed in");
}

#[tokio::test]
async fn signing_out_a_session_needs_the_csrf_token() {
    let app = spawn_page_app().await;
    let (browser, phone) = browser_and_phone(&app).await;
    let path = end_path(&session_of(&phone.access));

    assert_csrf_page(browser.post_form(&path, &[]).await).await;
    assert_csrf_page(browser.post_form(&path, &[("csrf_token", "forged")]).await).await;

    assert_live(&app, &phone, "the phone").await;
    assert_eq!(session_rows(&browser.page(ACCOUNT).await).len(), 2);
}

#[tokio::test]
async fn another_users_session_cannot_be_signed_out_from_the_page() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;
    let other = app.user(OTHER).await;

    let response = browser
        .submit(&end_path(&session_of(&other.access)), &[])
        .await;

    assert_see_other(&response, ACCOUNT);
    assert_eq!(
        browser.flashes_on(ACCOUNT).await,
        [Flash::error("That session had already ended.")]
    );
    assert_live(&app, &other, "the other user's session").await;
}

#[tokio::test]
async fn signing_out_a_malformed_session_id_is_404() {
    let app = spawn_page_app().await;
    let (browser, phone) = browser_and_phone(&app).await;

    let response = browser.submit(&end_path("not-a-uuid"), &[]).await;

    assert_eq!(response.status(), 404);
    assert_live(&app, &phone, "the phone").await;
}

// ---------------------------------------------------------------------------------------------
// Signing out every other session

#[tokio::test]
async fn signing_out_every_other_session_keeps_this_browser() {
    let app = spawn_page_app().await;
    let (browser, phone) = browser_and_phone(&app).await;
    let tablet = login_from(&app, USER, TABLET).await;
    let other = app.user(OTHER).await;
    let here = browser.session();

    let response = browser.submit("/account/sessions/end-others", &[]).await;

    assert_see_other(&response, ACCOUNT);
    assert_ended(&app, &phone, "the phone").await;
    assert_ended(&app, &tablet, "the tablet").await;
    assert_live(&app, &other, "another user").await;
    let html = browser.page(ACCOUNT).await;
    assert_eq!(
        flashes_in(&html),
        [Flash::success("Every other session has been signed out.")]
    );
    let rows = session_rows(&html);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, here);
    assert!(!html.contains("/account/sessions/end-others"), "{html}");
}

#[tokio::test]
async fn signing_out_every_other_session_needs_the_csrf_token() {
    let app = spawn_page_app().await;
    let (browser, phone) = browser_and_phone(&app).await;

    let response = browser.post_form("/account/sessions/end-others", &[]).await;

    assert_csrf_page(response).await;
    assert_live(&app, &phone, "the phone").await;
    assert_eq!(session_rows(&browser.page(ACCOUNT).await).len(), 2);
}

#[tokio::test]
async fn a_session_signed_out_from_another_device_leaves_this_browser_signed_out() {
    let app = spawn_page_app().await;
    let (browser, phone) = browser_and_phone(&app).await;

    let path = format!("/users/me/sessions/{}", browser.session());
    assert_eq!(app.delete(&path, &phone.access).await.status(), 204);

    assert_see_other(&browser.get(ACCOUNT).await, "/login?next=%2Faccount");
    assert_eq!(browser.signed_in_as().await, None);
}

// ---------------------------------------------------------------------------------------------
// A superuser signs a user out everywhere from the admin list (members cannot:
// `pages_access.rs`)

fn end_sessions_path(app: &TestApp, email: &str) -> String {
    format!("/admin/users/{}/end-sessions", app.user_id(email))
}

#[tokio::test]
async fn the_admin_list_offers_sign_out_everywhere_for_each_user() {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    app.user(USER).await;

    let html = admin.page(LIST).await;

    for email in [ADMIN, USER] {
        let action = format!("action=\"{}\"", end_sessions_path(&app, email));
        assert!(html.contains(&action), "{action} in {html}");
    }
}

#[tokio::test]
async fn a_superuser_signs_a_user_out_everywhere_from_the_admin_page() {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    let (user_browser, phone) = browser_and_phone(&app).await;
    let other = app.user(OTHER).await;

    let response = admin
        .submit(&end_sessions_path(&app, USER), &[("next", LIST)])
        .await;

    assert_see_other(&response, LIST);
    assert_eq!(
        admin.flashes_on(LIST).await,
        [Flash::success(&format!(
            "{USER} has been signed out everywhere."
        ))]
    );
    assert_ended(&app, &phone, "the user's phone").await;
    assert_see_other(&user_browser.get(ACCOUNT).await, "/login?next=%2Faccount");
    assert_live(&app, &other, "another user").await;
    assert_eq!(admin.signed_in_as().await.as_deref(), Some(ADMIN));
    // Signed out, not locked out.
    login_from(&app, USER, PHONE).await;
}

#[tokio::test]
async fn sign_out_everywhere_needs_the_csrf_token() {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    let (_, phone) = browser_and_phone(&app).await;

    let response = admin
        .post_form(&end_sessions_path(&app, USER), &[("next", LIST)])
        .await;

    assert_csrf_page(response).await;
    assert_live(&app, &phone, "the user's phone").await;
}
