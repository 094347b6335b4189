//! Second factors (contract section 7): `/users/me/mfa*`, the second step of a login
//! (`/auth/mfa/verify`, `/auth/cookie/mfa/verify`), and a superuser's reset.

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{cookie_login_answer, no_store};
use super::body::{FormOrJson, JsonBody};
use super::schemas::{
    Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
    ValidationFailed,
};
use crate::auth::passkeys::PublicKeyCredential;
use crate::routes::web::errors::{ApiError, ErrorDetail};
use crate::routes::web::{csrf, AuthUser, Superuser};
use crate::services::context::{Context, Origin};
use crate::services::mfa::{self, Proof};
use crate::services::passkeys::StoredPasskey;
use crate::services::sessions::{LoggedIn, TokenPair};
use crate::state::AppState;

impl From<StoredPasskey> for PasskeyRead {
    fn from(p: StoredPasskey) -> PasskeyRead {
        PasskeyRead {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// The signed-in user's factors.
#[derive(Serialize, ToSchema)]
pub struct MfaStatus {
    /// Whether an authenticator app is on (a pending one is not).
    totp: bool,
    passkeys: Vec<PasskeyRead>,
    /// Unused recovery codes of the current set.
    recovery_codes_left: i64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct PasskeyRead {
    #[schema(value_type = String, format = Uuid)]
    id: uuid::Uuid,
    name: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds; null until first used.
    last_used_at: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
pub struct CurrentPasswordBody {
    /// The password the account has now.
    #[schema(format = Password)]
    pub(super) current_password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct CodeBody {
    /// The authenticator app's 6-digit code.
    code: String,
}

/// The new authenticator app's secret, for the app: pending until a code confirms it.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolmentRead {
    /// Base32, at least 128 bits.
    secret: String,
    /// `otpauth://totp/…?secret=…&issuer=…`, for a QR code.
    otpauth_uri: String,
}

/// Shown once: keep them somewhere safe. Each signs in once instead of a code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// `{mfa_token, code}`, `{mfa_token, recovery_code}` or `{mfa_token, ceremony_id, passkey}`.
#[derive(Deserialize, ToSchema)]
pub struct VerifyBody {
    /// From the `LOGIN_MFA_REQUIRED` answer of the password step.
    mfa_token: String,
    /// The authenticator app's code.
    #[schema(nullable = false)]
    code: Option<String>,
    /// One of the recovery codes, instead of `code`.
    #[schema(nullable = false)]
    recovery_code: Option<String>,
    /// The ceremony of `/auth/mfa/passkey/begin`, with `passkey`.
    #[schema(nullable = false)]
    ceremony_id: Option<String>,
    /// The `PublicKeyCredential` of `navigator.credentials.get()` (its `toJSON()`), instead
    /// of `code`.
    #[schema(nullable = false, value_type = Object)]
    passkey: Option<Box<PublicKeyCredential>>,
}

/// The signed-in user's second factors.
#[utoipa::path(
    get,
    path = "/users/me/mfa",
    tag = "mfa",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The factors", body = MfaStatus),
        (status = 401, response = Unauthorized),
    )
)]
pub async fn status(state: web::Data<AppState>, auth: AuthUser) -> Result<HttpResponse, ApiError> {
    let factors = mfa::factors(&state, auth.user.id).await?;
    Ok(HttpResponse::Ok().json(MfaStatus {
        totp: factors.totp,
        passkeys: factors.passkeys.into_iter().map(Into::into).collect(),
        recovery_codes_left: factors.recovery_codes_left,
    }))
}

/// Begins setting up an authenticator app: its secret, pending until a code confirms it.
///
/// Asking again replaces a pending secret. Checking the password counts as a login attempt.
#[utoipa::path(
    post,
    path = "/users/me/mfa/totp",
    tag = "mfa",
    request_body = CurrentPasswordBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The secret (never shown again once confirmed)",
            body = TotpEnrolmentRead),
        (status = 400, description = "`UPDATE_USER_BAD_CURRENT_PASSWORD`", body = ErrorDetail,
            example = json!({"detail": "UPDATE_USER_BAD_CURRENT_PASSWORD"})),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, description = "`MFA_ALREADY_ENABLED`", body = ErrorDetail,
            example = json!({"detail": "MFA_ALREADY_ENABLED"})),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn begin_totp(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    JsonBody(body): JsonBody<CurrentPasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::user(&auth.user, origin);
    let password = body.current_password.map(Into::into);
    let enrolment = mfa::begin_totp(&state, &ctx, &auth.user, password).await?;
    Ok(no_store(HttpResponse::Ok()).json(TotpEnrolmentRead {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
    }))
}

/// Confirms the pending authenticator app with one of its codes; it is then asked for at
/// every login. Answers the recovery codes, shown this once.
#[utoipa::path(
    post,
    path = "/users/me/mfa/totp/confirm",
    tag = "mfa",
    request_body = CodeBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 200, description = "On; the recovery codes", body = RecoveryCodes),
        (status = 400, description = "`MFA_CODE_INVALID`", body = ErrorDetail,
            example = json!({"detail": "MFA_CODE_INVALID"})),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, description = "`MFA_NOT_PENDING`: nothing waits for confirmation",
            body = ErrorDetail, example = json!({"detail": "MFA_NOT_PENDING"})),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn confirm_totp(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::user(&auth.user, origin);
    let codes = mfa::confirm_totp(&state, &ctx, &auth.user, &body.code).await?;
    Ok(no_store(HttpResponse::Ok()).json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turns the authenticator app off (a pending one too). With no other factor left, the
/// recovery codes go as well.
#[utoipa::path(
    delete,
    path = "/users/me/mfa/totp",
    tag = "mfa",
    request_body = CurrentPasswordBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Off"),
        (status = 400, description = "`UPDATE_USER_BAD_CURRENT_PASSWORD`", body = ErrorDetail,
            example = json!({"detail": "UPDATE_USER_BAD_CURRENT_PASSWORD"})),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn disable_totp(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    JsonBody(body): JsonBody<CurrentPasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::user(&auth.user, origin);
    let password = body.current_password.map(Into::into);
    mfa::disable_totp(&state, &ctx, &auth.user, password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new set of recovery codes; the old ones stop working.
#[utoipa::path(
    post,
    path = "/users/me/mfa/recovery-codes",
    tag = "mfa",
    request_body = CurrentPasswordBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The new codes, shown this once", body = RecoveryCodes),
        (status = 400, description = "`UPDATE_USER_BAD_CURRENT_PASSWORD`", body = ErrorDetail,
            example = json!({"detail": "UPDATE_USER_BAD_CURRENT_PASSWORD"})),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, description = "`MFA_NOT_ENABLED`: the account has no second factor",
            body = ErrorDetail, example = json!({"detail": "MFA_NOT_ENABLED"})),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn renew_recovery_codes(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    JsonBody(body): JsonBody<CurrentPasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::user(&auth.user, origin);
    let password = body.current_password.map(Into::into);
    let codes = mfa::renew_recovery_codes(&state, &ctx, &auth.user, password).await?;
    Ok(no_store(HttpResponse::Ok()).json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Removes every second factor of a user (a lost device) and ends their sessions
/// (superusers).
#[utoipa::path(
    delete,
    path = "/users/{id}/mfa",
    tag = "mfa",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Removed; the user was told by email"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn reset(
    state: web::Data<AppState>,
    Superuser(admin): Superuser,
    origin: Origin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.parse().map_err(|_| ApiError::NotFound)?;
    let ctx = Context::user(&admin.user, origin);
    mfa::reset(&state, &ctx, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Completes a login with a second factor; answers as `/auth/jwt/login` does.
#[utoipa::path(
    post,
    path = "/auth/mfa/verify",
    tag = "auth",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 400, description = "`MFA_CODE_INVALID` (wrong, replayed or expired code, a \
            used recovery code, a passkey answer that does not verify or whose ceremony is \
            unknown, used or expired) or `MFA_TOKEN_INVALID` (unknown, used or expired `mfa_token`, \
            whatever the code)", body = ErrorDetail,
            example = json!({"detail": "MFA_CODE_INVALID"})),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn verify_second_factor(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let logged_in = complete(&state, origin, body).await?;
    Ok(no_store(HttpResponse::Ok()).json(logged_in.tokens))
}

/// Completes a cookie login with a second factor: the auth cookies, as `/auth/cookie/login`
/// sets them.
#[utoipa::path(
    post,
    path = "/auth/cookie/mfa/verify",
    tag = "auth",
    request_body(content(
        (VerifyBody = "application/json"),
        (VerifyBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Logged in: the cookies are set",
            headers(
                ("Set-Cookie" = String, description = "The access, refresh and device cookies"),
                ("X-CSRF-Token" = String, description = "The CSRF token for later changes"),
            )),
        (status = 400, description = "As `/auth/mfa/verify`", body = ErrorDetail,
            example = json!({"detail": "MFA_TOKEN_INVALID"})),
        (status = 403, description = "`CSRF_FAILED`: sent from another site", body = ErrorDetail,
            example = json!({"detail": "CSRF_FAILED"})),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn cookie_verify_second_factor(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: Origin,
    session: Session,
    FormOrJson(body): FormOrJson<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    if !csrf::from_this_site(&req, &state) {
        return Err(ApiError::CsrfFailed);
    }
    let logged_in = complete(&state, origin, body).await?;
    cookie_login_answer(&state, &session, logged_in)
}

async fn complete(
    state: &AppState,
    origin: Origin,
    body: VerifyBody,
) -> Result<LoggedIn, ApiError> {
    let proof = match (body.code, body.recovery_code, body.passkey) {
        (Some(code), None, None) => Proof::Code(code),
        (None, Some(code), None) => Proof::RecoveryCode(code),
        (None, None, Some(credential)) => Proof::Passkey {
            ceremony_id: ceremony_id(body.ceremony_id.as_deref().unwrap_or("")),
            credential,
        },
        _ => {
            return Err(ApiError::validation(
                crate::routes::web::errors::FieldError::body(
                    &["code"],
                    "Send one of code, recovery_code and passkey (with ceremony_id)",
                    "missing",
                ),
            ))
        }
    };
    let ctx = Context::anonymous(origin);
    Ok(mfa::complete_login(state, &ctx, &body.mfa_token, proof).await?)
}

/// A ceremony id as sent (here and by the passkey routes): one that is not a UUID names no
/// ceremony.
pub(super) fn ceremony_id(raw: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(raw).unwrap_or(uuid::Uuid::nil())
}
