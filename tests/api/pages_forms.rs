//! Forms that help: every error at once, beside its field and in a summary at the top, in
//! plain words; the pages a signed-in visitor does not need; the error pages that show a way
//! on; and links that say they are dead when they are opened.

use crate::helpers::*;
use crate::page_client::*;

const EMAIL: &str = "reader@example.com";
const NEW_PASSWORD: &str = "a different long passphrase";

/// Asserts the page is a form with errors: the title says so, and the summary at the top
/// takes the focus and lists `expected` (field, message) in the order of the fields.
fn assert_summary(html: &str, title: &str, expected: &[(&str, &str)]) {
    assert_eq!(title_of(html), format!("Error: {title} · Gatehouse"));
    let at = html.find("id=\"error-summary\"").expect("an error summary");
    let tag = &html[html[..at].rfind('<').unwrap()..at + html[at..].find('>').unwrap()];
    assert!(tag.contains("tabindex=\"-1\""), "{tag}");
    assert!(tag.contains("autofocus"), "{tag}");
    assert!(
        at < html.find("<h1").unwrap(),
        "the summary comes before the heading"
    );
    let links = error_summary_links(html);
    let links: Vec<(&str, &str)> = links
        .iter()
        .map(|(field, text)| (field.as_str(), text.as_str()))
        .collect();
    assert_eq!(links, expected);
    for (field, _) in expected {
        assert!(html.contains(&format!("id=\"{field}\"")), "#{field} exists");
    }
    assert!(!html.contains("not a valid email address:"), "{html}");
}

#[tokio::test]
async fn signup_shows_every_error_at_once_beside_its_field_and_in_the_summary() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    let response = browser.sign_up("", "short", "shorter").await;

    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    let expected = [
        ("email", "Enter an email address"),
        ("password", "Password should be at least 8 characters long."),
        ("password_confirm", "The two passwords don’t match."),
    ];
    assert_summary(&html, "Sign up", &expected);
    for (field, message) in expected {
        assert_eq!(field_error(&html, field).as_deref(), Some(message));
    }

    let html = browser
        .sign_up("not-an-email", "", "")
        .await
        .text()
        .await
        .unwrap();
    assert_summary(
        &html,
        "Sign up",
        &[
            (
                "email",
                "Enter a valid email address, like name@example.com",
            ),
            ("password", "Enter a password"),
        ],
    );
}

#[tokio::test]
async fn a_page_without_errors_has_no_summary_and_a_plain_title() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    for (path, title) in [
        ("/signup", "Sign up"),
        ("/login", "Log in"),
        ("/forgot-password", "Forgot your password?"),
    ] {
        let html = browser.page(path).await;
        assert_eq!(title_of(&html), format!("{title} · Gatehouse"), "{path}");
        assert!(!html.contains("error-summary"), "{path}");
    }
}

#[tokio::test]
async fn signup_with_a_taken_address_offers_to_log_in_instead() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;

    let html = PageClient::new(&app)
        .sign_up(EMAIL, PASSWORD, PASSWORD)
        .await
        .text()
        .await
        .unwrap();

    let at = html.find("id=\"email-error\"").unwrap();
    let error = &html[at..at + html[at..].find("</p>").unwrap()];
    assert!(
        error.contains("<a href=\"/login\">Log in instead</a>"),
        "{error}"
    );
    assert_summary(
        &html,
        "Sign up",
        &[("email", "An account with this email already exists.")],
    );
}

#[tokio::test]
async fn login_failure_is_one_message_in_the_summary() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;

    let html = PageClient::new(&app)
        .log_in(EMAIL, "not the right password", None)
        .await
        .text()
        .await
        .unwrap();

    assert_summary(
        &html,
        "Log in",
        &[("email", "Incorrect email or password.")],
    );
    assert_eq!(field_error(&html, "email"), None, "no field is blamed");
    assert_eq!(field_error(&html, "password"), None, "no field is blamed");
}

#[tokio::test]
async fn password_change_shows_every_error_at_once() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let before = snapshot(&app);

    let fields = [
        ("current_password", ""),
        ("new_password", "password"),
        ("new_password_confirm", "something else"),
    ];
    let response = browser.submit("/account/password", &fields).await;

    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    let summary = error_summary_links(&html);
    let fields: Vec<&str> = summary.iter().map(|(field, _)| field.as_str()).collect();
    assert_eq!(
        fields,
        ["current_password", "new_password", "new_password_confirm"]
    );
    assert_eq!(summary[0].1, "Enter your current password");
    assert!(summary[1].1.starts_with("This password is too common"));
    assert_eq!(summary[2].1, "The two passwords don’t match.");
    assert_eq!(title_of(&html), "Error: Your account · Gatehouse");
    assert_eq!(snapshot(&app), before);
}

#[tokio::test]
async fn forgot_password_asks_for_an_address_in_plain_words() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    for (email, message) in [
        ("", "Enter an email address"),
        (
            "no-at-sign",
            "Enter a valid email address, like name@example.com",
        ),
    ] {
        let token = browser.csrf_token("/forgot-password").await;
        let response = browser
            .post_form("/forgot-password", &with_token(&[("email", email)], &token))
            .await;
        assert_eq!(response.status(), 422);
        let html = response.text().await.unwrap();
        assert_summary(&html, "Forgot your password?", &[("email", message)]);
        assert_eq!(field_error(&html, "email").as_deref(), Some(message));
    }
}

#[tokio::test]
async fn check_your_inbox_needs_a_request_first() {
    let app = spawn_page_app().await;

    assert_see_other(
        &PageClient::new(&app).get("/forgot-password/sent").await,
        "/forgot-password",
    );
}

#[tokio::test]
async fn password_fields_get_the_forms_script_and_pages_work_without_it() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    let script = browser.get("/static/forms.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let script = script.text().await.unwrap();
    assert!(script.contains("Show password"), "the toggle's name");
    assert!(script.contains("data-error-summary"), "focuses the summary");

    for path in ["/signup", "/login", "/forgot-password"] {
        let html = browser.page(path).await;
        assert!(
            html.contains("<script src=\"/static/forms.js\" defer></script>"),
            "{path}"
        );
    }
    // The password inputs are plain inputs: the script adds the button.
    let html = browser.page("/signup").await;
    assert!(html.contains("type=\"password\""), "{html}");
}

// ---------------------------------------------------------------------------------------------
// Pages a signed-in visitor does not need

#[tokio::test]
async fn a_signed_in_visitor_goes_from_login_and_signup_to_the_account_page() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;

    for path in ["/login", "/signup", "/login?next=/admin/users"] {
        assert_see_other(&browser.get(path).await, "/account");
    }
}

#[tokio::test]
async fn an_application_asking_for_a_fresh_login_gets_the_form() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let next = "/oauth/authorize?client_id=x&prompt=login";
    let path = format!(
        "/login?{}",
        serde_urlencoded::to_string([("next", next)]).unwrap()
    );

    let response = browser.get(&path).await;

    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"login-form\""), "{html}");
    assert_eq!(input_value(&html, "next").unwrap(), next);
}

// ---------------------------------------------------------------------------------------------
// Error pages that show a way on

#[tokio::test]
async fn the_403_page_keeps_the_signed_in_header() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, EMAIL).await;

    let response = browser.get("/admin/users").await;

    assert_eq!(response.status(), 403);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_of(&html, "class=\"nav-account\"").as_deref(),
        Some(EMAIL)
    );
    let token = input_value(&html, "csrf_token").expect("the logout form's token");
    let response = browser
        .post_form("/logout", &[("csrf_token", token.as_str())])
        .await;
    assert_see_other(&response, "/");
    assert_eq!(browser.signed_in_as().await, None);
}

// ---------------------------------------------------------------------------------------------
// Links that say they are dead when opened

#[tokio::test]
async fn a_used_or_expired_reset_link_says_so_when_opened() {
    let app = spawn_mail_app_with(&[("COOKIE_SECURE", "false")]).await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);

    let used = app.reset_token(EMAIL).await;
    let html = browser.page(&format!("/reset-password?token={used}")).await;
    let fields = [
        ("token", used.as_str()),
        ("new_password", NEW_PASSWORD),
        ("new_password_confirm", NEW_PASSWORD),
        ("csrf_token", &csrf_in(&html)),
    ];
    assert_see_other(
        &browser.post_form("/reset-password", &fields).await,
        "/login",
    );
    let response = browser.get(&format!("/reset-password?token={used}")).await;
    assert_eq!(response.status(), 400, "a used link");
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"bad-link\""), "{html}");
    assert!(!html.contains("name=\"new_password\""), "no form to fill");

    let expired = app.reset_token(EMAIL).await;
    app.execute("UPDATE email_tokens SET expires_at = 1");
    let response = browser
        .get(&format!("/reset-password?token={expired}"))
        .await;
    assert_eq!(response.status(), 400, "an expired link");
    assert!(response.text().await.unwrap().contains("id=\"bad-link\""));
}

#[tokio::test]
async fn an_expired_verify_link_says_so_when_opened() {
    let app = spawn_mail_app_with(&[("COOKIE_SECURE", "false")]).await;
    app.register(EMAIL, PASSWORD).await;
    let token = app.verify_token(EMAIL).await;
    app.execute("UPDATE email_tokens SET expires_at = 1");

    let response = PageClient::new(&app)
        .get(&format!("/verify?token={token}"))
        .await;

    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"bad-link\""), "{html}");
    assert!(!html.contains("action=\"/verify\""), "no button to press");
}
