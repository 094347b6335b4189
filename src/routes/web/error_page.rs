//! How a [`PageError`] answers: a redirect to the login page, or the 403, 404 or error page.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::errors::{PageError, BUSY_RETRY_AFTER, UNAVAILABLE_RETRY_AFTER};
use super::page::{render, Layout};

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) | PageError::MfaRequired(_) | PageError::CsrfFailed => {
                StatusCode::FORBIDDEN
            }
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::BadRequest => StatusCode::BAD_REQUEST,
            PageError::Busy | PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PageError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::LoginRequired { next } => {
                let location = match next {
                    Some(next) => format!(
                        "/login?{}",
                        serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
                    ),
                    None => "/login".to_owned(),
                };
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, location))
                    .finish()
            }
            PageError::Busy => retry_after(error_page(self), BUSY_RETRY_AFTER),
            PageError::Unavailable => retry_after(error_page(self), UNAVAILABLE_RETRY_AFTER),
            PageError::TooManyRequests { retry_after: secs } => {
                retry_after(error_page(self), *secs)
            }
            other => error_page(other),
        }
    }
}

#[derive(Template)]
#[template(path = "forbidden.html")]
struct ForbiddenPage {
    layout: Layout,
    message: &'static str,
    /// Where to go to fix it, with its label; empty when nowhere.
    fix: (&'static str, &'static str),
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    layout: Layout,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    heading: &'static str,
    message: String,
    /// Too many attempts: offer the way in that needs no password.
    offer_reset: bool,
}

/// The page for an error; falls back to plain text if even that cannot render.
pub(super) fn error_page(error: &PageError) -> HttpResponse {
    let layout = Layout::bare();
    let (heading, message): (&str, String) = match error {
        PageError::Forbidden(header) => {
            let layout = Layout::for_error(header.as_deref());
            let message = "This page is for superusers. If you need access, ask one of them.";
            let fix = ("", "");
            return fallback(render(
                error.status_code(),
                &ForbiddenPage {
                    layout,
                    message,
                    fix,
                },
            ));
        }
        PageError::MfaRequired(header) => {
            let layout = Layout::for_error(header.as_deref());
            let message = "Superusers must sign in with a second factor. Set up an \
                           authenticator app or a passkey on your account’s security page, then \
                           sign out and in again.";
            let fix = ("/account/security", "Sign-in security");
            return fallback(render(
                error.status_code(),
                &ForbiddenPage {
                    layout,
                    message,
                    fix,
                },
            ));
        }
        PageError::NotFound => {
            return fallback(render(error.status_code(), &NotFoundPage { layout }));
        }
        PageError::CsrfFailed => (
            "This form has expired",
            "The form was too old or did not come from this site, so nothing was changed. Go \
             back, reload the page and try again."
                .to_owned(),
        ),
        PageError::BadRequest => (
            "That request didn’t make sense",
            "The form was incomplete or malformed, so nothing was changed.".to_owned(),
        ),
        PageError::Busy => (
            "We’re very busy right now",
            "Too many people are signing in at once. Please try again in a few seconds.".to_owned(),
        ),
        PageError::Unavailable => (
            "We can’t save anything right now",
            "Our storage is not answering, so nothing was changed. Please try again in a minute."
                .to_owned(),
        ),
        PageError::TooManyRequests { retry_after } => (
            "Too many attempts",
            format!(
                "For your account’s safety we’ve paused this for a while. Please try again in {}.",
                wait_for_people(*retry_after)
            ),
        ),
        PageError::Internal | PageError::LoginRequired { .. } => (
            "Something went wrong on our side",
            "We couldn’t finish that. Please try again in a moment.".to_owned(),
        ),
    };
    // A redirect never renders; should one get here, it is a bug, shown as one.
    let status = match error {
        PageError::LoginRequired { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        other => other.status_code(),
    };
    let page = ErrorPage {
        layout,
        status: status.as_u16(),
        heading,
        message,
        offer_reset: matches!(error, PageError::TooManyRequests { .. }),
    };
    fallback(render(status, &page))
}

/// "1 minute", "15 minutes", "40 seconds".
fn wait_for_people(seconds: u64) -> String {
    if seconds < 60 {
        return format!("{seconds} second{}", if seconds == 1 { "" } else { "s" });
    }
    let minutes = seconds.div_ceil(60);
    format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
}

fn fallback(rendered: Result<HttpResponse, PageError>) -> HttpResponse {
    rendered.unwrap_or_else(|_| {
        HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body("Something went wrong on our side.")
    })
}

fn retry_after(mut page: HttpResponse, seconds: u64) -> HttpResponse {
    page.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    page
}
