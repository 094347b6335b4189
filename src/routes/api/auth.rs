//! `/auth/*`: register, log in, refresh, log out.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::body::{JsonBody, LoginForm};
use crate::auth::AuthUser;
use crate::domain::{Email, UserRead};
use crate::errors::{ApiError, FieldError};
use crate::services::{sessions, users};
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct RegisterBody {
    email: String,
    password: String,
}

pub async fn register(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.email)?;
    let user = users::register(&state, email, body.password.into())
        .await
        .map_err(ApiError::from_registration)?;
    Ok(HttpResponse::Created().json(UserRead::from(user)))
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: LoginForm,
) -> Result<HttpResponse, ApiError> {
    let tokens = sessions::login(
        &state,
        &form.username,
        form.password.into(),
        user_agent(&req),
    )
    .await?;
    Ok(no_store().json(tokens))
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let tokens = sessions::refresh(&state, &body.refresh_token).await?;
    Ok(no_store().json(tokens))
}

pub async fn logout(state: web::Data<AppState>, auth: AuthUser) -> Result<HttpResponse, ApiError> {
    sessions::logout(&state, auth.grant).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Parses an email field, answering 422 as FastAPI's `EmailStr` does.
pub(super) fn parse_email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| {
        ApiError::validation(FieldError::body(&["email"], e.to_string(), "value_error"))
    })
}

/// Responses that carry tokens must never be cached (RFC 6749 §5.1).
fn no_store() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    response
}

/// The client's User-Agent, shortened, to tell sessions apart.
fn user_agent(req: &HttpRequest) -> Option<String> {
    let agent = req.headers().get(header::USER_AGENT)?.to_str().ok()?;
    Some(agent.chars().take(256).collect())
}
