//! The home, signup, login, logout and account pages, driven the way a browser drives them.

use crate::helpers::*;
use crate::page_client::*;

const EMAIL: &str = "reader@example.com";
const NEW_PASSWORD: &str = "a different long passphrase";

/// `path` with `?next=<value>` properly encoded.
fn login_path_with_next(next: &str) -> String {
    format!(
        "/login?{}",
        serde_urlencoded::to_string([("next", next)]).unwrap()
    )
}

/// Values of `next` that could send the browser to another site after login.
const HOSTILE_NEXT: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "//evil.example/account",
    "https://evil.example",
    "http://evil.example/account",
    "https:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "account",
    "",
];

// ---------------------------------------------------------------------------------------------
// Home

#[tokio::test]
async fn home_page_invites_anonymous_visitors_to_sign_up_or_log_in() {
    let app = spawn_page_app().await;

    let html = PageClient::new(&app).page("/").await;

    assert!(html.contains("href=\"/signup\""), "{html}");
    assert!(html.contains("href=\"/login\""), "{html}");
    assert!(!html.contains("id=\"logout-form\""), "{html}");
}

#[tokio::test]
async fn home_page_shows_the_signed_in_user_and_a_logout_form() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;

    let html = browser.page("/").await;

    assert!(html.contains(EMAIL), "{html}");
    assert!(html.contains("href=\"/account\""), "{html}");
    assert!(html.contains("id=\"logout-form\""), "{html}");
    assert!(html.contains("action=\"/logout\""), "{html}");
    assert!(!html.contains("href=\"/signup\""), "{html}");
}

// ---------------------------------------------------------------------------------------------
// Signup

#[tokio::test]
async fn signup_page_renders_the_form_with_a_csrf_token() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    let html = browser.page("/signup").await;

    for field in ["email", "password", "password_confirm"] {
        assert!(html.contains(&format!("name=\"{field}\"")), "{field}");
    }
    assert!(html.contains("action=\"/signup\""), "{html}");
    assert!(csrf_in(&html).len() >= 32);
    assert!(browser.cookie(SESSION).is_some(), "the page session cookie");
}

#[tokio::test]
async fn signup_creates_the_account_signs_in_and_goes_to_the_account_page() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    let response = browser.sign_up(EMAIL, PASSWORD, PASSWORD).await;

    assert_see_other(&response, "/account");
    assert!(set_cookie(&response, ACCESS).is_some_and(|c| !c.value.is_empty()));
    assert!(set_cookie(&response, REFRESH).is_some_and(|c| !c.value.is_empty()));
    let row = app.user_row(EMAIL).expect("the account was created");
    assert!(row.is_active && !row.is_superuser && !row.is_verified);
    assert_eq!(live_sessions(&app, EMAIL), 1);

    let html = browser.page("/account").await;
    assert_eq!(
        flashes_in(&html),
        [Flash::success(
            "Welcome to Gatehouse! Your account is ready."
        )]
    );
    assert_eq!(text_of(&html, "id=\"account-email\"").unwrap(), EMAIL);
}

#[tokio::test]
async fn a_flash_message_shows_once() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);
    browser.sign_up(EMAIL, PASSWORD, PASSWORD).await;

    assert_eq!(browser.flashes_on("/account").await.len(), 1);
    assert_eq!(browser.flashes_on("/account").await, []);
    assert_eq!(browser.flashes_on("/").await, []);
}

#[tokio::test]
async fn signup_errors_re_render_the_form_with_422_beside_the_field() {
    let app = spawn_page_app().await;
    app.register("taken@example.com", PASSWORD).await;
    let cases = [
        (
            "not-an-email",
            PASSWORD,
            PASSWORD,
            "email",
            "Enter a valid email address",
        ),
        (
            EMAIL,
            PASSWORD,
            "a different confirmation",
            "password_confirm",
            "The two passwords don’t match.",
        ),
        (
            EMAIL,
            "password",
            "password",
            "password",
            "This password is too common",
        ),
        (
            EMAIL,
            "short",
            "short",
            "password",
            "Password should be at least 8 characters long.",
        ),
        (
            "taken@example.com",
            PASSWORD,
            PASSWORD,
            "email",
            "An account with this email already exists.",
        ),
        (
            "Taken@Example.COM",
            PASSWORD,
            PASSWORD,
            "email",
            "An account with this email already exists.",
        ),
    ];

    for (email, password, confirm, field, message) in cases {
        let browser = PageClient::new(&app);
        let before = snapshot(&app);

        let response = browser.sign_up(email, password, confirm).await;

        assert_eq!(response.status(), 422, "{email} {password} {confirm}");
        assert_html(&response);
        assert_no_token_cookies(&response);
        let html = response.text().await.unwrap();
        let error = field_error(&html, field).unwrap_or_else(|| panic!("no {field} error"));
        assert!(error.starts_with(message), "{field}: {error}");
        assert_eq!(input_value(&html, "email").unwrap(), email, "email kept");
        assert_eq!(input_value(&html, "password").unwrap(), "", "never echoed");
        assert_eq!(snapshot(&app), before, "nothing stored for {email}");
        assert_eq!(browser.cookie(ACCESS), None);
    }
}

// ---------------------------------------------------------------------------------------------
// Login

#[tokio::test]
async fn login_page_renders_the_form_with_a_default_next() {
    let app = spawn_page_app().await;

    let html = PageClient::new(&app).page("/login").await;

    assert!(html.contains("action=\"/login\""), "{html}");
    assert!(html.contains("name=\"email\""), "{html}");
    assert!(html.contains("name=\"password\""), "{html}");
    assert_eq!(input_value(&html, "next").unwrap(), "/account");
    csrf_in(&html);
}

#[tokio::test]
async fn login_signs_in_and_goes_to_the_account_page() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);

    let response = browser.log_in(EMAIL, PASSWORD, None).await;

    assert_see_other(&response, "/account");
    assert!(set_cookie(&response, ACCESS).is_some_and(|c| !c.value.is_empty()));
    assert!(set_cookie(&response, REFRESH).is_some_and(|c| !c.value.is_empty()));
    assert_eq!(live_sessions(&app, EMAIL), 1);
    assert_eq!(browser.signed_in_as().await.as_deref(), Some(EMAIL));
}

#[tokio::test]
async fn login_email_is_matched_in_any_letter_case() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);

    let response = browser.log_in(&EMAIL.to_uppercase(), PASSWORD, None).await;

    assert_see_other(&response, "/account");
}

#[tokio::test]
async fn login_page_carries_a_local_next_into_the_form() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    for next in ["/", "/account", "/admin/users?q=a%40b&page=2"] {
        let html = browser.page(&login_path_with_next(next)).await;
        assert_eq!(input_value(&html, "next").unwrap(), next);
    }
}

#[tokio::test]
async fn login_page_replaces_a_hostile_next_with_the_account_page() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);
    let mut paths: Vec<String> = HOSTILE_NEXT
        .iter()
        .map(|next| login_path_with_next(next))
        .collect();
    // Written by hand, as a link would carry them.
    paths.push("/login?next=/%09/evil.example".into());
    paths.push("/login?next=%2F%2Fevil.example".into());
    paths.push("/login?next=/%5Cevil.example".into());

    for path in paths {
        let html = browser.page(&path).await;
        assert_eq!(input_value(&html, "next").unwrap(), "/account", "{path}");
    }
}

#[tokio::test]
async fn login_page_escapes_a_local_next_with_markup() {
    let app = spawn_page_app().await;
    let next = "/\"><script>alert(1)</script>";

    let html = PageClient::new(&app)
        .page(&login_path_with_next(next))
        .await;

    assert_not_raw(&html, "\"><script>");
    assert_eq!(input_value(&html, "next").unwrap(), next);
}

#[tokio::test]
async fn login_redirects_to_a_local_next() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;

    for next in ["/", "/account", "/admin/users?q=a%40b&page=2"] {
        let browser = PageClient::new(&app);
        let response = browser.log_in(EMAIL, PASSWORD, Some(next)).await;
        assert_see_other(&response, next);
    }
}

#[tokio::test]
async fn login_never_redirects_to_a_hostile_next() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;

    for next in HOSTILE_NEXT {
        let browser = PageClient::new(&app);
        let response = browser.log_in(EMAIL, PASSWORD, Some(next)).await;
        assert_see_other(&response, "/account");
        assert!(set_cookie(&response, ACCESS).is_some(), "signed in anyway");
    }
}

#[tokio::test]
async fn login_failure_is_one_message_for_every_cause() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    app.register("inactive@example.com", PASSWORD).await;
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'inactive@example.com'");
    let cases = [
        ("nobody@example.com", PASSWORD),
        (EMAIL, "not the right password"),
        (EMAIL, ""),
        ("", PASSWORD),
        ("inactive@example.com", PASSWORD),
    ];

    for (email, password) in cases {
        let browser = PageClient::new(&app);
        let before = snapshot(&app);

        let response = browser.log_in(email, password, None).await;

        assert_eq!(response.status(), 400, "{email} / {password}");
        assert_html(&response);
        assert_no_token_cookies(&response);
        let html = response.text().await.unwrap();
        assert_eq!(
            error_summary(&html),
            ["Incorrect email or password."],
            "{email}"
        );
        assert_eq!(input_value(&html, "email").unwrap(), email, "email kept");
        assert_eq!(input_value(&html, "password").unwrap(), "", "never echoed");
        assert_eq!(snapshot(&app), before, "no session for {email}");
    }
}

#[tokio::test]
async fn login_failure_keeps_the_next_for_the_second_try() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);

    let response = browser
        .log_in(EMAIL, "wrong password", Some("/admin/users?q=x"))
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert_eq!(input_value(&html, "next").unwrap(), "/admin/users?q=x");

    let response = browser
        .log_in(EMAIL, PASSWORD, Some("/admin/users?q=x"))
        .await;
    assert_see_other(&response, "/admin/users?q=x");
}

#[tokio::test]
async fn login_failure_echoes_a_hostile_email_escaped() {
    let app = spawn_page_app().await;
    let hostile = "\"><script>alert(1)</script>";

    let response = PageClient::new(&app).log_in(hostile, PASSWORD, None).await;

    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert_not_raw(&html, "<script>");
    assert_not_raw(&html, "\"><script");
    assert_eq!(input_value(&html, "email").unwrap(), hostile);
}

// ---------------------------------------------------------------------------------------------
// Account

#[tokio::test]
async fn account_page_sends_anonymous_visitors_to_log_in() {
    let app = spawn_page_app().await;

    let response = PageClient::new(&app).get("/account").await;

    assert_see_other(&response, "/login?next=%2Faccount");
}

#[tokio::test]
async fn protected_pages_keep_their_path_and_query_in_next() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    for path in [
        "/account",
        "/admin/users",
        "/admin/users?q=a%40b&page=2",
        "/admin/users/00000000-0000-0000-0000-000000000000/delete",
    ] {
        let response = browser.get(path).await;
        assert_see_other(&response, &login_path_with_next(path));
    }
}

#[tokio::test]
async fn logging_in_from_the_redirect_comes_back_to_the_page() {
    let app = spawn_page_app().await;
    app.superuser(EMAIL).await;
    let browser = PageClient::new(&app);

    let login_page = location(&browser.get("/admin/users?q=reader").await);
    let html = browser.page(&login_page).await;
    let next = input_value(&html, "next").unwrap();
    let response = browser
        .post_form(
            "/login",
            &[
                ("email", EMAIL),
                ("password", PASSWORD),
                ("next", &next),
                ("csrf_token", &csrf_in(&html)),
            ],
        )
        .await;

    assert_see_other(&response, "/admin/users?q=reader");
    let html = browser.page("/admin/users?q=reader").await;
    assert_eq!(attribute_values(&html, "data-email"), [EMAIL]);
}

#[tokio::test]
async fn account_page_shows_the_user_and_the_password_form() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let id = app.user_id(EMAIL);

    let html = browser.page("/account").await;

    assert_eq!(text_of(&html, "id=\"account-email\"").unwrap(), EMAIL);
    assert!(html.contains(&id), "the account id");
    assert!(html.contains("action=\"/account/password\""), "{html}");
    for field in ["current_password", "new_password", "new_password_confirm"] {
        assert!(html.contains(&format!("name=\"{field}\"")), "{field}");
    }
}

// ---------------------------------------------------------------------------------------------
// Logout

#[tokio::test]
async fn logout_clears_the_cookies_revokes_the_session_and_says_so() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let access = browser.cookie(ACCESS).unwrap();
    let refresh = browser.cookie(REFRESH).unwrap();

    let response = browser.submit("/logout", &[]).await;

    assert_see_other(&response, "/");
    for name in [ACCESS, REFRESH] {
        let cookie = set_cookie(&response, name).unwrap_or_else(|| panic!("{name} cleared"));
        assert!(cookie.is_cleared(), "{}", cookie.raw);
        cookie.assert_locked_down(false);
    }
    assert_eq!(browser.cookie(ACCESS), None);
    assert_eq!(browser.cookie(REFRESH), None);
    assert_eq!(live_sessions(&app, EMAIL), 0);
    assert_detail(app.refresh(&refresh).await, 401, "REFRESH_TOKEN_INVALID").await;
    assert_eq!(app.get("/users/me", &access).await.status(), 401);

    let html = browser.page("/").await;
    assert_eq!(
        flashes_in(&html),
        [Flash::success("You have been logged out.")]
    );
    assert!(!html.contains("id=\"logout-form\""), "signed out");
    assert_see_other(&browser.get("/account").await, "/login?next=%2Faccount");
}

#[tokio::test]
async fn logout_ends_only_this_browsers_session() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let other = PageClient::logged_in(&app, EMAIL).await;

    assert_see_other(&browser.submit("/logout", &[]).await, "/");

    assert_eq!(live_sessions(&app, EMAIL), 1);
    assert_eq!(other.signed_in_as().await.as_deref(), Some(EMAIL));
}

// ---------------------------------------------------------------------------------------------
// Change password

fn password_fields<'a>(
    current: &'a str,
    new: &'a str,
    confirm: &'a str,
) -> [(&'a str, &'a str); 3] {
    [
        ("current_password", current),
        ("new_password", new),
        ("new_password_confirm", confirm),
    ]
}

#[tokio::test]
async fn password_change_keeps_this_browser_signed_in_and_ends_every_other_session() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let other_browser = PageClient::logged_in(&app, EMAIL).await;
    let api = app.tokens(EMAIL, PASSWORD).await;
    let old_access = browser.cookie(ACCESS).unwrap();
    let old_refresh = browser.cookie(REFRESH).unwrap();
    let old_hash = app.user_row(EMAIL).unwrap().hashed_password;

    let response = browser
        .submit(
            "/account/password",
            &password_fields(PASSWORD, NEW_PASSWORD, NEW_PASSWORD),
        )
        .await;

    assert_see_other(&response, "/account");
    let new_access = set_cookie(&response, ACCESS).expect("a new access cookie");
    let new_refresh = set_cookie(&response, REFRESH).expect("a new refresh cookie");
    assert_ne!(new_access.value, old_access);
    assert_ne!(new_refresh.value, old_refresh);
    assert_ne!(app.user_row(EMAIL).unwrap().hashed_password, old_hash);
    assert_eq!(live_sessions(&app, EMAIL), 1, "only the new session lives");

    let html = browser.page("/account").await;
    assert_eq!(
        flashes_in(&html),
        [Flash::success(
            "Password changed. You have been signed out everywhere else."
        )]
    );
    assert_eq!(text_of(&html, "id=\"account-email\"").unwrap(), EMAIL);

    assert_see_other(
        &other_browser.get("/account").await,
        "/login?next=%2Faccount",
    );
    assert_eq!(app.get("/users/me", &api.access).await.status(), 401);
    assert_eq!(app.get("/users/me", &old_access).await.status(), 401);
    assert_detail(
        app.refresh(&api.refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
    assert_detail(
        app.refresh(&old_refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
    assert_eq!(app.login(EMAIL, PASSWORD).await.status(), 400);
    app.tokens(EMAIL, NEW_PASSWORD).await;
}

#[tokio::test]
async fn password_change_refusals_re_render_with_422_and_change_nothing() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let cases = [
        (
            "not my password",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "current_password",
            "That is not your current password.",
        ),
        (
            PASSWORD,
            NEW_PASSWORD,
            "something else entirely",
            "new_password_confirm",
            "The two passwords don’t match.",
        ),
        (
            PASSWORD,
            "short",
            "short",
            "new_password",
            "Password should be at least 8 characters long.",
        ),
        (
            PASSWORD,
            "password123",
            "password123",
            "new_password",
            "This password is too common",
        ),
    ];

    for (current, new, confirm, field, message) in cases {
        let before = snapshot(&app);

        let response = browser
            .submit("/account/password", &password_fields(current, new, confirm))
            .await;

        assert_eq!(response.status(), 422, "{field}");
        assert_html(&response);
        assert_no_token_cookies(&response);
        let html = response.text().await.unwrap();
        let error = field_error(&html, field).unwrap_or_else(|| panic!("no {field} error"));
        assert!(error.starts_with(message), "{field}: {error}");
        for password_field in ["current_password", "new_password", "new_password_confirm"] {
            assert_eq!(input_value(&html, password_field).unwrap(), "");
        }
        assert_eq!(snapshot(&app), before, "{field}: nothing changed");
        assert_eq!(browser.signed_in_as().await.as_deref(), Some(EMAIL));
    }
}

#[tokio::test]
async fn password_change_when_signed_out_goes_to_login_and_changes_nothing() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);
    let before = snapshot(&app);

    let response = browser
        .submit(
            "/account/password",
            &password_fields(PASSWORD, NEW_PASSWORD, NEW_PASSWORD),
        )
        .await;

    assert_eq!(response.status(), 303);
    assert!(location(&response).starts_with("/login"), "{response:?}");
    assert_eq!(snapshot(&app), before);
}
