//! Answers for what no route handles: unknown paths, malformed query strings, wrong methods.
//! Browsers get a page, everyone else the contract's JSON.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::ResponseError;

use super::errors::{ApiError, FieldError, PageError};

/// Unknown paths: the 404 page for browsers, the contract's JSON for everyone else.
pub async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if wants_html(&req) {
        PageError::NotFound.error_response()
    } else {
        ApiError::NotFound.error_response()
    }
}

/// A query string that does not fit its route: the bad-request page for browsers, FastAPI's
/// 422 for everyone else (instead of actix's plain-text 400).
pub fn bad_query(
    error: actix_web::error::QueryPayloadError,
    req: &actix_web::HttpRequest,
) -> actix_web::Error {
    log::debug!("malformed query string: {error}");
    if wants_html(req) {
        PageError::BadRequest.into()
    } else {
        ApiError::validation(FieldError {
            loc: vec!["query".to_owned()],
            msg: "The query string is not valid for this route".to_owned(),
            kind: "query_parsing".to_owned(),
        })
        .into()
    }
}

fn wants_html(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Gives actix's bare 405 the contract's JSON body.
pub fn json_405<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (request, _) = response.into_parts();
    let body = actix_web::HttpResponse::MethodNotAllowed()
        .json(serde_json::json!({"detail": "Method Not Allowed"}));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, body).map_into_right_body(),
    ))
}
