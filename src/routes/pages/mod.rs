//! The HTML pages: signup, login, account and the superusers' admin page.
//!
//! Every form is POST → 303 → GET, carries the session's CSRF token (checked by [`CsrfForm`]),
//! and reports back through flash messages or by re-rendering with its field errors.

mod account;
mod admin;
mod admin_audit;
mod admin_clients;
mod assets;
mod auth;
mod errors;
mod flash;
mod home;
mod recovery;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::cookie::Cookie;
use actix_web::http::{header, StatusCode};
use actix_web::{guard, web, FromRequest, Handler, HttpRequest, HttpResponse, Responder, Route};
use askama::Template;
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use errors::error_page;
pub use flash::Flash;

use crate::auth::csrf;
use crate::domain::{LocalPath, User};
use crate::errors::PageError;
use crate::services::sessions::TokenPair;
use crate::startup::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(page(home::show)))
        .service(
            web::resource("/signup")
                .route(page(auth::signup_form))
                .post(auth::signup),
        )
        .service(
            web::resource("/login")
                .route(page(auth::login_form))
                .post(auth::login),
        )
        .service(web::resource("/logout").post(auth::logout))
        .service(
            web::resource("/forgot-password")
                .route(page(recovery::forgot_password_form))
                .post(recovery::forgot_password),
        )
        .service(
            web::resource("/reset-password")
                .route(page(recovery::reset_password_form))
                .post(recovery::reset_password),
        )
        .service(
            web::resource("/verify")
                .route(page(recovery::verify_form))
                .post(recovery::verify),
        )
        .service(web::resource("/verify/resend").post(recovery::resend_verification))
        .service(web::resource("/account").route(page(account::show)))
        .service(web::resource("/account/password").post(account::change_password))
        .service(web::resource("/account/verify-email").post(recovery::send_verification))
        .service(web::resource("/account/sessions/end-others").post(account::end_other_sessions))
        .service(web::resource("/account/sessions/{id}/end").post(account::end_session))
        .service(web::resource("/admin/users").route(page(admin::list)))
        .service(
            web::resource("/admin/users/{id}/{action}")
                .route(page(admin::confirm))
                .post(admin::act),
        )
        .service(
            web::resource("/admin/clients")
                .route(page(admin_clients::list))
                .post(admin_clients::create),
        )
        .service(web::resource("/admin/clients/{id}/delete").post(admin_clients::delete))
        .service(web::resource("/admin/audit").route(page(admin_audit::list)))
        .service(web::resource("/static/{file}").route(page(assets::serve)));
}

/// A page answers GET, and HEAD as HTTP requires wherever GET works (the server sends the
/// headers without the body).
fn page<F, Args>(handler: F) -> Route
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::route()
        .guard(guard::Any(guard::Get()).or(guard::Head()))
        .to(handler)
}

/// What every page's frame (`base.html`) shows: who is signed in, the token for the logout
/// form, and the flash messages waiting for this page.
pub struct Layout {
    pub user: Option<NavUser>,
    /// Empty on error pages rendered outside a session.
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
}

pub struct NavUser {
    pub email: String,
    pub is_superuser: bool,
}

impl Layout {
    /// The frame for a page in this session: takes its flash messages and its CSRF token.
    pub fn new(session: &Session, user: Option<&User>) -> Result<Layout, PageError> {
        Ok(Layout {
            user: user.map(|user| NavUser {
                email: user.email.clone(),
                is_superuser: user.is_superuser,
            }),
            csrf_token: csrf::token(session).map_err(internal)?,
            flashes: flash::take(session),
        })
    }

    /// The frame of an error page, which knows nothing of the session.
    fn bare() -> Layout {
        Layout {
            user: None,
            csrf_token: String::new(),
            flashes: Vec::new(),
        }
    }
}

/// Per-field error messages of a form, shown beside their inputs.
#[derive(Debug, Default)]
pub struct FieldErrors(HashMap<&'static str, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    pub fn get(&self, field: &str) -> &str {
        self.0.get(field).map_or("", String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Renders a page. Pages are never cached: they carry account data and CSRF tokens.
pub fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    let html = page.render().map_err(internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html))
}

/// 303 See Other: the answer to every successful form.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Puts a new session's tokens in the browser's cookies, gives the page session a fresh CSRF
/// token (one seen before login is worthless after it) and sends the browser on.
pub fn signed_in_redirect(
    state: &AppState,
    session: &Session,
    tokens: &TokenPair,
    next: &str,
) -> Result<HttpResponse, PageError> {
    csrf::renew(session).map_err(internal)?;
    with_cookies(see_other(next), state.cookies.signed_in(tokens))
}

/// Makes the browser forget its tokens, renews the CSRF token and sends the browser on.
pub fn signed_out_redirect(
    state: &AppState,
    session: &Session,
    next: &str,
) -> Result<HttpResponse, PageError> {
    csrf::renew(session).map_err(internal)?;
    with_cookies(see_other(next), state.cookies.signed_out())
}

fn with_cookies(
    mut response: HttpResponse,
    cookies: [Cookie<'static>; 2],
) -> Result<HttpResponse, PageError> {
    for cookie in cookies {
        response.add_cookie(&cookie).map_err(internal)?;
    }
    Ok(response)
}

fn internal(error: impl std::fmt::Display) -> PageError {
    log::error!("page error: {error}");
    PageError::Internal
}

/// A submitted form whose CSRF token matched the session's and which came from this site;
/// anything else is refused with the 403 page before the handler runs.
pub struct CsrfForm<T>(pub T);

/// A form with nothing but its CSRF token (a button).
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<CsrfForm<T>, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = body.await.map_err(|_| PageError::BadRequest)?;
            let presented: CsrfField =
                serde_urlencoded::from_bytes(&body).map_err(|_| PageError::BadRequest)?;
            if !csrf::verify(&req, &req.get_session(), presented.csrf_token.as_deref()) {
                return Err(PageError::CsrfFailed);
            }
            let form = serde_urlencoded::from_bytes(&body).map_err(|_| PageError::BadRequest)?;
            Ok(CsrfForm(form))
        })
    }
}

/// A date and time for people: `2026-11-22 14:03 UTC`.
pub fn display_time(unix_seconds: i64) -> String {
    format_time(
        unix_seconds,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"),
    )
}

/// A date for people: `2026-11-22`.
pub fn display_date(unix_seconds: i64) -> String {
    format_time(
        unix_seconds,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
}

fn format_time(
    unix_seconds: i64,
    format: &[time::format_description::BorrowedFormatItem<'_>],
) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// The `next` a page may send the browser to after a form, with a safe default.
pub fn next_or(raw: Option<&str>, default: &str) -> LocalPath {
    LocalPath::parse_or(raw, default)
}
