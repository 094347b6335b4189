//! `/static/*`: the stylesheet, the icon, the passkey script, the forms' script and the user list's, compiled into the binary so it runs from anywhere.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::routes::web::errors::PageError;

/// (name, content type, bytes) of every file in `static/`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "gatehouse.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../static/gatehouse.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../static/favicon.svg"),
    ),
    (
        "passkeys.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../static/passkeys.js"),
    ),
    (
        "forms.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../static/forms.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../static/admin.js"),
    ),
];

pub async fn serve(name: web::Path<String>) -> Result<HttpResponse, PageError> {
    let (_, content_type, bytes) = FILES
        .iter()
        .find(|(file, _, _)| *file == name.as_str())
        .ok_or(PageError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(*bytes))
}
