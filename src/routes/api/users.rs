//! `/users/*`: the signed-in user's account, and every account for superusers.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::parse_email;
use super::body::JsonBody;
use crate::auth::origin::Origin;
use crate::auth::{AuthUser, Superuser};
use crate::domain::{Email, UserId, UserRead};
use crate::errors::ApiError;
use crate::services::audit::Context;
use crate::services::users::{self, AdminChanges, OwnChanges};
use crate::startup::AppState;

/// `PATCH /users/me`; privileged fields are not listed, so they are ignored.
#[derive(Deserialize)]
pub struct UpdateMeBody {
    email: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
}

/// `PATCH /users/{id}`.
#[derive(Deserialize)]
pub struct UpdateUserBody {
    email: Option<String>,
    password: Option<String>,
    is_active: Option<bool>,
    is_superuser: Option<bool>,
    is_verified: Option<bool>,
}

pub async fn me(auth: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(UserRead::from(auth.user))
}

pub async fn update_me(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    JsonBody(body): JsonBody<UpdateMeBody>,
) -> Result<HttpResponse, ApiError> {
    let changes = OwnChanges {
        email: optional_email(body.email)?,
        password: body.password.map(Into::into),
        current_password: body.current_password.map(Into::into),
    };
    let ctx = Context::user(&auth.user, origin);
    let user = users::update_own(&state, &ctx, &auth.user, changes).await?;
    Ok(HttpResponse::Ok().json(UserRead::from(user)))
}

pub async fn get_user(
    state: web::Data<AppState>,
    _: Superuser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = users::get(&state, user_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(UserRead::from(user)))
}

pub async fn update_user(
    state: web::Data<AppState>,
    Superuser(admin): Superuser,
    origin: Origin,
    id: web::Path<String>,
    JsonBody(body): JsonBody<UpdateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&id)?;
    let changes = AdminChanges {
        email: optional_email(body.email)?,
        password: body.password.map(Into::into),
        is_active: body.is_active,
        is_superuser: body.is_superuser,
        is_verified: body.is_verified,
    };
    let ctx = Context::user(&admin.user, origin);
    let user = users::update_any(&state, &ctx, id, changes).await?;
    Ok(HttpResponse::Ok().json(UserRead::from(user)))
}

pub async fn delete_user(
    state: web::Data<AppState>,
    Superuser(admin): Superuser,
    origin: Origin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::user(&admin.user, origin);
    users::delete(&state, &ctx, user_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A path id that is not a UUID names no user: 404, as for an unknown id.
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

fn optional_email(raw: Option<String>) -> Result<Option<Email>, ApiError> {
    raw.as_deref().map(parse_email).transpose()
}
