//! The 403, 404 and error pages, shown for any [`PageError`] that is not a redirect.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use super::{render, Layout};
use crate::errors::PageError;

#[derive(Template)]
#[template(path = "forbidden.html")]
struct ForbiddenPage {
    layout: Layout,
    message: &'static str,
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
    message: &'static str,
}

/// The page for an error; falls back to plain text if even that cannot render.
pub fn error_page(error: &PageError) -> HttpResponse {
    let layout = Layout::bare();
    let rendered = match error {
        PageError::Forbidden => render(
            StatusCode::FORBIDDEN,
            &ForbiddenPage {
                layout,
                message: "This page is for superusers. If you need access, ask one of them.",
            },
        ),
        PageError::CsrfFailed => render(
            StatusCode::FORBIDDEN,
            &ErrorPage {
                layout,
                status: 403,
                heading: "This form has expired",
                message: "The form was too old or did not come from this site, so nothing was \
                          changed. Go back, reload the page and try again.",
            },
        ),
        PageError::NotFound => render(StatusCode::NOT_FOUND, &NotFoundPage { layout }),
        PageError::BadRequest => render(
            StatusCode::BAD_REQUEST,
            &ErrorPage {
                layout,
                status: 400,
                heading: "That request didn’t make sense",
                message: "The form was incomplete or malformed, so nothing was changed.",
            },
        ),
        PageError::Internal | PageError::LoginRequired { .. } => render(
            StatusCode::INTERNAL_SERVER_ERROR,
            &ErrorPage {
                layout,
                status: 500,
                heading: "Something went wrong on our side",
                message: "We couldn’t finish that. Please try again in a moment.",
            },
        ),
    };
    rendered.unwrap_or_else(|_| {
        HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body("Something went wrong on our side.")
    })
}
