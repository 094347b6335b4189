//! Passkeys (contract section 7): registering, renaming and removing them
//! (`/users/me/mfa/passkeys*`), signing in with one alone (`/auth/passkey/*`,
//! `/auth/cookie/passkey/finish`), and beginning a login's second step with one
//! (`/auth/mfa/passkey/begin`; `/auth/mfa/verify` finishes it).
//!
//! Options and answers are the WebAuthn Level 3 `toJSON()` shapes: binary fields are
//! base64url strings.

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{cookie_login_answer, no_store};
use super::body::JsonBody;
use super::mfa::{ceremony_id, CurrentPasswordBody, PasskeyRead};
use super::schemas::{
    Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
    ValidationFailed,
};
use crate::auth::passkeys::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use crate::domain::PasskeyName;
use crate::routes::web::errors::{ApiError, ErrorDetail, FieldError};
use crate::routes::web::{csrf, AuthUser};
use crate::services::context::{Context, Origin};
use crate::services::passkeys::{self, Ceremony};
use crate::services::sessions::TokenPair;
use crate::state::AppState;

/// A ceremony begun: send `publicKey` (binary fields decoded from base64url) to
/// `navigator.credentials.create()` or `.get()`, then the answer with `ceremony_id`. Valid 5
/// minutes, single use.
#[derive(Serialize)]
pub struct CeremonyRead<T: Serialize> {
    ceremony_id: Uuid,
    #[serde(flatten)]
    options: T,
}

impl<T: Serialize> From<Ceremony<T>> for CeremonyRead<T> {
    fn from(ceremony: Ceremony<T>) -> Self {
        CeremonyRead {
            ceremony_id: ceremony.id,
            options: ceremony.options,
        }
    }
}

/// `{ceremony_id, publicKey: PublicKeyCredentialCreationOptions}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"ceremony_id": "0b8c…", "publicKey": {"rp": {"id": "localhost",
    "name": "Gatehouse"}, "challenge": "…", "authenticatorSelection": {"residentKey": "required",
    "userVerification": "required"}}}))]
#[allow(dead_code)] // documents `CeremonyRead<CreationChallengeResponse>`
pub struct RegistrationOptions {
    #[schema(value_type = String, format = Uuid)]
    ceremony_id: Uuid,
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    public_key: (),
}

/// `{ceremony_id, publicKey: PublicKeyCredentialRequestOptions}`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documents `CeremonyRead<RequestChallengeResponse>`
pub struct AssertionOptions {
    #[schema(value_type = String, format = Uuid)]
    ceremony_id: Uuid,
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    public_key: (),
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterFinishBody {
    ceremony_id: String,
    /// 1 to 64 characters; "Passkey" when absent or blank.
    #[schema(nullable = false)]
    name: Option<String>,
    /// The `PublicKeyCredential` of `navigator.credentials.create()`, as `toJSON()` gives it.
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
}

/// A passkey just added, and the recovery codes made with it when it is the account's first
/// factor (shown this once), else null.
#[derive(Serialize, ToSchema)]
pub struct PasskeyAdded {
    passkey: PasskeyRead,
    recovery_codes: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
pub struct NameBody {
    /// 1 to 64 characters.
    name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct AssertionBody {
    ceremony_id: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get()`, as `toJSON()` gives it.
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
}

#[derive(Deserialize, ToSchema)]
pub struct MfaTokenBody {
    /// From the `LOGIN_MFA_REQUIRED` answer of the password step.
    mfa_token: String,
}

fn passkey_name(raw: Option<&str>) -> Result<PasskeyName, ApiError> {
    match raw {
        None => Ok(PasskeyName::default_name()),
        Some(raw) if raw.trim().is_empty() => Ok(PasskeyName::default_name()),
        Some(raw) => parse_name(raw),
    }
}

fn parse_name(raw: &str) -> Result<PasskeyName, ApiError> {
    PasskeyName::parse(raw).map_err(|e| {
        ApiError::validation(FieldError::body(&["name"], e.to_string(), "value_error"))
    })
}

/// Begins registering a passkey for the signed-in user: a discoverable credential with user
/// verification, so it serves for passwordless sign-in as well as a second factor.
#[utoipa::path(
    post,
    path = "/users/me/mfa/passkeys/register/begin",
    operation_id = "begin_passkey_registration",
    tag = "mfa",
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The creation options", body = RegistrationOptions),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "Passkeys are off (`PUBLIC_URL` names no domain)",
            body = ErrorDetail),
        (status = 503, response = Unavailable),
    )
)]
pub async fn register_begin(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let ceremony = passkeys::begin_registration(&state, &auth.user).await?;
    Ok(
        no_store(HttpResponse::Ok())
            .json(CeremonyRead::<CreationChallengeResponse>::from(ceremony)),
    )
}

/// Finishes registering a passkey; with the account's first factor come recovery codes.
#[utoipa::path(
    post,
    path = "/users/me/mfa/passkeys/register/finish",
    operation_id = "finish_passkey_registration",
    tag = "mfa",
    request_body = RegisterFinishBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 201, description = "Added", body = PasskeyAdded),
        (status = 400, description = "`PASSKEY_INVALID`: the ceremony is unknown, used, expired \
            or another user's, or the answer does not verify", body = ErrorDetail,
            example = json!({"detail": "PASSKEY_INVALID"})),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "Passkeys are off", body = ErrorDetail),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn register_finish(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    JsonBody(body): JsonBody<RegisterFinishBody>,
) -> Result<HttpResponse, ApiError> {
    let name = passkey_name(body.name.as_deref())?;
    let ctx = Context::user(&auth.user, origin);
    let registered = passkeys::finish_registration(
        &state,
        &ctx,
        &auth.user,
        ceremony_id(&body.ceremony_id),
        name,
        &body.credential,
    )
    .await?;
    let mut response = no_store(HttpResponse::Ok());
    Ok(response
        .status(actix_web::http::StatusCode::CREATED)
        .json(PasskeyAdded {
            passkey: registered.passkey.into(),
            recovery_codes: registered.recovery_codes,
        }))
}

/// Renames one of the signed-in user's passkeys.
#[utoipa::path(
    patch,
    path = "/users/me/mfa/passkeys/{id}",
    operation_id = "rename_passkey",
    tag = "mfa",
    params(("id" = String, Path, description = "The passkey's id (a UUID)")),
    request_body = NameBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Renamed", body = PasskeyRead),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn rename(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    id: web::Path<String>,
    JsonBody(body): JsonBody<NameBody>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let name = parse_name(&body.name)?;
    let ctx = Context::user(&auth.user, origin);
    let renamed = passkeys::rename(&state, &ctx, &auth.user, id, name).await?;
    Ok(HttpResponse::Ok().json(PasskeyRead::from(renamed)))
}

/// Removes one of the signed-in user's passkeys. With no other factor left, the recovery
/// codes go as well.
#[utoipa::path(
    delete,
    path = "/users/me/mfa/passkeys/{id}",
    operation_id = "remove_passkey",
    tag = "mfa",
    params(("id" = String, Path, description = "The passkey's id (a UUID)")),
    request_body = CurrentPasswordBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`UPDATE_USER_BAD_CURRENT_PASSWORD`", body = ErrorDetail,
            example = json!({"detail": "UPDATE_USER_BAD_CURRENT_PASSWORD"})),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn remove(
    state: web::Data<AppState>,
    auth: AuthUser,
    origin: Origin,
    id: web::Path<String>,
    JsonBody(body): JsonBody<CurrentPasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::user(&auth.user, origin);
    let password = body.current_password.map(Into::into);
    // An id that names nothing still costs a password check, like one of another user's.
    let id = Uuid::parse_str(&id).unwrap_or(Uuid::nil());
    passkeys::remove(&state, &ctx, &auth.user, id, password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Begins a passwordless sign-in: any passkey of this site may answer (no email needed).
#[utoipa::path(
    post,
    path = "/auth/passkey/begin",
    operation_id = "begin_passkey_sign_in",
    tag = "auth",
    responses(
        (status = 200, description = "The request options", body = AssertionOptions),
        (status = 404, description = "Passkeys are off", body = ErrorDetail),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn sign_in_begin(
    state: web::Data<AppState>,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::anonymous(origin);
    let ceremony = passkeys::begin_sign_in(&state, &ctx).await?;
    Ok(no_store(HttpResponse::Ok()).json(CeremonyRead::<RequestChallengeResponse>::from(ceremony)))
}

/// Finishes a passwordless sign-in; answers as `/auth/jwt/login` does.
#[utoipa::path(
    post,
    path = "/auth/passkey/finish",
    operation_id = "finish_passkey_sign_in",
    tag = "auth",
    request_body = AssertionBody,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 400, description = "`PASSKEY_INVALID` (unknown, used or expired ceremony, \
            unknown passkey, an answer that does not verify, an inactive account) or \
            `LOGIN_USER_NOT_VERIFIED`", body = ErrorDetail,
            example = json!({"detail": "PASSKEY_INVALID"})),
        (status = 404, description = "Passkeys are off", body = ErrorDetail),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn sign_in_finish(
    state: web::Data<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody<AssertionBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = Context::anonymous(origin);
    let logged_in = passkeys::finish_sign_in(
        &state,
        &ctx,
        ceremony_id(&body.ceremony_id),
        &body.credential,
    )
    .await?;
    Ok(no_store(HttpResponse::Ok()).json(logged_in.tokens))
}

/// Finishes a passwordless sign-in in a browser: the auth cookies, as `/auth/cookie/login`
/// sets them.
#[utoipa::path(
    post,
    path = "/auth/cookie/passkey/finish",
    operation_id = "finish_passkey_cookie_sign_in",
    tag = "auth",
    request_body = AssertionBody,
    responses(
        (status = 204, description = "Signed in: the cookies are set",
            headers(
                ("Set-Cookie" = String, description = "The access, refresh and device cookies"),
                ("X-CSRF-Token" = String, description = "The CSRF token for later changes"),
            )),
        (status = 400, description = "As `/auth/passkey/finish`", body = ErrorDetail,
            example = json!({"detail": "PASSKEY_INVALID"})),
        (status = 403, description = "`CSRF_FAILED`: sent from another site", body = ErrorDetail,
            example = json!({"detail": "CSRF_FAILED"})),
        (status = 404, description = "Passkeys are off", body = ErrorDetail),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn cookie_sign_in_finish(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: Origin,
    session: Session,
    JsonBody(body): JsonBody<AssertionBody>,
) -> Result<HttpResponse, ApiError> {
    if !csrf::from_this_site(&req, &state) {
        return Err(ApiError::CsrfFailed);
    }
    let ctx = Context::anonymous(origin);
    let logged_in = passkeys::finish_sign_in(
        &state,
        &ctx,
        ceremony_id(&body.ceremony_id),
        &body.credential,
    )
    .await?;
    cookie_login_answer(&state, &session, logged_in)
}

/// Begins a login's second step with a passkey: only the passkeys of the account whose
/// password was right may answer. Finish at `/auth/mfa/verify` with
/// `{mfa_token, ceremony_id, passkey}`.
#[utoipa::path(
    post,
    path = "/auth/mfa/passkey/begin",
    operation_id = "begin_passkey_second_factor",
    tag = "auth",
    request_body = MfaTokenBody,
    responses(
        (status = 200, description = "The request options", body = AssertionOptions),
        (status = 400, description = "`MFA_TOKEN_INVALID` (unknown, used or expired), or \
            `PASSKEY_INVALID` (the account has no passkey)", body = ErrorDetail,
            example = json!({"detail": "MFA_TOKEN_INVALID"})),
        (status = 404, description = "Passkeys are off", body = ErrorDetail),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn second_factor_begin(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<MfaTokenBody>,
) -> Result<HttpResponse, ApiError> {
    let ceremony = passkeys::begin_second_factor(&state, &body.mfa_token).await?;
    Ok(no_store(HttpResponse::Ok()).json(CeremonyRead::<RequestChallengeResponse>::from(ceremony)))
}
