//! The schemas and responses of the OpenAPI document that no handler type describes: the
//! hand-parsed forms, the token endpoint's answer, and the error answers each operation lists.
//! The bodies themselves are the real types: `routes::web::errors` for errors,
//! `services::sessions::TokenPair` for tokens.

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToResponse, ToSchema};

use crate::routes::web::errors::{ErrorDetail, PasswordRefused, ValidationError};
use crate::services::sessions::TokenType;

/// The JSON body `null`, as fastapi-users answers where there is nothing to say.
pub struct Null;

impl PartialSchema for Null {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl ToSchema for Null {}

/// A 400 of a route that also checks a new password: a code, or a code with a reason.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BadRequest {
    Code(ErrorDetail),
    Password(PasswordRefused),
}

/// The OAuth2 password form of fastapi-users' login routes.
#[derive(Serialize, ToSchema)]
pub struct PasswordForm {
    /// The account's email address.
    pub username: String,
    #[schema(format = Password)]
    pub password: String,
    /// Accepted for OAuth2 compatibility and ignored, like `scope`, `client_id` and
    /// `client_secret`.
    #[schema(nullable = false)]
    pub grant_type: Option<String>,
    #[schema(nullable = false)]
    pub scope: Option<String>,
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    #[schema(nullable = false, format = Password)]
    pub client_secret: Option<String>,
}

/// A token request (RFC 6749): which fields count depends on `grant_type`.
#[derive(Serialize, ToSchema)]
pub struct TokenForm {
    pub grant_type: GrantType,
    /// `password` grant: the account's email address.
    #[schema(nullable = false)]
    pub username: Option<String>,
    /// `password` grant.
    #[schema(nullable = false, format = Password)]
    pub password: Option<String>,
    /// `refresh_token` grant.
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    /// `client_credentials` grant, unless sent with HTTP Basic.
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    /// `client_credentials` grant, unless sent with HTTP Basic.
    #[schema(nullable = false, format = Password)]
    pub client_secret: Option<String>,
    /// `client_credentials` grant: space-separated scopes, a subset of the client's
    /// (all of them when absent).
    #[schema(nullable = false)]
    pub scope: Option<String>,
    /// `urn:gatehouse:grant-type:mfa` grant: the token a password grant's `mfa_required`
    /// answer carried.
    #[schema(nullable = false)]
    pub mfa_token: Option<String>,
    /// `urn:gatehouse:grant-type:mfa` grant: the authenticator app's code.
    #[schema(nullable = false)]
    pub otp: Option<String>,
    /// `urn:gatehouse:grant-type:mfa` grant, instead of `otp`: one of the recovery codes.
    #[schema(nullable = false)]
    pub recovery_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
    #[serde(rename = "urn:gatehouse:grant-type:mfa")]
    Mfa,
}

/// The answer of the token endpoint: a client's token has `scope` and no refresh token.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u64,
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    /// `client_credentials` grant: the granted scopes, space-separated.
    #[schema(nullable = false)]
    pub scope: Option<String>,
}

/// Not authenticated: no token, or a bad, expired or revoked one (then the challenge carries
/// `error="invalid_token"`), an unknown or inactive user.
#[derive(ToResponse)]
#[response(
    example = json!({"detail": "Unauthorized"}),
    headers((
        "WWW-Authenticate" = String,
        description = "`Bearer`, or `Bearer error=\"invalid_token\"`"
    ))
)]
pub struct Unauthorized(pub ErrorDetail);

/// `Forbidden`: not a superuser; or `CSRF_FAILED`: authenticated by the cookie without the
/// `X-CSRF-Token` header.
#[derive(ToResponse)]
#[response(example = json!({"detail": "Forbidden"}))]
pub struct Forbidden(pub ErrorDetail);

/// No such resource (also for an id that is not well-formed).
#[derive(ToResponse)]
#[response(example = json!({"detail": "Not Found"}))]
pub struct NotFound(pub ErrorDetail);

/// The request is malformed.
#[derive(ToResponse)]
pub struct ValidationFailed(pub ValidationError);

/// The body is longer than 64 KiB.
#[derive(ToResponse)]
#[response(example = json!({"detail": "Request body too large"}))]
pub struct PayloadTooLarge(pub ErrorDetail);

/// Throttled: too many attempts from this client address, device or user, or the account makes
/// clients it does not know wait before another password guess.
#[derive(ToResponse)]
#[response(
    example = json!({"detail": "TOO_MANY_REQUESTS"}),
    headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))
)]
pub struct TooManyRequests(pub ErrorDetail);

/// The service cannot do this right now: too many passwords are being hashed, or the
/// database cannot store anything. Nothing was changed; retry after `Retry-After`.
#[derive(ToResponse)]
#[response(
    example = json!({"detail": "SERVICE_UNAVAILABLE"}),
    headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))
)]
pub struct Unavailable(pub ErrorDetail);
