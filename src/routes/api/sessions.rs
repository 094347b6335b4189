//! Sessions (one per login): a user lists and ends theirs; a superuser ends all of a user's.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::origin::Origin;
use crate::auth::{AuthUser, Superuser};
use crate::db::sessions::LiveSession;
use crate::errors::ApiError;
use crate::services::audit::Context;
use crate::services::sessions;
use crate::startup::AppState;

/// A session as its owner sees it; times are seconds since the Unix epoch.
#[derive(Serialize)]
struct SessionRead {
    id: String,
    created_at: i64,
    last_used_at: i64,
    user_agent: Option<String>,
    /// Whether this is the session of the token that asks.
    current: bool,
}

/// `GET /users/me/sessions`: live sessions, most recently used first.
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

/// `DELETE /users/me/sessions/{id}`: ends one of the user's sessions (this one too, if named).
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

/// `DELETE /users/{id}/sessions`: a superuser signs a user out everywhere.
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
