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
    assert!(
        !html.contains(&format!("action=\"/admin/users/{admin_id}/demote\"")),
        "one's own demotion is disabled"
    );
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
        // One or two characters match the start of the address.
        ("_", vec![]),
        ("a_", vec!["a_b@example.com"]),
        ("%", vec![]),
        ("a_b", vec!["a_b@example.com"]),
        ("%su", vec!["100%sure@example.com"]),
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

/// The id of the `n`th user a listing shows (from 0; negative from the end).
fn listed_id(app: &TestApp, html: &str, n: isize) -> String {
    let emails = listed(html);
    let at = if n < 0 { emails.len() as isize + n } else { n };
    app.user_id(&emails[at as usize])
}

#[tokio::test]
async fn twenty_five_users_make_two_pages() {
    let (app, admin) = admin_app().await;
    let mut everyone = vec![ADMIN.to_owned()];
    everyone.extend(register_many(&app, "user", 24).await);

    let first = admin.page(LIST).await;
    assert_eq!(count_text(&first), "25 users");
    assert_eq!(listed(&first).len(), 20);
    assert_eq!(rel_link(&first, "prev"), None);
    let next = rel_link(&first, "next").expect("a link to the next page");
    assert_eq!(
        next,
        format!("/admin/users?after={}", listed_id(&app, &first, -1))
    );

    let second = admin.page(&next).await;
    assert_eq!(listed(&second).len(), 5);
    assert_eq!(rel_link(&second, "next"), None);
    let prev = rel_link(&second, "prev").expect("a link back");
    assert_eq!(
        prev,
        format!("/admin/users?before={}", listed_id(&app, &second, 0))
    );
    assert_eq!(input_value(&second, "next").unwrap(), next);
    assert_eq!(
        listed(&admin.page(&prev).await),
        listed(&first),
        "back to the first page"
    );

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
    assert_eq!(
        next,
        format!("/admin/users?q=bulk&after={}", listed_id(&app, &first, -1))
    );

    let second = admin.page(&next).await;
    let mut shown = listed(&first);
    shown.extend(listed(&second));
    assert_eq!(sorted(&shown), sorted(&bulk), "every match exactly once");
    assert_eq!(
        rel_link(&second, "prev"),
        Some(format!(
            "/admin/users?q=bulk&before={}",
            listed_id(&app, &second, 0)
        ))
    );
    assert_eq!(
        input_value(&second, "next").unwrap(),
        next,
        "actions come back to this page"
    );
}

#[tokio::test]
async fn searches_match_any_part_or_the_start_of_an_address() {
    let (app, admin) = admin_app().await;
    for email in ["ann.lee@example.com", "lee@example.org", "bob@exAmple.net"] {
        app.register(email, PASSWORD).await;
    }
    let cases: [(&str, &[&str]); 6] = [
        // Three characters or more: anywhere in the address, in any letter case.
        ("LEE", &["lee@example.org", "ann.lee@example.com"]),
        ("ample.n", &["bob@exAmple.net"]),
        ("\"x", &[]),
        // One or two: the start of the address.
        ("le", &["lee@example.org"]),
        ("B", &["bob@exAmple.net"]),
        ("%", &[]),
    ];
    for (q, expected) in cases {
        let query = serde_urlencoded::to_string([("q", q)]).unwrap();
        let html = admin.page(&format!("/admin/users?{query}")).await;
        assert_eq!(sorted(&listed(&html)), sorted(expected), "q={q}");
    }
}

#[tokio::test]
async fn nonsense_or_stale_boundaries_show_the_first_page() {
    let (app, admin) = admin_app().await;
    register_many(&app, "user", 24).await;
    let first = admin.page(LIST).await;
    let gone = listed_id(&app, &first, 5);
    app.execute(&format!("DELETE FROM users WHERE id = '{gone}'"));
    let first = listed(&admin.page(LIST).await);

    let long = "x".repeat(65);
    for query in [
        "page=2".to_owned(),
        "after=".to_owned(),
        "after=nobody".to_owned(),
        format!("after={long}"),
        format!("after={gone}"),
        format!("before={gone}"),
    ] {
        let path = format!("/admin/users?{query}");
        assert_eq!(listed(&admin.page(&path).await), first, "{query}");
    }
}

#[tokio::test]
async fn the_page_before_the_first_is_the_first_page() {
    let (app, admin) = admin_app().await;
    register_many(&app, "user", 24).await;
    let first = admin.page(LIST).await;
    let second = admin
        .page(&format!(
            "/admin/users?after={}",
            listed_id(&app, &first, 2)
        ))
        .await;

    let back = admin
        .page(&rel_link(&second, "prev").expect("a link back"))
        .await;

    assert_eq!(listed(&back), listed(&first), "a full first page");
    assert_eq!(rel_link(&back, "prev"), None);
    assert_eq!(count_text(&back), "25 users");
}

// ---------------------------------------------------------------------------------------------
// Actions

#[tokio::test]
async fn each_action_applies_and_says_so_on_the_next_page() {
    let (app, admin) = admin_app().await;
    type Check = fn(&UserRow) -> bool;
    let cases: [(&str, &str, Extra, &str, Check); 6] = [
        (
            "promote",
            "",
            &[("confirm", "yes")],
            "is now a superuser.",
            |r| r.is_superuser,
        ),
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
            &[("confirm", "yes")],
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

    assert_see_other(
        &act(&admin, &app, TARGET, "deactivate", &[("confirm", "yes")]).await,
        LIST,
    );

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
async fn a_superuser_cannot_demote_deactivate_reset_or_delete_themselves_here() {
    let (app, admin) = admin_app().await;
    // Another active superuser: the refusal is not the last-superuser rule.
    app.superuser(TARGET).await;
    let before = snapshot(&app);

    for (action, message) in [
        (
            "demote",
            "You can’t demote yourself: another superuser has to.",
        ),
        (
            "deactivate",
            "You can’t deactivate your own account: another superuser has to.",
        ),
        (
            "delete",
            "You can’t delete your own account here: use your account page.",
        ),
        (
            "reset-mfa",
            "You can’t reset your own two-factor authentication here: use your sign-in \
             security page.",
        ),
    ] {
        let response = act(&admin, &app, ADMIN, action, &[("confirm", "yes")]).await;

        assert_see_other(&response, LIST);
        assert_eq!(snapshot(&app), before, "{action} changed nothing");
        assert_eq!(
            admin.flashes_on(LIST).await,
            [Flash::error(message)],
            "{action}"
        );
        // Its confirmation page is not offered either.
        let response = admin.get(&action_path(&app, ADMIN, action)).await;
        if action != "demote" {
            assert_see_other(&response, &format!("/admin/users/{}", app.user_id(ADMIN)));
            assert_eq!(admin.flashes_on(LIST).await, [Flash::error(message)]);
        }
    }
    assert!(app.user_row(ADMIN).unwrap().is_superuser);
}

#[tokio::test]
async fn with_another_active_superuser_a_superuser_can_be_demoted() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    assert_see_other(
        &act(&admin, &app, TARGET, "promote", &[("confirm", "yes")]).await,
        LIST,
    );
    let other = PageClient::logged_in(&app, TARGET).await;

    assert_see_other(&act(&other, &app, ADMIN, "demote", &[]).await, LIST);

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
        format!("/admin/users/{id}/verify"),
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

    assert_see_other(
        &act(&admin, &app, odd, "promote", &[("confirm", "yes")]).await,
        LIST,
    );
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

// ---------------------------------------------------------------------------------------------
// Sorting and filters

/// Gives each account its moment of creation and of last sign-in (`None`: never).
fn set_times(app: &TestApp, times: &[(&str, i64, Option<i64>)]) {
    for (email, created, last) in times {
        let last = last.map_or("NULL".to_owned(), |at| at.to_string());
        app.execute(&format!(
            "UPDATE users SET created_at = {created}, last_login_at = {last} \
             WHERE email = '{email}'"
        ));
    }
}

/// A sortable column's header: its `aria-sort` ("" when none) and its link.
fn header(html: &str, id: &str) -> (String, String) {
    let start = html.find(&format!("id=\"{id}\"")).expect(id);
    let cell = &html[start..start + html[start..].find("</th>").unwrap()];
    let aria = attribute_values(cell, "aria-sort")
        .pop()
        .unwrap_or_default();
    let href = attribute_values(cell, "href").pop().unwrap();
    (aria, href)
}

#[tokio::test]
async fn the_list_sorts_by_email_creation_and_last_sign_in_both_ways() {
    let (app, admin) = admin_app().await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        app.register(email, PASSWORD).await;
    }
    set_times(
        &app,
        &[
            (ADMIN, 500, Some(2000)),
            ("b@example.com", 1000, Some(3000)),
            ("a@example.com", 2000, None),
            ("c@example.com", 3000, Some(1000)),
        ],
    );
    let (a, b, c) = ("a@example.com", "b@example.com", "c@example.com");

    let cases: [(&str, [&str; 4]); 7] = [
        (LIST, [c, a, b, ADMIN]),
        ("/admin/users?dir=asc", [ADMIN, b, a, c]),
        ("/admin/users?sort=created&dir=desc", [c, a, b, ADMIN]),
        ("/admin/users?sort=email", [a, ADMIN, b, c]),
        ("/admin/users?sort=email&dir=desc", [c, b, ADMIN, a]),
        // Never signed in: last, whichever the direction.
        ("/admin/users?sort=last_sign_in", [b, ADMIN, c, a]),
        ("/admin/users?sort=last_sign_in&dir=asc", [c, ADMIN, b, a]),
    ];
    for (path, expected) in cases {
        assert_eq!(listed(&admin.page(path).await), expected, "{path}");
    }

    // The headers say how the list is sorted, and sort it by themselves.
    let html = admin.page(LIST).await;
    assert_eq!(
        header(&html, "sort-created"),
        ("descending".to_owned(), "/admin/users?dir=asc".to_owned())
    );
    assert_eq!(
        header(&html, "sort-email"),
        (String::new(), "/admin/users?sort=email".to_owned())
    );
    assert_eq!(
        header(&html, "sort-last-sign-in"),
        (String::new(), "/admin/users?sort=last_sign_in".to_owned())
    );
    let html = admin.page("/admin/users?sort=email&q=example").await;
    assert_eq!(
        header(&html, "sort-email"),
        (
            "ascending".to_owned(),
            "/admin/users?q=example&sort=email&dir=desc".to_owned()
        )
    );
    assert_eq!(
        header(&html, "sort-created"),
        (String::new(), "/admin/users?q=example".to_owned())
    );
    // The search form keeps the sort.
    assert_eq!(input_value(&html, "sort").unwrap(), "email");
    // Unknown sorts and directions are the defaults.
    assert_eq!(
        listed(
            &admin
                .page("/admin/users?sort=hashed_password&dir=sideways")
                .await
        ),
        [c, a, b, ADMIN]
    );
    // The last sign-in shows in its column.
    assert!(html.contains(">Never</span>"), "{html}");
}

#[tokio::test]
async fn pages_of_a_sorted_list_keep_the_sort_and_the_filters() {
    let (app, admin) = admin_app().await;
    app.execute(&format!(
        "UPDATE users SET is_verified = TRUE WHERE email = '{ADMIN}'"
    ));
    let everyone = register_many(&app, "user", 24).await;

    let first = admin.page("/admin/users?sort=email&verified=no").await;
    assert_eq!(count_text(&first), "24 users match the filters");
    let next = rel_link(&first, "next").unwrap();
    assert_eq!(
        next,
        format!(
            "/admin/users?verified=no&sort=email&after={}",
            listed_id(&app, &first, -1)
        )
    );
    assert_eq!(
        input_value(&first, "next").unwrap(),
        "/admin/users?verified=no&sort=email",
        "actions come back to this listing"
    );
    let second = admin.page(&next).await;
    assert_eq!(
        rel_link(&second, "prev"),
        Some(format!(
            "/admin/users?verified=no&sort=email&before={}",
            listed_id(&app, &second, 0)
        ))
    );
    let mut shown = listed(&first);
    shown.extend(listed(&second));
    assert_eq!(shown, everyone, "in order of address, each once");
}

#[tokio::test]
async fn each_filter_shows_only_the_accounts_it_names() {
    let (app, admin) = admin_app().await;
    for email in [
        "inactive@example.com",
        "verified@example.com",
        "super@example.com",
    ] {
        app.register(email, PASSWORD).await;
    }
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'inactive@example.com'");
    app.execute("UPDATE users SET is_verified = TRUE WHERE email = 'verified@example.com'");
    app.execute("UPDATE users SET is_superuser = TRUE WHERE email = 'super@example.com'");

    let cases: [(&str, &[&str]); 7] = [
        ("active=no", &["inactive@example.com"]),
        (
            "active=yes",
            &[ADMIN, "verified@example.com", "super@example.com"],
        ),
        ("verified=yes", &["verified@example.com"]),
        (
            "verified=no",
            &[ADMIN, "inactive@example.com", "super@example.com"],
        ),
        ("superuser=yes", &[ADMIN, "super@example.com"]),
        (
            "superuser=no",
            &["inactive@example.com", "verified@example.com"],
        ),
        ("superuser=yes&verified=no&q=super", &["super@example.com"]),
    ];
    for (query, expected) in cases {
        let html = admin.page(&format!("/admin/users?{query}")).await;
        assert_eq!(sorted(&listed(&html)), sorted(expected), "{query}");
        // The select shows the filter, and "Clear" drops it (keeping the search).
        let (name, value) = query.split_once('=').unwrap();
        let value = value.split('&').next().unwrap();
        assert!(
            html.contains(&format!("<option value=\"{value}\" selected>")),
            "{query}"
        );
        assert!(html.contains(&format!("id=\"filter-{name}\"")));
        let clear = attribute_values(&html, "href")
            .into_iter()
            .find(|href| html.contains(&format!("href=\"{href}\" id=\"clear-filters\"")))
            .unwrap();
        let expected_clear = if query.contains("q=super") {
            "/admin/users?q=super"
        } else {
            LIST
        };
        assert_eq!(clear, expected_clear, "{query}");
    }
    // Without a filter there is nothing to clear; a value it does not know is no filter.
    assert!(!admin.page(LIST).await.contains("id=\"clear-filters\""));
    let html = admin.page("/admin/users?active=maybe").await;
    assert_eq!(listed(&html).len(), 4);
    assert!(!html.contains("No users match the filters."));
    let html = admin.page("/admin/users?superuser=yes&active=no").await;
    assert!(html.contains("No users match the filters."), "{html}");
}

// ---------------------------------------------------------------------------------------------
// Your own row

#[tokio::test]
async fn your_own_row_is_marked_and_its_self_destructive_actions_disabled() {
    let (app, admin) = admin_app().await;
    app.register(MEMBER, PASSWORD).await;
    let (admin_id, member_id) = (app.user_id(ADMIN), app.user_id(MEMBER));

    let html = admin.page(LIST).await;

    let own_row = row_of(&html, ADMIN);
    assert!(own_row.contains("class=\"you\""), "{own_row}");
    assert!(own_row.contains(">You</span>"), "{own_row}");
    assert!(own_row.contains("id=\"self-hint\""), "{own_row}");
    for action in ["demote", "deactivate", "reset-mfa", "delete"] {
        assert!(
            !own_row.contains(&format!("action=\"/admin/users/{admin_id}/{action}\"")),
            "{action}"
        );
        let disabled =
            format!("action-{action}\" disabled aria-disabled=\"true\" title=\"You can’t");
        assert!(own_row.contains(&disabled), "{action}: {own_row}");
    }
    assert!(own_row.contains(&format!("action=\"/admin/users/{admin_id}/end-sessions\"")));
    assert!(
        !own_row.contains("name=\"user\""),
        "one's own row cannot be selected"
    );
    let member_row = row_of(&html, MEMBER);
    assert!(!member_row.contains(">You</span>"));
    assert!(!member_row.contains("disabled"));
    assert!(member_row.contains(&format!(
        "<input type=\"checkbox\" name=\"user\" value=\"{member_id}\" id=\"select-{member_id}\" \
         form=\"bulk-form\""
    )));
    assert!(member_row.contains(&format!(
        "<label for=\"select-{member_id}\" class=\"visually-hidden\">Select {MEMBER}</label>"
    )));
    assert!(member_row.contains(&format!("href=\"/admin/users/{member_id}\">{MEMBER}</a>")));
}

/// The markup of the row of `email`.
fn row_of(html: &str, email: &str) -> String {
    let start = html
        .find(&format!("<tr data-email=\"{email}\""))
        .expect(email);
    html[start..start + html[start..].find("</tr>").unwrap()].to_owned()
}

// ---------------------------------------------------------------------------------------------
// Confirmations

#[tokio::test]
async fn promote_and_deactivate_ask_first_and_act_only_when_confirmed() {
    let (app, admin) = admin_app().await;
    app.register(TARGET, PASSWORD).await;
    let id = app.user_id(TARGET);

    for (action, title) in [
        ("promote", format!("Make {TARGET} a superuser?")),
        ("deactivate", format!("Deactivate {TARGET}?")),
    ] {
        let before = snapshot(&app);
        for extra in [&[][..], &[("confirm", "no")][..]] {
            let mut fields = vec![("next", "/admin/users?q=target")];
            fields.extend_from_slice(extra);
            let response = admin
                .submit(&action_path(&app, TARGET, action), &fields)
                .await;

            assert_eq!(response.status(), 200, "{action} {extra:?}");
            let html = response.text().await.unwrap();
            assert!(
                html.contains(&format!("id=\"confirm-{action}-form\"")),
                "{html}"
            );
            assert!(html.contains(&format!("action=\"/admin/users/{id}/{action}\"")));
            assert_eq!(text_of(&html, "<h1").unwrap(), title);
            assert_eq!(input_value(&html, "confirm").unwrap(), "yes");
            assert_eq!(input_value(&html, "next").unwrap(), "/admin/users?q=target");
            assert_eq!(snapshot(&app), before, "{action}: nothing changed yet");
        }
        // The page can be opened from a link too, and changes nothing.
        let html = admin.page(&action_path(&app, TARGET, action)).await;
        assert!(html.contains(&format!("id=\"confirm-{action}-form\"")));
        assert_eq!(snapshot(&app), before);
    }

    for action in ["promote", "deactivate"] {
        let response = act(&admin, &app, TARGET, action, &[("confirm", "yes")]).await;
        assert_see_other(&response, LIST);
    }
    let row = app.user_row(TARGET).unwrap();
    assert!(row.is_superuser && !row.is_active);

    // Demote, activate and verify act at once.
    for action in ["demote", "activate", "verify"] {
        assert_see_other(&act(&admin, &app, TARGET, action, &[]).await, LIST);
    }
    let row = app.user_row(TARGET).unwrap();
    assert!(!row.is_superuser && row.is_active && row.is_verified);
}

// ---------------------------------------------------------------------------------------------
// Bulk actions

const ONE: &str = "one@example.com";
const TWO: &str = "two@example.com";
const BYSTANDER: &str = "bystander@example.com";

/// The bulk form's fields for `emails`, as the list's checkboxes send them.
fn bulk_fields<'a>(
    app: &TestApp,
    action: &'a str,
    emails: &[&str],
    extra: Extra<'a>,
) -> Vec<(&'a str, String)> {
    let mut fields = vec![("action", action.to_owned()), ("next", LIST.to_owned())];
    for email in emails {
        fields.push(("user", app.user_id(email)));
    }
    fields.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    fields
}

async fn bulk(
    admin: &PageClient,
    app: &TestApp,
    action: &str,
    emails: &[&str],
    extra: Extra<'_>,
) -> reqwest::Response {
    let fields = bulk_fields(app, action, emails, extra);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    admin.submit("/admin/users/bulk", &fields).await
}

/// Three signed-in accounts besides the superuser.
async fn bulk_app() -> (TestApp, PageClient) {
    let (app, admin) = admin_app().await;
    for email in [ONE, TWO, BYSTANDER] {
        app.user(email).await;
    }
    (app, admin)
}

#[tokio::test]
async fn the_bulk_form_is_on_the_list_with_its_actions() {
    let (_app, admin) = bulk_app().await;

    let html = admin.page(LIST).await;

    assert!(html.contains("<form id=\"bulk-form\" method=\"post\" action=\"/admin/users/bulk\""));
    for (value, label) in [
        ("deactivate", "Deactivate"),
        ("end-sessions", "Sign out everywhere"),
        ("delete", "Delete"),
    ] {
        assert!(html.contains(&format!("<option value=\"{value}\">{label}</option>")));
    }
    assert!(html.contains("id=\"select-all\""));
    assert!(html.contains("<script src=\"/static/admin.js\" defer></script>"));
    let script = admin.get("/static/admin.js").await;
    assert_eq!(script.status(), 200);
}

#[tokio::test]
async fn a_bulk_action_first_lists_the_chosen_accounts_and_changes_nothing() {
    let (app, admin) = bulk_app().await;
    let before = snapshot(&app);

    let response = bulk(&admin, &app, "deactivate", &[ONE, TWO, ADMIN], &[]).await;

    assert_eq!(response.status(), 200);
    assert_html(&response);
    let html = response.text().await.unwrap();
    assert_eq!(text_of(&html, "<h1").unwrap(), "Deactivate 2 users?");
    assert!(html.contains("id=\"confirm-bulk-form\""));
    let listed_ids = attribute_values(&html, "data-id");
    assert_eq!(listed_ids, [app.user_id(ONE), app.user_id(TWO)]);
    for email in [ONE, TWO] {
        assert!(
            html.contains(&format!("<strong>{email}</strong>")),
            "{email}"
        );
        assert!(html.contains(&format!(
            "<input type=\"hidden\" name=\"user\" value=\"{}\">",
            app.user_id(email)
        )));
    }
    assert!(!html.contains(&format!("value=\"{}\"", app.user_id(ADMIN))));
    assert!(html.contains("id=\"bulk-skipped-self\""), "{html}");
    assert!(!html.contains(BYSTANDER));
    assert_eq!(input_value(&html, "action").unwrap(), "deactivate");
    assert_eq!(input_value(&html, "confirm").unwrap(), "yes");
    assert_eq!(snapshot(&app), before);
}

#[tokio::test]
async fn bulk_deactivate_applies_to_the_chosen_accounts_only() {
    let (app, admin) = bulk_app().await;

    let response = bulk(
        &admin,
        &app,
        "deactivate",
        &[ONE, TWO, ADMIN],
        &[("confirm", "yes")],
    )
    .await;

    assert_see_other(&response, LIST);
    for email in [ONE, TWO] {
        assert!(!app.user_row(email).unwrap().is_active, "{email}");
        assert_eq!(live_sessions(&app, email), 0, "{email}");
    }
    assert!(app.user_row(BYSTANDER).unwrap().is_active);
    assert_eq!(live_sessions(&app, BYSTANDER), 1);
    assert!(
        app.user_row(ADMIN).unwrap().is_active,
        "one's own account is skipped"
    );
    assert_eq!(
        admin.flashes_on(LIST).await,
        [Flash::success(&format!(
            "Deactivated and signed out: {ONE}, {TWO}. Your own account was left out."
        ))]
    );
    let deactivated = app.count("SELECT id FROM audit_events WHERE event = 'user_deactivated'");
    assert_eq!(deactivated, 2, "each audited as the single action is");
}

#[tokio::test]
async fn bulk_sign_out_ends_the_chosen_accounts_sessions() {
    let (app, admin) = bulk_app().await;

    let response = bulk(
        &admin,
        &app,
        "end-sessions",
        &[ONE, TWO],
        &[("confirm", "yes")],
    )
    .await;

    assert_see_other(&response, LIST);
    assert_eq!(live_sessions(&app, ONE), 0);
    assert_eq!(live_sessions(&app, TWO), 0);
    assert_eq!(live_sessions(&app, BYSTANDER), 1);
    assert_eq!(live_sessions(&app, ADMIN), 2, "the API's and the browser's");
    assert!(
        app.user_row(ONE).unwrap().is_active,
        "signed out, not deactivated"
    );
    assert_eq!(
        admin.flashes_on(LIST).await,
        [Flash::success(&format!(
            "Signed out everywhere: {ONE}, {TWO}."
        ))]
    );
}

#[tokio::test]
async fn bulk_delete_deletes_the_chosen_accounts_and_skips_ones_own() {
    let (app, admin) = bulk_app().await;

    let response = bulk(&admin, &app, "delete", &[TWO, ADMIN], &[("confirm", "yes")]).await;

    assert_see_other(&response, LIST);
    assert!(app.user_row(TWO).is_none());
    for email in [ADMIN, ONE, BYSTANDER] {
        assert!(app.user_row(email).is_some(), "{email}");
    }
    assert_eq!(
        admin.flashes_on(LIST).await,
        [Flash::success(&format!(
            "Deleted: {TWO}. Your own account was left out."
        ))]
    );
}

#[tokio::test]
async fn a_bulk_action_without_a_choice_changes_nothing_and_says_why() {
    let (app, admin) = bulk_app().await;
    let before = snapshot(&app);

    let cases: [(&str, &[&str], &str); 4] = [
        ("deactivate", &[], "Select the users to apply it to first."),
        (
            "deactivate",
            &[ADMIN],
            "Nothing was changed: your own account is left out of actions on several users. \
             Select others.",
        ),
        (
            "promote",
            &[ONE],
            "Choose what to do with the selected users.",
        ),
        ("", &[ONE], "Choose what to do with the selected users."),
    ];
    for (action, emails, message) in cases {
        let response = bulk(&admin, &app, action, emails, &[("confirm", "yes")]).await;
        assert_see_other(&response, LIST);
        assert_eq!(
            admin.flashes_on(LIST).await,
            [Flash::error(message)],
            "{action}"
        );
        assert_eq!(snapshot(&app), before, "{action} {emails:?}");
    }
    // Ids that name no account are dropped.
    let response = admin
        .submit(
            "/admin/users/bulk",
            &[
                ("action", "delete"),
                ("user", "not-a-uuid"),
                ("user", "00000000-0000-4000-8000-000000000000"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_see_other(&response, LIST);
    assert_eq!(snapshot(&app), before);
}

#[tokio::test]
async fn a_bulk_action_without_the_csrf_token_is_refused_and_changes_nothing() {
    let (app, admin) = bulk_app().await;
    let before = snapshot(&app);
    let fields = bulk_fields(&app, "delete", &[ONE, TWO], &[("confirm", "yes")]);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let response = admin.post_form("/admin/users/bulk", &fields).await;

    assert_eq!(response.status(), 403);
    assert_csrf_page(response).await;
    assert_eq!(snapshot(&app), before);
    assert!(app.user_row(ONE).is_some() && app.user_row(TWO).is_some());
}
