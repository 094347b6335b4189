//! `/auth/*`: register, log in, refresh, log out.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::body::{JsonBody, LoginForm};
use crate::auth::origin::Origin;
use crate::auth::{csrf, AuthUser};
use crate::domain::{Email, UserRead};
use crate::errors::{ApiError, FieldError};
use crate::services::audit::Context;
use crate::services::sessions::{LogoutScope, TokenPair};
use crate::services::{sessions, users};
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct RegisterBody {
    email: String,
    password: String,
}

pub async fn register(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.email)?;
    let ctx = Context::anonymous(origin);
    let user = users::register(&state, &ctx, email, body.password.into())
        .await
        .map_err(ApiError::from_registration)?;
    Ok(HttpResponse::Created().json(UserRead::from(user)))
}

pub async fn login(
    state: web::Data<AppState>,
    origin: Origin,
    form: LoginForm,
) -> Result<HttpResponse, ApiError> {
    let tokens = log_in(&state, origin, form).await?;
    Ok(no_store(HttpResponse::Ok()).json(tokens))
}

/// The one login path of both transports.
async fn log_in(state: &AppState, origin: Origin, form: LoginForm) -> Result<TokenPair, ApiError> {
    let ctx = Context::anonymous(origin);
    Ok(sessions::login(state, &ctx, &form.username, form.password.into()).await?)
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::anonymous(origin);
    let tokens = sessions::refresh(&state, &ctx, &body.refresh_token).await?;
    Ok(no_store(HttpResponse::Ok()).json(tokens))
}

#[derive(Deserialize)]
pub struct LogoutQuery {
    scope: Option<String>,
}

/// `POST /auth/jwt/logout[?scope=local|global|others]`: ends this session (the default), every
/// session of the user, or every other one.
pub async fn logout(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    query: web::Query<LogoutQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = match query.scope.as_deref() {
        None => LogoutScope::Local,
        Some(raw) => LogoutScope::parse(raw).ok_or_else(|| {
            ApiError::validation(FieldError::query(
                "scope",
                "Input should be 'local', 'global' or 'others'",
                "enum",
            ))
        })?,
    };
    let ctx = Context::user(&auth.user, origin);
    sessions::logout_scoped(&state, &ctx, auth.grant, scope).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /auth/cookie/login`: jwt/login's form, answered with HttpOnly cookies instead of a
/// body. The page session's fresh CSRF token comes back in `X-CSRF-Token` for later changes.
/// Refused from other sites, so no page elsewhere can sign a browser into an account.
pub async fn cookie_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: Origin,
    session: Session,
    form: LoginForm,
) -> Result<HttpResponse, ApiError> {
    if !csrf::from_this_site(&req) {
        return Err(ApiError::CsrfFailed);
    }
    let tokens = log_in(&state, origin, form).await?;
    let csrf_token = csrf::renew(&session).map_err(internal)?;
    let mut response = no_store(HttpResponse::NoContent());
    response.insert_header((csrf::HEADER, csrf_token));
    for cookie in state.cookies.signed_in(&tokens) {
        response.cookie(cookie);
    }
    Ok(response.finish())
}

/// `POST /auth/cookie/logout`: ends the session and clears the cookies (CSRF header required).
pub async fn cookie_logout(
    state: web::Data<AppState>,
    session: Session,
    auth: AuthUser,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::user(&auth.user, origin);
    sessions::logout(&state, &ctx, auth.grant).await?;
    csrf::renew(&session).map_err(internal)?;
    let mut response = HttpResponse::NoContent();
    for cookie in state.cookies.signed_out() {
        response.cookie(cookie);
    }
    Ok(response.finish())
}

/// `GET /auth/csrf`: the page session's CSRF token, for scripts that call the API with the
/// cookie. Other sites cannot read it (no CORS), which is what makes it a secret.
pub async fn csrf_token(session: Session) -> Result<HttpResponse, ApiError> {
    let token = csrf::token(&session).map_err(internal)?;
    Ok(no_store(HttpResponse::Ok()).json(serde_json::json!({ "csrf_token": token })))
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    log::error!("internal error: {error}");
    ApiError::Internal
}

/// Parses an email field, answering 422 as FastAPI's `EmailStr` does.
pub(super) fn parse_email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| {
        ApiError::validation(FieldError::body(&["email"], e.to_string(), "value_error"))
    })
}

/// Responses that carry tokens must never be cached (RFC 6749 §5.1).
fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    response
}
