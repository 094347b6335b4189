//! `/users/*`: the signed-in user's account, and every account for superusers.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::parse_email;
use super::body::JsonBody;
use super::schemas::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
    ValidationFailed,
};
use crate::domain::{Email, UserId, UserRead};
use crate::routes::web::errors::ApiError;
use crate::routes::web::errors::ErrorDetail;
use crate::routes::web::{AuthUser, Superuser};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::users::{self, AdminChanges, OwnChanges};
use crate::state::AppState;

/// `PATCH /users/me`; privileged fields are not listed, so they are ignored.
#[derive(Deserialize, ToSchema)]
pub struct UpdateMeBody {
    /// A new address; `current_password` is then required, and the address will need
    /// verifying again.
    #[schema(format = Email)]
    email: Option<String>,
    /// A new password; `current_password` is then required.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    password: Option<String>,
    /// The password the account has now: required to change `password` or `email`.
    #[schema(format = Password)]
    current_password: Option<String>,
}

/// `PATCH /users/{id}`.
#[derive(Deserialize, ToSchema)]
pub struct UpdateUserBody {
    #[schema(format = Email)]
    email: Option<String>,
    #[schema(format = Password, min_length = 8, max_length = 128)]
    password: Option<String>,
    is_active: Option<bool>,
    is_superuser: Option<bool>,
    is_verified: Option<bool>,
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "users",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The user", body = UserRead,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = Unauthorized),
    )
)]
pub async fn me(auth: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(UserRead::from(auth.user))
}

/// Changes the signed-in user's email or password.
///
/// Both need `current_password` (`UPDATE_USER_BAD_CURRENT_PASSWORD` when it is missing or
/// wrong); checking it counts as a login attempt on the account, throttled like one (429).
/// Attempts to change the address are limited per user (429), as each says whether the
/// address asked for is taken. A new password revokes every session of the user and every
/// access token issued before it. A new email must be verified again, is audited, is
/// notified to the old address, and ends every other session of the user (this one stays
/// signed in).
#[utoipa::path(
    patch,
    path = "/users/me",
    tag = "users",
    request_body = UpdateMeBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The updated user", body = UserRead,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`UPDATE_USER_EMAIL_ALREADY_EXISTS` (also for a look-alike \
            of another account's address), `UPDATE_USER_BAD_CURRENT_PASSWORD` (a new `email` or \
            `password` without the right `current_password`), or \
            `{code: UPDATE_USER_INVALID_PASSWORD, reason}`", body = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
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
        session: Some(auth.grant.session_id),
    };
    let ctx = Context::user(&auth.user, origin);
    let user = users::update_own(&state, &ctx, &auth.user, changes).await?;
    Ok(HttpResponse::Ok().json(UserRead::from(user)))
}

/// A user by id (superusers).
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The user", body = UserRead,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub async fn get_user(
    state: web::Data<AppState>,
    _: Superuser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = users::get(&state, user_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(UserRead::from(user)))
}

/// Changes any user (superusers), including `is_active`, `is_superuser` and `is_verified`.
///
/// A new email is audited, notified to the old address, ends every session of the user and
/// must be verified again (unless `is_verified` is set with it).
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    request_body = UpdateUserBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The updated user", body = UserRead,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`UPDATE_USER_EMAIL_ALREADY_EXISTS` or \
            `{code: UPDATE_USER_INVALID_PASSWORD, reason}`", body = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`LAST_SUPERUSER`: the change would leave no active \
            superuser", body = ErrorDetail, example = json!({"detail": "LAST_SUPERUSER"})),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
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

/// Deletes a user (superusers).
#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`LAST_SUPERUSER`: the last active superuser",
            body = ErrorDetail, example = json!({"detail": "LAST_SUPERUSER"})),
    )
)]
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
