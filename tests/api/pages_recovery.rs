//! The recovery and verification pages: forgot password, the reset and verify links, the
//! "send the link again" buttons, and what the login and signup pages do when verification is
//! required, driven the way a browser drives them.

use crate::helpers::*;
use crate::page_client::*;

const EMAIL: &str = "reader@example.com";
const NEW_PASSWORD: &str = "a different long passphrase";
const FORGOT_TEXT: &str = "we’ve sent it a link to reset the password.";
const RESET_FLASH: &str = "Your password has been reset. Log in with your new password.";
const NOT_VERIFIED: &str = "Please verify your email address first: check your inbox for the link.";

async fn mail_app() -> TestApp {
    spawn_mail_app_with(&[("COOKIE_SECURE", "false")]).await
}

/// An app where unverified accounts cannot log in.
async fn strict_app() -> TestApp {
    spawn_mail_app_with(&[("COOKIE_SECURE", "false"), ("REQUIRE_VERIFICATION", "true")]).await
}

/// What "Check your inbox" says, once its markup is gone.
fn forgot_text(email: &str) -> String {
    format!("If an account exists for <strong>{email}</strong>, {FORGOT_TEXT}")
}

/// Where asking for a reset link leads.
const LINK_SENT: &str = "/forgot-password/sent";

async fn forgot_password(browser: &PageClient, email: &str) -> reqwest::Response {
    let token = browser.csrf_token("/forgot-password").await;
    browser
        .post_form("/forgot-password", &with_token(&[("email", email)], &token))
        .await
}

/// Posts the reset form as its page would, whatever `token` is.
async fn reset_password(
    browser: &PageClient,
    token: &str,
    password: &str,
    confirm: &str,
) -> reqwest::Response {
    let fields = [
        ("token", token),
        ("new_password", password),
        ("new_password_confirm", confirm),
    ];
    browser.submit("/reset-password", &fields).await
}

/// Opens the verification link and presses its button.
async fn verify(browser: &PageClient, token: &str) -> reqwest::Response {
    let html = browser.page(&format!("/verify?token={token}")).await;
    let fields = [("token", token), ("csrf_token", &csrf_in(&html))];
    browser.post_form("/verify", &fields).await
}

fn is_verified(app: &TestApp, email: &str) -> bool {
    app.user_row(email).expect("user exists").is_verified
}

/// Asserts the 400 page for a link that cannot be used, offering a way to a new one.
async fn assert_bad_link(response: reqwest::Response, offers: &str, what: &str) {
    assert_eq!(response.status(), 400, "{what}");
    assert_html(&response);
    assert_no_token_cookies(&response);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"bad-link\""), "{what}: {html}");
    assert!(
        html.contains(&format!("href=\"{offers}\"")),
        "{what}: {html}"
    );
}

/// Asserts `password` logs `email` in through the login page and `refused` does not.
async fn assert_password(app: &TestApp, email: &str, password: &str, refused: &str) {
    let response = PageClient::new(app).log_in(email, refused, None).await;
    assert_eq!(response.status(), 400, "{refused} refused");
    let response = PageClient::new(app).log_in(email, password, None).await;
    assert_see_other(&response, "/account");
}

// ---------------------------------------------------------------------------------------------
// Forgot password

#[tokio::test]
async fn login_page_links_to_the_forgot_password_page() {
    let app = mail_app().await;
    let browser = PageClient::new(&app);

    let login = browser.page("/login").await;
    assert!(login.contains("href=\"/forgot-password\""), "{login}");
    assert!(login.contains("Forgot your password?"), "{login}");

    let html = browser.page("/forgot-password").await;
    assert!(html.contains("action=\"/forgot-password\""), "{html}");
    assert!(html.contains("name=\"email\""), "{html}");
    csrf_in(&html);
}

#[tokio::test]
async fn forgot_password_answers_alike_for_known_and_unknown_addresses() {
    let app = mail_app().await;
    app.register(EMAIL, PASSWORD).await;
    let unknown = "nobody@example.com";

    let known_answer = PageClient::new(&app);
    let response = forgot_password(&known_answer, EMAIL).await;
    assert_see_other(&response, LINK_SENT);
    assert_no_token_cookies(&response);
    let known_page = known_answer.page(LINK_SENT).await;

    let unknown_answer = PageClient::new(&app);
    let response = forgot_password(&unknown_answer, unknown).await;
    assert_see_other(&response, LINK_SENT);
    assert_no_token_cookies(&response);
    let unknown_page = unknown_answer.page(LINK_SENT).await;

    assert_eq!(title_of(&known_page), "Check your inbox · Gatehouse");
    assert_eq!(
        known_page.replace(EMAIL, unknown),
        unknown_page,
        "the same page but for the address"
    );
    assert!(known_page.contains(&forgot_text(EMAIL)), "{known_page}");

    let email = app.wait_for_email(EMAIL, 1).await;
    assert!(email.link_base.ends_with("/reset-password"), "{email:?}");
    assert_eq!(email.token.len(), 43, "{email:?}");
    app.assert_no_email_to(unknown).await;
    assert_eq!(app.emails_to(EMAIL).len(), 1);
}

#[tokio::test]
async fn forgot_password_re_renders_an_invalid_email_with_422() {
    let app = mail_app().await;
    let hostile = "<script>not-an-email";

    let response = forgot_password(&PageClient::new(&app), hostile).await;

    assert_eq!(response.status(), 422);
    assert_html(&response);
    let html = response.text().await.unwrap();
    assert_not_raw(&html, "<script>");
    assert!(field_error(&html, "email")
        .unwrap()
        .starts_with("Enter a valid email address"));
    assert_eq!(input_value(&html, "email").unwrap(), hostile);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.outbox().is_empty());
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = mail_app().await;
    app.register(EMAIL, PASSWORD).await;
    let reset = app.reset_token(EMAIL).await;
    let verify_token = app.verify_token(EMAIL).await;
    let browser = PageClient::user(&app, "member@example.com").await;
    let before = snapshot(&app);
    let sent = app.outbox().len();

    let forms: [(&str, Vec<(&str, &str)>); 5] = [
        ("/forgot-password", vec![("email", EMAIL)]),
        (
            "/reset-password",
            vec![
                ("token", reset.as_str()),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        ),
        ("/verify", vec![("token", verify_token.as_str())]),
        ("/verify/resend", vec![("email", EMAIL)]),
        ("/account/verify-email", vec![]),
    ];
    for (path, fields) in &forms {
        assert_csrf_page(browser.post_form(path, fields).await).await;
        let mut wrong = fields.clone();
        wrong.push(("csrf_token", "not-the-token"));
        assert_csrf_page(browser.post_form(path, &wrong).await).await;
    }

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(snapshot(&app), before);
    assert_eq!(app.outbox().len(), sent, "no message was sent");
    assert!(!is_verified(&app, EMAIL));
    // The tokens are still good.
    assert_see_other(
        &reset_password(&PageClient::new(&app), &reset, NEW_PASSWORD, NEW_PASSWORD).await,
        "/login",
    );
    assert_see_other(
        &verify(&PageClient::new(&app), &verify_token).await,
        "/account",
    );
}

// ---------------------------------------------------------------------------------------------
// Reset password

#[tokio::test]
async fn the_emailed_link_resets_the_password_and_signs_the_browser_out() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let other_device = PageClient::logged_in(&app, EMAIL).await;
    assert_see_other(&forgot_password(&browser, EMAIL).await, LINK_SENT);
    let token = app.wait_for_email(EMAIL, 1).await.token;

    let html = browser
        .page(&format!("/reset-password?token={token}"))
        .await;
    assert!(html.contains("action=\"/reset-password\""), "{html}");
    assert_eq!(input_value(&html, "token").unwrap(), token);
    for field in ["new_password", "new_password_confirm"] {
        let at = html.find(&format!("name=\"{field}\"")).unwrap();
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(tag.contains("autocomplete=\"new-password\""), "{tag}");
    }
    let fields = [
        ("token", token.as_str()),
        ("new_password", NEW_PASSWORD),
        ("new_password_confirm", NEW_PASSWORD),
        ("csrf_token", &csrf_in(&html)),
    ];
    let response = browser.post_form("/reset-password", &fields).await;

    assert_see_other(&response, "/login");
    assert!(set_cookie(&response, ACCESS).unwrap().is_cleared());
    assert!(set_cookie(&response, REFRESH).unwrap().is_cleared());
    assert_eq!(
        browser.flashes_on("/login").await,
        [Flash::success(RESET_FLASH)]
    );
    assert_eq!(browser.signed_in_as().await, None);
    assert_eq!(
        other_device.signed_in_as().await,
        None,
        "every session ended"
    );
    assert_eq!(live_sessions(&app, EMAIL), 0);
    assert_password(&app, EMAIL, NEW_PASSWORD, PASSWORD).await;
}

#[tokio::test]
async fn reset_with_mismatched_passwords_re_renders_with_422() {
    let app = mail_app().await;
    app.register(EMAIL, PASSWORD).await;
    let token = app.reset_token(EMAIL).await;
    let before = snapshot(&app);

    let response = reset_password(
        &PageClient::new(&app),
        &token,
        NEW_PASSWORD,
        "something else entirely",
    )
    .await;

    assert_eq!(response.status(), 422);
    assert_html(&response);
    let html = response.text().await.unwrap();
    assert_eq!(
        field_error(&html, "new_password_confirm").as_deref(),
        Some("The two passwords don’t match.")
    );
    assert_eq!(
        input_value(&html, "token").unwrap(),
        token,
        "kept for the retry"
    );
    assert_eq!(
        input_value(&html, "new_password").unwrap(),
        "",
        "never echoed"
    );
    assert_eq!(snapshot(&app), before);
    assert_see_other(
        &reset_password(&PageClient::new(&app), &token, NEW_PASSWORD, NEW_PASSWORD).await,
        "/login",
    );
}

#[tokio::test]
async fn reset_with_a_weak_password_shows_why_beside_the_field() {
    let app = mail_app().await;
    app.register(EMAIL, PASSWORD).await;
    let token = app.reset_token(EMAIL).await;
    let before = snapshot(&app);

    for (password, why) in [
        ("password", "This password is too common"),
        ("short", "Password should be at least 8 characters long."),
    ] {
        let response = reset_password(&PageClient::new(&app), &token, password, password).await;

        assert_eq!(response.status(), 422, "{password}");
        let html = response.text().await.unwrap();
        let error = field_error(&html, "new_password").expect("an error beside new_password");
        assert!(error.starts_with(why), "{password}: {error}");
        assert_eq!(input_value(&html, "token").unwrap(), token);
    }
    assert_eq!(snapshot(&app), before);
    assert_password(&app, EMAIL, PASSWORD, NEW_PASSWORD).await;
}

#[tokio::test]
async fn a_missing_bad_or_used_reset_link_shows_the_invalid_link_page() {
    let app = mail_app().await;
    app.register(EMAIL, PASSWORD).await;
    let token = app.reset_token(EMAIL).await;
    let browser = PageClient::new(&app);

    for path in ["/reset-password", "/reset-password?token="] {
        assert_bad_link(browser.get(path).await, "/forgot-password", path).await;
    }
    let garbage = "A".repeat(43);
    for bad in ["garbage", garbage.as_str(), ""] {
        let response = reset_password(&browser, bad, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_bad_link(response, "/forgot-password", bad).await;
    }

    assert_see_other(
        &reset_password(&browser, &token, NEW_PASSWORD, NEW_PASSWORD).await,
        "/login",
    );
    let again = reset_password(
        &browser,
        &token,
        "yet another passphrase",
        "yet another passphrase",
    )
    .await;
    assert_bad_link(again, "/forgot-password", "a used token").await;
    assert_password(&app, EMAIL, NEW_PASSWORD, "yet another passphrase").await;
}

// ---------------------------------------------------------------------------------------------
// Verification

#[tokio::test]
async fn opening_the_verify_link_changes_nothing_until_the_button_is_pressed() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let token = app.verify_token(EMAIL).await;
    let before = snapshot(&app);

    let html = browser.page(&format!("/verify?token={token}")).await;
    let head = browser
        .client
        .head(browser.url(&format!("/verify?token={token}")))
        .send()
        .await
        .unwrap();

    assert_eq!(head.status(), 200);
    assert!(html.contains("action=\"/verify\""), "{html}");
    assert!(html.contains("Confirm my email address"), "{html}");
    assert_eq!(input_value(&html, "token").unwrap(), token);
    assert_eq!(snapshot(&app), before);
    assert!(!is_verified(&app, EMAIL));

    let fields = [("token", token.as_str()), ("csrf_token", &csrf_in(&html))];
    let response = browser.post_form("/verify", &fields).await;

    assert_see_other(&response, "/account");
    assert!(is_verified(&app, EMAIL));
    let account = browser.page("/account").await;
    assert_eq!(
        flashes_in(&account),
        [Flash::success("Your email address is verified.")]
    );
    assert!(!account.contains("id=\"verify-email-form\""), "{account}");
}

#[tokio::test]
async fn a_second_press_says_the_address_was_already_verified() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let token = app.verify_token(EMAIL).await;
    assert_see_other(&verify(&browser, &token).await, "/account");
    browser.flashes_on("/account").await;

    assert_see_other(&verify(&browser, &token).await, "/account");

    assert_eq!(
        browser.flashes_on("/account").await,
        [Flash::success("Your email address was already verified.")]
    );
    assert!(is_verified(&app, EMAIL));
}

#[tokio::test]
async fn a_missing_or_bad_verify_link_shows_the_invalid_link_page() {
    let app = mail_app().await;
    app.register(EMAIL, PASSWORD).await;
    let reset = app.reset_token(EMAIL).await;
    let browser = PageClient::new(&app);

    for path in ["/verify", "/verify?token="] {
        assert_bad_link(browser.get(path).await, "/account", path).await;
    }
    for bad in ["garbage", reset.as_str()] {
        let what = format!("token {bad}");
        // Opening the link says so; pressing a button of a page opened earlier does too.
        let opened = browser.get(&format!("/verify?token={bad}")).await;
        assert_bad_link(opened, "/account", &what).await;
        let fields = [("token", bad)];
        assert_bad_link(browser.submit("/verify", &fields).await, "/account", &what).await;
    }
    assert!(!is_verified(&app, EMAIL));
}

#[tokio::test]
async fn the_account_page_sends_a_verification_link_to_an_unverified_address() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;

    let html = browser.page("/account").await;
    assert!(html.contains("action=\"/account/verify-email\""), "{html}");
    let response = browser
        .post_form("/account/verify-email", &[("csrf_token", &csrf_in(&html))])
        .await;

    assert_see_other(&response, "/account");
    assert_eq!(
        browser.flashes_on("/account").await,
        [Flash::success(&format!(
            "We’ve sent a verification link to {EMAIL}."
        ))]
    );
    let email = app.wait_for_email(EMAIL, 1).await;
    assert!(email.link_base.ends_with("/verify"), "{email:?}");
    assert_see_other(&verify(&browser, &email.token).await, "/account");
    assert!(is_verified(&app, EMAIL));
    let html = browser.page("/account").await;
    assert!(!html.contains("action=\"/account/verify-email\""), "{html}");
}

#[tokio::test]
async fn the_account_page_button_needs_a_signed_in_user() {
    let app = mail_app().await;
    let browser = PageClient::new(&app);
    let token = browser.csrf_token("/login").await;

    let response = browser
        .post_form("/account/verify-email", &[("csrf_token", &token)])
        .await;

    assert_see_other(&response, "/login");
}

// ---------------------------------------------------------------------------------------------
// Required verification

#[tokio::test]
async fn with_required_verification_signup_sends_the_link_instead_of_signing_in() {
    let app = strict_app().await;
    let browser = PageClient::new(&app);

    let response = browser.sign_up(EMAIL, PASSWORD, PASSWORD).await;

    assert_see_other(&response, "/login");
    for name in [ACCESS, REFRESH] {
        assert!(
            set_cookie(&response, name).is_none_or(|c| c.is_cleared()),
            "{name} not set"
        );
    }
    assert_eq!(
        browser.flashes_on("/login").await,
        [Flash::success(&format!(
            "Almost done: we’ve sent a link to {EMAIL}. Open it to verify your address, then \
             log in."
        ))]
    );
    assert_eq!(browser.signed_in_as().await, None);
    assert_eq!(live_sessions(&app, EMAIL), 0);
    let email = app.wait_for_email(EMAIL, 1).await;
    assert!(email.link_base.ends_with("/verify"), "{email:?}");

    assert_see_other(&verify(&browser, &email.token).await, "/account");
    assert_see_other(&browser.log_in(EMAIL, PASSWORD, None).await, "/account");
}

#[tokio::test]
async fn with_required_verification_login_offers_to_send_the_link_again() {
    let app = strict_app().await;
    app.register(EMAIL, PASSWORD).await;
    app.wait_for_email(EMAIL, 1).await;
    let browser = PageClient::new(&app);

    let wrong = browser.log_in(EMAIL, "not the right password", None).await;
    assert_eq!(wrong.status(), 400);
    let html = wrong.text().await.unwrap();
    assert_eq!(error_summary(&html), ["Incorrect email or password."]);
    assert!(
        !html.contains("/verify/resend"),
        "nothing for a wrong password"
    );

    let response = browser.log_in(EMAIL, PASSWORD, None).await;

    assert_eq!(response.status(), 400);
    assert_no_token_cookies(&response);
    let html = response.text().await.unwrap();
    assert_eq!(error_summary(&html), [NOT_VERIFIED]);
    let form = &html[html
        .find("id=\"resend-verification-form\"")
        .expect("resend form")..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(form.contains("action=\"/verify/resend\""), "{form}");
    assert!(form.contains("Send the link again"), "{form}");
    assert_eq!(input_value(form, "email").unwrap(), EMAIL);
    assert_eq!(live_sessions(&app, EMAIL), 0);

    let fields = [("email", EMAIL), ("csrf_token", &csrf_in(form))];
    let resent = browser.post_form("/verify/resend", &fields).await;

    assert_see_other(&resent, "/login");
    assert_eq!(
        browser.flashes_on("/login").await,
        [Flash::success(
            "If that address needs verifying, we’ve sent it a new link."
        )]
    );
    let token = app.wait_for_email(EMAIL, 2).await.token;
    assert_see_other(&verify(&browser, &token).await, "/account");
    assert_see_other(&browser.log_in(EMAIL, PASSWORD, None).await, "/account");
}

#[tokio::test]
async fn sending_the_link_again_answers_alike_for_every_address() {
    let app = strict_app().await;
    app.register(EMAIL, PASSWORD).await;
    app.wait_for_email(EMAIL, 1).await;
    app.register("verified@example.com", PASSWORD).await;
    app.wait_for_email("verified@example.com", 1).await;
    app.execute("UPDATE users SET is_verified = TRUE WHERE email = 'verified@example.com'");

    for address in [EMAIL, "verified@example.com", "nobody@example.com"] {
        let browser = PageClient::new(&app);
        let token = browser.csrf_token("/login").await;
        let response = browser
            .post_form(
                "/verify/resend",
                &[("email", address), ("csrf_token", &token)],
            )
            .await;
        assert_see_other(&response, "/login");
        assert_eq!(
            browser.flashes_on("/login").await,
            [Flash::success(
                "If that address needs verifying, we’ve sent it a new link."
            )],
            "{address}"
        );
    }

    app.wait_for_email(EMAIL, 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.emails_to("verified@example.com").len(), 1);
    app.assert_no_email_to("nobody@example.com").await;
}

// ---------------------------------------------------------------------------------------------
// Throttling

#[tokio::test]
async fn too_many_logins_show_the_429_page_with_retry_after() {
    let app = spawn_app_with(&[
        ("COOKIE_SECURE", "false"),
        ("RATE_LIMIT", "on"),
        ("RATE_LIMIT_LOGIN_PER_IP", "2/60"),
    ])
    .await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);

    for _ in 0..2 {
        let response = browser.log_in(EMAIL, "not the right password", None).await;
        assert_eq!(response.status(), 400);
    }
    let response = browser.log_in(EMAIL, PASSWORD, None).await;

    assert_eq!(response.status(), 429);
    assert_html(&response);
    assert_no_token_cookies(&response);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let html = response.text().await.unwrap();
    assert!(html.contains("Too many attempts"), "{html}");
    assert!(html.contains("Please try again in"), "{html}");
    assert_eq!(
        text_of(&html, "id=\"reset-your-password\"").as_deref(),
        Some("Reset your password"),
        "the way in that needs no password"
    );
    assert!(html.contains("href=\"/forgot-password\""), "{html}");
    assert_eq!(live_sessions(&app, EMAIL), 0);
}
