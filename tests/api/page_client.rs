//! The HTTP client of the page tests (plain reqwest, no real browser: that is `tests/browser/`):
//! its own cookie jar, form posts carrying the CSRF token, and readers for the bits of HTML and
//! `Set-Cookie` the tests look at.

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, ACCEPT, LOCATION, SET_COOKIE};
use reqwest::{Response, Url};

use crate::helpers::*;
use crate::tokens::session_of;

/// Cookie names when `COOKIE_SECURE=false` (what the flow tests use over plain HTTP).
pub const ACCESS: &str = "gatehouse_access";
pub const REFRESH: &str = "gatehouse_refresh";
pub const SESSION: &str = "gatehouse_session";

/// What the refused-form page says.
pub const CSRF_PAGE_HEADING: &str = "This form has expired";

/// An app whose cookies a plain-HTTP client keeps and sends back.
pub async fn spawn_page_app() -> TestApp {
    spawn_app_with(&[("COOKIE_SECURE", "false")]).await
}

/// A client that visits the pages as one browser would: a cookie jar that can be read and
/// edited, no automatic redirects.
pub struct PageClient {
    pub client: reqwest::Client,
    jar: Arc<Jar>,
    base: Url,
}

impl PageClient {
    pub fn new(app: &TestApp) -> PageClient {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        PageClient {
            client,
            jar,
            base: Url::parse(&app.address).unwrap(),
        }
    }

    /// A client signed in through the login page as an existing user.
    pub async fn logged_in(app: &TestApp, email: &str) -> PageClient {
        let browser = PageClient::new(app);
        let response = browser.log_in(email, PASSWORD, None).await;
        assert_eq!(response.status(), 303, "page login of {email}");
        browser
    }

    /// Registers `email` through the API and signs a new client in as it.
    pub async fn user(app: &TestApp, email: &str) -> PageClient {
        let response = app.register(email, PASSWORD).await;
        assert_eq!(response.status(), 201, "register {email}");
        PageClient::logged_in(app, email).await
    }

    /// Creates a superuser and signs a new client in as it.
    pub async fn superuser(app: &TestApp, email: &str) -> PageClient {
        app.superuser(email).await;
        PageClient::logged_in(app, email).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// A navigation: `GET` asking for HTML.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .header(ACCEPT, "text/html")
            .send()
            .await
            .unwrap()
    }

    /// The HTML of a page that must answer 200.
    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    /// The CSRF token rendered in the forms of the page at `path`.
    pub async fn csrf_token(&self, path: &str) -> String {
        csrf_in(&self.page(path).await)
    }

    /// Posts a form exactly as given (no token added).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .header(ACCEPT, "text/html")
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// The session's CSRF token from `GET /auth/csrf`, which (unlike a page) leaves the
    /// flash messages for the next page.
    pub async fn token(&self) -> String {
        let response = self
            .client
            .get(self.url("/auth/csrf"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        body["csrf_token"].as_str().unwrap().to_owned()
    }

    /// Posts a form exactly as given, with extra request headers.
    pub async fn post_form_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(ACCEPT, "text/html")
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// Posts a form with the session's current CSRF token, as a browser submitting it would.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.token().await;
        self.post_form(path, &with_token(fields, &token)).await
    }

    /// The flash messages shown on the page at `path` (which consumes them).
    pub async fn flashes_on(&self, path: &str) -> Vec<Flash> {
        flashes_in(&self.page(path).await)
    }

    pub async fn log_in(&self, email: &str, password: &str, next: Option<&str>) -> Response {
        let mut fields = vec![("email", email), ("password", password)];
        if let Some(next) = next {
            fields.push(("next", next));
        }
        let token = self.csrf_token("/login").await;
        self.post_form("/login", &with_token(&fields, &token)).await
    }

    pub async fn sign_up(&self, email: &str, password: &str, confirm: &str) -> Response {
        let token = self.csrf_token("/signup").await;
        let fields = [
            ("email", email),
            ("password", password),
            ("password_confirm", confirm),
        ];
        self.post_form("/signup", &with_token(&fields, &token))
            .await
    }

    /// The value of a cookie in the jar, if the client holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base)?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    }

    /// The session the client is signed in to, read from its access cookie.
    pub fn session(&self) -> String {
        session_of(
            &self
                .cookie(ACCESS)
                .expect("the client holds an access cookie"),
        )
    }

    /// Puts a cookie in the jar, as if the server had set it.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &self.base);
    }

    /// The email the pages show as signed in, if any.
    pub async fn signed_in_as(&self) -> Option<String> {
        let html = self.page("/").await;
        html.contains("id=\"logout-form\"")
            .then(|| text_of(&html, "class=\"nav-account\"").expect("the account link"))
    }
}

/// `fields` plus `csrf_token`.
pub fn with_token<'a>(fields: &[(&'a str, &'a str)], token: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut all = fields.to_vec();
    all.push(("csrf_token", token));
    all
}

// ---------------------------------------------------------------------------------------------
// Responses

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {}", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts a 303 to `to`.
pub fn assert_see_other(response: &Response, to: &str) {
    assert_eq!(response.status(), 303, "status of a redirect to {to}");
    assert_eq!(location(response), to);
}

/// One `Set-Cookie` header, split into its name, value and attributes.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    attributes: Vec<(String, Option<String>)>,
    pub raw: String,
}

impl SetCookie {
    pub fn parse(raw: &str) -> SetCookie {
        let mut parts = raw.split(';').map(str::trim);
        let (name, value) = parts.next().unwrap().split_once('=').unwrap();
        let attributes = parts
            .filter(|part| !part.is_empty())
            .map(|part| match part.split_once('=') {
                Some((key, value)) => (key.to_ascii_lowercase(), Some(value.to_owned())),
                None => (part.to_ascii_lowercase(), None),
            })
            .collect();
        SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes,
            raw: raw.to_owned(),
        }
    }

    /// Whether the attribute (case-insensitive name) is present.
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|(key, _)| key.eq_ignore_ascii_case(attribute))
    }

    /// The value of `attribute=value`.
    pub fn attribute(&self, attribute: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(attribute))
            .and_then(|(_, value)| value.as_deref())
    }

    pub fn max_age(&self) -> Option<i64> {
        self.attribute("Max-Age").map(|v| v.parse().unwrap())
    }

    /// `HttpOnly; SameSite=Lax; Path=/`, no `Domain`, and `Secure` exactly when `secure`.
    pub fn assert_locked_down(&self, secure: bool) {
        assert!(self.has("HttpOnly"), "{}", self.raw);
        assert_eq!(self.attribute("SameSite"), Some("Lax"), "{}", self.raw);
        assert_eq!(self.attribute("Path"), Some("/"), "{}", self.raw);
        assert!(!self.has("Domain"), "{}", self.raw);
        assert_eq!(self.has("Secure"), secure, "Secure flag in {}", self.raw);
    }

    /// A cookie that tells the browser to forget it.
    pub fn is_cleared(&self) -> bool {
        self.max_age() == Some(0) && self.value.is_empty()
    }
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<SetCookie> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| SetCookie::parse(value.to_str().unwrap()))
        .collect()
}

/// The `Set-Cookie` for `name`, if the response sets it.
pub fn set_cookie(response: &Response, name: &str) -> Option<SetCookie> {
    set_cookies(response.headers())
        .into_iter()
        .find(|cookie| cookie.name == name)
}

/// Asserts the response sets neither token cookie (under either naming).
pub fn assert_no_token_cookies(response: &Response) {
    let names: Vec<String> = set_cookies(response.headers())
        .into_iter()
        .map(|c| c.name)
        .collect();
    for name in names {
        assert!(
            !name.contains("gatehouse_access") && !name.contains("gatehouse_refresh"),
            "unexpected Set-Cookie {name}"
        );
    }
}

/// Asserts the 403 HTML page that refuses a form without a valid token.
pub async fn assert_csrf_page(response: Response) {
    assert_eq!(response.status(), 403);
    assert_html(&response);
    let html = response.text().await.unwrap();
    assert!(html.contains(CSRF_PAGE_HEADING), "{html}");
}

pub fn assert_html(response: &Response) {
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
}

// ---------------------------------------------------------------------------------------------
// HTML

/// Undoes the HTML escaping of attribute values and text: the named entities for `<>&"'` and
/// every numeric one (`&#60;`, `&#x3c;`).
pub fn unescape(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => match entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                    None => entity
                        .strip_prefix('#')
                        .and_then(|dec| dec.parse().ok())
                        .and_then(char::from_u32),
                },
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Asserts `raw` (hostile markup) does not appear unescaped in the page.
pub fn assert_not_raw(html: &str, raw: &str) {
    assert!(!html.contains(raw), "{raw:?} appears unescaped in {html}");
}

/// The (unescaped) `value` of the first input named `name`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("name=\"{name}\""))?;
    let tag = &html[start..start + html[start..].find('>')?];
    let value = &tag[tag.find("value=\"")? + "value=\"".len()..];
    Some(unescape(&value[..value.find('"')?]))
}

/// The CSRF token of the page's forms.
pub fn csrf_in(html: &str) -> String {
    let token = input_value(html, "csrf_token").expect("a csrf_token field");
    assert!(!token.is_empty(), "an empty csrf_token field");
    token
}

/// The text (unescaped) of the first element whose opening tag contains `marker`, up to the
/// next tag.
pub fn text_of(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)?;
    let text = &html[start + html[start..].find('>')? + 1..];
    Some(unescape(text[..text.find('<')?].trim()))
}

/// The messages of the page's error summary, each with the id of the field it links to.
pub fn error_summary_links(html: &str) -> Vec<(String, String)> {
    let Some(start) = html.find("id=\"error-summary\"") else {
        return Vec::new();
    };
    let summary = &html[start..start + html[start..].find("</ul>").unwrap_or(0)];
    summary
        .split("<li><a href=\"#")
        .skip(1)
        .map(|item| {
            let (field, rest) = item.split_once('"').unwrap();
            let text = &rest[rest.find('>').unwrap() + 1..rest.find("</a>").unwrap()];
            (field.to_owned(), unescape(text.trim()))
        })
        .collect()
}

/// The messages of the page's error summary.
pub fn error_summary(html: &str) -> Vec<String> {
    error_summary_links(html)
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

/// The page's `<title>`.
pub fn title_of(html: &str) -> String {
    text_of(html, "<title").unwrap_or_default()
}

/// The error shown beside the form field `field`.
pub fn field_error(html: &str, field: &str) -> Option<String> {
    text_of(html, &format!("id=\"{field}-error\""))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub level: String,
    pub role: String,
    pub text: String,
}

impl Flash {
    pub fn success(text: &str) -> Flash {
        Flash {
            level: "success".into(),
            role: "status".into(),
            text: text.into(),
        }
    }

    pub fn error(text: &str) -> Flash {
        Flash {
            level: "error".into(),
            role: "alert".into(),
            text: text.into(),
        }
    }
}

/// The flash messages of a page, in order.
pub fn flashes_in(html: &str) -> Vec<Flash> {
    const OPEN: &str = "<div class=\"flash flash-";
    let mut flashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(OPEN) {
        rest = &rest[start + OPEN.len()..];
        let level = &rest[..rest.find('"').unwrap()];
        let role_start = rest.find("role=\"").unwrap() + "role=\"".len();
        let role = &rest[role_start..role_start + rest[role_start..].find('"').unwrap()];
        let text_start = rest.find('>').unwrap() + 1;
        let text = &rest[text_start..text_start + rest[text_start..].find("</div>").unwrap()];
        flashes.push(Flash {
            level: level.to_owned(),
            role: role.to_owned(),
            text: unescape(text.trim()),
        });
    }
    flashes
}

/// Every value of the attribute `attribute` in the page, unescaped, in order.
pub fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let marker = format!("{attribute}=\"");
    html.match_indices(&marker)
        .map(|(at, _)| {
            let value = &html[at + marker.len()..];
            unescape(&value[..value.find('"').unwrap()])
        })
        .collect()
}

/// The `href` of the link with `rel="{rel}"`.
pub fn rel_link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let tag = &html[html[..at].rfind('<')?..at];
    let href = &tag[tag.find("href=\"")? + "href=\"".len()..];
    Some(unescape(&href[..href.find('"')?]))
}

// ---------------------------------------------------------------------------------------------
// Database

/// Every stored user, session and refresh token, as text: equal snapshots mean nothing changed.
pub fn snapshot(app: &TestApp) -> String {
    use gatehouse::db::schema::{refresh_tokens, sessions, users};
    let conn = &mut app.db();
    let users: Vec<(String, String, String, bool, bool, bool, i64)> = users::table
        .select((
            users::id,
            users::email,
            users::hashed_password,
            users::is_active,
            users::is_superuser,
            users::is_verified,
            users::updated_at,
        ))
        .order(users::id)
        .load(conn)
        .unwrap();
    let sessions: Vec<(String, String, Option<i64>, i64, i64)> = sessions::table
        .select((
            sessions::id,
            sessions::user_id,
            sessions::revoked_at,
            sessions::last_used_at,
            sessions::expires_at,
        ))
        .order(sessions::id)
        .load(conn)
        .unwrap();
    let tokens: Vec<(String, Option<i64>)> = refresh_tokens::table
        .select((refresh_tokens::token_hash, refresh_tokens::rotated_at))
        .order(refresh_tokens::token_hash)
        .load(conn)
        .unwrap();
    format!("{users:?}\n{sessions:?}\n{tokens:?}")
}

/// Sessions of `email` that have not been revoked.
pub fn live_sessions(app: &TestApp, email: &str) -> i64 {
    let id = app.user_id(email);
    app.count(&format!(
        "SELECT id FROM sessions WHERE user_id = '{id}' AND revoked_at IS NULL"
    ))
}
