//! Public service endpoints: health, the JWKS, and the protected `/secret` example.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::schemas::Unauthorized;
use crate::auth::keys::PublicJwkSet;
use crate::domain::UserId;
use crate::routes::web::extractors::Caller;
use crate::services::maintenance;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: HealthStatus,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

/// Whether the service can serve.
///
/// 200 once the database answers, 503 otherwise (for load balancers and orchestrators).
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(
        (status = 200, description = "Serving", body = Health,
            example = json!({"status": "ok"})),
        (status = 503, description = "The database does not answer, cannot store data, or \
            (SQLite) its file was deleted or replaced", body = Health,
            example = json!({"status": "unavailable"})),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    match maintenance::check_health(&state).await {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: HealthStatus::Ok,
        }),
        // The service logged why when it probed.
        Err(_) => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(Health {
                status: HealthStatus::Unavailable,
            }),
    }
}

/// The public keys (JWKS): the EC keys that verify access tokens and ES256 ID tokens, and any
/// RSA key that verifies RS256 ID tokens.
///
/// Cacheable briefly, so that rotations propagate within minutes.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "meta",
    responses(
        (status = 200, description = "Every key: EC (ES256) keys verify access tokens and ID \
            tokens, RSA (RS256) keys only ID tokens; none under HS256",
            body = PublicJwkSet),
    )
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.access_tokens.keys().public_jwks())
}

/// What `/secret` tells its caller.
#[derive(Serialize, ToSchema)]
pub struct Secret {
    message: &'static str,
    caller: CallerRead,
}

/// Who asked: a user or a machine client.
#[derive(Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CallerRead {
    User {
        #[schema(value_type = uuid::Uuid)]
        id: UserId,
        email: String,
    },
    Client {
        client_id: String,
        name: String,
        scopes: Vec<String>,
    },
}

/// An example protected resource: it names the caller.
///
/// As in the articles Gatehouse grew from.
#[utoipa::path(
    get,
    path = "/secret",
    tag = "meta",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller, user or machine client", body = Secret),
        (status = 401, response = Unauthorized),
    )
)]
pub async fn secret(caller: Caller) -> HttpResponse {
    let caller = match caller {
        Caller::User(auth) => CallerRead::User {
            id: auth.user.id,
            email: auth.user.email,
        },
        Caller::Client { client, scopes } => CallerRead::Client {
            client_id: client.id.to_string(),
            name: client.name,
            scopes: scopes.iter().map(str::to_owned).collect(),
        },
    };
    HttpResponse::Ok().json(Secret {
        message: "Top secret data only authorized callers can access.",
        caller,
    })
}
