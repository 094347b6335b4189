//! The cookie transport: cookie names and flags, `/auth/cookie/login` and `/logout`, and the
//! silent renewal of the access cookie from the refresh cookie.

use std::sync::Mutex;

use futures_util::future::join_all;
use reqwest::header::{ACCEPT, COOKIE};
use reqwest::RequestBuilder;
use serde_json::Value;

use crate::helpers::*;
use crate::page_client::*;

const EMAIL: &str = "cookie@example.com";
const ACCESS_TTL: i64 = 600;
const REFRESH_TTL: i64 = 7200;

const SECURE_ACCESS: &str = "__Host-gatehouse_access";
const SECURE_REFRESH: &str = "__Host-gatehouse_refresh";
const SECURE_SESSION: &str = "__Host-gatehouse_session";

const TTLS: [(&str, &str); 2] = [("ACCESS_TOKEN_TTL", "600"), ("REFRESH_TOKEN_TTL", "7200")];

/// A client that keeps cookies by hand, so that `Secure` cookies still travel over the test's
/// plain HTTP (a real jar would keep them to itself).
struct RawBrowser {
    client: reqwest::Client,
    base: String,
    cookies: Mutex<Vec<(String, String)>>,
}

impl RawBrowser {
    fn new(app: &TestApp) -> RawBrowser {
        RawBrowser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookies: Mutex::new(Vec::new()),
        }
    }

    async fn send(&self, request: RequestBuilder) -> reqwest::Response {
        let header = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if header.is_empty() {
            request
        } else {
            request.header(COOKIE, header)
        };
        let response = request.send().await.unwrap();
        let mut cookies = self.cookies.lock().unwrap();
        for set in set_cookies(response.headers()) {
            cookies.retain(|(name, _)| *name != set.name);
            if !set.is_cleared() {
                cookies.push((set.name, set.value));
            }
        }
        response
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .header(ACCEPT, "text/html");
        self.send(request).await
    }

    async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        self.send(request).await
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let cookies = self.cookies.lock().unwrap();
        cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

/// Asserts the access and refresh cookies of a sign-in: names, flags and lifetimes.
fn assert_signed_in_cookies(response: &reqwest::Response, secure: bool) {
    let (access, refresh) = if secure {
        (SECURE_ACCESS, SECURE_REFRESH)
    } else {
        (ACCESS, REFRESH)
    };
    let access = set_cookie(response, access).expect("the access cookie");
    let refresh = set_cookie(response, refresh).expect("the refresh cookie");
    for (cookie, ttl) in [(&access, ACCESS_TTL), (&refresh, REFRESH_TTL)] {
        cookie.assert_locked_down(secure);
        assert!(!cookie.value.is_empty(), "{}", cookie.raw);
        assert_eq!(cookie.max_age(), Some(ttl), "{}", cookie.raw);
    }
    let names: Vec<String> = set_cookies(response.headers())
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("__Host-")).count() == names.len(),
        secure,
        "prefixes of {names:?}"
    );
}

/// Asserts both token cookies are cleared with the same attributes they were set with.
fn assert_cleared_cookies(response: &reqwest::Response, secure: bool) {
    let names = if secure {
        [SECURE_ACCESS, SECURE_REFRESH]
    } else {
        [ACCESS, REFRESH]
    };
    for name in names {
        let cookie = set_cookie(response, name).unwrap_or_else(|| panic!("{name} is cleared"));
        assert!(cookie.is_cleared(), "{}", cookie.raw);
        cookie.assert_locked_down(secure);
    }
}

// ---------------------------------------------------------------------------------------------
// Names and flags

#[tokio::test]
async fn page_sign_in_cookies_are_host_prefixed_and_secure_by_default() {
    let app = spawn_app_with(&TTLS).await;
    app.register(EMAIL, PASSWORD).await;

    for (page, fields) in [
        (
            "/signup",
            vec![
                ("email", "new@example.com"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        ),
        ("/login", vec![("email", EMAIL), ("password", PASSWORD)]),
    ] {
        let browser = RawBrowser::new(&app);
        let form = browser.get(page).await;
        let session = set_cookie(&form, SECURE_SESSION).expect("the page session cookie");
        session.assert_locked_down(true);
        assert_eq!(session.max_age(), None, "a browser-session cookie");
        let token = csrf_in(&form.text().await.unwrap());

        let response = browser.post_form(page, &with_token(&fields, &token)).await;

        assert_eq!(response.status(), 303, "{page}");
        assert_signed_in_cookies(&response, true);
    }
}

#[tokio::test]
async fn without_cookie_secure_the_cookies_lose_the_prefix_and_the_secure_flag() {
    let app = spawn_app_with(&[TTLS[0], TTLS[1], ("COOKIE_SECURE", "false")]).await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);

    let form = browser.get("/login").await;
    let session = set_cookie(&form, SESSION).expect("the page session cookie");
    session.assert_locked_down(false);
    let response = browser.log_in(EMAIL, PASSWORD, None).await;

    assert_eq!(response.status(), 303);
    assert_signed_in_cookies(&response, false);
}

#[tokio::test]
async fn page_logout_clears_the_secure_cookies_with_the_same_attributes() {
    let app = spawn_app_with(&TTLS).await;
    app.register(EMAIL, PASSWORD).await;
    let browser = RawBrowser::new(&app);
    let token = csrf_in(&browser.get("/login").await.text().await.unwrap());
    let login = [("email", EMAIL), ("password", PASSWORD)];
    assert_eq!(
        browser
            .post_form("/login", &with_token(&login, &token))
            .await
            .status(),
        303
    );
    let token = csrf_in(&browser.get("/account").await.text().await.unwrap());

    let response = browser
        .post_form("/logout", &[("csrf_token", &token)])
        .await;

    assert_see_other(&response, "/");
    assert_cleared_cookies(&response, true);
    assert_eq!(live_sessions(&app, EMAIL), 0);
}

#[tokio::test]
async fn cookie_api_login_cookies_are_host_prefixed_and_secure_by_default() {
    let app = spawn_app_with(&TTLS).await;
    app.register(EMAIL, PASSWORD).await;
    let browser = RawBrowser::new(&app);

    let response = browser
        .post_form(
            "/auth/cookie/login",
            &[("username", EMAIL), ("password", PASSWORD)],
        )
        .await;

    assert_eq!(response.status(), 204);
    assert_signed_in_cookies(&response, true);
    set_cookie(&response, SECURE_SESSION)
        .expect("the page session cookie holding the CSRF token")
        .assert_locked_down(true);
}

#[tokio::test]
async fn cookie_api_logout_clears_the_secure_cookies_with_the_same_attributes() {
    let app = spawn_app_with(&TTLS).await;
    app.register(EMAIL, PASSWORD).await;
    let browser = RawBrowser::new(&app);
    let login = browser
        .post_form(
            "/auth/cookie/login",
            &[("username", EMAIL), ("password", PASSWORD)],
        )
        .await;
    let token = login.headers()["x-csrf-token"].to_str().unwrap().to_owned();

    let response = browser
        .send(
            browser
                .client
                .post(app.url("/auth/cookie/logout"))
                .header("x-csrf-token", token),
        )
        .await;

    assert_eq!(response.status(), 204);
    assert_cleared_cookies(&response, true);
    assert_eq!(browser.cookie(SECURE_ACCESS), None);
    assert_eq!(live_sessions(&app, EMAIL), 0);
}

// ---------------------------------------------------------------------------------------------
// /auth/cookie/login and /auth/cookie/logout

/// Logs a browser in through `POST /auth/cookie/login`.
async fn cookie_login(browser: &PageClient, email: &str, password: &str) -> reqwest::Response {
    browser
        .client
        .post(browser.url("/auth/cookie/login"))
        .form(&[("username", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

async fn cookie_logout(browser: &PageClient, token: Option<&str>) -> reqwest::Response {
    let mut request = browser.client.post(browser.url("/auth/cookie/logout"));
    if let Some(token) = token {
        request = request.header("x-csrf-token", token);
    }
    request.send().await.unwrap()
}

async fn me(browser: &PageClient) -> reqwest::Response {
    browser
        .client
        .get(browser.url("/users/me"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cookie_login_sets_the_cookies_and_hands_out_the_csrf_token() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);

    let response = cookie_login(&browser, EMAIL, PASSWORD).await;

    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let token = response.headers()["x-csrf-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(token.len() >= 32, "{token}");
    assert!(response.text().await.unwrap().is_empty());
    assert_eq!(browser.token().await, token, "the session's token");
    assert!(browser.cookie(ACCESS).is_some());
    assert!(browser.cookie(REFRESH).is_some());
    assert_eq!(live_sessions(&app, EMAIL), 1);
    let body: Value = me(&browser).await.json().await.unwrap();
    assert_eq!(body["email"], EMAIL);
}

#[tokio::test]
async fn cookie_login_renews_the_csrf_token() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);
    let before = browser.token().await;

    let response = cookie_login(&browser, EMAIL, PASSWORD).await;

    assert_ne!(response.headers()["x-csrf-token"], before.as_str());
    assert_detail(
        cookie_logout(&browser, Some(&before)).await,
        403,
        "CSRF_FAILED",
    )
    .await;
}

#[tokio::test]
async fn cookie_login_with_bad_credentials_is_400_and_sets_no_cookies() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    app.register("inactive@example.com", PASSWORD).await;
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'inactive@example.com'");
    let before = snapshot(&app);

    for (email, password) in [
        ("nobody@example.com", PASSWORD),
        (EMAIL, "not the right password"),
        ("inactive@example.com", PASSWORD),
    ] {
        let browser = PageClient::new(&app);
        let response = cookie_login(&browser, email, password).await;
        assert_no_token_cookies(&response);
        assert!(response.headers().get("x-csrf-token").is_none());
        assert_detail(response, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    assert_eq!(snapshot(&app), before);
}

#[tokio::test]
async fn cookie_login_from_another_site_is_refused() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let before = snapshot(&app);

    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
        ("origin", "null"),
    ] {
        let browser = PageClient::new(&app);
        let response = browser
            .client
            .post(browser.url("/auth/cookie/login"))
            .header(name, value)
            .form(&[("username", EMAIL), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_no_token_cookies(&response);
        assert_detail(response, 403, "CSRF_FAILED").await;
        assert_eq!(browser.cookie(ACCESS), None);
    }
    assert_eq!(snapshot(&app), before, "no session was started");
}

#[tokio::test]
async fn cookie_logout_with_the_csrf_header_clears_the_cookies_and_ends_the_session() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);
    let login = cookie_login(&browser, EMAIL, PASSWORD).await;
    let token = login.headers()["x-csrf-token"].to_str().unwrap().to_owned();
    let access = browser.cookie(ACCESS).unwrap();
    let refresh = browser.cookie(REFRESH).unwrap();

    let response = cookie_logout(&browser, Some(&token)).await;

    assert_eq!(response.status(), 204);
    assert_cleared_cookies(&response, false);
    assert_eq!(browser.cookie(ACCESS), None);
    assert_eq!(live_sessions(&app, EMAIL), 0);
    assert_eq!(me(&browser).await.status(), 401);
    assert_eq!(app.get("/users/me", &access).await.status(), 401);
    assert_detail(app.refresh(&refresh).await, 401, "REFRESH_TOKEN_INVALID").await;
}

#[tokio::test]
async fn cookie_logout_without_the_csrf_header_is_refused_and_the_session_lives() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);
    cookie_login(&browser, EMAIL, PASSWORD).await;

    for token in [None, Some("not-a-token")] {
        let response = cookie_logout(&browser, token).await;
        assert_no_token_cookies(&response);
        assert_detail(response, 403, "CSRF_FAILED").await;
    }

    assert_eq!(live_sessions(&app, EMAIL), 1);
    assert_eq!(me(&browser).await.status(), 200);
}

#[tokio::test]
async fn cookie_logout_renews_the_csrf_token() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);
    let login = cookie_login(&browser, EMAIL, PASSWORD).await;
    let token = login.headers()["x-csrf-token"].to_str().unwrap().to_owned();

    assert_eq!(cookie_logout(&browser, Some(&token)).await.status(), 204);

    assert_ne!(browser.token().await, token);
}

#[tokio::test]
async fn cookie_logout_without_a_cookie_is_401() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);
    let token = browser.token().await;

    for token in [None, Some(token.as_str())] {
        let response = cookie_logout(&browser, token).await;
        assert_detail(response, 401, "Unauthorized").await;
    }
}

// ---------------------------------------------------------------------------------------------
// Renewal from the refresh cookie

/// A browser holding only the refresh cookie (and page session) of a signed-in browser, as
/// one whose access cookie has expired would.
async fn browser_with_only_the_refresh_cookie(app: &TestApp) -> (PageClient, String) {
    let signed_in = PageClient::user(app, EMAIL).await;
    let refresh = signed_in.cookie(REFRESH).unwrap();
    let browser = PageClient::new(app);
    browser.set_cookie(REFRESH, &refresh);
    (browser, refresh)
}

fn assert_renewed(response: &reqwest::Response, old_refresh: &str) -> (String, String) {
    let access = set_cookie(response, ACCESS).expect("a new access cookie");
    let refresh = set_cookie(response, REFRESH).expect("a new refresh cookie");
    for cookie in [&access, &refresh] {
        cookie.assert_locked_down(false);
        assert!(
            !cookie.value.is_empty() && !cookie.is_cleared(),
            "{}",
            cookie.raw
        );
    }
    assert_ne!(refresh.value, old_refresh, "the refresh token rotates");
    (access.value, refresh.value)
}

#[tokio::test]
async fn a_page_renews_a_missing_access_cookie_from_the_refresh_cookie() {
    let app = spawn_page_app().await;
    let (browser, old_refresh) = browser_with_only_the_refresh_cookie(&app).await;

    let response = browser.get("/account").await;

    assert_eq!(response.status(), 200);
    let (access, refresh) = assert_renewed(&response, &old_refresh);
    let html = response.text().await.unwrap();
    assert_eq!(text_of(&html, "id=\"account-email\"").unwrap(), EMAIL);
    assert_eq!(app.get("/users/me", &access).await.status(), 200);
    assert_eq!(browser.cookie(REFRESH).unwrap(), refresh);

    let again = browser.get("/account").await;
    assert_eq!(again.status(), 200);
    assert!(
        set_cookies(again.headers()).is_empty(),
        "no renewal while the access cookie lives"
    );
}

#[tokio::test]
async fn an_api_request_renews_a_missing_access_cookie_from_the_refresh_cookie() {
    let app = spawn_page_app().await;
    let (browser, old_refresh) = browser_with_only_the_refresh_cookie(&app).await;

    let response = me(&browser).await;

    assert_eq!(response.status(), 200);
    assert_renewed(&response, &old_refresh);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], EMAIL);
}

#[tokio::test]
async fn a_garbage_access_cookie_is_renewed_from_the_refresh_cookie() {
    let app = spawn_page_app().await;
    let (browser, old_refresh) = browser_with_only_the_refresh_cookie(&app).await;
    browser.set_cookie(ACCESS, "not.a.jwt");

    let response = browser.get("/").await;

    assert_eq!(response.status(), 200);
    assert_renewed(&response, &old_refresh);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("id=\"logout-form\""));
}

#[tokio::test]
async fn renewed_cookies_are_set_on_error_pages_too() {
    let app = spawn_page_app().await;
    let (member, old_refresh) = browser_with_only_the_refresh_cookie(&app).await;

    let forbidden = member.get("/admin/users").await;
    assert_eq!(forbidden.status(), 403);
    let (_, refresh) = assert_renewed(&forbidden, &old_refresh);

    app.execute(&format!(
        "UPDATE users SET is_superuser = TRUE WHERE email = '{EMAIL}'"
    ));
    member.set_cookie(ACCESS, "");
    let not_found = member.get("/admin/users/not-a-uuid/frobnicate").await;
    assert_eq!(not_found.status(), 404);
    assert_renewed(&not_found, &refresh);
}

#[tokio::test]
async fn parallel_pages_renewing_the_same_refresh_cookie_all_succeed() {
    let app = spawn_page_app().await;
    let (browser, _) = browser_with_only_the_refresh_cookie(&app).await;

    let responses = join_all((0..3).map(|_| browser.get("/account"))).await;

    for response in responses {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(live_sessions(&app, EMAIL), 1, "the family survives");
}

#[tokio::test]
async fn an_invalid_refresh_cookie_sends_the_page_to_login_and_clears_the_cookies() {
    let app = spawn_page_app().await;
    app.register(EMAIL, PASSWORD).await;
    let browser = PageClient::new(&app);
    browser.set_cookie(REFRESH, "not-a-refresh-token");

    let response = browser.get("/account").await;

    assert_see_other(&response, "/login?next=%2Faccount");
    assert_cleared_cookies(&response, false);
    assert_eq!(browser.cookie(REFRESH), None);
}

#[tokio::test]
async fn a_revoked_refresh_cookie_is_refused_and_cleared() {
    let app = spawn_page_app().await;
    let signed_in = PageClient::user(&app, EMAIL).await;
    let refresh = signed_in.cookie(REFRESH).unwrap();
    assert_see_other(&signed_in.submit("/logout", &[]).await, "/");

    let page = PageClient::new(&app);
    page.set_cookie(REFRESH, &refresh);
    let response = page.get("/account").await;
    assert_see_other(&response, "/login?next=%2Faccount");
    assert_cleared_cookies(&response, false);

    let api = PageClient::new(&app);
    api.set_cookie(REFRESH, &refresh);
    let response = me(&api).await;
    assert_cleared_cookies(&response, false);
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn logout_with_only_the_refresh_cookie_ends_the_session_and_clears_the_cookies() {
    let app = spawn_page_app().await;
    let (browser, _) = browser_with_only_the_refresh_cookie(&app).await;
    let token = browser.token().await;

    let response = browser
        .post_form("/logout", &[("csrf_token", &token)])
        .await;

    assert_see_other(&response, "/");
    for name in [ACCESS, REFRESH] {
        let set: Vec<SetCookie> = set_cookies(response.headers())
            .into_iter()
            .filter(|c| c.name == name)
            .collect();
        assert_eq!(set.len(), 1, "one Set-Cookie for {name}: {set:?}");
        assert!(set[0].is_cleared(), "{}", set[0].raw);
    }
    assert_eq!(live_sessions(&app, EMAIL), 0);
}
