//! Cross-site request forgery: every form and every cookie-authenticated API change needs the
//! session's token and must come from this site; a refusal changes nothing.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::page_client::*;

const MEMBER: &str = "member@example.com";
const ADMIN: &str = "admin@example.com";
const TARGET: &str = "target@example.com";
const NEW_PASSWORD: &str = "a different long passphrase";

/// Who submits a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Member,
    Admin,
}

/// An app with a member, a superuser and a target account, and a browser for each kind of
/// visitor plus a stranger whose session lends its token.
struct World {
    app: TestApp,
    anonymous: PageClient,
    member: PageClient,
    admin: PageClient,
    stranger: PageClient,
}

impl World {
    async fn new() -> World {
        let app = spawn_page_app().await;
        let member = PageClient::user(&app, MEMBER).await;
        let admin = PageClient::superuser(&app, ADMIN).await;
        app.register(TARGET, PASSWORD).await;
        let anonymous = PageClient::new(&app);
        anonymous.token().await; // starts its page session
        let stranger = PageClient::new(&app);
        stranger.token().await;
        World {
            app,
            anonymous,
            member,
            admin,
            stranger,
        }
    }

    fn browser(&self, who: Who) -> &PageClient {
        match who {
            Who::Anonymous => &self.anonymous,
            Who::Member => &self.member,
            Who::Admin => &self.admin,
        }
    }

    /// Every form of the site, filled in as its user would.
    fn forms(&self) -> Vec<Form> {
        let target = self.app.user_id(TARGET);
        let admin_action = |action: &str, extra: &[(&'static str, &str)]| {
            let mut fields = vec![("next", "/admin/users".to_owned())];
            fields.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
            Form {
                who: Who::Admin,
                path: format!("/admin/users/{target}/{action}"),
                fields,
            }
        };
        vec![
            Form {
                who: Who::Anonymous,
                path: "/signup".into(),
                fields: vec![
                    ("email", "newcomer@example.com".into()),
                    ("password", PASSWORD.into()),
                    ("password_confirm", PASSWORD.into()),
                ],
            },
            Form {
                who: Who::Anonymous,
                path: "/login".into(),
                fields: vec![("email", MEMBER.into()), ("password", PASSWORD.into())],
            },
            Form {
                who: Who::Member,
                path: "/account/password".into(),
                fields: vec![
                    ("current_password", PASSWORD.into()),
                    ("new_password", NEW_PASSWORD.into()),
                    ("new_password_confirm", NEW_PASSWORD.into()),
                ],
            },
            admin_action("promote", &[("confirm", "yes")]),
            admin_action("deactivate", &[("confirm", "yes")]),
            admin_action("verify", &[]),
            admin_action("delete", &[("confirm", "yes")]),
            Form {
                who: Who::Member,
                path: "/logout".into(),
                fields: vec![],
            },
        ]
    }
}

struct Form {
    who: Who,
    path: String,
    fields: Vec<(&'static str, String)>,
}

impl Form {
    /// The fields plus `csrf_token` when given.
    fn fields<'a>(&'a self, token: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut fields: Vec<(&str, &str)> =
            self.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(token) = token {
            fields.push(("csrf_token", token));
        }
        fields
    }
}

/// Asserts the refusal: the 403 page, no new cookies, nothing stored, the browser as it was.
async fn assert_refused(world: &World, form: &Form, response: reqwest::Response, before: &str) {
    let what = format!("{} by {:?}", form.path, form.who);
    assert_eq!(response.status(), 403, "{what}");
    assert_no_token_cookies(&response);
    assert_csrf_page(response).await;
    assert_eq!(snapshot(&world.app), before, "{what} changed the database");
    let signed_in = world.browser(form.who).cookie(ACCESS).is_some();
    assert_eq!(signed_in, form.who != Who::Anonymous, "{what}");
}

#[tokio::test]
async fn forms_without_a_valid_token_are_refused_and_change_nothing() {
    let world = World::new().await;
    let foreign = world.stranger.token().await;

    for form in world.forms() {
        let browser = world.browser(form.who);
        let own = browser.token().await;
        let mut altered = own.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        let bad_tokens = [
            None,
            Some(""),
            Some("not-a-token"),
            Some(altered.as_str()),
            Some(foreign.as_str()),
        ];
        for token in bad_tokens {
            let before = snapshot(&world.app);
            let response = browser.post_form(&form.path, &form.fields(token)).await;
            assert_refused(&world, &form, response, &before).await;
        }
    }
}

#[tokio::test]
async fn forms_need_the_token_in_the_body_not_in_a_header() {
    let world = World::new().await;

    for form in world.forms() {
        let browser = world.browser(form.who);
        let token = browser.token().await;
        let before = snapshot(&world.app);
        let response = browser
            .post_form_with(&form.path, &form.fields(None), &[("x-csrf-token", &token)])
            .await;
        assert_refused(&world, &form, response, &before).await;
    }
}

/// Headers a browser sends with a request another site made it send.
fn cross_site_headers(app: &TestApp) -> Vec<Vec<(&'static str, String)>> {
    let port = app.address.rsplit(':').next().unwrap();
    vec![
        vec![("sec-fetch-site", "cross-site".into())],
        vec![("sec-fetch-site", "same-site".into())],
        vec![("origin", "http://evil.example".into())],
        vec![("origin", "null".into())],
        vec![("origin", "http://127.0.0.1:1".into())],
        vec![("origin", format!("http://localhost:{port}"))],
        vec![("origin", format!("http://127.0.0.1:{port}.evil.example"))],
        vec![
            ("sec-fetch-site", "same-origin".into()),
            ("origin", "https://evil.example".into()),
        ],
        vec![
            ("sec-fetch-site", "cross-site".into()),
            ("origin", app.address.clone()),
        ],
    ]
}

#[tokio::test]
async fn forms_from_another_site_are_refused_even_with_the_right_token() {
    let world = World::new().await;

    for form in world.forms() {
        let browser = world.browser(form.who);
        let token = browser.token().await;
        for headers in cross_site_headers(&world.app) {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let before = snapshot(&world.app);
            let response = browser
                .post_form_with(&form.path, &form.fields(Some(&token)), &headers)
                .await;
            assert_refused(&world, &form, response, &before).await;
        }
    }
}

#[tokio::test]
async fn forms_from_this_site_are_accepted() {
    let same_site_headers: [&[(&str, &str)]; 3] = [
        &[("sec-fetch-site", "same-origin")],
        &[("sec-fetch-site", "none")],
        &[],
    ];
    for headers in same_site_headers {
        let world = World::new().await;
        let origin = world.app.address.clone();
        for form in world.forms() {
            let browser = world.browser(form.who);
            let token = browser.token().await;
            let mut headers = headers.to_vec();
            headers.push(("origin", &origin));
            let response = browser
                .post_form_with(&form.path, &form.fields(Some(&token)), &headers)
                .await;
            assert_eq!(response.status(), 303, "{} with {headers:?}", form.path);
        }
    }
}

#[tokio::test]
async fn login_without_a_token_is_refused_and_sets_no_cookies() {
    let app = spawn_page_app().await;
    app.register(MEMBER, PASSWORD).await;
    let before = snapshot(&app);

    // A browser that never saw the site, as a login-CSRF page elsewhere would drive it.
    let browser = PageClient::new(&app);
    let response = browser
        .post_form("/login", &[("email", MEMBER), ("password", PASSWORD)])
        .await;

    assert_no_token_cookies(&response);
    assert_csrf_page(response).await;
    assert_eq!(snapshot(&app), before, "no session was started");
    assert_eq!(browser.cookie(ACCESS), None);
    assert_eq!(browser.cookie(REFRESH), None);
}

#[tokio::test]
async fn the_refusal_page_is_html_with_security_headers() {
    let app = spawn_page_app().await;

    let response = PageClient::new(&app).post_form("/logout", &[]).await;

    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_csrf_page(response).await;
}

// ---------------------------------------------------------------------------------------------
// The token's lifetime

#[tokio::test]
async fn the_token_is_stable_within_a_session_and_differs_between_sessions() {
    let app = spawn_page_app().await;
    let one = PageClient::new(&app);
    let two = PageClient::new(&app);

    let token = one.csrf_token("/login").await;

    assert_eq!(one.csrf_token("/signup").await, token);
    assert_eq!(
        one.token().await,
        token,
        "GET /auth/csrf gives the page's token"
    );
    assert_ne!(two.token().await, token);
}

#[tokio::test]
async fn csrf_endpoint_is_not_cacheable() {
    let app = spawn_page_app().await;

    let response = PageClient::new(&app)
        .client
        .get(app.url("/auth/csrf"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body["csrf_token"].as_str().is_some_and(|t| t.len() >= 32));
}

#[tokio::test]
async fn other_sites_are_not_allowed_to_read_the_token() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    let response = browser
        .client
        .get(browser.url("/auth/csrf"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();

    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "no CORS: {:?}",
        response.headers()
    );
    assert!(response
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
}

#[tokio::test]
async fn a_token_from_before_login_is_refused_after_it() {
    let app = spawn_page_app().await;
    app.register(MEMBER, PASSWORD).await;
    let browser = PageClient::new(&app);
    let before_login = browser.csrf_token("/login").await;

    assert_eq!(browser.log_in(MEMBER, PASSWORD, None).await.status(), 303);
    let after_login = browser.token().await;

    assert_ne!(after_login, before_login);
    let response = browser
        .post_form("/logout", &[("csrf_token", &before_login)])
        .await;
    assert_csrf_page(response).await;
    assert_eq!(live_sessions(&app, MEMBER), 1, "still signed in");
    let response = browser
        .post_form("/logout", &[("csrf_token", &after_login)])
        .await;
    assert_see_other(&response, "/");
}

#[tokio::test]
async fn signup_logout_and_password_change_renew_the_token() {
    let app = spawn_page_app().await;
    let browser = PageClient::new(&app);

    let mut previous = browser.token().await;
    let steps: [(&str, &[(&str, &str)]); 3] = [
        (
            "/signup",
            &[
                ("email", MEMBER),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        ),
        (
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        ),
        ("/logout", &[]),
    ];
    for (path, fields) in steps {
        let response = browser
            .post_form(path, &with_token(fields, &previous))
            .await;
        assert_eq!(response.status(), 303, "{path}");
        let current = browser.token().await;
        assert_ne!(current, previous, "{path} renews the token");
        previous = current;
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON API with the cookie

/// `PATCH /users/me` from a browser, with optional extra headers.
async fn patch_me(
    browser: &PageClient,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = browser.client.patch(browser.url("/users/me")).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn cookie_api_changes_without_the_csrf_header_are_refused() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, MEMBER).await;
    let stranger = PageClient::new(&app);
    let foreign = stranger.token().await;
    let before = snapshot(&app);

    for headers in [
        vec![],
        vec![("x-csrf-token", "")],
        vec![("x-csrf-token", "not-a-token")],
        vec![("x-csrf-token", foreign.as_str())],
    ] {
        let response = patch_me(
            &browser,
            json!({"email": "renamed@example.com", "current_password": PASSWORD}),
            &headers,
        )
        .await;
        assert_detail(response, 403, "CSRF_FAILED").await;
    }

    assert_eq!(snapshot(&app), before);
    assert!(app.user_row("renamed@example.com").is_none());
}

#[tokio::test]
async fn cookie_api_changes_with_the_csrf_header_succeed() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, MEMBER).await;
    let token = browser.token().await;

    let response = patch_me(
        &browser,
        json!({"email": "renamed@example.com", "current_password": PASSWORD}),
        &[("x-csrf-token", &token)],
    )
    .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "renamed@example.com");
    assert!(app.user_row(MEMBER).is_none());
}

#[tokio::test]
async fn cookie_api_changes_from_another_site_are_refused_even_with_the_header() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, MEMBER).await;
    let token = browser.token().await;
    let before = snapshot(&app);

    for cross_site in cross_site_headers(&app) {
        let mut headers: Vec<(&str, &str)> =
            cross_site.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.push(("x-csrf-token", &token));
        let response = patch_me(
            &browser,
            json!({"email": "renamed@example.com", "current_password": PASSWORD}),
            &headers,
        )
        .await;
        assert_detail(response, 403, "CSRF_FAILED").await;
    }

    assert_eq!(snapshot(&app), before);
}

#[tokio::test]
async fn cookie_reads_need_no_csrf_header() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, MEMBER).await;

    let response = browser
        .client
        .get(browser.url("/users/me"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], MEMBER);
}

#[tokio::test]
async fn cookie_superuser_delete_needs_the_csrf_header() {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    app.register(TARGET, PASSWORD).await;
    let url = admin.url(&format!("/users/{}", app.user_id(TARGET)));
    let before = snapshot(&app);

    let refused = admin.client.delete(&url).send().await.unwrap();
    assert_detail(refused, 403, "CSRF_FAILED").await;
    assert_eq!(snapshot(&app), before);

    let token = admin.token().await;
    let accepted = admin
        .client
        .delete(&url)
        .header("x-csrf-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 204);
    assert!(app.user_row(TARGET).is_none());
}

#[tokio::test]
async fn cookie_jwt_logout_needs_the_csrf_header() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, MEMBER).await;

    let response = browser
        .client
        .post(browser.url("/auth/jwt/logout"))
        .send()
        .await
        .unwrap();

    assert_detail(response, 403, "CSRF_FAILED").await;
    assert_eq!(live_sessions(&app, MEMBER), 1);
}

#[tokio::test]
async fn bearer_api_changes_need_no_csrf_token() {
    let app = spawn_page_app().await;
    let tokens = app.user(MEMBER).await;

    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"email": "renamed@example.com", "current_password": PASSWORD}),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert!(app.user_row("renamed@example.com").is_some());
}

#[tokio::test]
async fn a_bearer_token_beside_the_cookie_needs_no_csrf_token() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, MEMBER).await;
    let tokens = app.tokens(MEMBER, PASSWORD).await;

    let response = browser
        .client
        .patch(browser.url("/users/me"))
        .bearer_auth(&tokens.access)
        .json(&json!({"email": "renamed@example.com", "current_password": PASSWORD}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(app.user_row("renamed@example.com").is_some());
}

// ---------------------------------------------------------------------------------------------
// Which site a request comes from

/// A cookie login with extra request headers, from a browser that never saw the site.
async fn cookie_login_with(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let browser = PageClient::new(app);
    let mut request = browser
        .client
        .post(browser.url("/auth/cookie/login"))
        .form(&[("username", MEMBER), ("password", PASSWORD)]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Finding 9: `X-Forwarded-Host` and `Forwarded` from a client that is not a trusted proxy
/// cannot make another site's `Origin` look like this one.
#[tokio::test]
async fn forwarded_headers_from_anyone_cannot_vouch_for_another_origin() {
    let app = spawn_page_app().await;
    app.register(MEMBER, PASSWORD).await;
    let before = snapshot(&app);

    for forged in [
        &[
            ("origin", "http://evil.example"),
            ("x-forwarded-host", "evil.example"),
        ][..],
        &[
            ("origin", "https://evil.example"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
        ],
        &[
            ("origin", "http://evil.example"),
            ("forwarded", "host=evil.example;proto=http"),
        ],
    ] {
        let response = cookie_login_with(&app, forged).await;
        assert_no_token_cookies(&response);
        assert_detail(response, 403, "CSRF_FAILED").await;
    }
    assert_eq!(snapshot(&app), before, "no session was started");
}

/// Finding 9: the scheme is part of the origin: `https://` is not `http://` on the same host
/// and port.
#[tokio::test]
async fn an_origin_with_another_scheme_is_another_site() {
    let app = spawn_page_app().await;
    app.register(MEMBER, PASSWORD).await;
    let other_scheme = app.address.replacen("http://", "https://", 1);

    let response = cookie_login_with(&app, &[("origin", &other_scheme)]).await;

    assert_detail(response, 403, "CSRF_FAILED").await;
    let same = cookie_login_with(&app, &[("origin", &app.address)]).await;
    assert_eq!(same.status(), 204);
}

/// Finding 9: without `Origin`, an unsafe request's `Referer` says where it comes from.
#[tokio::test]
async fn without_an_origin_the_referer_is_checked() {
    let app = spawn_page_app().await;
    let browser = PageClient::user(&app, MEMBER).await;
    let token = browser.token().await;

    let response = cookie_login_with(&app, &[("referer", "http://evil.example/login")]).await;
    assert_detail(response, 403, "CSRF_FAILED").await;
    let refused = browser
        .post_form_with(
            "/logout",
            &[("csrf_token", &token)],
            &[("referer", "http://evil.example/page")],
        )
        .await;
    assert_csrf_page(refused).await;
    assert_eq!(live_sessions(&app, MEMBER), 1, "still signed in");

    let own_page = format!("{}/account", app.address);
    let accepted = browser
        .post_form_with(
            "/logout",
            &[("csrf_token", &token)],
            &[("referer", &own_page)],
        )
        .await;
    assert_see_other(&accepted, "/");
}

/// Finding 9: `PUBLIC_URL` names this site, and a trusted proxy may say which host and scheme
/// the browser used; nothing else does.
#[tokio::test]
async fn public_url_and_trusted_proxies_name_this_site() {
    let app = spawn_app_with(&[
        ("COOKIE_SECURE", "false"),
        ("PUBLIC_URL", "https://auth.example.com"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    app.register(MEMBER, PASSWORD).await;

    let public = cookie_login_with(&app, &[("origin", "https://auth.example.com")]).await;
    assert_eq!(public.status(), 204, "the origin of PUBLIC_URL");
    let proxied = cookie_login_with(
        &app,
        &[
            ("origin", "https://other.example.com"),
            ("x-forwarded-host", "other.example.com"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    assert_eq!(proxied.status(), 204, "the host a trusted proxy forwarded");

    for refused in [
        &[("origin", "http://auth.example.com")][..],
        &[("origin", "https://auth.example.com:8443")],
        &[
            ("origin", "https://other.example.com"),
            ("x-forwarded-host", "other.example.com"),
            ("x-forwarded-proto", "http"),
        ],
    ] {
        let response = cookie_login_with(&app, refused).await;
        assert_detail(response, 403, "CSRF_FAILED").await;
    }
}

// ---------------------------------------------------------------------------------------------
// The token belongs to the signed-in session

/// A request from a browser holding exactly `cookies` (no jar), as a page whose visitor was
/// given another session's cookie would send it.
fn with_cookies(
    request: reqwest::RequestBuilder,
    cookies: &[(&str, String)],
) -> reqwest::RequestBuilder {
    let header = cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    request.header(reqwest::header::COOKIE, header)
}

fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Finding 8: an anonymous visitor's page-session cookie and the `csrf_token` of its login
/// page, sent with an administrator's access cookie, used to promote a user. The token of a
/// signed-in browser is its session's, so a token from before login, or another user's, never
/// passes.
#[tokio::test]
async fn a_token_from_another_session_never_passes_with_the_cookie() {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    let member = PageClient::user(&app, MEMBER).await;
    app.register(TARGET, PASSWORD).await;
    let target = app.user_id(TARGET);
    let anonymous = PageClient::new(&app);
    let anonymous_token = anonymous.csrf_token("/login").await;
    let member_token = member.token().await;
    let admin_access = admin.cookie(ACCESS).unwrap();
    let before = snapshot(&app);

    for (whose, browser, token) in [
        ("an anonymous visitor's", &anonymous, &anonymous_token),
        ("another user's", &member, &member_token),
    ] {
        let cookies = [
            (ACCESS, admin_access.clone()),
            (SESSION, browser.cookie(SESSION).expect("a page session")),
        ];
        let form = with_cookies(
            bare_client().post(app.url(&format!("/admin/users/{target}/promote"))),
            &cookies,
        )
        .header(reqwest::header::ACCEPT, "text/html")
        .form(&[("csrf_token", token.as_str()), ("next", "/admin/users")])
        .send()
        .await
        .unwrap();
        assert_eq!(form.status(), 403, "the promote form with {whose} token");
        assert_csrf_page(form).await;

        let api = with_cookies(
            bare_client().patch(app.url(&format!("/users/{target}"))),
            &cookies,
        )
        .header("x-csrf-token", token.as_str())
        .json(&json!({"is_superuser": true}))
        .send()
        .await
        .unwrap();
        assert_detail(api, 403, "CSRF_FAILED").await;
    }
    assert_eq!(snapshot(&app), before, "nobody was promoted");

    // The administrator's own browser, with its own token, may.
    let own = admin
        .submit(
            &format!("/admin/users/{target}/promote"),
            &[("next", "/admin/users"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(own.status(), 303);
    assert!(app.user_row(TARGET).unwrap().is_superuser);
}

/// A signed-in browser's token is its session's: every way of learning it (`GET /auth/csrf`,
/// the pages, `/auth/cookie/login`) gives the same one, and another session has another.
#[tokio::test]
async fn the_signed_in_token_is_the_sessions() {
    let app = spawn_page_app().await;
    app.register(MEMBER, PASSWORD).await;
    let browser = PageClient::new(&app);

    let response = browser
        .client
        .post(browser.url("/auth/cookie/login"))
        .form(&[("username", MEMBER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let issued = response.headers()["x-csrf-token"]
        .to_str()
        .unwrap()
        .to_owned();

    assert_eq!(browser.token().await, issued, "GET /auth/csrf");
    assert_eq!(browser.csrf_token("/account").await, issued, "the pages");
    let other = PageClient::logged_in(&app, MEMBER).await;
    assert_ne!(
        other.token().await,
        issued,
        "another session of the same user"
    );
}
