//! Public service endpoints: health, the JWKS, and the protected `/secret` example.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::extractors::Caller;
use crate::db;
use crate::startup::AppState;

/// 200 once the database answers, 503 otherwise (for load balancers and orchestrators).
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    match db::run(&state.pool, db::ping).await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(e) => {
            log::warn!("health check failed: {e}");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}

/// The public verification keys; cacheable briefly so rotations propagate within minutes.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.access_tokens.keys().public_jwks())
}

/// A protected resource, as in the articles Gatehouse grew from: it names the caller.
pub async fn secret(caller: Caller) -> HttpResponse {
    let caller = match caller {
        Caller::User(auth) => json!({"kind": "user", "id": auth.user.id, "email": auth.user.email}),
        Caller::Client { client, scopes } => {
            json!({"kind": "client", "client_id": client.id, "name": client.name, "scopes": scopes})
        }
    };
    HttpResponse::Ok().json(json!({
        "message": "Top secret data only authorized callers can access.",
        "caller": caller,
    }))
}
