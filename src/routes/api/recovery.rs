//! `/auth/forgot-password`, `/auth/reset-password`, `/auth/request-verify-token`,
//! `/auth/verify`: recovery and verification by email, in the fastapi-users dialect.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::parse_email;
use super::body::JsonBody;
use super::schemas::{
    BadRequest, Null, PayloadTooLarge, TooManyRequests, Unavailable, ValidationFailed,
};
use crate::domain::UserRead;
use crate::routes::web::errors::ApiError;
use crate::routes::web::errors::ErrorDetail;
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::recovery;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct EmailBody {
    #[schema(format = Email)]
    email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetBody {
    /// The token from the reset email.
    token: String,
    /// The new password.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct TokenBody {
    /// The token from the verification email.
    token: String,
}

/// Emails a password-reset link to the address, if an active account has it.
///
/// Always 202 `null`, whether or not an account has the address.
#[utoipa::path(
    post,
    path = "/auth/forgot-password",
    tag = "recovery",
    request_body = EmailBody,
    responses(
        (status = 202, description = "Accepted, whatever the address", body = inline(Null)),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    )
)]
pub async fn forgot_password(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.email)?;
    recovery::forgot_password(&state, &Context::anonymous(origin), email).await?;
    Ok(HttpResponse::Accepted().json(()))
}

/// Sets a new password with the token from the reset email.
///
/// The token is single-use; the user's sessions and earlier access tokens are revoked.
#[utoipa::path(
    post,
    path = "/auth/reset-password",
    tag = "recovery",
    request_body = ResetBody,
    responses(
        (status = 200, description = "The password is changed", body = inline(Null)),
        (status = 400, description = "`RESET_PASSWORD_BAD_TOKEN` (bad, expired, used, unknown \
            or inactive user), or `{code: RESET_PASSWORD_INVALID_PASSWORD, reason}`",
            body = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::anonymous(origin);
    recovery::reset_password(&state, &ctx, &body.token, body.password.into())
        .await
        .map_err(ApiError::from_reset)?;
    Ok(HttpResponse::Ok().json(()))
}

/// Emails a verification link to the address, if an unverified active account has it.
///
/// Always 202 `null`, whether or not an account has the address.
#[utoipa::path(
    post,
    path = "/auth/request-verify-token",
    tag = "recovery",
    request_body = EmailBody,
    responses(
        (status = 202, description = "Accepted, whatever the address", body = inline(Null)),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    )
)]
pub async fn request_verify_token(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.email)?;
    recovery::request_verification(&state, &Context::anonymous(origin), email).await?;
    Ok(HttpResponse::Accepted().json(()))
}

/// Marks the account verified with the token from the verification email.
#[utoipa::path(
    post,
    path = "/auth/verify",
    tag = "recovery",
    request_body = TokenBody,
    responses(
        (status = 200, description = "Verified", body = UserRead),
        (status = 400, description = "`VERIFY_USER_BAD_TOKEN` or `VERIFY_USER_ALREADY_VERIFIED`",
            body = ErrorDetail, example = json!({"detail": "VERIFY_USER_BAD_TOKEN"})),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    )
)]
pub async fn verify(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let user = recovery::verify(&state, &Context::anonymous(origin), &body.token).await?;
    Ok(HttpResponse::Ok().json(UserRead::from(user)))
}
