//! `GET /metrics`: the Prometheus scrape endpoint, for operators rather than API clients.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::metrics::CONTENT_TYPE;
use crate::routes::web::errors::ApiError;
use crate::routes::web::extractors::bearer_token;
use crate::state::AppState;

/// The metrics in Prometheus' text format. With `METRICS_TOKEN` set, only a request bearing it
/// is answered; anyone else gets 401 with `WWW-Authenticate: Bearer`.
pub async fn scrape(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&req);
    if !state.metrics.allows(token.as_deref()) {
        return Err(ApiError::Unauthorized {
            invalid_token: token.is_some(),
        });
    }
    let text = state
        .metrics
        .render()
        .await
        .map_err(|e| ApiError::internal(format_args!("cannot render the metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}
