//! Sessions (one per login): a user lists and ends theirs; a superuser ends all of a user's.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::schemas::{Forbidden, NotFound, Unauthorized};
use crate::domain::LiveSession;
use crate::routes::web::errors::ApiError;
use crate::routes::web::{AuthUser, Superuser};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::sessions;
use crate::state::AppState;

/// A session as its owner sees it; times are seconds since the Unix epoch.
#[derive(Serialize, ToSchema)]
pub struct SessionRead {
    #[schema(format = Uuid)]
    id: String,
    created_at: i64,
    last_used_at: i64,
    user_agent: Option<String>,
    /// Whether this is the session of the token that asks.
    current: bool,
}

/// The signed-in user's live sessions.
///
/// `GET /users/me/sessions`: most recently used first.
#[utoipa::path(
    get,
    path = "/users/me/sessions",
    tag = "sessions",
    operation_id = "list_my_sessions",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The user's live sessions", body = Vec<SessionRead>,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = Unauthorized),
    )
)]
pub async fn list_mine(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let current = auth.grant.session_id.to_string();
    let sessions: Vec<SessionRead> = sessions::list_live(&state, auth.user.id)
        .await?
        .into_iter()
        .map(|session: LiveSession| SessionRead {
            current: session.id == current,
            id: session.id,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            user_agent: session.user_agent,
        })
        .collect();
    Ok(HttpResponse::Ok().json(sessions))
}

/// Ends one of the signed-in user's sessions.
///
/// `DELETE /users/me/sessions/{id}`: this one too, if named.
#[utoipa::path(
    delete,
    path = "/users/me/sessions/{id}",
    tag = "sessions",
    operation_id = "end_my_session",
    params(("id" = String, Path, description = "The session's id (a UUID)")),
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub async fn end_mine(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session_id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let ctx = Context::user(&auth.user, origin);
    sessions::end_own(&state, &ctx, auth.user.id, session_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Signs a user out everywhere (superusers).
///
/// `DELETE /users/{id}/sessions`.
#[utoipa::path(
    delete,
    path = "/users/{id}/sessions",
    tag = "sessions",
    operation_id = "end_user_sessions",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Every session of the user is ended"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub async fn end_all_of_user(
    state: web::Data<AppState>,
    Superuser(admin): Superuser,
    origin: Origin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = id.parse().map_err(|_| ApiError::NotFound)?;
    sessions::end_all(&state, &Context::user(&admin.user, origin), user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
