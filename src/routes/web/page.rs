//! The frame of every page: its layout, rendering, redirects, and dates for people.

use actix_session::Session;
use actix_web::cookie::Cookie;
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use askama::Template;

use super::cookies::CookiePolicy;
use super::csrf;
use super::errors::{PageError, SignedInHeader};
use super::extractors::{csrf_session, Authenticated};
use super::flash::{self, Flash};
use crate::services::sessions::TokenPair;
use crate::state::AppState;

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
    /// The frame for a page in this session, shown to `visitor`: takes its flash messages and
    /// the CSRF token its forms carry.
    pub fn new(
        state: &AppState,
        session: &Session,
        visitor: Option<&Authenticated>,
    ) -> Result<Layout, PageError> {
        let signed_in = csrf_session(visitor);
        Ok(Layout {
            user: visitor.map(|auth| NavUser {
                email: auth.user.email.clone(),
                is_superuser: auth.user.is_superuser,
            }),
            csrf_token: csrf::token(state, session, signed_in).map_err(PageError::internal)?,
            flashes: flash::take(session),
        })
    }

    /// The frame of an error page that knows who is signed in.
    pub fn for_error(header: Option<&SignedInHeader>) -> Layout {
        match header {
            Some(header) => Layout {
                user: Some(NavUser {
                    email: header.email.clone(),
                    is_superuser: header.is_superuser,
                }),
                csrf_token: header.csrf_token.clone(),
                flashes: Vec::new(),
            },
            None => Layout::bare(),
        }
    }

    /// The frame of an error page, which knows nothing of the session.
    pub fn bare() -> Layout {
        Layout {
            user: None,
            csrf_token: String::new(),
            flashes: Vec::new(),
        }
    }
}

/// Renders a page. Pages are never cached: they carry account data and CSRF tokens.
pub fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    let html = page.render().map_err(PageError::internal)?;
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
    csrf::renew(session).map_err(PageError::internal)?;
    with_cookies(see_other(next), CookiePolicy::of(state).signed_in(tokens))
}

/// Makes the browser forget its tokens, renews the CSRF token and sends the browser on.
pub fn signed_out_redirect(
    state: &AppState,
    session: &Session,
    next: &str,
) -> Result<HttpResponse, PageError> {
    csrf::renew(session).map_err(PageError::internal)?;
    with_cookies(see_other(next), CookiePolicy::of(state).signed_out())
}

fn with_cookies(
    mut response: HttpResponse,
    cookies: [Cookie<'static>; 2],
) -> Result<HttpResponse, PageError> {
    for cookie in cookies {
        response.add_cookie(&cookie).map_err(PageError::internal)?;
    }
    Ok(response)
}

/// A date and time for people: `2026-11-22 14:03 UTC`.
pub fn display_time(unix_seconds: i64) -> String {
    format_time(
        unix_seconds,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"),
    )
}

/// A moment shown as people say it ("3 days ago"), with its exact time beside it for
/// everyone (`exact`) and for machines (`datetime`, in `<time datetime=…>`).
pub struct When {
    pub ago: String,
    pub exact: String,
    pub datetime: String,
}

impl When {
    pub fn of(unix_seconds: i64, now: i64) -> When {
        When {
            ago: ago(unix_seconds, now),
            exact: display_time(unix_seconds),
            datetime: format_time(
                unix_seconds,
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
            ),
        }
    }
}

/// "just now", "5 minutes ago", "3 hours ago", "3 days ago", then the date.
pub fn ago(unix_seconds: i64, now: i64) -> String {
    let seconds = (now - unix_seconds).max(0);
    let (count, unit) = match seconds {
        0..60 => return "just now".to_owned(),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        86_400..2_592_000 => (seconds / 86_400, "day"),
        _ => return format!("on {}", display_date(unix_seconds)),
    };
    format!("{count} {unit}{} ago", if count == 1 { "" } else { "s" })
}

/// A date for people: `2026-11-22`.
pub fn display_date(unix_seconds: i64) -> String {
    format_time(
        unix_seconds,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
}

pub fn format_time(
    unix_seconds: i64,
    format: &[time::format_description::BorrowedFormatItem<'_>],
) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{ago, When};

    #[test]
    fn moments_read_as_people_say_them() {
        let now = 1_800_000_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - 59, now), "just now");
        assert_eq!(ago(now - 60, now), "1 minute ago");
        assert_eq!(ago(now - 5 * 60, now), "5 minutes ago");
        assert_eq!(ago(now - 3_600, now), "1 hour ago");
        assert_eq!(ago(now - 3 * 86_400, now), "3 days ago");
        assert_eq!(ago(now - 40 * 86_400, now), "on 2026-12-06");
        assert_eq!(ago(now + 30, now), "just now", "a clock a little ahead");
    }

    #[test]
    fn a_moment_carries_its_exact_time() {
        let when = When::of(1_800_000_000, 1_800_000_000 + 120);
        assert_eq!(when.ago, "2 minutes ago");
        assert_eq!(when.exact, "2027-01-15 08:00 UTC");
        assert_eq!(when.datetime, "2027-01-15T08:00:00Z");
    }
}
