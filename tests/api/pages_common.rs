//! What every page shares: security headers, error pages, static assets, escaping.

use reqwest::header::ACCEPT;

use crate::helpers::*;
use crate::page_client::*;

const MEMBER: &str = "member@example.com";
const ADMIN: &str = "admin@example.com";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} on {}", response.url()))
        .to_str()
        .unwrap()
}

/// The headers that keep a page from being framed, sniffed or leaking where the user was.
fn assert_security_headers(response: &reqwest::Response) {
    let csp = header(response, "content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(response, "x-frame-options"), "DENY");
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "referrer-policy"), "same-origin");
}

#[tokio::test]
async fn every_page_carries_the_security_headers_and_is_never_cached() {
    let app = spawn_page_app().await;
    let anonymous = PageClient::new(&app);
    let member = PageClient::user(&app, MEMBER).await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    let cases: [(&PageClient, &str, u16); 9] = [
        (&anonymous, "/", 200),
        (&anonymous, "/login", 200),
        (&anonymous, "/signup", 200),
        (&anonymous, "/no-such-page", 404),
        (&member, "/", 200),
        (&member, "/account", 200),
        (&member, "/admin/users", 403),
        (&admin, "/admin/users", 200),
        (&admin, "/admin/users/not-a-uuid/delete", 404),
    ];

    for (browser, path, status) in cases {
        let response = browser.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_html(&response);
        assert_security_headers(&response);
        assert_eq!(header(&response, "cache-control"), "no-store", "{path}");
    }
}

#[tokio::test]
async fn form_answers_and_redirects_carry_the_security_headers() {
    let app = spawn_page_app().await;
    app.register(MEMBER, PASSWORD).await;
    let browser = PageClient::new(&app);

    let refused = browser.post_form("/logout", &[]).await;
    assert_eq!(refused.status(), 403);
    assert_security_headers(&refused);
    assert_eq!(header(&refused, "cache-control"), "no-store");

    let failed = browser.log_in(MEMBER, "wrong password", None).await;
    assert_eq!(failed.status(), 400);
    assert_security_headers(&failed);
    assert_eq!(header(&failed, "cache-control"), "no-store");

    let redirect = browser.get("/account").await;
    assert_eq!(redirect.status(), 303);
    assert_security_headers(&redirect);

    let signed_in = browser.log_in(MEMBER, PASSWORD, None).await;
    assert_eq!(signed_in.status(), 303);
    assert_security_headers(&signed_in);
}

#[tokio::test]
async fn pages_answer_head_as_they_answer_get() {
    let app = spawn_page_app().await;
    let member = PageClient::user(&app, MEMBER).await;
    let visitor = PageClient::new(&app);

    for (browser, path, status) in [
        (&member, "/", 200),
        (&visitor, "/login", 200),
        (&visitor, "/signup", 200),
        (&member, "/account", 200),
    ] {
        let response = browser.client.head(browser.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "HEAD {path}");
        assert_html(&response);
    }
}

#[tokio::test]
async fn unknown_paths_are_an_html_404_for_browsers_and_json_otherwise() {
    let app = spawn_page_app().await;

    let page = PageClient::new(&app).get("/no-such-page").await;
    assert_eq!(page.status(), 404);
    assert_html(&page);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("This page doesn’t exist"));

    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut request = app.client.get(app.url("/no-such-page"));
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        assert_detail(request.send().await.unwrap(), 404, "Not Found").await;
    }
}

#[tokio::test]
async fn static_assets_are_served_with_their_content_types() {
    let app = spawn_page_app().await;

    for (path, content_type) in [
        ("/static/gatehouse.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
        ("/static/passkeys.js", "text/javascript; charset=utf-8"),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            header(&response, "content-type").starts_with(content_type),
            "{path}"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn unknown_static_files_are_404() {
    let app = spawn_page_app().await;

    for path in [
        "/static/missing.css",
        "/static/..%2FCargo.toml",
        "/static/..%2F..%2FCargo.toml",
        "/static/%2E%2E%2Fsrc%2Fmain.rs",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn pages_load_nothing_from_other_sites() {
    let app = spawn_page_app().await;
    let anonymous = PageClient::new(&app);
    let admin = PageClient::superuser(&app, ADMIN).await;

    for (browser, path) in [
        (&anonymous, "/"),
        (&anonymous, "/login"),
        (&anonymous, "/signup"),
        (&admin, "/account"),
        (&admin, "/admin/users"),
    ] {
        let html = browser.page(path).await;
        for external in ["src=\"http", "src=\"//", "href=\"http", "href=\"//"] {
            assert!(!html.contains(external), "{path} loads {external}…");
        }
        assert!(html.contains("href=\"/static/gatehouse.css\""), "{path}");
    }
}

#[tokio::test]
async fn signup_echoes_a_hostile_email_escaped() {
    let app = spawn_page_app().await;
    let hostile = "\"<script>alert(1)</script>\"@example.com";

    let response = PageClient::new(&app)
        .sign_up(hostile, PASSWORD, PASSWORD)
        .await;

    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert_not_raw(&html, "<script>");
    assert_eq!(input_value(&html, "email").unwrap(), hostile);
    assert!(field_error(&html, "email").is_some());
    assert_eq!(app.user_count(), 0);
}

#[tokio::test]
async fn an_email_with_markup_characters_is_escaped_on_every_page() {
    let app = spawn_page_app().await;
    let odd = "it's&co/{x}=1@example.com";
    let browser = PageClient::new(&app);
    assert_see_other(&browser.sign_up(odd, PASSWORD, PASSWORD).await, "/account");

    let account = browser.page("/account").await;
    assert_not_raw(&account, "it's&co");
    assert_eq!(text_of(&account, "id=\"account-email\"").unwrap(), odd);

    let home = browser.page("/").await;
    assert_not_raw(&home, "it's&co");
    assert_eq!(browser.signed_in_as().await.as_deref(), Some(odd));
}
