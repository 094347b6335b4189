//! The audit log: each security event leaves exactly one row, naming who did it to whom and
//! from where; `GET /audit` lists them for superusers, newest first, with filters and pages.

use reqwest::header::USER_AGENT;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::page_client::PageClient;
use crate::tokens::claims_of;

const ADMIN: &str = "admin@example.com";
const USER: &str = "user@example.com";
const OTHER: &str = "other@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase for the audit";
const AGENT: &str = "AuditTest/1.0 (X11; Linux)";

/// `GET /audit{query}` as `token`, asserting 200; returns the page.
async fn audit(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/audit{query}"), token).await;
    assert_eq!(response.status(), 200, "/audit{query}");
    response.json().await.unwrap()
}

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().expect("items is an array").clone()
}

/// The event names of a page, in order.
fn event_names(page: &Value) -> Vec<String> {
    items(page)
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

/// Rows of this event in the database.
fn rows(app: &TestApp, event: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM audit_events WHERE event = '{event}'"
    ))
}

/// Every event's row count, to compare before and after an action.
fn census(app: &TestApp) -> Vec<(String, i64)> {
    EVENTS
        .iter()
        .map(|event| ((*event).to_owned(), rows(app, event)))
        .collect()
}

const EVENTS: [&str; 17] = [
    "signup",
    "login_succeeded",
    "login_failed",
    "logout",
    "refresh_reuse_detected",
    "password_changed",
    "password_reset",
    "email_changed",
    "email_verified",
    "user_promoted",
    "user_demoted",
    "user_activated",
    "user_deactivated",
    "user_deleted",
    "client_created",
    "client_deleted",
    "session_ended",
];

/// Asserts that between `before` and now exactly one `event` row was added (and none of the
/// kinds in `unchanged`), and returns the newest such event as `GET /audit` lists it.
async fn one_new(
    app: &TestApp,
    admin: &str,
    before: &[(String, i64)],
    event: &str,
    unchanged: &[&str],
) -> Value {
    let after = census(app);
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        if name == event {
            assert_eq!(*is, was + 1, "exactly one new `{event}` row");
        } else if unchanged.contains(&name.as_str()) {
            assert_eq!(is, was, "no new `{name}` row");
        }
    }
    let page = audit(app, admin, &format!("?event={event}&page_size=1")).await;
    items(&page)
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("a `{event}` event is listed"))
}

fn party(id: &str, label: &str) -> Value {
    json!({"id": id, "label": label})
}

/// An app with a superuser; returns the app and the superuser's access token.
async fn with_admin(vars: &[(&str, &str)]) -> (TestApp, String) {
    let app = spawn_mail_app_with(vars).await;
    assert_eq!(app.register(ADMIN, PASSWORD).await.status(), 201);
    // Verified too, so that the admin logs in under REQUIRE_VERIFICATION.
    app.execute(&format!(
        "UPDATE users SET is_superuser = TRUE, is_verified = TRUE WHERE email = '{ADMIN}'"
    ));
    let admin = app.tokens(ADMIN, PASSWORD).await;
    (app, admin.access)
}

async fn login_failed(app: &TestApp, email: &str) {
    assert_detail(
        app.login(email, "not the password").await,
        400,
        "LOGIN_BAD_CREDENTIALS",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// GET /audit: access, shape, validation

#[tokio::test]
async fn the_audit_log_is_for_superusers_only() {
    let (app, _) = with_admin(&[]).await;
    let member = app.user(USER).await;

    let anonymous = app.client.get(app.url("/audit")).send().await.unwrap();
    assert_detail(anonymous, 401, "Unauthorized").await;
    assert_detail(app.get("/audit", &member.access).await, 403, "Forbidden").await;
    assert_detail(app.get("/audit", "not-a-token").await, 401, "Unauthorized").await;
}

#[tokio::test]
async fn a_client_token_cannot_read_the_audit_log() {
    let (app, admin) = with_admin(&[]).await;
    let client = app.machine_client(&admin, "Log Shipper", &[]).await;
    let token = app.client_token(&client).await;

    crate::tokens::assert_invalid_token(app.get("/audit", &token).await, "a client token").await;
}

#[tokio::test]
async fn an_event_names_actor_subject_origin_and_time() {
    let (app, admin) = with_admin(&[]).await;
    let before = census(&app);
    let started = gatehouse_now();

    let response = app
        .client
        .post(app.url("/auth/register"))
        .header(USER_AGENT, AGENT)
        .json(&json!({"email": USER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let event = one_new(&app, &admin, &before, "signup", &EVENTS).await;
    assert_eq!(
        keys_of(&event),
        [
            "actor",
            "detail",
            "event",
            "id",
            "ip",
            "occurred_at",
            "subject",
            "user_agent"
        ]
    );
    uuid::Uuid::parse_str(event["id"].as_str().unwrap()).expect("the id is a UUID");
    let user = party(&app.user_id(USER), USER);
    assert_eq!(event["event"], "signup");
    assert_eq!(event["actor"], user);
    assert_eq!(event["subject"], user);
    assert_eq!(event["ip"], "127.0.0.1");
    assert_eq!(event["user_agent"], AGENT);
    assert_eq!(event["detail"], Value::Null);
    let at = event["occurred_at"]
        .as_i64()
        .expect("occurred_at is seconds");
    assert!((started - 1..=gatehouse_now() + 1).contains(&at), "{at}");
}

#[tokio::test]
async fn the_listing_has_items_total_page_size_and_neighbours() {
    let (app, admin) = with_admin(&[]).await;

    let page = audit(&app, &admin, "").await;

    assert_eq!(
        keys_of(&page),
        [
            "items",
            "next",
            "page_size",
            "previous",
            "total",
            "total_is_exact"
        ]
    );
    assert_eq!(page["page_size"], 50);
    assert_eq!(page["total_is_exact"], true);
    assert_eq!(
        (&page["next"], &page["previous"]),
        (&Value::Null, &Value::Null)
    );
    let total = app.count("SELECT id FROM audit_events");
    assert_eq!(page["total"], total);
    assert_eq!(items(&page).len() as i64, total);
}

#[tokio::test]
async fn bad_query_parameters_are_422_naming_the_parameter() {
    let (app, admin) = with_admin(&[]).await;
    for (query, field) in [
        ("?page=1", "page"),
        ("?page=2", "page"),
        ("?page_size=0", "page_size"),
        ("?page_size=201", "page_size"),
        ("?event=nope", "event"),
        ("?event=LOGIN_FAILED", "event"),
        ("?page_size=ten", "page_size"),
        ("?since=yesterday", "since"),
        ("?until=1.5", "until"),
    ] {
        let response = app.get(&format!("/audit{query}"), &admin).await;
        assert_eq!(response.status(), 422, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["query", field]),
            "{query}: {body}"
        );
    }
    assert_eq!(app.get("/audit?page_size=200", &admin).await.status(), 200);
    assert_eq!(app.get("/audit?page_size=1", &admin).await.status(), 200);
}

#[tokio::test]
async fn paging_lists_events_newest_first() {
    let (app, admin) = with_admin(&[]).await;
    for first in ["a", "b", "c", "d", "e"] {
        login_failed(&app, &format!("{first}{first}@example.com")).await;
    }

    // Forward along `next`, from the newest: each page starts after the one before.
    let mut seen = Vec::new();
    let mut query = "?event=login_failed&page_size=2".to_owned();
    let mut pages = Vec::new();
    loop {
        let page = audit(&app, &admin, &query).await;
        assert_eq!(
            (page["total"].as_i64(), page["total_is_exact"].as_bool()),
            (Some(5), Some(true))
        );
        assert_eq!(page["page_size"], 2);
        seen.extend(items(&page));
        pages.push(page.clone());
        match page["next"].as_str() {
            Some(last) => query = format!("?event=login_failed&page_size=2&after={last}"),
            None => break,
        }
    }
    let sizes: Vec<usize> = pages.iter().map(|page| items(page).len()).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(
        pages[0]["previous"],
        Value::Null,
        "the first page has none before it"
    );

    // And back along `previous`: the middle page, then the first.
    let before = pages[2]["previous"]
        .as_str()
        .expect("the last page links back");
    let middle = audit(
        &app,
        &admin,
        &format!("?event=login_failed&page_size=2&before={before}"),
    )
    .await;
    assert_eq!(items(&middle), items(&pages[1]));
    let before = middle["previous"]
        .as_str()
        .expect("the middle page links back");
    let first = audit(
        &app,
        &admin,
        &format!("?event=login_failed&page_size=2&before={before}"),
    )
    .await;
    assert_eq!(items(&first), items(&pages[0]));
    assert_eq!(first["previous"], Value::Null);

    // An id that is no event's starts from the newest.
    let unknown = audit(&app, &admin, "?event=login_failed&page_size=2&after=nobody").await;
    assert_eq!(items(&unknown), items(&pages[0]));

    let masked: Vec<&str> = seen
        .iter()
        .map(|e| masked_in(e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(
        masked,
        ["e", "d", "c", "b", "a"].map(|first| format!("{first}…@example.com"))
    );
    let at: Vec<i64> = seen
        .iter()
        .map(|e| e["occurred_at"].as_i64().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "{at:?}");
}

#[tokio::test]
async fn the_whole_log_is_newest_first() {
    let (app, admin) = with_admin(&[]).await;
    let tokens = app.user(USER).await;
    login_failed(&app, USER).await;
    let response = app
        .client
        .post(app.url("/auth/jwt/logout"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let listed: Vec<String> = items(&audit(&app, &admin, "").await)
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();

    assert_eq!(
        listed,
        [
            "logout",
            "login_failed",
            "login_succeeded",
            "signup",
            "login_succeeded",
            "signup"
        ]
    );
}

#[tokio::test]
async fn the_event_filter_lists_one_kind() {
    let (app, admin) = with_admin(&[]).await;
    app.user(USER).await;
    login_failed(&app, USER).await;

    let page = audit(&app, &admin, "?event=signup").await;

    assert_eq!(page["total"], 2);
    assert!(
        items(&page).iter().all(|e| e["event"] == "signup"),
        "{page}"
    );
    let empty = audit(&app, &admin, "?event=user_deleted").await;
    assert_eq!(empty["total"], 0);
    assert_eq!(items(&empty).len(), 0);
}

#[tokio::test]
async fn q_matches_an_id_as_actor_or_subject() {
    let (app, admin) = with_admin(&[]).await;
    app.user(USER).await;
    app.user(OTHER).await;
    let user_id = app.user_id(USER);
    let admin_id = app.user_id(ADMIN);
    let response = app
        .patch(
            &format!("/users/{user_id}"),
            &admin,
            json!({"is_superuser": true}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let page = audit(&app, &admin, &format!("?q={user_id}")).await;
    let events = event_names(&page);
    assert_eq!(
        events,
        ["user_promoted", "login_succeeded", "signup"],
        "{page}"
    );
    assert_eq!(page["total"], 3);

    let page = audit(&app, &admin, &format!("?q={admin_id}")).await;
    let events = event_names(&page);
    assert_eq!(
        events,
        ["user_promoted", "login_succeeded", "signup"],
        "{page}"
    );
    assert_eq!(items(&page)[0]["actor"]["id"], admin_id.as_str());
    assert_eq!(items(&page)[0]["subject"]["id"], user_id.as_str());
}

#[tokio::test]
async fn q_matches_part_of_an_email_in_any_case() {
    let (app, admin) = with_admin(&[]).await;
    app.user("alice@example.com").await;
    app.user("bob@example.com").await;
    login_failed(&app, "alicia@example.org").await;

    for q in ["alic", "ALIC", "Alice%40example"] {
        let page = audit(&app, &admin, &format!("?q={q}")).await;
        let listed = items(&page);
        assert!(!listed.is_empty(), "{q}");
        for event in &listed {
            let labels = format!("{} {}", event["actor"], event["subject"]).to_lowercase();
            let detail = event["detail"].as_str().unwrap_or_default();
            assert!(
                labels.contains("alic") || detail.contains("alic"),
                "{q}: {event}"
            );
            assert!(!labels.contains("bob"), "{q}: {event}");
        }
    }
    let page = audit(&app, &admin, "?q=alice").await;
    assert_eq!(page["total"], 2, "signup and login of alice: {page}");
}

#[tokio::test]
async fn q_matches_a_non_ascii_email_as_it_is_written() {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(
        app.register("Émile@Exemple.fr", PASSWORD).await.status(),
        201
    );

    for q in ["%C3%89mile", "%C3%A9mile", "mile%40Exemple"] {
        let page = audit(&app, &admin, &format!("?q={q}")).await;
        assert_eq!(page["total"], 1, "{q}: {page}");
        assert_eq!(items(&page)[0]["event"], "signup", "{q}");
    }
}

#[tokio::test]
async fn q_matches_part_of_a_client_name() {
    let (app, admin) = with_admin(&[]).await;
    let client = app.machine_client(&admin, "Billing Service", &[]).await;
    assert_eq!(
        app.delete(&format!("/clients/{}", client.id), &admin)
            .await
            .status(),
        204
    );
    app.machine_client(&admin, "Reporting", &[]).await;

    let page = audit(&app, &admin, "?q=billing").await;

    let events = event_names(&page);
    assert_eq!(events, ["client_deleted", "client_created"], "{page}");
    let by_id = audit(&app, &admin, &format!("?q={}", client.id)).await;
    assert_eq!(by_id["total"], 2, "{by_id}");
}

#[tokio::test]
async fn q_takes_like_wildcards_literally() {
    let (app, admin) = with_admin(&[]).await;
    app.user(USER).await;

    for q in ["%25", "_", "%5C"] {
        let page = audit(&app, &admin, &format!("?q={q}")).await;
        assert_eq!(page["total"], 0, "{q}: {page}");
    }
}

#[tokio::test]
async fn the_ip_filter_lists_one_client_address() {
    let (app, admin) = with_admin(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let response = app
        .client
        .post(app.url("/auth/jwt/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .form(&[("username", USER), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let page = audit(&app, &admin, "?ip=198.51.100.7").await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(items(&page)[0]["event"], "login_failed");
    assert_eq!(items(&page)[0]["ip"], "198.51.100.7");

    let local = audit(&app, &admin, "?ip=127.0.0.1").await;
    assert_eq!(
        local["total"], 3,
        "the admin's signup and login, the user's signup: {local}"
    );
    assert!(items(&local).iter().all(|e| e["ip"] == "127.0.0.1"));
    assert_eq!(audit(&app, &admin, "?ip=198.51.100").await["total"], 0);
}

#[tokio::test]
async fn since_and_until_are_inclusive_bounds() {
    let (app, admin) = with_admin(&[]).await;
    for (email, at) in [
        ("a@example.com", 1000),
        ("b@example.com", 2000),
        ("c@example.com", 3000),
    ] {
        login_failed(&app, email).await;
        let masked = format!("{}…@example.com", &email[..1]);
        app.execute(&format!(
            "UPDATE audit_events SET occurred_at = {at} \
             WHERE detail LIKE 'unknown email {masked} (ref %'"
        ));
    }
    let emails_in = |page: &Value| -> Vec<String> {
        items(page)
            .iter()
            .map(|e| masked_in(e["detail"].as_str().unwrap()).to_owned())
            .collect()
    };

    let until = audit(&app, &admin, "?event=login_failed&until=2000").await;
    assert_eq!(emails_in(&until), ["b…@example.com", "a…@example.com"]);
    let since = audit(&app, &admin, "?event=login_failed&since=2000").await;
    assert_eq!(emails_in(&since), ["c…@example.com", "b…@example.com"]);
    let both = audit(&app, &admin, "?event=login_failed&since=2000&until=2000").await;
    assert_eq!(emails_in(&both), ["b…@example.com"]);
    assert_eq!(both["total"], 1);
    let none = audit(&app, &admin, "?since=3001&until=100000").await;
    assert_eq!(none["total"], 0);
    let recent = audit(&app, &admin, &format!("?since={}", gatehouse_now() - 60)).await;
    assert_eq!(recent["total"], 2, "the admin's signup and login: {recent}");
}

#[tokio::test]
async fn filters_combine() {
    let (app, admin) = with_admin(&[]).await;
    app.user(USER).await;
    login_failed(&app, USER).await;
    login_failed(&app, OTHER).await;

    let page = audit(&app, &admin, "?event=login_failed&q=user%40example").await;

    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(items(&page)[0]["subject"], party(&app.user_id(USER), USER));
}

// ---------------------------------------------------------------------------------------------
// Signup and login

#[tokio::test]
async fn signup_is_recorded_with_the_new_user_as_actor_and_subject() {
    let (app, admin) = with_admin(&[]).await;
    let before = census(&app);

    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    let event = one_new(&app, &admin, &before, "signup", &EVENTS).await;
    let user = party(&app.user_id(USER), USER);
    assert_eq!((&event["actor"], &event["subject"]), (&user, &user));
}

#[tokio::test]
async fn a_refused_signup_is_not_recorded() {
    let (app, _) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let before = rows(&app, "signup");

    assert_eq!(app.register(USER, PASSWORD).await.status(), 400);
    assert_eq!(app.register(OTHER, "password").await.status(), 400);

    assert_eq!(rows(&app, "signup"), before);
}

#[tokio::test]
async fn a_login_is_recorded_with_the_user_as_actor_and_subject() {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let before = census(&app);

    let response = app
        .client
        .post(app.url("/auth/jwt/login"))
        .header(USER_AGENT, AGENT)
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let event = one_new(&app, &admin, &before, "login_succeeded", &EVENTS).await;
    let user = party(&app.user_id(USER), USER);
    assert_eq!((&event["actor"], &event["subject"]), (&user, &user));
    assert_eq!(event["ip"], "127.0.0.1");
    assert_eq!(event["user_agent"], AGENT);
}

#[tokio::test]
async fn logins_through_the_token_endpoint_and_the_cookie_are_recorded() {
    let (app, admin) = with_admin(&[("COOKIE_SECURE", "false")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let user = party(&app.user_id(USER), USER);

    let before = census(&app);
    let response = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", USER),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let event = one_new(&app, &admin, &before, "login_succeeded", &EVENTS).await;
    assert_eq!(event["subject"], user);

    let before = census(&app);
    let browser = PageClient::new(&app);
    let response = browser
        .client
        .post(browser.url("/auth/cookie/login"))
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let event = one_new(&app, &admin, &before, "login_succeeded", &EVENTS).await;
    assert_eq!(event["subject"], user);
}

#[tokio::test]
async fn a_wrong_password_is_recorded_against_the_account() {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let before = census(&app);

    login_failed(&app, USER).await;

    let event = one_new(&app, &admin, &before, "login_failed", &EVENTS).await;
    assert_eq!(event["subject"], party(&app.user_id(USER), USER));
    assert_eq!(event["detail"], "wrong password or inactive account");
    assert_eq!(event["ip"], "127.0.0.1");
}

#[tokio::test]
async fn an_inactive_account_is_recorded_like_a_wrong_password() {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    app.execute(&format!(
        "UPDATE users SET is_active = FALSE WHERE email = '{USER}'"
    ));
    let before = census(&app);

    assert_detail(
        app.login(USER, PASSWORD).await,
        400,
        "LOGIN_BAD_CREDENTIALS",
    )
    .await;

    let event = one_new(&app, &admin, &before, "login_failed", &EVENTS).await;
    assert_eq!(event["subject"], party(&app.user_id(USER), USER));
    assert_eq!(event["detail"], "wrong password or inactive account");
}

/// The masked identifier of an `unknown email … (ref …)` detail.
fn masked_in(detail: &str) -> &str {
    let rest = detail
        .strip_prefix("unknown email ")
        .unwrap_or_else(|| panic!("not an unknown email: {detail}"));
    rest.rsplit_once(" (ref ")
        .map_or(rest, |(masked, _)| masked)
}

/// The reference the audit trail gives an identifier typed at a failed login.
fn reference_in(detail: &str) -> &str {
    let start = detail.find("(ref ").expect("a keyed reference") + "(ref ".len();
    let reference = &detail[start..detail.len() - 1];
    assert_eq!(reference.len(), 12, "{detail}");
    assert!(reference.bytes().all(|b| b.is_ascii_hexdigit()), "{detail}");
    reference
}

#[tokio::test]
async fn an_unknown_email_is_recorded_without_a_subject() {
    let (app, admin) = with_admin(&[]).await;
    let before = census(&app);

    login_failed(&app, "nobody@example.com").await;

    let event = one_new(&app, &admin, &before, "login_failed", &EVENTS).await;
    assert_eq!(event["subject"], Value::Null);
    assert_eq!(event["actor"], Value::Null);
    let detail = event["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("unknown email n…@example.com (ref "),
        "{detail}"
    );
    reference_in(detail);
}

/// Finding 10: what someone types into the email box of a failed login may be their
/// password; for an identifier that names no account the trail keeps a masked form and a
/// keyed reference (the same for the same identifier), never the text as typed, and nothing
/// that can break a line.
#[tokio::test]
async fn a_password_typed_as_the_email_never_reaches_the_audit_trail() {
    let (app, admin) = with_admin(&[]).await;
    let secret = "Tr0ub4dor&3-my-real-password";
    let before = census(&app);

    login_failed(&app, secret).await;
    login_failed(&app, &format!("  {secret} ")).await;
    login_failed(&app, "eve\r\n[2026-12-02T00:00:00Z INFO  gatehouse] forged").await;
    login_failed(&app, "hunter2@example.com").await;

    let after = census(&app);
    let failed = |census: &[(String, i64)]| {
        census
            .iter()
            .find(|(name, _)| name == "login_failed")
            .unwrap()
            .1
    };
    assert_eq!(failed(&after), failed(&before) + 4);
    let page = audit(&app, &admin, "?event=login_failed").await;
    let details: Vec<String> = items(&page)
        .iter()
        .map(|e| e["detail"].as_str().unwrap().to_owned())
        .collect();
    let whole = page.to_string();
    for typed in [secret, "Tr0ub4dor", "forged", "hunter2"] {
        assert!(!whole.contains(typed), "`{typed}` is stored: {page}");
    }
    assert!(
        details.iter().all(|d| !d.contains(['\r', '\n'])),
        "{details:?}"
    );
    assert_eq!(
        details[0],
        format!(
            "unknown email h…@example.com (ref {})",
            reference_in(&details[0])
        )
    );
    assert!(
        details[1].starts_with("unknown email (not an address) (ref "),
        "{details:?}"
    );
    // The same identifier, however padded, has the same reference; another has another.
    assert_eq!(reference_in(&details[2]), reference_in(&details[3]));
    assert_ne!(reference_in(&details[1]), reference_in(&details[2]));
}

#[tokio::test]
async fn an_unverified_login_is_recorded_as_failed() {
    let (app, admin) = with_admin(&[("REQUIRE_VERIFICATION", "true")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let before = census(&app);

    assert_detail(
        app.login(USER, PASSWORD).await,
        400,
        "LOGIN_USER_NOT_VERIFIED",
    )
    .await;

    let event = one_new(&app, &admin, &before, "login_failed", &EVENTS).await;
    assert_eq!(event["subject"], party(&app.user_id(USER), USER));
    assert_eq!(event["detail"], "email not verified");
}

// ---------------------------------------------------------------------------------------------
// Logout, refresh reuse, sessions

async fn logout(app: &TestApp, access: &str, query: &str) {
    let response = app
        .client
        .post(app.url(&format!("/auth/jwt/logout{query}")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "logout{query}");
}

#[tokio::test]
async fn every_logout_scope_is_recorded_once() {
    let (app, admin) = with_admin(&[]).await;
    app.user(USER).await;
    let user = party(&app.user_id(USER), USER);

    for query in ["", "?scope=local", "?scope=global", "?scope=others"] {
        let tokens = app.tokens(USER, PASSWORD).await;
        app.tokens(USER, PASSWORD).await;
        let before = census(&app);

        logout(&app, &tokens.access, query).await;

        let event = one_new(&app, &admin, &before, "logout", &EVENTS).await;
        assert_eq!(
            (&event["actor"], &event["subject"]),
            (&user, &user),
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_cookie_logout_is_recorded_once() {
    let (app, admin) = with_admin(&[("COOKIE_SECURE", "false")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let browser = PageClient::new(&app);
    let response = browser
        .client
        .post(browser.url("/auth/cookie/login"))
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let csrf = response.headers()["x-csrf-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let before = census(&app);

    let response = browser
        .client
        .post(browser.url("/auth/cookie/logout"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let event = one_new(&app, &admin, &before, "logout", &EVENTS).await;
    let user = party(&app.user_id(USER), USER);
    assert_eq!((&event["actor"], &event["subject"]), (&user, &user));
}

#[tokio::test]
async fn a_reused_refresh_token_is_recorded_against_its_user() {
    let (app, admin) = with_admin(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let tokens = app.user(USER).await;
    assert_eq!(app.refresh(&tokens.refresh).await.status(), 200);
    // Rotated a while ago, and its child used since, so that presenting it again is reuse
    // rather than a lost answer.
    app.execute(
        "UPDATE refresh_tokens SET rotated_at = rotated_at - 60, access_used_at = issued_at",
    );
    let before = census(&app);

    assert_detail(
        app.refresh(&tokens.refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;

    let event = one_new(&app, &admin, &before, "refresh_reuse_detected", &EVENTS).await;
    assert_eq!(event["subject"], party(&app.user_id(USER), USER));
    assert_eq!(event["ip"], "127.0.0.1");
}

#[tokio::test]
async fn an_unknown_refresh_token_is_not_reuse() {
    let (app, _) = with_admin(&[("REFRESH_REUSE_GRACE", "0")]).await;

    assert_detail(
        app.refresh(&"E".repeat(43)).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;

    assert_eq!(rows(&app, "refresh_reuse_detected"), 0);
}

#[tokio::test]
async fn ending_one_of_ones_own_sessions_is_recorded() {
    let (app, admin) = with_admin(&[]).await;
    let laptop = app.user(USER).await;
    let phone = app.tokens(USER, PASSWORD).await;
    let phone_session = claims_of(&phone.access)["sid"].as_str().unwrap().to_owned();
    let before = census(&app);

    let response = app
        .delete(
            &format!("/users/me/sessions/{phone_session}"),
            &laptop.access,
        )
        .await;
    assert_eq!(response.status(), 204);

    let event = one_new(&app, &admin, &before, "session_ended", &EVENTS).await;
    let user = party(&app.user_id(USER), USER);
    assert_eq!((&event["actor"], &event["subject"]), (&user, &user));
}

#[tokio::test]
async fn ending_someone_elses_session_is_refused_and_not_recorded() {
    let (app, _) = with_admin(&[]).await;
    let user = app.user(USER).await;
    let other = app.user(OTHER).await;
    let other_session = claims_of(&other.access)["sid"].as_str().unwrap().to_owned();
    let before = census(&app);

    let response = app
        .delete(&format!("/users/me/sessions/{other_session}"), &user.access)
        .await;
    assert_eq!(response.status(), 404);

    assert_eq!(census(&app), before);
}

#[tokio::test]
async fn a_superuser_ending_every_session_is_recorded_with_the_count() {
    let (app, admin) = with_admin(&[]).await;
    app.user(USER).await;
    app.tokens(USER, PASSWORD).await;
    let user_id = app.user_id(USER);
    let before = census(&app);

    let response = app
        .delete(&format!("/users/{user_id}/sessions"), &admin)
        .await;
    assert_eq!(response.status(), 204);

    let event = one_new(&app, &admin, &before, "session_ended", &EVENTS).await;
    assert_eq!(event["actor"], party(&app.user_id(ADMIN), ADMIN));
    assert_eq!(event["subject"], party(&user_id, USER));
    assert_eq!(event["detail"], "all sessions (2)");
}

// ---------------------------------------------------------------------------------------------
// Passwords and verification

#[tokio::test]
async fn changing_ones_own_password_is_recorded() {
    let (app, admin) = with_admin(&[]).await;
    let tokens = app.user(USER).await;
    let before = census(&app);

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"password": NEW_PASSWORD, "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let event = one_new(&app, &admin, &before, "password_changed", &EVENTS).await;
    let user = party(&app.user_id(USER), USER);
    assert_eq!((&event["actor"], &event["subject"]), (&user, &user));
}

#[tokio::test]
async fn a_refused_password_change_is_not_recorded() {
    let (app, _) = with_admin(&[]).await;
    let tokens = app.user(USER).await;

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"password": NEW_PASSWORD, "current_password": "wrong"}),
        )
        .await;
    assert_eq!(response.status(), 400);

    assert_eq!(rows(&app, "password_changed"), 0);
}

#[tokio::test]
async fn a_superuser_setting_a_password_is_recorded() {
    let (app, admin) = with_admin(&[]).await;
    app.user(USER).await;
    let user_id = app.user_id(USER);
    let before = census(&app);

    let response = app
        .patch(
            &format!("/users/{user_id}"),
            &admin,
            json!({"password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let event = one_new(&app, &admin, &before, "password_changed", &EVENTS).await;
    assert_eq!(event["actor"], party(&app.user_id(ADMIN), ADMIN));
    assert_eq!(event["subject"], party(&user_id, USER));
}

/// Finding 2: changing one's own address is recorded, naming both addresses.
#[tokio::test]
async fn changing_ones_own_email_is_recorded() {
    let (app, admin) = with_admin(&[]).await;
    let user = app.user(USER).await;
    let user_id = app.user_id(USER);
    let before = census(&app);

    let response = app
        .patch(
            "/users/me",
            &user.access,
            json!({"email": "moved@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let unchanged = ["password_changed", "email_verified", "session_ended"];
    let event = one_new(&app, &admin, &before, "email_changed", &unchanged).await;
    assert_eq!(event["actor"], party(&user_id, USER));
    assert_eq!(event["subject"], party(&user_id, "moved@example.com"));
    assert_eq!(event["detail"], format!("from {USER} to moved@example.com"));
    assert_eq!(event["ip"], "127.0.0.1");
    let page = audit(&app, &admin, &format!("?q={USER}&event=email_changed")).await;
    assert_eq!(page["total"], 1, "found by the old address: {page}");
}

/// Finding 2: a superuser changing someone's address through `PATCH /users/{id}` is
/// recorded with the superuser as actor; a refused change is not recorded.
#[tokio::test]
async fn a_superuser_changing_an_email_is_recorded() {
    let (app, admin) = with_admin(&[]).await;
    app.user(USER).await;
    app.user(OTHER).await;
    let user_id = app.user_id(USER);
    let path = format!("/users/{user_id}");
    let before = census(&app);

    let taken = app.patch(&path, &admin, json!({"email": OTHER})).await;
    assert_detail(taken, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS").await;
    assert_eq!(census(&app), before, "a refused change is not recorded");

    let response = app
        .patch(&path, &admin, json!({"email": "renamed@example.com"}))
        .await;
    assert_eq!(response.status(), 200);

    let event = one_new(&app, &admin, &before, "email_changed", &EVENTS).await;
    assert_eq!(event["actor"], party(&app.user_id(ADMIN), ADMIN));
    assert_eq!(event["subject"], party(&user_id, "renamed@example.com"));
    assert_eq!(
        event["detail"],
        format!("from {USER} to renamed@example.com")
    );
}

#[tokio::test]
async fn a_password_reset_is_recorded() {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.reset_token(USER).await;
    let before = census(&app);

    assert_null(app.reset_password(&token, NEW_PASSWORD).await, 200).await;

    let event = one_new(&app, &admin, &before, "password_reset", &EVENTS).await;
    assert_eq!(event["subject"], party(&app.user_id(USER), USER));
    assert_eq!(event["ip"], "127.0.0.1");
}

#[tokio::test]
async fn a_refused_reset_is_not_recorded() {
    let (app, _) = with_admin(&[]).await;

    let response = app.reset_password(&"F".repeat(43), NEW_PASSWORD).await;
    assert_eq!(response.status(), 400);

    assert_eq!(rows(&app, "password_reset"), 0);
}

#[tokio::test]
async fn verifying_an_address_by_email_is_recorded() {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let token = app.verify_token(USER).await;
    let before = census(&app);

    assert_eq!(app.verify(&token).await.status(), 200);

    let event = one_new(&app, &admin, &before, "email_verified", &EVENTS).await;
    assert_eq!(event["subject"], party(&app.user_id(USER), USER));

    // Presenting it again verifies nothing.
    assert_eq!(app.verify(&token).await.status(), 400);
    assert_eq!(rows(&app, "email_verified"), 1);
}

#[tokio::test]
async fn a_superuser_verifying_an_account_is_recorded_once() {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let path = format!("/users/{}", app.user_id(USER));
    let before = census(&app);

    assert_eq!(
        app.patch(&path, &admin, json!({"is_verified": true}))
            .await
            .status(),
        200
    );

    let event = one_new(&app, &admin, &before, "email_verified", &EVENTS).await;
    assert_eq!(event["actor"], party(&app.user_id(ADMIN), ADMIN));
    assert_eq!(event["subject"], party(&app.user_id(USER), USER));

    assert_eq!(
        app.patch(&path, &admin, json!({"is_verified": true}))
            .await
            .status(),
        200
    );
    assert_eq!(rows(&app, "email_verified"), 1);
}

// ---------------------------------------------------------------------------------------------
// A superuser's changes to accounts and clients

/// A superuser flips a flag of the user each way with `changes`: each flip records its event
/// once, with the superuser as actor, and repeating it records nothing.
async fn assert_each_change_recorded_once(changes: [(Value, &str); 2]) {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let path = format!("/users/{}", app.user_id(USER));
    let admin_party = party(&app.user_id(ADMIN), ADMIN);
    let user = party(&app.user_id(USER), USER);

    for (change, event) in changes {
        let before = census(&app);
        assert_eq!(app.patch(&path, &admin, change.clone()).await.status(), 200);
        let recorded = one_new(&app, &admin, &before, event, &EVENTS).await;
        assert_eq!(recorded["actor"], admin_party, "{change}");
        assert_eq!(recorded["subject"], user, "{change}");

        let before = census(&app);
        assert_eq!(app.patch(&path, &admin, change.clone()).await.status(), 200);
        assert_eq!(census(&app), before, "repeating {change} records nothing");
    }
}

#[tokio::test]
async fn promotions_and_demotions_are_recorded_only_when_they_change_something() {
    assert_each_change_recorded_once([
        (json!({"is_superuser": true}), "user_promoted"),
        (json!({"is_superuser": false}), "user_demoted"),
    ])
    .await;
}

#[tokio::test]
async fn activations_and_deactivations_are_recorded_only_when_they_change_something() {
    assert_each_change_recorded_once([
        (json!({"is_active": false}), "user_deactivated"),
        (json!({"is_active": true}), "user_activated"),
    ])
    .await;
}

#[tokio::test]
async fn a_change_refused_as_last_superuser_is_not_recorded() {
    let (app, admin) = with_admin(&[]).await;
    let path = format!("/users/{}", app.user_id(ADMIN));
    let before = census(&app);

    for change in [json!({"is_superuser": false}), json!({"is_active": false})] {
        assert_detail(
            app.patch(&path, &admin, change).await,
            409,
            "LAST_SUPERUSER",
        )
        .await;
    }
    assert_detail(app.delete(&path, &admin).await, 409, "LAST_SUPERUSER").await;

    assert_eq!(census(&app), before);
}

#[tokio::test]
async fn a_deleted_user_stays_named_in_the_log() {
    let (app, admin) = with_admin(&[]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let user_id = app.user_id(USER);
    let before = census(&app);

    assert_eq!(
        app.delete(&format!("/users/{user_id}"), &admin)
            .await
            .status(),
        204
    );

    let event = one_new(&app, &admin, &before, "user_deleted", &EVENTS).await;
    assert_eq!(event["actor"], party(&app.user_id(ADMIN), ADMIN));
    assert_eq!(event["subject"], party(&user_id, USER));
    let history = audit(&app, &admin, &format!("?q={user_id}")).await;
    let events = event_names(&history);
    assert_eq!(events, ["user_deleted", "signup"]);
}

#[tokio::test]
async fn creating_and_deleting_a_client_are_recorded() {
    let (app, admin) = with_admin(&[]).await;
    let admin_party = party(&app.user_id(ADMIN), ADMIN);

    let before = census(&app);
    let client = app.machine_client(&admin, "Nightly Export", &[]).await;
    let created = one_new(&app, &admin, &before, "client_created", &EVENTS).await;
    assert_eq!(created["actor"], admin_party);
    assert_eq!(created["subject"], party(&client.id, "Nightly Export"));

    let before = census(&app);
    assert_eq!(
        app.delete(&format!("/clients/{}", client.id), &admin)
            .await
            .status(),
        204
    );
    let deleted = one_new(&app, &admin, &before, "client_deleted", &EVENTS).await;
    assert_eq!(deleted["actor"], admin_party);
    assert_eq!(deleted["subject"], party(&client.id, "Nightly Export"));

    // Deleting it again is a 404 and records nothing.
    let before = census(&app);
    assert_eq!(
        app.delete(&format!("/clients/{}", client.id), &admin)
            .await
            .status(),
        404
    );
    assert_eq!(census(&app), before);
}

/// Seconds since the Unix epoch, as the server stamps events.
fn gatehouse_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
