//! `/auth/forgot-password`, `/auth/reset-password`, `/auth/request-verify-token`,
//! `/auth/verify`: recovery and verification by email, in the fastapi-users dialect.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::parse_email;
use super::body::JsonBody;
use crate::auth::origin::Origin;
use crate::domain::UserRead;
use crate::errors::ApiError;
use crate::services::audit::Context;
use crate::services::recovery;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct EmailBody {
    email: String,
}

#[derive(Deserialize)]
pub struct ResetBody {
    token: String,
    password: String,
}

#[derive(Deserialize)]
pub struct TokenBody {
    token: String,
}

/// Always 202 `null`, whether or not an account has the address.
pub async fn forgot_password(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.email)?;
    recovery::forgot_password(&state, &Context::anonymous(origin), email).await?;
    Ok(HttpResponse::Accepted().json(()))
}

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

/// Always 202 `null`, whether or not an account has the address.
pub async fn request_verify_token(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.email)?;
    recovery::request_verification(&state, &Context::anonymous(origin), email).await?;
    Ok(HttpResponse::Accepted().json(()))
}

pub async fn verify(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let user = recovery::verify(&state, &Context::anonymous(origin), &body.token).await?;
    Ok(HttpResponse::Ok().json(UserRead::from(user)))
}
