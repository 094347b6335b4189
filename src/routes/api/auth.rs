//! `/auth/*`: register, log in, refresh, log out.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{JsonBody, LoginForm};
use super::schemas::{
    BadRequest, Forbidden, PasswordForm, PayloadTooLarge, TooManyRequests, Unauthorized,
    Unavailable, ValidationFailed,
};
use crate::domain::{Email, UserRead};
use crate::routes::web::cookies::CookiePolicy;
use crate::routes::web::errors::ErrorDetail;
use crate::routes::web::errors::{ApiError, FieldError};
use crate::routes::web::extractors::{identify, Identity};
use crate::routes::web::{csrf, AuthUser};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::sessions::{LoggedIn, LogoutScope, TokenPair};
use crate::services::{sessions, users};
use crate::state::AppState;

/// `is_active`, `is_superuser` and `is_verified` are ignored if sent.
#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    /// An address without invisible or control characters or RFC 2047 encoded words (422).
    #[schema(format = Email)]
    email: String,
    /// 8 to 128 characters once normalized (NFKC); not blank, not common, not built on the
    /// service's name, its host or the address's local part.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    password: String,
}

/// Creates an account.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered", body = UserRead),
        (status = 400, description = "`REGISTER_USER_ALREADY_EXISTS` (the address, or one that \
            reads the same: any letter case, fullwidth forms, a letter of another script, the \
            domain in Unicode or Punycode), or `{code: REGISTER_INVALID_PASSWORD, reason}`",
            body = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
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

/// Logs in with the OAuth2 password form; answers a bearer token pair.
///
/// A client that keeps cookies may send the device cookie an earlier cookie login set: the
/// attempt is then judged by that device's own failures, not by other clients'.
#[utoipa::path(
    post,
    path = "/auth/jwt/login",
    tag = "auth",
    request_body(content(
        (PasswordForm = "application/x-www-form-urlencoded"),
        (PasswordForm = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 400, description = "`LOGIN_BAD_CREDENTIALS` (unknown email, wrong password \
            or inactive account alike), `LOGIN_USER_NOT_VERIFIED` when verification is \
            required, or `{code: LOGIN_MFA_REQUIRED, reason, mfa_token, methods}` \
            (`SecondFactorRequired`) when the password is right and the account has a second \
            factor: complete the login at `/auth/mfa/verify`", body = ErrorDetail),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    origin: Origin,
    form: LoginForm,
) -> Result<HttpResponse, ApiError> {
    let logged_in = log_in(&state, origin, form).await?;
    Ok(no_store(HttpResponse::Ok()).json(logged_in.tokens))
}

/// The one login path of both transports.
async fn log_in(state: &AppState, origin: Origin, form: LoginForm) -> Result<LoggedIn, ApiError> {
    let ctx = Context::anonymous(origin);
    Ok(sessions::login(state, &ctx, &form.username, form.password.into()).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Trades a refresh token for a new pair (rotation).
///
/// Presenting an already-used refresh token revokes its whole family.
#[utoipa::path(
    post,
    path = "/auth/jwt/refresh",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 401, description = "`REFRESH_TOKEN_INVALID`: unknown, expired, revoked or \
            already used", body = ErrorDetail,
            example = json!({"detail": "REFRESH_TOKEN_INVALID"})),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
    )
)]
pub async fn refresh(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::anonymous(origin);
    let tokens = sessions::refresh(&state, &ctx, &body.refresh_token)
        .await?
        .tokens;
    Ok(no_store(HttpResponse::Ok()).json(tokens))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogoutQuery {
    #[param(inline, value_type = Option<LogoutScopeName>, nullable = false)]
    scope: Option<String>,
}

/// Which sessions to end: `local` (the default), this one; `global`, every session of the
/// user; `others`, every other one.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // describes the `scope` parameter, which `LogoutScope::parse` reads
enum LogoutScopeName {
    Local,
    Global,
    Others,
}

/// Ends this session (the default), every session of the user, or every other one.
///
/// `POST /auth/jwt/logout[?scope=local|global|others]`. The sessions' refresh tokens are
/// revoked, and their access tokens stop working.
#[utoipa::path(
    post,
    path = "/auth/jwt/logout",
    tag = "auth",
    params(LogoutQuery),
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    )
)]
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

/// Logs in with the OAuth2 password form; answers with cookies.
///
/// `POST /auth/cookie/login`: jwt/login's form, answered with HttpOnly cookies instead of a
/// body. The page session's fresh CSRF token comes back in `X-CSRF-Token` for later changes.
/// Refused from other sites, so no page elsewhere can sign a browser into an account.
#[utoipa::path(
    post,
    path = "/auth/cookie/login",
    tag = "auth",
    request_body(content(
        (PasswordForm = "application/x-www-form-urlencoded"),
        (PasswordForm = "multipart/form-data"),
    )),
    responses(
        (status = 204, description = "Logged in: the access and refresh cookies are set",
            headers(
                ("Set-Cookie" = String, description = "The HttpOnly access and refresh cookies, \
                    and the device cookie by which the next login from this browser is judged \
                    by its own failures only"),
                ("X-CSRF-Token" = String, description = "The CSRF token for later changes"),
            )),
        (status = 400, description = "As `/auth/jwt/login`; `LOGIN_MFA_REQUIRED` is completed \
            at `/auth/cookie/mfa/verify`", body = ErrorDetail,
            example = json!({"detail": "LOGIN_BAD_CREDENTIALS"})),
        (status = 403, description = "`CSRF_FAILED`: sent from another site", body = ErrorDetail,
            example = json!({"detail": "CSRF_FAILED"})),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn cookie_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: Origin,
    session: Session,
    form: LoginForm,
) -> Result<HttpResponse, ApiError> {
    if !csrf::from_this_site(&req, &state) {
        return Err(ApiError::CsrfFailed);
    }
    let logged_in = log_in(&state, origin, form).await?;
    cookie_login_answer(&state, &session, logged_in)
}

/// The answer of a completed cookie login (by password, second factor or passkey): 204 with
/// the auth and device cookies, and the signed-in session's CSRF token in `X-CSRF-Token`.
pub(super) fn cookie_login_answer(
    state: &AppState,
    session: &Session,
    logged_in: LoggedIn,
) -> Result<HttpResponse, ApiError> {
    // The page session's token from before the login is worthless after it.
    csrf::renew(session).map_err(ApiError::internal)?;
    let csrf_token = state.session_csrf.token(logged_in.grant.session_id);
    let mut response = no_store(HttpResponse::NoContent());
    response.insert_header((csrf::HEADER, csrf_token));
    let cookies = CookiePolicy::of(state);
    for cookie in cookies.signed_in(&logged_in.tokens) {
        response.cookie(cookie);
    }
    response.cookie(cookies.device(logged_in.device_cookie));
    Ok(response.finish())
}

/// Ends the cookie's session and clears the cookies.
///
/// `POST /auth/cookie/logout` (CSRF header required).
#[utoipa::path(
    post,
    path = "/auth/cookie/logout",
    tag = "auth",
    security(("cookie" = [], "csrf" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Logged out: the cookies are cleared",
            headers(("Set-Cookie" = String, description = "Both cookies, expired"))),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
pub async fn cookie_logout(
    state: web::Data<AppState>,
    session: Session,
    auth: AuthUser,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::user(&auth.user, origin);
    sessions::logout(&state, &ctx, auth.grant).await?;
    csrf::renew(&session).map_err(ApiError::internal)?;
    let mut response = HttpResponse::NoContent();
    for cookie in CookiePolicy::of(&state).signed_out() {
        response.cookie(cookie);
    }
    Ok(response.finish())
}

/// The CSRF token to send with cookie-authenticated changes.
///
/// `GET /auth/csrf`: for scripts that call the API with the cookie. When the cookie signs the
/// browser in, the token belongs to that session (it never works with another's cookie);
/// otherwise it is the page session's, for the login and signup forms. Other sites cannot
/// read it (no CORS), which is what makes it a secret.
#[utoipa::path(
    get,
    path = "/auth/csrf",
    tag = "auth",
    responses(
        (status = 200, description = "The token; the page-session cookie is set if it was not",
            body = CsrfToken),
    )
)]
pub async fn csrf_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let signed_in = match identify(&req, &state).await? {
        Identity::Known(auth) => auth.csrf_session(),
        Identity::Client(..) | Identity::Anonymous { .. } => None,
    };
    let csrf_token = csrf::token(&state, &session, signed_in).map_err(ApiError::internal)?;
    Ok(no_store(HttpResponse::Ok()).json(CsrfToken { csrf_token }))
}

/// Send it back in `X-CSRF-Token`.
#[derive(Serialize, ToSchema)]
pub struct CsrfToken {
    csrf_token: String,
}

/// Parses an email field, answering 422 as FastAPI's `EmailStr` does.
pub(super) fn parse_email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| {
        ApiError::validation(FieldError::body(&["email"], e.to_string(), "value_error"))
    })
}

/// Responses that carry tokens must never be cached (RFC 6749 §5.1).
pub(super) fn no_store(
    mut response: actix_web::HttpResponseBuilder,
) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    response
}
