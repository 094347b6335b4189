//! `/admin/audit`: the superusers' view of the audit log, its filters and pagination. Events
//! are made through the real API, as they would be in production.

use reqwest::header::USER_AGENT;
use serde_json::json;

use crate::helpers::*;
use crate::page_client::*;

const ADMIN: &str = "admin@example.com";
const MEMBER: &str = "member@example.com";
const PAGE: &str = "/admin/audit";

/// One listed event, from the data attributes of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    event: String,
    actor: String,
    subject: String,
    ip: String,
}

fn row(event: &str, actor: &str, subject: &str) -> Row {
    Row {
        event: event.to_owned(),
        actor: actor.to_owned(),
        subject: subject.to_owned(),
        ip: "127.0.0.1".to_owned(),
    }
}

/// The events listed on the page, in order.
fn rows(html: &str) -> Vec<Row> {
    let events = attribute_values(html, "data-event");
    let actors = attribute_values(html, "data-actor");
    let subjects = attribute_values(html, "data-subject");
    let ips = attribute_values(html, "data-ip");
    assert_eq!(events.len(), actors.len());
    assert_eq!(events.len(), subjects.len());
    assert_eq!(events.len(), ips.len());
    (0..events.len())
        .map(|i| Row {
            event: events[i].clone(),
            actor: actors[i].clone(),
            subject: subjects[i].clone(),
            ip: ips[i].clone(),
        })
        .collect()
}

fn events(html: &str) -> Vec<String> {
    attribute_values(html, "data-event")
}

/// The markup of the `index`th listed event's row.
fn row_html(html: &str, index: usize) -> &str {
    let start = html
        .match_indices("<tr data-id=")
        .nth(index)
        .unwrap_or_else(|| panic!("no row {index}"))
        .0;
    &html[start..start + html[start..].find("</tr>").unwrap()]
}

fn count_text(html: &str) -> String {
    text_of(html, "id=\"event-count\"").expect("the event count")
}

/// The address of the listing with these query parameters, encoded as a browser would.
fn filtered(params: &[(&str, &str)]) -> String {
    format!("{PAGE}?{}", serde_urlencoded::to_string(params).unwrap())
}

async fn admin_app_with(vars: &[(&str, &str)]) -> (TestApp, PageClient) {
    let mut all = vec![("COOKIE_SECURE", "false")];
    all.extend_from_slice(vars);
    let app = spawn_app_with(&all).await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    (app, admin)
}

/// An app with a superuser signed in to the pages. Its first events are the superuser's signup
/// and two logins (through the API, then the login page).
async fn admin_app() -> (TestApp, PageClient) {
    admin_app_with(&[]).await
}

/// A failed API login, with extra request headers.
async fn failed_login(app: &TestApp, username: &str, headers: &[(&str, &str)]) {
    let mut request = app
        .client
        .post(app.url("/auth/jwt/login"))
        .form(&[("username", username), ("password", "not the password")]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 400, "failed login of {username}");
}

/// Makes `email` a superuser through the API, as `admin` (a superuser's access token).
async fn promote(app: &TestApp, admin: &str, email: &str) {
    let path = format!("/users/{}", app.user_id(email));
    let response = app.patch(&path, admin, json!({"is_superuser": true})).await;
    assert_eq!(response.status(), 200, "promote {email}");
}

// ---------------------------------------------------------------------------------------------
// Who may see the page (signed-out visitors and members: `pages_access.rs`)

#[tokio::test]
async fn only_superusers_get_the_audit_link() {
    let (app, admin) = admin_app().await;
    let member = PageClient::user(&app, MEMBER).await;

    assert!(admin.page("/").await.contains("href=\"/admin/audit\""));
    assert!(!member.page("/").await.contains("href=\"/admin/audit\""));
}

#[tokio::test]
async fn audit_page_answers_head() {
    let (app, admin) = admin_app().await;

    let response = admin.client.head(admin.url(PAGE)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_html(&response);
    assert!(response.bytes().await.unwrap().is_empty());

    let anonymous = PageClient::new(&app);
    let response = anonymous
        .client
        .head(anonymous.url(PAGE))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(location(&response).starts_with("/login"));
}

// ---------------------------------------------------------------------------------------------
// The listing

#[tokio::test]
async fn events_are_listed_newest_first_with_actor_subject_and_ip() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    let agent = "Mozilla/5.0 (X11; Linux x86_64) AuditTest/1.0 with a rather long tail";
    failed_login(&app, MEMBER, &[("user-agent", agent)]).await;
    let api = app.tokens(ADMIN, PASSWORD).await;
    promote(&app, &api.access, MEMBER).await;

    let html = admin.page(PAGE).await;

    assert_eq!(
        rows(&html),
        [
            row("user_promoted", ADMIN, MEMBER),
            row("login_succeeded", ADMIN, ADMIN),
            row("login_failed", "", MEMBER),
            row("signup", MEMBER, MEMBER),
            row("login_succeeded", ADMIN, ADMIN),
            row("login_succeeded", ADMIN, ADMIN),
            row("signup", ADMIN, ADMIN),
        ]
    );
    assert_eq!(count_text(&html), "7 events");
    assert!(rel_link(&html, "next").is_none());
    assert!(rel_link(&html, "prev").is_none());

    let promoted = row_html(&html, 0);
    assert!(promoted.contains(">Promoted</td>"), "{promoted}");
    let admin_filter = format!("href=\"/admin/audit?q={}\"", app.user_id(ADMIN));
    let member_filter = format!("href=\"/admin/audit?q={}\"", app.user_id(MEMBER));
    assert!(
        promoted.contains(&admin_filter),
        "actor links to its events"
    );
    assert!(
        promoted.contains(&member_filter),
        "subject links to its events"
    );
    let time = text_of(promoted, "<time").unwrap();
    assert_eq!(time.len(), "2026-11-22 14:03 UTC".len(), "{time}");
    assert!(time.ends_with(" UTC"), "{time}");
    let exact = attribute_values(promoted, "title")[0].clone();
    assert!(
        exact.starts_with(&time[..16]),
        "{exact} is {time} to the second"
    );
    assert_eq!(exact.len(), "2026-11-22 14:03:27 UTC".len(), "{exact}");

    let failed = row_html(&html, 2);
    assert!(failed.contains(">Failed login</td>"), "{failed}");
    assert!(
        failed.contains("<span class=\"muted\">—</span>"),
        "no actor"
    );
    assert_eq!(
        text_of(failed, "class=\"detail\"").unwrap(),
        "wrong password or inactive account"
    );
    assert_eq!(
        text_of(failed, "class=\"agent\"").unwrap(),
        agent,
        "the whole agent, shortened by CSS"
    );
    assert!(attribute_values(failed, "title").contains(&agent.to_owned()));
    assert!(failed.contains("<code>127.0.0.1</code>"), "{failed}");
}

#[tokio::test]
async fn an_empty_log_says_so() {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    app.execute("DELETE FROM audit_events");

    let html = admin.page(PAGE).await;
    assert_eq!(rows(&html), []);
    assert_eq!(count_text(&html), "No events recorded yet");

    let html = admin.page("/admin/audit?q=nobody").await;
    assert_eq!(count_text(&html), "No events match");
    assert!(html.contains("No events match these filters."), "{html}");
}

#[tokio::test]
async fn the_event_filter_lists_only_that_event_and_keeps_it_selected() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    failed_login(&app, MEMBER, &[]).await;
    failed_login(&app, "nobody@example.com", &[]).await;

    let html = admin.page("/admin/audit?event=login_failed").await;

    assert_eq!(
        rows(&html),
        [row("login_failed", "", ""), row("login_failed", "", MEMBER)]
    );
    assert_eq!(count_text(&html), "2 events match");
    assert!(html.contains("<option value=\"login_failed\" selected>Failed login</option>"));
    assert!(html.contains("<option value=\"signup\">Signed up</option>"));
    assert!(html.contains("<option value=\"\">All events</option>"));
    let every_event = gatehouse::domain::AuditEvent::ALL.len();
    assert_eq!(
        html.matches("<option ").count(),
        every_event + 1,
        "all events + each"
    );
    let detail = text_of(row_html(&html, 0), "class=\"detail\"").unwrap();
    assert!(
        detail.starts_with("unknown email n…@example.com (ref "),
        "{detail}"
    );

    let html = admin.page("/admin/audit?event=signup").await;
    assert_eq!(events(&html), ["signup", "signup"]);
    assert_eq!(count_text(&html), "2 events match");

    let html = admin.page("/admin/audit?event=").await;
    assert_eq!(events(&html).len(), 6, "an empty event is every event");
    assert!(!html.contains(" selected>"), "{html}");
}

#[tokio::test]
async fn an_unknown_event_is_a_400_page() {
    let (_app, admin) = admin_app().await;

    for event in [
        "bogus",
        "LOGIN_FAILED",
        "<script>alert(1)</script>",
        "signup%00",
    ] {
        let response = admin.get(&filtered(&[("event", event)])).await;
        assert_eq!(response.status(), 400, "{event}");
        assert_html(&response);
        let html = response.text().await.unwrap();
        assert!(html.contains("That request didn’t make sense"), "{html}");
        assert_not_raw(&html, "<script>alert(1)");
    }
}

#[tokio::test]
async fn q_matches_part_of_an_email_or_an_exact_id_as_actor_or_subject() {
    let (app, admin) = admin_app().await;
    app.register("alice@example.com", PASSWORD).await;
    app.register("bob@example.org", PASSWORD).await;
    let api = app.tokens(ADMIN, PASSWORD).await;
    promote(&app, &api.access, "bob@example.org").await;
    let bob_id = app.user_id("bob@example.org");
    let admin_id = app.user_id(ADMIN);

    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        ("ALICE".into(), vec!["signup"], "1 event matches"),
        ("  alice@  ".into(), vec!["signup"], "1 event matches"),
        (
            "example.org".into(),
            vec!["user_promoted", "signup"],
            "2 events match",
        ),
        (
            bob_id.clone(),
            vec!["user_promoted", "signup"],
            "2 events match",
        ),
        (
            admin_id.clone(),
            vec![
                "user_promoted",
                "login_succeeded",
                "login_succeeded",
                "login_succeeded",
                "signup",
            ],
            "5 events match",
        ),
        // An id matches whole, not in part; `%` and `_` are not wildcards.
        (bob_id[..8].to_owned(), vec![], "No events match"),
        ("%".into(), vec![], "No events match"),
        ("a_ice".into(), vec![], "No events match"),
    ];

    for (q, expected, count) in cases {
        let html = admin.page(&filtered(&[("q", &q)])).await;
        assert_eq!(events(&html), expected, "q={q:?}");
        assert_eq!(count_text(&html), count, "q={q:?}");
        assert_eq!(input_value(&html, "q").unwrap(), q.trim(), "q={q:?}");
    }

    let html = admin.page(&filtered(&[("q", "example.org")])).await;
    assert_eq!(
        rows(&html),
        [
            row("user_promoted", ADMIN, "bob@example.org"),
            row("signup", "bob@example.org", "bob@example.org"),
        ],
        "matched as subject, and as actor"
    );
}

#[tokio::test]
async fn q_matches_part_of_a_client_name_in_any_letter_case() {
    let (app, admin) = admin_app().await;
    let api = app.tokens(ADMIN, PASSWORD).await;
    let client = app
        .machine_client(&api.access, "Billing Service", &[])
        .await;

    for q in ["billing", "SERVICE", client.id.as_str()] {
        let html = admin.page(&filtered(&[("q", q)])).await;
        assert_eq!(
            rows(&html),
            [row("client_created", ADMIN, "Billing Service")],
            "q={q}"
        );
    }
}

#[tokio::test]
async fn q_matches_a_name_with_accented_capitals_as_it_is_written() {
    let (app, admin) = admin_app().await;
    let api = app.tokens(ADMIN, PASSWORD).await;
    app.machine_client(&api.access, "ÜBERWEISUNG Service", &[])
        .await;

    // The name as the page shows it must find it, whatever SQL can fold.
    for q in ["weisung", "ÜBERWEISUNG", "ÜBERWEISUNG Service"] {
        let html = admin.page(&filtered(&[("q", q)])).await;
        assert_eq!(events(&html), ["client_created"], "q={q}");
    }
}

#[tokio::test]
async fn the_ip_filter_matches_the_address_exactly() {
    let (app, admin) = admin_app_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.register(MEMBER, PASSWORD).await;
    for ip in ["203.0.113.7", "198.51.100.9", "203.0.113.7", "2001:db8::42"] {
        failed_login(&app, MEMBER, &[("x-forwarded-for", ip)]).await;
    }

    let html = admin.page("/admin/audit?ip=203.0.113.7").await;
    let from = |ip: &str| Row {
        ip: ip.to_owned(),
        ..row("login_failed", "", MEMBER)
    };
    assert_eq!(rows(&html), [from("203.0.113.7"), from("203.0.113.7")]);
    assert_eq!(count_text(&html), "2 events match");
    assert_eq!(input_value(&html, "ip").unwrap(), "203.0.113.7");

    let html = admin.page(&filtered(&[("ip", " 198.51.100.9 ")])).await;
    assert_eq!(rows(&html), [from("198.51.100.9")]);

    let html = admin.page(&filtered(&[("ip", "2001:DB8:0:0::42")])).await;
    assert_eq!(
        rows(&html),
        [from("2001:db8::42")],
        "an address however written"
    );
    assert_eq!(input_value(&html, "ip").unwrap(), "2001:DB8:0:0::42");

    let html = admin.page("/admin/audit?ip=203.0.113").await;
    assert_eq!(rows(&html), [], "no prefix matches");
    assert_eq!(count_text(&html), "No events match");

    let html = admin.page("/admin/audit?ip=127.0.0.1").await;
    assert_eq!(
        events(&html),
        ["signup", "login_succeeded", "login_succeeded", "signup"]
    );

    let html = admin
        .page("/admin/audit?event=signup&ip=127.0.0.1&q=member")
        .await;
    assert_eq!(
        rows(&html),
        [row("signup", MEMBER, MEMBER)],
        "filters combine"
    );
}

#[tokio::test]
async fn pagination_keeps_the_filters_across_two_pages() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    for _ in 0..55 {
        failed_login(&app, MEMBER, &[]).await;
    }
    let first = admin
        .page("/admin/audit?event=login_failed&q=member%40example.com")
        .await;
    let filters = "/admin/audit?event=login_failed&q=member%40example.com";

    assert_eq!(count_text(&first), "55 events match");
    assert_eq!(events(&first).len(), 50);
    assert!(events(&first).iter().all(|e| e == "login_failed"));
    assert!(rel_link(&first, "prev").is_none());
    let first_ids = attribute_values(&first, "data-id");
    let second_path = format!("{filters}&after={}", first_ids[49]);
    assert_eq!(rel_link(&first, "next").unwrap(), second_path);

    let second = admin.page(&second_path).await;
    assert_eq!(events(&second), vec!["login_failed"; 5]);
    assert!(rel_link(&second, "next").is_none());
    let second_ids = attribute_values(&second, "data-id");
    let back = format!("{filters}&before={}", second_ids[0]);
    assert_eq!(rel_link(&second, "prev").unwrap(), back);
    assert_eq!(input_value(&second, "q").unwrap(), MEMBER);
    assert!(second.contains("<option value=\"login_failed\" selected>"));
    assert_eq!(
        attribute_values(&admin.page(&back).await, "data-id"),
        first_ids,
        "back to the first page"
    );

    let mut ids = first_ids.clone();
    ids.extend(second_ids);
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (total, ids.len()),
        (55, 55),
        "each event on exactly one page"
    );

    // Page numbers, and ids that are no event's, start from the newest.
    for query in ["page=2", "after=nobody", "before=", "after=%25"] {
        let html = admin.page(&format!("{filters}&{query}")).await;
        assert_eq!(attribute_values(&html, "data-id"), first_ids, "{query}");
    }

    // Unfiltered: 3 + 1 + 55 events.
    let html = admin.page(PAGE).await;
    assert_eq!(count_text(&html), "59 events");
    let next = rel_link(&html, "next").expect("a second page");
    let html = admin.page(&next).await;
    assert_eq!(events(&html).len(), 9);
    assert!(rel_link(&html, "prev")
        .unwrap()
        .starts_with("/admin/audit?before="));
}

#[tokio::test]
async fn the_user_list_links_to_each_users_activity() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    let member_id = app.user_id(MEMBER);

    let users = admin.page("/admin/users").await;
    let link = format!("/admin/audit?q={member_id}");
    assert!(users.contains(&format!("href=\"{link}\"")), "{users}");

    let html = admin.page(&link).await;
    assert_eq!(rows(&html), [row("signup", MEMBER, MEMBER)]);
}

#[tokio::test]
async fn a_deleted_users_events_stay_readable() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    let member_id = app.user_id(MEMBER);
    let api = app.tokens(ADMIN, PASSWORD).await;
    let response = app
        .delete(&format!("/users/{member_id}"), &api.access)
        .await;
    assert_eq!(response.status(), 204);

    let html = admin.page(&filtered(&[("q", &member_id)])).await;
    assert_eq!(
        rows(&html),
        [
            row("user_deleted", ADMIN, MEMBER),
            row("signup", MEMBER, MEMBER)
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Escaping

#[tokio::test]
async fn hostile_strings_in_events_are_escaped() {
    let (app, admin) = admin_app().await;
    let api = app.tokens(ADMIN, PASSWORD).await;
    let name = "<b onmouseover=alert(1)>billing</b>";
    app.machine_client(&api.access, name, &[]).await;
    let username = "<script>alert(1)</script>@example.com";
    let agent = "\"><img src=x onerror=alert(1)>";
    failed_login(&app, username, &[(USER_AGENT.as_str(), agent)]).await;

    let html = admin.page(PAGE).await;

    for raw in ["<script>alert", "<img src=x", "<b onmouseover", agent] {
        assert_not_raw(&html, raw);
    }
    let failed = row_html(&html, 0);
    // What was typed names no account and is no address: none of it is kept.
    let detail = text_of(failed, "class=\"detail\"").unwrap();
    assert!(
        detail.starts_with("unknown email (not an address) (ref "),
        "{detail}"
    );
    assert_eq!(text_of(failed, "class=\"agent\"").unwrap(), agent);
    assert!(attribute_values(failed, "title").contains(&agent.to_owned()));
    assert_eq!(
        rows(&html)[1],
        row("client_created", ADMIN, name),
        "the name, unescaped, is the subject"
    );
}

#[tokio::test]
async fn hostile_filters_are_escaped_in_the_form() {
    let (_app, admin) = admin_app().await;

    for hostile in [
        "\"><script>alert(1)</script>",
        "'><svg onload=alert(1)>",
        "<img src=x onerror=alert(1)>",
    ] {
        let html = admin
            .page(&filtered(&[("q", hostile), ("ip", hostile)]))
            .await;
        for raw in [hostile, "<script>alert", "<svg", "<img src=x"] {
            assert_not_raw(&html, raw);
        }
        assert_eq!(input_value(&html, "q").unwrap(), hostile);
        assert_eq!(input_value(&html, "ip").unwrap(), hostile);
        assert_eq!(count_text(&html), "No events match");
    }
}

#[tokio::test]
async fn an_accounts_whole_address_finds_its_events_under_any_earlier_address() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    let member_id = app.user_id(MEMBER);
    app.execute(&format!(
        "UPDATE audit_events SET subject_label = 'old@example.com', \
         actor_label = 'old@example.com', search_text = 'old@example.com' \
         WHERE subject_id = '{member_id}'"
    ));

    let html = admin.page(&filtered(&[("q", MEMBER)])).await;

    assert_eq!(events(&html), ["signup"], "found by the account's id");
    let html = admin.page(&filtered(&[("q", "old@example")])).await;
    assert_eq!(
        events(&html),
        ["signup"],
        "part of the old address, as recorded"
    );
}
