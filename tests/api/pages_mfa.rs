//! Second factors on the pages: `/account/security`, setting up an authenticator app and its
//! recovery codes, the login's second step at `/login/verify`, `MFA_REQUIRED` after signing
//! in, and a superuser's reset. Every code is computed by the tests' own TOTP.

use crate::helpers::totp::{code_at, code_now, now};
use crate::helpers::*;
use crate::page_client::*;

const USER: &str = "user@example.com";
const OTHER: &str = "other@example.com";
const ADMIN: &str = "admin@example.com";
const SECURITY: &str = "/account/security";
const ENROLMENT: &str = "/account/security/totp";
const CONFIRM: &str = "/account/security/totp/confirm";
const VERIFY: &str = "/login/verify";
const TOOK_TOO_LONG: &str = "Your sign-in took too long; please start again.";

/// The code of the step `steps` away from now (the server accepts one step either way, and a
/// step once).
fn code(secret: &str, steps: i64) -> String {
    code_at(secret, now().saturating_add_signed(steps * 30))
}

/// The setup key the enrolment page shows, without its spaces.
fn secret_in(html: &str) -> String {
    let shown = text_of(html, "id=\"totp-secret\"").expect("the setup key");
    let secret: String = shown.split_whitespace().collect();
    assert!(secret.len() >= 26, "at least 128 bits: {shown}");
    secret
}

/// The recovery codes a page shows.
fn codes_in(html: &str) -> Vec<String> {
    let list = &html[html
        .find("id=\"recovery-code-list\"")
        .expect("a list of recovery codes")..];
    let list = &list[..list.find("</ol>").unwrap()];
    list.split("<code>")
        .skip(1)
        .map(|rest| unescape(&rest[..rest.find("</code>").unwrap()]))
        .collect()
}

fn assert_no_store(response: &reqwest::Response, what: &str) {
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store",
        "{what}"
    );
}

/// Begins enrolling through the security page's form; the enrolment page's HTML.
async fn begin(browser: &PageClient) -> String {
    let response = browser
        .submit(ENROLMENT, &[("current_password", PASSWORD)])
        .await;
    assert_see_other(&response, ENROLMENT);
    let response = browser.get(ENROLMENT).await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response, "the enrolment page");
    response.text().await.unwrap()
}

/// Sets up an app through the pages with the previous step's code; its secret and the codes.
async fn enrol(browser: &PageClient) -> (String, Vec<String>) {
    let secret = secret_in(&begin(browser).await);
    let response = browser
        .submit(CONFIRM, &[("code", &code(&secret, -1))])
        .await;
    assert_eq!(response.status(), 200, "confirming with a right code");
    let codes = codes_in(&response.text().await.unwrap());
    (secret, codes)
}

/// A user with an app, and a fresh browser at the second step of their login.
async fn at_second_step(app: &TestApp) -> (String, Vec<String>, PageClient) {
    let owner = PageClient::user(app, USER).await;
    let (secret, codes) = enrol(&owner).await;
    let browser = PageClient::new(app);
    let response = browser.log_in(USER, PASSWORD, None).await;
    assert_see_other(&response, VERIFY);
    assert_no_token_cookies(&response);
    (secret, codes, browser)
}

fn totp_row(app: &TestApp, user: &str, confirmed: bool) -> i64 {
    let id = app.user_id(user);
    let state = if confirmed { "NOT NULL" } else { "NULL" };
    app.count(&format!(
        "SELECT user_id FROM totp_factors WHERE user_id = '{id}' AND confirmed_at IS {state}"
    ))
}

fn unused_recovery_codes(app: &TestApp, user: &str) -> i64 {
    let id = app.user_id(user);
    app.count(&format!(
        "SELECT code_hash FROM recovery_codes WHERE user_id = '{id}' AND used_at IS NULL"
    ))
}

// ---------------------------------------------------------------------------------------------
// The security page and setting up an app

#[tokio::test]
async fn the_security_page_shows_an_account_without_factors() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;

    let account = browser.page("/account").await;
    assert!(account.contains("href=\"/account/security\""), "{account}");

    let html = browser.page(SECURITY).await;
    assert_eq!(text_of(&html, "id=\"totp-status\"").as_deref(), Some("Off"));
    assert!(html.contains("id=\"totp-setup-form\""), "{html}");
    assert!(!html.contains("id=\"totp-disable-form\""), "{html}");
    assert!(!html.contains("id=\"recovery-renew-form\""), "{html}");
    assert!(html.contains("id=\"passkeys\""), "{html}");
    assert_eq!(
        text_of(&html, "id=\"passkeys-empty\"").as_deref(),
        Some("No passkeys yet.")
    );

    let anonymous = PageClient::new(&app).get(SECURITY).await;
    assert_see_other(&anonymous, "/login?next=%2Faccount%2Fsecurity");
}

#[tokio::test]
async fn setting_up_an_app_through_the_pages_turns_it_on_and_shows_the_codes_once() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;

    let html = begin(&browser).await;
    let secret = secret_in(&html);
    assert!(
        html.contains("<svg role=\"img\" aria-label=\"QR code for your authenticator app\""),
        "an inline, named QR code: {html}"
    );
    assert!(!html.contains("<?xml"), "{html}");
    assert!(
        attribute_values(&html, "value")
            .iter()
            .all(|value| !value.contains(&secret)),
        "the secret is in no form field"
    );
    let field = &html[html.find("name=\"code\"").unwrap()..];
    let field = &field[..field.find('>').unwrap()];
    assert!(field.contains("autocomplete=\"one-time-code\""), "{field}");
    assert!(field.contains("inputmode=\"numeric\""), "{field}");
    assert_eq!(totp_row(&app, USER, false), 1, "pending");

    // Reloading shows the same secret, from the server.
    assert_eq!(secret_in(&browser.page(ENROLMENT).await), secret);

    // A wrong code: the page again, with the QR code and the error beside the field.
    let wrong = browser.submit(CONFIRM, &[("code", "000000")]).await;
    assert_eq!(wrong.status(), 422);
    let html = wrong.text().await.unwrap();
    assert_eq!(
        field_error(&html, "code").as_deref(),
        Some("That code didn’t match. Enter the newest code your app shows for Gatehouse.")
    );
    assert_eq!(secret_in(&html), secret);
    assert_eq!(totp_row(&app, USER, false), 1, "still pending");

    let response = browser
        .submit(CONFIRM, &[("code", &code(&secret, 0))])
        .await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response, "the recovery codes");
    let html = response.text().await.unwrap();
    let codes = codes_in(&html);
    assert_eq!(codes.len(), 10, "{html}");
    let href = attribute_values(&html, "href")
        .into_iter()
        .find(|href| href.starts_with("data:"))
        .expect("a download link");
    assert!(
        html.contains("download=\"gatehouse-recovery-codes.txt\""),
        "{html}"
    );
    let text = href
        .strip_prefix("data:text/plain;charset=utf-8,")
        .expect("a text file");
    let text = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .unwrap();
    for code in &codes {
        assert!(text.contains(code.as_str()), "{code} in {text}");
    }
    assert_eq!(totp_row(&app, USER, true), 1, "on");
    assert_eq!(unused_recovery_codes(&app, USER), 10);

    let html = browser.page(SECURITY).await;
    assert_eq!(text_of(&html, "id=\"totp-status\"").as_deref(), Some("On"));
    assert_eq!(
        text_of(&html, "id=\"recovery-left\"").as_deref(),
        Some("10 of 10 left")
    );
    assert!(html.contains("id=\"totp-disable-form\""), "{html}");
    assert!(!html.contains("id=\"totp-setup-form\""), "{html}");
    assert!(!html.contains(&codes[0]), "codes are shown once");

    // The enrolment is over: its page sends the browser back.
    let response = browser.get(ENROLMENT).await;
    assert_see_other(&response, SECURITY);
}

#[tokio::test]
async fn a_wrong_password_sets_nothing_up() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;

    let response = browser
        .submit(ENROLMENT, &[("current_password", "not my password")])
        .await;

    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert_eq!(
        field_error(&html, "setup-password").as_deref(),
        Some("That is not your current password.")
    );
    assert!(html.contains("aria-describedby=\"setup-password-error\""));
    assert_eq!(totp_row(&app, USER, false), 0);
    assert_see_other(&browser.get(ENROLMENT).await, SECURITY);
}

#[tokio::test]
async fn only_the_session_that_gave_the_password_sees_the_pending_secret() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;
    begin(&browser).await;
    let other = PageClient::logged_in(&app, USER).await;

    assert_see_other(&other.get(ENROLMENT).await, SECURITY);
    let response = other.submit(CONFIRM, &[("code", "000000")]).await;
    assert_see_other(&response, SECURITY);
    assert_eq!(totp_row(&app, USER, false), 1, "still pending");
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_ones_and_the_app_can_be_turned_off() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;
    let (_, old) = enrol(&browser).await;

    let wrong = browser
        .submit(
            "/account/security/recovery-codes",
            &[("current_password", "wrong")],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    assert!(field_error(&wrong.text().await.unwrap(), "renew-password").is_some());

    let response = browser
        .submit(
            "/account/security/recovery-codes",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response, "renewed codes");
    let new = codes_in(&response.text().await.unwrap());
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|code| !old.contains(code)));
    assert_eq!(unused_recovery_codes(&app, USER), 10);

    let wrong = browser
        .submit(
            "/account/security/totp/disable",
            &[("current_password", "wrong")],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    assert!(field_error(&wrong.text().await.unwrap(), "disable-password").is_some());
    assert_eq!(totp_row(&app, USER, true), 1);

    let response = browser
        .submit(
            "/account/security/totp/disable",
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_see_other(&response, SECURITY);
    assert_eq!(
        browser.flashes_on(SECURITY).await,
        [Flash::success(
            "Your authenticator app has been turned off."
        )]
    );
    assert_eq!(totp_row(&app, USER, true), 0);
    assert_eq!(unused_recovery_codes(&app, USER), 0, "no factor, no codes");
    let response = PageClient::new(&app).log_in(USER, PASSWORD, None).await;
    assert_see_other(&response, "/account");
}

#[tokio::test]
async fn few_recovery_codes_left_are_a_warning() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, USER).await;
    enrol(&browser).await;
    let id = app.user_id(USER);
    app.execute(&format!(
        "UPDATE recovery_codes SET used_at = 1 WHERE code_hash IN \
         (SELECT code_hash FROM recovery_codes WHERE user_id = '{id}' LIMIT 8)"
    ));

    let html = browser.page(SECURITY).await;
    assert_eq!(
        text_of(&html, "id=\"recovery-left\"").as_deref(),
        Some("2 of 10 left")
    );
    assert!(html.contains("badge-warn"), "{html}");
    assert_eq!(
        text_of(&html, "id=\"recovery-warning\"").as_deref(),
        Some("Only 2 left. Make a new set before you run out.")
    );

    app.execute(&format!(
        "UPDATE recovery_codes SET used_at = 1 WHERE user_id = '{id}'"
    ));
    let html = browser.page(SECURITY).await;
    assert!(text_of(&html, "id=\"recovery-warning\"")
        .unwrap()
        .starts_with("You have no recovery codes left."));
}

// ---------------------------------------------------------------------------------------------
// The login's second step

#[tokio::test]
async fn a_login_with_an_app_is_completed_with_its_code() {
    let app = spawn_page_app().await;
    let (secret, _, browser) = at_second_step(&app).await;
    assert_eq!(browser.signed_in_as().await, None);

    let html = browser.page(VERIFY).await;
    let field = &html[html.find("name=\"code\"").expect("a code field")..];
    let field = &field[..field.find('>').unwrap()];
    assert!(field.contains("autocomplete=\"one-time-code\""), "{field}");
    assert!(
        html.contains("href=\"/login/verify?method=recovery_code\""),
        "{html}"
    );
    assert!(
        !html.contains("data-passkey=\"second-factor\""),
        "no passkey on this account: {html}"
    );
    assert!(!html.contains("passkeys.js"), "{html}");

    let response = browser
        .submit(VERIFY, &[("code", &code_now(&secret))])
        .await;

    assert_see_other(&response, "/account");
    for name in [ACCESS, REFRESH] {
        let cookie = set_cookie(&response, name).unwrap_or_else(|| panic!("sets {name}"));
        cookie.assert_locked_down(false);
    }
    assert_eq!(browser.signed_in_as().await.as_deref(), Some(USER));
    let session = browser.session();
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM sessions WHERE id = '{session}' AND amr = 'pwd otp mfa'"
        )),
        1,
        "the session records both factors"
    );
    // The step is spent.
    assert_see_other(&browser.get(VERIFY).await, "/login");
}

#[tokio::test]
async fn a_login_is_completed_with_a_recovery_code_once() {
    let app = spawn_page_app().await;
    let (_, codes, browser) = at_second_step(&app).await;

    let html = browser.page("/login/verify?method=recovery_code").await;
    assert!(html.contains("name=\"recovery_code\""), "{html}");
    assert!(!html.contains("name=\"code\""), "{html}");

    let typed = codes[3].to_uppercase();
    let response = browser
        .submit(VERIFY, &[("recovery_code", typed.as_str())])
        .await;
    assert_see_other(&response, "/account");
    assert_eq!(browser.signed_in_as().await.as_deref(), Some(USER));
    assert_eq!(unused_recovery_codes(&app, USER), 9);

    // The same code again, in another login: refused.
    let again = PageClient::new(&app);
    assert_see_other(&again.log_in(USER, PASSWORD, None).await, VERIFY);
    let response = again
        .submit(VERIFY, &[("recovery_code", codes[3].as_str())])
        .await;
    assert_eq!(response.status(), 400);
    assert_no_token_cookies(&response);
    let html = response.text().await.unwrap();
    assert_eq!(
        field_error(&html, "recovery_code").as_deref(),
        Some("That recovery code didn’t work. Check it and try again; each code works once.")
    );
}

#[tokio::test]
async fn a_wrong_code_asks_again_and_the_step_stays_open() {
    let app = spawn_page_app().await;
    let (secret, _, browser) = at_second_step(&app).await;

    let response = browser.submit(VERIFY, &[("code", "123456")]).await;
    assert_eq!(response.status(), 400);
    assert_no_token_cookies(&response);
    let html = response.text().await.unwrap();
    assert_eq!(
        field_error(&html, "code").as_deref(),
        Some("That code didn’t work. Enter the newest code your app shows for Gatehouse.")
    );
    assert!(html.contains("aria-describedby=\"code-error\""), "{html}");
    assert_eq!(html.matches("class=\"field-error\" id=").count(), 1);

    let empty = browser.submit(VERIFY, &[("code", "")]).await;
    assert_eq!(empty.status(), 400);

    let response = browser.submit(VERIFY, &[("code", &code(&secret, 0))]).await;
    assert_see_other(&response, "/account");
}

#[tokio::test]
async fn an_expired_or_missing_step_goes_back_to_the_login_page() {
    let app = spawn_page_app().await;
    let (secret, _, browser) = at_second_step(&app).await;
    app.execute("UPDATE mfa_challenges SET expires_at = 0");

    let response = browser.submit(VERIFY, &[("code", &code(&secret, 0))]).await;

    assert_see_other(&response, "/login");
    assert_no_token_cookies(&response);
    assert_eq!(
        browser.flashes_on("/login").await,
        [Flash::error(TOOK_TOO_LONG)]
    );
    assert_see_other(&browser.get(VERIFY).await, "/login");
    let fresh = PageClient::new(&app);
    assert_see_other(&fresh.get(VERIFY).await, "/login");
}

#[tokio::test]
async fn five_wrong_codes_end_the_step_and_ten_pause_the_account() {
    let app = spawn_page_app().await;
    let (secret, _, browser) = at_second_step(&app).await;
    for _ in 0..5 {
        let response = browser.submit(VERIFY, &[("code", "000000")]).await;
        assert_eq!(response.status(), 400);
    }
    let response = browser.submit(VERIFY, &[("code", &code(&secret, 0))]).await;
    assert_see_other(&response, "/login");

    assert_see_other(&browser.log_in(USER, PASSWORD, None).await, VERIFY);
    for _ in 0..5 {
        browser.submit(VERIFY, &[("code", "000000")]).await;
    }
    assert_see_other(&browser.log_in(USER, PASSWORD, None).await, VERIFY);
    let response = browser.submit(VERIFY, &[("code", &code(&secret, 0))]).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.text().await.unwrap().contains("Too many attempts"));
}

#[tokio::test]
async fn next_is_kept_across_the_second_step() {
    let app = spawn_page_app().await;
    let owner = PageClient::user(&app, USER).await;
    let (secret, _) = enrol(&owner).await;
    let browser = PageClient::new(&app);

    let response = browser.log_in(USER, PASSWORD, Some(SECURITY)).await;
    assert_see_other(&response, VERIFY);
    let response = browser.submit(VERIFY, &[("code", &code(&secret, 0))]).await;

    assert_see_other(&response, SECURITY);
}

#[tokio::test]
async fn the_second_step_and_the_security_forms_need_the_csrf_token() {
    let app = spawn_page_app().await;
    let (secret, _, browser) = at_second_step(&app).await;

    let refused = browser
        .post_form(VERIFY, &[("code", &code(&secret, 0))])
        .await;
    assert_csrf_page(refused).await;
    assert_eq!(browser.signed_in_as().await, None);

    let other = PageClient::user(&app, OTHER).await;
    let refused = other
        .post_form(ENROLMENT, &[("current_password", PASSWORD)])
        .await;
    assert_csrf_page(refused).await;
    assert_eq!(totp_row(&app, OTHER, false), 0, "nothing pending");
}

#[tokio::test]
async fn the_login_page_offers_a_passkey_only_once_the_script_is_there() {
    let app = spawn_page_app().await;
    let html = PageClient::new(&app).page("/login").await;

    let form = &html[html
        .find("id=\"passkey-signin-form\"")
        .expect("the passkey form")..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(form.starts_with("id=\"passkey-signin-form\" class=\"passkey-option\" hidden>"));
    assert!(form.contains("name=\"csrf_token\""), "{form}");
    assert!(form.contains("data-passkey=\"signin\""), "{form}");
    assert!(form.contains("data-next=\"/account\""), "{form}");
}

// ---------------------------------------------------------------------------------------------
// MFA_REQUIRED

#[tokio::test]
async fn mfa_required_sends_a_user_without_a_factor_to_set_one_up() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "false"), ("MFA_REQUIRED", "all")]).await;
    app.register(USER, PASSWORD).await;
    let browser = PageClient::new(&app);

    let response = browser.log_in(USER, PASSWORD, Some("/")).await;

    assert_see_other(&response, SECURITY);
    let html = browser.page(SECURITY).await;
    assert_eq!(
        flashes_in(&html),
        [Flash {
            level: "info".into(),
            role: "status".into(),
            text: "Your account needs a second factor. Set up an authenticator app to finish \
                   signing in safely."
                .into(),
        }]
    );
    assert!(html.contains("id=\"mfa-required\""), "{html}");

    // With an app, the login goes where it was going.
    let (secret, _) = enrol(&browser).await;
    let again = PageClient::new(&app);
    assert_see_other(&again.log_in(USER, PASSWORD, Some("/")).await, VERIFY);
    let response = again.submit(VERIFY, &[("code", &code(&secret, 0))]).await;
    assert_see_other(&response, "/");
}

#[tokio::test]
async fn mfa_required_for_superusers_leaves_other_users_alone() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "false"), ("MFA_REQUIRED", "superusers")]).await;
    app.register(USER, PASSWORD).await;
    app.superuser(ADMIN).await;

    let member = PageClient::new(&app);
    assert_see_other(&member.log_in(USER, PASSWORD, None).await, "/account");
    let admin = PageClient::new(&app);
    assert_see_other(&admin.log_in(ADMIN, PASSWORD, None).await, SECURITY);
    // Its admin pages wait for a session with a second factor, and say where to get one.
    let response = admin.get("/admin/users").await;
    assert_eq!(response.status(), 403);
    let html = response.text().await.unwrap();
    assert!(html.contains("href=\"/account/security\""), "{html}");
}

// ---------------------------------------------------------------------------------------------
// A superuser's reset

#[tokio::test]
async fn a_superuser_resets_a_users_second_factors_after_confirming() {
    let app = spawn_page_app().await;
    let owner = PageClient::user(&app, USER).await;
    enrol(&owner).await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    let path = format!("/admin/users/{}/reset-mfa", app.user_id(USER));

    let list = admin.page("/admin/users").await;
    assert!(list.contains(&format!("action=\"{path}\"")), "{list}");

    let html = admin.page(&path).await;
    assert_eq!(
        text_of(&html, "id=\"reset-mfa-summary\"").as_deref(),
        Some(
            "This removes an authenticator app and 10 recovery codes, and signs \
             user@example.com out everywhere. They can then sign in with their password alone \
             and set up a new factor. They get an email about it."
        )
    );
    // Without `confirm=yes`, the row's button asks first.
    let response = admin.submit(&path, &[("next", "/admin/users")]).await;
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("id=\"confirm-reset-mfa-form\""));
    assert_eq!(totp_row(&app, USER, true), 1);
    // Without the token, nothing happens.
    let refused = admin
        .post_form(&path, &[("next", "/admin/users"), ("confirm", "yes")])
        .await;
    assert_csrf_page(refused).await;
    assert_eq!(totp_row(&app, USER, true), 1);

    let response = admin
        .submit(&path, &[("next", "/admin/users"), ("confirm", "yes")])
        .await;

    assert_see_other(&response, "/admin/users");
    assert_eq!(
        admin.flashes_on("/admin/users").await,
        [Flash::success(
            "Every second factor of user@example.com has been removed, and they have been \
             signed out everywhere. They can sign in with their password and set up a new one."
        )]
    );
    assert_eq!(totp_row(&app, USER, true), 0);
    assert_eq!(unused_recovery_codes(&app, USER), 0);
    assert_eq!(live_sessions(&app, USER), 0);
    assert_eq!(owner.signed_in_as().await, None);
    let response = PageClient::new(&app).log_in(USER, PASSWORD, None).await;
    assert_see_other(&response, "/account");

    // Now there is nothing to reset, and the page says so.
    let html = admin.page(&path).await;
    assert!(!html.contains("id=\"confirm-reset-mfa-form\""), "{html}");
    assert!(html.contains("has no second factor set up"), "{html}");
}
