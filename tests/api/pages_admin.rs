//! `/admin/users`: the superusers' list, its search and pagination, and the row actions.

use crate::helpers::*;
use crate::page_client::*;

const ADMIN: &str = "admin@example.com";
const MEMBER: &str = "member@example.com";
const TARGET: &str = "target@example.com";
const LIST: &str = "/admin/users";

/// Extra form fields of an action (`confirm=yes`).
type Extra<'a> = &'a [(&'a str, &'a str)];

fn action_path(app: &TestApp, email: &str, action: &str) -> String {
    format!("/admin/users/{}/{action}", app.user_id(email))
}

/// Submits a row's action form for `email`, as the list renders it (`next` is the list).
async fn act(
    browser: &PageClient,
    app: &TestApp,
    email: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields = vec![("next", LIST)];
    fields.extend_from_slice(extra);
    browser
        .submit(&action_path(app, email, action), &fields)
        .await
}

/// The emails listed on the page, in order.
fn listed(html: &str) -> Vec<String> {
    attribute_values(html, "data-email")
}

/// The same emails in alphabetical order: users created within the same second have no
/// defined order between them.
fn sorted<S: AsRef<str>>(emails: &[S]) -> Vec<String> {
    let mut emails: Vec<String> = emails.iter().map(|e| e.as_ref().to_owned()).collect();
    emails.sort();
    emails
}

fn count_text(html: &str) -> String {
    text_of(html, "id=\"user-count\"").expect("the user count")
}

fn last_superuser_message(email: &str) -> String {
    format!(
        "{email} is the last active superuser, so nothing was changed. Promote someone else first."
    )
}

async fn admin_app() -> (TestApp, PageClient) {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    (app, admin)
}

// ---------------------------------------------------------------------------------------------
// Who may see the page (signed-out visitors and members: `pages_access.rs`)

#[tokio::test]
async fn only_superusers_get_the_admin_link() {
    let (app, admin) = admin_app().await;
    let member = PageClient::user(&app, MEMBER).await;

    assert!(admin.page("/").await.contains("href=\"/admin/users\""));
    assert!(!member.page("/").await.contains("href=\"/admin/users\""));
}

// ---------------------------------------------------------------------------------------------
// Listing, search, pagination

#[tokio::test]
async fn admin_page_lists_every_user_with_their_actions() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    app.register(TARGET, PASSWORD).await;

    let html = admin.page(LIST).await;

    assert_eq!(sorted(&listed(&html)), sorted(&[ADMIN, MEMBER, TARGET]));
    assert_eq!(count_text(&html), "3 users");
    assert!(html.contains("id=\"users-table\""), "{html}");
    let ids = attribute_values(&html, "data-id");
    for email in [ADMIN, MEMBER, TARGET] {
        assert!(
            ids.contains(&app.user_id(email)),
            "the row of {email} has its id"
        );
    }
    let admin_id = app.user_id(ADMIN);
    let member_id = app.user_id(MEMBER);
    for action in ["promote", "deactivate", "verify", "delete"] {
        let form = format!("action=\"/admin/users/{member_id}/{action}\"");
        assert!(html.contains(&form), "{form}");
    }
    assert!(html.contains(&format!("action=\"/admin/users/{admin_id}/demote\"")));
    assert!(!html.contains(&format!("action=\"/admin/users/{member_id}/demote\"")));
    assert!(!html.contains(&format!("action=\"/admin/users/{member_id}/activate\"")));
    assert_eq!(input_value(&html, "next").unwrap(), LIST);
    assert_eq!(csrf_in(&html), admin.token().await);
    assert!(rel_link(&html, "next").is_none());
    assert!(rel_link(&html, "prev").is_none());
}

#[tokio::test]
async fn the_count_says_one_user_in_the_singular() {
    let (_app, admin) = admin_app().await;

    assert_eq!(count_text(&admin.page(LIST).await), "1 user");
    assert_eq!(
        count_text(&admin.page("/admin/users?q=admin").await),
        "1 user matches “admin”"
    );
}

#[tokio::test]
async fn search_matches_part_of_the_email_in_any_letter_case() {
    let (app, admin) = admin_app().await;
    for email in ["alice@example.com", "Bob@Example.org", "carol@test.net"] {
        app.register(email, PASSWORD).await;
    }
    let cases: [(&str, &[&str], &str); 5] = [
        ("ALI", &["alice@example.com"], "1 user matches “ALI”"),
        (
            "bob@example",
            &["Bob@Example.org"],
            "1 user matches “bob@example”",
        ),
        (
            "example",
            &[ADMIN, "alice@example.com", "Bob@Example.org"],
            "3 users match “example”",
        ),
        ("  carol  ", &["carol@test.net"], "1 user matches “carol”"),
        ("nobody", &[], "0 users match “nobody”"),
    ];

    for (query, expected, count) in cases {
        let path = format!(
            "/admin/users?{}",
            serde_urlencoded::to_string([("q", query)]).unwrap()
        );
        let html = admin.page(&path).await;
        assert_eq!(sorted(&listed(&html)), sorted(expected), "{query}");
        assert_eq!(count_text(&html), count, "{query}");
        assert_eq!(input_value(&html, "q").unwrap(), query.trim());
    }
}

#[tokio::test]
async fn search_treats_percent_and_underscore_literally() {
    let (app, admin) = admin_app().await;
    for email in ["a_b@example.com", "axb@example.com", "100%sure@example.com"] {
        assert_eq!(app.register(email, PASSWORD).await.status(), 201, "{email}");
    }

    for (query, expected) in [
        ("_", vec!["a_b@example.com"]),
        ("a_b", vec!["a_b@example.com"]),
        ("%", vec!["100%sure@example.com"]),
        ("0%s", vec!["100%sure@example.com"]),
        ("\\", vec![]),
    ] {
        let path = format!(
            "/admin/users?{}",
            serde_urlencoded::to_string([("q", query)]).unwrap()
        );
        assert_eq!(listed(&admin.page(&path).await), expected, "{query}");
    }
}

#[tokio::test]
async fn a_search_without_matches_says_so() {
    let (_app, admin) = admin_app().await;

    let html = admin.page("/admin/users?q=nobody").await;

    assert!(listed(&html).is_empty());
    assert!(html.contains("No users match “nobody”."), "{html}");
}

/// Registers `count` users named `{prefix}{n:02}@example.com`, oldest first.
async fn register_many(app: &TestApp, prefix: &str, count: usize) -> Vec<String> {
    let mut emails = Vec::new();
    for n in 0..count {
        let email = format!("{prefix}{n:02}@example.com");
        assert_eq!(app.register(&email, PASSWORD).await.status(), 201);
        emails.push(email);
    }
    emails
}

#[tokio::test]
async fn twenty_five_users_make_two_pages() {
    let (app, admin) = admin_app().await;
    let mut everyone = vec![ADMIN.to_owned()];
    everyone.extend(register_many(&app, "user", 24).await);

    let first = admin.page(LIST).await;
    assert_eq!(count_text(&first), "25 users");
    assert!(first.contains("Page 1 of 2"), "{first}");
    assert_eq!(listed(&first).len(), 20);
    assert_eq!(rel_link(&first, "prev"), None);
    let next = rel_link(&first, "next").expect("a link to page 2");
    assert_eq!(next, "/admin/users?page=2");

    let second = admin.page(&next).await;
    assert!(second.contains("Page 2 of 2"), "{second}");
    assert_eq!(listed(&second).len(), 5);
    assert_eq!(rel_link(&second, "next"), None);
    assert_eq!(rel_link(&second, "prev").as_deref(), Some(LIST));
    assert_eq!(input_value(&second, "next").unwrap(), "/admin/users?page=2");

    let mut shown = listed(&first);
    shown.extend(listed(&second));
    assert_eq!(sorted(&shown), sorted(&everyone), "every user exactly once");
}

#[tokio::test]
async fn pages_of_a_search_keep_the_search() {
    let (app, admin) = admin_app().await;
    register_many(&app, "other", 3).await;
    let bulk = register_many(&app, "bulk", 21).await;

    let first = admin.page("/admin/users?q=bulk").await;
    assert_eq!(count_text(&first), "21 users match “bulk”");
    assert_eq!(listed(&first).len(), 20);
    let next = rel_link(&first, "next").unwrap();
    assert_eq!(next, "/admin/users?q=bulk&page=2");

    let second = admin.page(&next).await;
    let mut shown = listed(&first);
    shown.extend(listed(&second));
    assert_eq!(sorted(&shown), sorted(&bulk), "every match exactly once");
    assert_eq!(
        rel_link(&second, "prev").as_deref(),
        Some("/admin/users?q=bulk")
    );
    assert_eq!(
        input_value(&second, "next").unwrap(),
        "/admin/users?q=bulk&page=2",
        "actions come back to this page"
    );
}

#[tokio::test]
async fn nonsense_page_numbers_show_the_first_page() {
    let (app, admin) = admin_app().await;
    register_many(&app, "user", 24).await;
    let first = listed(&admin.page(LIST).await);

    for page in ["0", "-1", "abc", "1.5", "99999999999999999999", ""] {
        let path = format!("/admin/users?page={page}");
        assert_eq!(listed(&admin.page(&path).await), first, "page={page}");
    }
}

#[tokio::test]
async fn a_page_past_the_end_shows_the_last_page() {
    let (app, admin) = admin_app().await;
    register_many(&app, "user", 24).await;
    let last = admin.page("/admin/users?page=2").await;

    let html = admin.page("/admin/users?page=5").await;

    assert_eq!(listed(&html), listed(&last));
    assert!(html.contains("Page 2 of 2"), "{html}");
    assert_eq!(count_text(&html), "25 users");
    assert_eq!(rel_link(&html, "next"), None);
    assert_eq!(input_value(&html, "next").unwrap(), "/admin/users?page=2");
    assert!(!html.contains("No users match"), "{html}");
}

// ---------------------------------------------------------------------------------------------
// Actions

#[tokio::test]
async fn each_action_applies_and_says_so_on_the_next_page() {
    let (app, admin) = admin_app().await;
    type Check = fn(&UserRow) -> bool;
    let cases: [(&str, &str, Extra, &str, Check); 6] = [
        ("promote", "", &[], "is now a superuser.", |r| {
            r.is_superuser
        }),
        (
            "demote",
            "is_superuser = TRUE",
            &[],
            "is no longer a superuser.",
            |r| !r.is_superuser,
        ),
        (
            "deactivate",
            "",
            &[],
            "has been deactivated and signed out.",
            |r| !r.is_active,
        ),
        (
            "activate",
            "is_active = FALSE",
            &[],
            "has been activated.",
            |r| r.is_active,
        ),
        ("verify", "", &[], "is now verified.", |r| r.is_verified),
        (
            "delete",
            "",
            &[("confirm", "yes")],
            "has been deleted.",
            |_| unreachable!(),
        ),
    ];

    for (action, setup, extra, done, check) in cases {
        let email = format!("{action}-target@example.com");
        app.register(&email, PASSWORD).await;
        if !setup.is_empty() {
            app.execute(&format!("UPDATE users SET {setup} WHERE email = '{email}'"));
        }

        let response = act(&admin, &app, &email, action, extra).await;

        assert_see_other(&response, LIST);
        match app.user_row(&email) {
            Some(row) => assert!(check(&row), "{action} applied"),
            None => assert_eq!(action, "delete"),
        }
        let html = admin.page(LIST).await;
        assert_eq!(
            flashes_in(&html),
            [Flash::success(&format!("{email} {done}"))],
            "{action}"
        );
        assert_eq!(admin.flashes_on(LIST).await, [], "{action}: shown once");
    }
}

#[tokio::test]
async fn an_action_goes_back_to_the_listing_it_came_from() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;

    for next in ["/admin/users?q=target", "/admin/users?q=t&page=2", LIST] {
        let response = admin
            .submit(&action_path(&app, TARGET, "verify"), &[("next", next)])
            .await;
        assert_see_other(&response, next);
    }
}

#[tokio::test]
async fn an_action_never_goes_anywhere_but_the_user_list() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    let path = action_path(&app, TARGET, "verify");

    for next in [
        "/account",
        "/",
        "/login?next=/admin/users",
        "//evil.example",
        "//evil.example/admin/users",
        "https://evil.example/admin/users",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "",
    ] {
        let response = admin.submit(&path, &[("next", next)]).await;
        assert_see_other(&response, LIST);
    }
    assert_see_other(&admin.submit(&path, &[]).await, LIST);
}

#[tokio::test]
async fn deactivating_a_user_signs_them_out_everywhere() {
    let (app, admin) = admin_app().await;
    let target = PageClient::user(&app, TARGET).await;
    let api = app.tokens(TARGET, PASSWORD).await;

    assert_see_other(&act(&admin, &app, TARGET, "deactivate", &[]).await, LIST);

    assert_eq!(live_sessions(&app, TARGET), 0);
    let response = target.get("/account").await;
    assert_see_other(&response, "/login?next=%2Faccount");
    assert_eq!(app.get("/users/me", &api.access).await.status(), 401);
    assert_detail(
        app.refresh(&api.refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
    let refused = target.log_in(TARGET, PASSWORD, None).await;
    assert_eq!(refused.status(), 400, "an inactive user cannot log in");

    assert_see_other(&act(&admin, &app, TARGET, "activate", &[]).await, LIST);
    assert_detail(
        app.refresh(&api.refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
    assert_see_other(&target.log_in(TARGET, PASSWORD, None).await, "/account");
}

#[tokio::test]
async fn the_last_active_superuser_cannot_be_demoted_deactivated_or_deleted() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    let before = snapshot(&app);

    for (action, extra) in [
        ("demote", &[][..]),
        ("deactivate", &[][..]),
        ("delete", &[("confirm", "yes")][..]),
    ] {
        let response = act(&admin, &app, ADMIN, action, extra).await;

        assert_see_other(&response, LIST);
        assert_eq!(snapshot(&app), before, "{action} changed nothing");
        assert_eq!(
            admin.flashes_on(LIST).await,
            [Flash::error(&last_superuser_message(ADMIN))],
            "{action}"
        );
    }
}

#[tokio::test]
async fn an_inactive_superuser_does_not_count_as_another_one() {
    let (app, admin) = admin_app().await;
    app.superuser("dormant@example.com").await;
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'dormant@example.com'");
    let before = snapshot(&app);

    let response = act(&admin, &app, ADMIN, "demote", &[]).await;

    assert_see_other(&response, LIST);
    assert_eq!(snapshot(&app), before);
    assert_eq!(
        admin.flashes_on(LIST).await,
        [Flash::error(&last_superuser_message(ADMIN))]
    );
}

#[tokio::test]
async fn with_another_active_superuser_a_superuser_can_be_demoted() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    assert_see_other(&act(&admin, &app, TARGET, "promote", &[]).await, LIST);

    assert_see_other(&act(&admin, &app, ADMIN, "demote", &[]).await, LIST);

    assert!(!app.user_row(ADMIN).unwrap().is_superuser);
    assert!(app.user_row(TARGET).unwrap().is_superuser);
    let response = admin.get(LIST).await;
    assert_eq!(response.status(), 403, "no longer a superuser");
}

#[tokio::test]
async fn two_superusers_demoting_each_other_at_once_leave_one() {
    let (app, admin) = admin_app().await;
    let other = PageClient::superuser(&app, TARGET).await;
    let (admin_path, other_path) = (
        action_path(&app, TARGET, "demote"),
        action_path(&app, ADMIN, "demote"),
    );
    let fields = [("next", LIST)];
    let (admin_token, other_token) = (admin.token().await, other.token().await);
    let admin_fields = with_token(&fields, &admin_token);
    let other_fields = with_token(&fields, &other_token);

    let (first, second) = tokio::join!(
        admin.post_form(&admin_path, &admin_fields),
        other.post_form(&other_path, &other_fields),
    );

    // The loser is refused by the last-superuser rule, or, if the winner's change landed
    // before the loser was even authenticated, as no longer being a superuser.
    for response in [&first, &second] {
        assert!(
            [303, 403].contains(&response.status().as_u16()),
            "{response:?}"
        );
    }
    assert!(
        first.status() == 303 || second.status() == 303,
        "one of them wins"
    );
    let superusers = [ADMIN, TARGET]
        .into_iter()
        .filter(|email| app.user_row(email).unwrap().is_superuser)
        .count();
    assert_eq!(superusers, 1);
}

#[tokio::test]
async fn delete_without_confirmation_asks_first_and_deletes_nothing() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    let id = app.user_id(TARGET);
    let before = snapshot(&app);

    for extra in [&[][..], &[("confirm", "no")][..], &[("confirm", "")][..]] {
        let mut fields = vec![("next", "/admin/users?q=target")];
        fields.extend_from_slice(extra);
        let response = admin
            .submit(&format!("/admin/users/{id}/delete"), &fields)
            .await;

        assert_eq!(response.status(), 200, "{extra:?}");
        assert_html(&response);
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"confirm-delete-form\""), "{html}");
        assert!(html.contains(&format!("action=\"/admin/users/{id}/delete\"")));
        assert!(html.contains(TARGET), "names the account");
        assert_eq!(input_value(&html, "confirm").unwrap(), "yes");
        assert_eq!(input_value(&html, "next").unwrap(), "/admin/users?q=target");
        assert_eq!(snapshot(&app), before, "nothing deleted yet");
    }
}

#[tokio::test]
async fn the_confirmation_page_escapes_the_listing_it_returns_to() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    let next = "/admin/users?q=\"><script>alert(1)</script>";

    let response = admin
        .submit(&action_path(&app, TARGET, "delete"), &[("next", next)])
        .await;

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert_not_raw(&html, "\"><script>");
    assert_eq!(input_value(&html, "next").unwrap(), next);
    assert!(app.user_row(TARGET).is_some());
}

#[tokio::test]
async fn the_confirmation_page_deletes_when_submitted() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    let path = action_path(&app, TARGET, "delete");
    let before = snapshot(&app);

    let html = admin.page(&path).await;
    assert_eq!(snapshot(&app), before, "GET deletes nothing");
    assert!(html.contains("id=\"confirm-delete-form\""), "{html}");
    assert_eq!(input_value(&html, "next").unwrap(), LIST);

    let fields =
        ["csrf_token", "next", "confirm"].map(|name| (name, input_value(&html, name).unwrap()));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = admin.post_form(&path, &fields).await;

    assert_see_other(&response, LIST);
    assert!(app.user_row(TARGET).is_none());
    assert_eq!(
        admin.flashes_on(LIST).await,
        [Flash::success(&format!("{TARGET} has been deleted."))]
    );
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions() {
    let (app, admin) = admin_app().await;
    let target = PageClient::user(&app, TARGET).await;
    let id = app.user_id(TARGET);

    let response = act(&admin, &app, TARGET, "delete", &[("confirm", "yes")]).await;

    assert_see_other(&response, LIST);
    assert_eq!(
        app.count(&format!("SELECT id FROM sessions WHERE user_id = '{id}'")),
        0
    );
    assert_see_other(&target.get("/account").await, "/login?next=%2Faccount");
}

#[tokio::test]
async fn unknown_actions_and_users_are_404() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    let id = app.user_id(TARGET);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let before = snapshot(&app);

    let posts = [
        format!("/admin/users/{id}/frobnicate"),
        format!("/admin/users/{id}/Promote"),
        "/admin/users/not-a-uuid/promote".to_owned(),
        "/admin/users/not-a-uuid/delete".to_owned(),
        format!("/admin/users/{unknown}/promote"),
        format!("/admin/users/{unknown}/delete"),
    ];
    for path in &posts {
        let response = admin
            .submit(path, &[("next", LIST), ("confirm", "yes")])
            .await;
        assert_eq!(response.status(), 404, "POST {path}");
        assert_html(&response);
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("This page doesn’t exist"));
    }
    let gets = [
        format!("/admin/users/{id}/promote"),
        format!("/admin/users/{id}/frobnicate"),
        "/admin/users/not-a-uuid/delete".to_owned(),
        format!("/admin/users/{unknown}/delete"),
    ];
    for path in &gets {
        let response = admin.get(path).await;
        assert_eq!(response.status(), 404, "GET {path}");
        assert_html(&response);
    }
    assert_eq!(snapshot(&app), before);
}

// ---------------------------------------------------------------------------------------------
// Escaping

#[tokio::test]
async fn odd_characters_in_emails_are_escaped_in_the_list_and_the_flash() {
    let (app, admin) = admin_app().await;
    let odd = "o'neil&{x}=1?@example.com";
    assert_eq!(app.register(odd, PASSWORD).await.status(), 201);

    let html = admin.page(LIST).await;
    assert_not_raw(&html, odd);
    assert_eq!(sorted(&listed(&html)), sorted(&[ADMIN, odd]));

    assert_see_other(&act(&admin, &app, odd, "promote", &[]).await, LIST);
    let html = admin.page(LIST).await;
    assert_not_raw(&html, odd);
    assert_eq!(
        flashes_in(&html),
        [Flash::success(&format!("{odd} is now a superuser."))]
    );
}

#[tokio::test]
async fn a_hostile_search_is_escaped() {
    let (_app, admin) = admin_app().await;

    for query in [
        "<img src=x onerror=alert(1)>",
        "\"><script>alert(1)</script>",
        "'><svg onload=alert(1)>",
    ] {
        let path = format!(
            "/admin/users?{}",
            serde_urlencoded::to_string([("q", query)]).unwrap()
        );
        let html = admin.page(&path).await;
        assert_not_raw(&html, query);
        assert_not_raw(&html, "<img src=x");
        assert_not_raw(&html, "<script>alert");
        assert_not_raw(&html, "<svg");
        assert_eq!(input_value(&html, "q").unwrap(), query);
        assert_eq!(count_text(&html), format!("0 users match “{query}”"));
    }
}
