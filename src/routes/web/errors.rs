//! The HTTP boundary's error type: every failure becomes one of the contract's bodies here.

use std::fmt::Display;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{LocalPath, PolicyViolation, SecondFactor};
use crate::services::second_step::SecondStep;
use crate::services::ServiceError;

/// One entry of a 422 body, as FastAPI writes them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    /// Where: `body` or `query`, then the field's name.
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    /// An error in the query string parameter `name`.
    pub fn query(name: &str, msg: impl Into<String>, kind: &str) -> FieldError {
        FieldError {
            loc: vec!["query".to_owned(), name.to_owned()],
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }

    pub fn body(path: &[&str], msg: impl Into<String>, kind: &str) -> FieldError {
        let mut loc = vec!["body".to_owned()];
        loc.extend(path.iter().map(|p| (*p).to_owned()));
        FieldError {
            loc,
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }
}

/// An error answer of the JSON API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `{"detail": "CODE"}` with the given status.
    #[error("{code}")]
    Detail {
        status: StatusCode,
        code: &'static str,
    },
    /// `{"detail": {"code": ..., "reason": ...}}` with 400.
    #[error("{code}: {reason}")]
    InvalidPassword { code: &'static str, reason: String },
    /// 422 with FastAPI's list of field errors.
    #[error("request body is not valid")]
    Validation(Vec<FieldError>),
    /// 401; `invalid_token` when a token was presented and refused (RFC 6750).
    #[error("unauthorized")]
    Unauthorized { invalid_token: bool },
    #[error("forbidden")]
    Forbidden,
    /// 403: a cookie-authenticated state change without a valid CSRF token.
    #[error("CSRF check failed")]
    CsrfFailed,
    #[error("not found")]
    NotFound,
    #[error("request body too large")]
    PayloadTooLarge,
    /// 503 `SERVICE_UNAVAILABLE` with `Retry-After` (seconds): shedding load, or the
    /// database cannot store anything right now.
    #[error("service unavailable")]
    Unavailable { retry_after: u64 },
    /// 429 with `Retry-After` (seconds): throttled.
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// 400 `LOGIN_MFA_REQUIRED`: the password was right; the login's second step is owed.
    #[error("LOGIN_MFA_REQUIRED")]
    SecondFactorRequired(SecondStep),
    /// Details go to the log where this is built, never into the response.
    #[error("internal error")]
    Internal,
}

/// Seconds a client should wait before retrying when the service sheds load.
pub(super) const BUSY_RETRY_AFTER: u64 = 1;
/// Seconds a client should wait before retrying when the database cannot store anything:
/// long enough for a restart or a failover, short enough to notice recovery.
pub(super) const UNAVAILABLE_RETRY_AFTER: u64 = 5;

impl ApiError {
    pub fn validation(error: FieldError) -> ApiError {
        ApiError::Validation(vec![error])
    }

    /// 500: logs `cause`, which the answer does not tell.
    pub fn internal(cause: impl Display) -> ApiError {
        logged(cause, ApiError::Internal)
    }

    fn detail(status: StatusCode, code: &'static str) -> ApiError {
        ApiError::Detail { status, code }
    }

    /// Maps a failed registration to its codes (`REGISTER_*`), the rest as usual.
    pub fn from_registration(error: ServiceError) -> ApiError {
        match error {
            ServiceError::EmailTaken => {
                ApiError::detail(StatusCode::BAD_REQUEST, "REGISTER_USER_ALREADY_EXISTS")
            }
            ServiceError::WeakPassword(violation) => {
                invalid_password("REGISTER_INVALID_PASSWORD", &violation)
            }
            other => ApiError::from(other),
        }
    }

    /// Maps a failed password reset to its codes (`RESET_PASSWORD_*`), the rest as usual.
    pub fn from_reset(error: ServiceError) -> ApiError {
        match error {
            ServiceError::BadToken => {
                ApiError::detail(StatusCode::BAD_REQUEST, "RESET_PASSWORD_BAD_TOKEN")
            }
            ServiceError::WeakPassword(violation) => {
                invalid_password("RESET_PASSWORD_INVALID_PASSWORD", &violation)
            }
            other => ApiError::from(other),
        }
    }
}

fn invalid_password(code: &'static str, violation: &PolicyViolation) -> ApiError {
    ApiError::InvalidPassword {
        code,
        reason: violation.to_string(),
    }
}

/// The mapping for every route but registration (see [`ApiError::from_registration`]).
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        use StatusCode as S;
        match error {
            ServiceError::EmailTaken => {
                ApiError::detail(S::BAD_REQUEST, "UPDATE_USER_EMAIL_ALREADY_EXISTS")
            }
            ServiceError::WeakPassword(violation) => {
                invalid_password("UPDATE_USER_INVALID_PASSWORD", &violation)
            }
            ServiceError::BadCredentials => {
                ApiError::detail(S::BAD_REQUEST, "LOGIN_BAD_CREDENTIALS")
            }
            ServiceError::NotVerified => {
                ApiError::detail(S::BAD_REQUEST, "LOGIN_USER_NOT_VERIFIED")
            }
            ServiceError::BadToken => ApiError::detail(S::BAD_REQUEST, "VERIFY_USER_BAD_TOKEN"),
            ServiceError::AlreadyVerified => {
                ApiError::detail(S::BAD_REQUEST, "VERIFY_USER_ALREADY_VERIFIED")
            }
            ServiceError::Throttled(throttled) => ApiError::TooManyRequests {
                retry_after: throttled.retry_after_secs(),
            },
            ServiceError::BadCurrentPassword => {
                ApiError::detail(S::BAD_REQUEST, "UPDATE_USER_BAD_CURRENT_PASSWORD")
            }
            ServiceError::RefreshTokenInvalid => {
                ApiError::detail(S::UNAUTHORIZED, "REFRESH_TOKEN_INVALID")
            }
            ServiceError::LastSuperuser => ApiError::detail(S::CONFLICT, "LAST_SUPERUSER"),
            ServiceError::BadClientCredentials => ApiError::Unauthorized {
                invalid_token: false,
            },
            ServiceError::ScopeNotAllowed => ApiError::Forbidden,
            ServiceError::ClientNameTaken => {
                ApiError::detail(S::BAD_REQUEST, "CLIENT_NAME_ALREADY_EXISTS")
            }
            ServiceError::ClientSettings(why) => {
                ApiError::validation(FieldError::body(&[], why.to_owned(), "value_error"))
            }
            ServiceError::AuthorizationCodeInvalid => {
                ApiError::detail(S::BAD_REQUEST, "CODE_INVALID")
            }
            ServiceError::Busy => ApiError::Unavailable {
                retry_after: BUSY_RETRY_AFTER,
            },
            ServiceError::Unavailable => ApiError::Unavailable {
                retry_after: UNAVAILABLE_RETRY_AFTER,
            },
            ServiceError::Unauthenticated { token_presented } => ApiError::Unauthorized {
                invalid_token: token_presented,
            },
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::SecondFactorRequired(step) => ApiError::SecondFactorRequired(step),
            ServiceError::MfaCodeInvalid => ApiError::detail(S::BAD_REQUEST, "MFA_CODE_INVALID"),
            ServiceError::MfaTokenInvalid => ApiError::detail(S::BAD_REQUEST, "MFA_TOKEN_INVALID"),
            ServiceError::MfaAlreadyEnabled => ApiError::detail(S::CONFLICT, "MFA_ALREADY_ENABLED"),
            ServiceError::MfaNotPending => ApiError::detail(S::CONFLICT, "MFA_NOT_PENDING"),
            ServiceError::MfaNotEnabled => ApiError::detail(S::CONFLICT, "MFA_NOT_ENABLED"),
            ServiceError::MfaRequired => ApiError::detail(S::FORBIDDEN, "MFA_REQUIRED"),
            ServiceError::PasskeyInvalid => ApiError::detail(S::BAD_REQUEST, "PASSKEY_INVALID"),
            ServiceError::PasskeysOff => ApiError::NotFound,
            ServiceError::Internal(cause) => logged(cause, ApiError::Internal),
        }
    }
}

/// `{"detail": "CODE"}`: the usual error body.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": "LOGIN_BAD_CREDENTIALS"}))]
pub struct ErrorDetail {
    /// An error code such as `LOGIN_BAD_CREDENTIALS`, or `Unauthorized`, `Forbidden`,
    /// `CSRF_FAILED`, `Not Found`, `TOO_MANY_REQUESTS`.
    pub detail: String,
}

/// `{"detail": {"code", "reason"}}`: a password the policy refuses.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": {
    "code": "REGISTER_INVALID_PASSWORD",
    "reason": "Password should be at least 8 characters."
}}))]
pub struct PasswordRefused {
    pub detail: CodeReason,
}

#[derive(Serialize, ToSchema)]
pub struct CodeReason {
    /// `REGISTER_INVALID_PASSWORD`, `RESET_PASSWORD_INVALID_PASSWORD` or
    /// `UPDATE_USER_INVALID_PASSWORD`.
    pub code: String,
    /// Why, for people.
    pub reason: String,
}

/// `{"detail": {"code": "LOGIN_MFA_REQUIRED", …}}`: the password was right, and the account
/// has a second factor. Complete the login at `/auth/mfa/verify` (or its cookie form) with
/// the `mfa_token`, single use and valid 5 minutes.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": {
    "code": "LOGIN_MFA_REQUIRED",
    "reason": "The password is right; complete the login with a second factor.",
    "mfa_token": "q3Pz0dXv8C2k1yJmS0nV4cYtR7bWfLhE9uAiKgQpZxM",
    "methods": ["totp", "recovery_code"]
}}))]
pub struct SecondFactorRequired {
    pub detail: SecondFactorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct SecondFactorDetail {
    /// `LOGIN_MFA_REQUIRED`.
    pub code: String,
    pub reason: String,
    /// Opaque; single use; valid 5 minutes; bound to the account.
    pub mfa_token: String,
    /// The factors this account can complete the login with.
    pub methods: Vec<SecondFactor>,
}

/// FastAPI's 422: what in the request is malformed (bad JSON or form, a missing field, a
/// wrong type, an invalid email, a bad query parameter).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": [
    {"loc": ["body", "email"], "msg": "Field required", "type": "missing"}
]}))]
pub struct ValidationError {
    pub detail: Vec<FieldError>,
}

/// An error of the OAuth2 token endpoint (RFC 6749 §5.2).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "error": "invalid_grant",
    "error_description": "invalid username or password"
}))]
pub struct OAuthErrorBody {
    pub error: OAuthErrorCode,
    pub error_description: String,
}

/// `mfa_required`: the password grant's password was right and the account has a second
/// factor; send `mfa_token` with `otp` (or `recovery_code`) in the
/// `urn:gatehouse:grant-type:mfa` grant.
#[derive(Serialize, ToSchema)]
pub struct MfaRequiredBody {
    pub error: OAuthErrorCode,
    pub error_description: String,
    pub mfa_token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    InvalidScope,
    TemporarilyUnavailable,
    ServerError,
    MfaRequired,
}

/// The usual error body, with this code or message.
fn detail(text: &str) -> ErrorDetail {
    ErrorDetail {
        detail: text.to_owned(),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Detail { status, .. } => *status,
            ApiError::InvalidPassword { .. } | ApiError::SecondFactorRequired(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::CsrfFailed => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Detail { code, .. } => response.json(detail(code)),
            ApiError::InvalidPassword { code, reason } => response.json(PasswordRefused {
                detail: CodeReason {
                    code: (*code).to_owned(),
                    reason: reason.clone(),
                },
            }),
            ApiError::Validation(errors) => response.json(ValidationError {
                detail: errors.clone(),
            }),
            ApiError::Unauthorized { invalid_token } => {
                let challenge = if *invalid_token {
                    r#"Bearer error="invalid_token""#
                } else {
                    "Bearer"
                };
                response
                    .insert_header((header::WWW_AUTHENTICATE, challenge))
                    .json(detail("Unauthorized"))
            }
            ApiError::Forbidden => response.json(detail("Forbidden")),
            ApiError::CsrfFailed => response.json(detail("CSRF_FAILED")),
            ApiError::NotFound => response.json(detail("Not Found")),
            ApiError::PayloadTooLarge => response.json(detail("Request body too large")),
            ApiError::Unavailable { retry_after } => response
                .insert_header((header::RETRY_AFTER, retry_after.to_string()))
                .json(detail("SERVICE_UNAVAILABLE")),
            ApiError::TooManyRequests { retry_after } => response
                .insert_header((header::RETRY_AFTER, retry_after.to_string()))
                .json(detail("TOO_MANY_REQUESTS")),
            ApiError::SecondFactorRequired(step) => response
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(SecondFactorRequired {
                    detail: SecondFactorDetail {
                        code: "LOGIN_MFA_REQUIRED".to_owned(),
                        reason: "The password is right; complete the login with a second factor."
                            .to_owned(),
                        mfa_token: step.mfa_token.clone(),
                        methods: step.methods.clone(),
                    },
                }),
            ApiError::Internal => response.json(detail("Internal Server Error")),
        }
    }
}

/// An error answer of the HTML pages: a redirect to the login page or a friendly page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// 303 to the login page, which sends the browser back to `next` afterwards.
    #[error("login required")]
    LoginRequired { next: Option<LocalPath> },
    /// 403: a superuser page, and the visitor is not one; the page keeps their header.
    #[error("forbidden")]
    Forbidden(Option<Box<SignedInHeader>>),
    /// 403: a superuser page, and `MFA_REQUIRED` asks for a second factor this session did
    /// not use.
    #[error("a second factor is required")]
    MfaRequired(Option<Box<SignedInHeader>>),
    /// 403: the form did not carry this session's CSRF token, or came from another site.
    #[error("CSRF check failed")]
    CsrfFailed,
    #[error("not found")]
    NotFound,
    #[error("bad request")]
    BadRequest,
    /// 503 with `Retry-After`: too many logins at once.
    #[error("service busy")]
    Busy,
    /// 503 with `Retry-After`: the database cannot store anything right now.
    #[error("service unavailable")]
    Unavailable,
    /// 429 with `Retry-After` (seconds).
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// Details go to the log where this is built, never into the page.
    #[error("internal error")]
    Internal,
}

/// Who an error page's header shows as signed in, and the token of its logout form: a 403
/// is no reason to look signed out.
#[derive(Debug)]
pub struct SignedInHeader {
    pub email: String,
    pub is_superuser: bool,
    pub csrf_token: String,
}

impl PageError {
    /// Sends the browser to log in, and back to this page afterwards when it was a GET.
    pub fn login_required(req: &HttpRequest) -> PageError {
        let next = (req.method() == Method::GET)
            .then(|| LocalPath::parse(&req.uri().to_string()))
            .flatten();
        PageError::LoginRequired { next }
    }

    /// The error page: logs `cause`, which the page does not tell.
    pub fn internal(cause: impl Display) -> PageError {
        logged(cause, PageError::Internal)
    }
}

/// Logs why a request failed on our side, and gives back the answer, which never says why.
/// Every boundary's internal error is logged here, in the same words.
fn logged<E>(cause: impl Display, answer: E) -> E {
    log::error!("internal error: {cause}");
    answer
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> PageError {
        match error {
            ServiceError::NotFound => PageError::NotFound,
            ServiceError::Busy => PageError::Busy,
            ServiceError::Unavailable => PageError::Unavailable,
            ServiceError::MfaRequired => PageError::MfaRequired(None),
            ServiceError::Throttled(throttled) => PageError::TooManyRequests {
                retry_after: throttled.retry_after_secs(),
            },
            other => logged(other, PageError::Internal),
        }
    }
}

/// An error of the OAuth2 token endpoint, in the shape of RFC 6749 §5.2.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// 401, with a `Basic` challenge.
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// 503 with `Retry-After`.
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable { retry_after: u64 },
    /// 429 with `Retry-After` (seconds): throttled.
    #[error("temporarily_unavailable (throttled)")]
    Throttled { retry_after: u64 },
    /// 400 `mfa_required`, with the `mfa_token` for the `urn:gatehouse:grant-type:mfa` grant.
    #[error("mfa_required")]
    MfaRequired(SecondStep),
    /// Details go to the log where this is built, never into the response.
    #[error("server_error")]
    Internal,
}

impl From<ServiceError> for OAuthError {
    fn from(error: ServiceError) -> OAuthError {
        match error {
            ServiceError::BadCredentials => {
                OAuthError::InvalidGrant("invalid username or password")
            }
            ServiceError::RefreshTokenInvalid => {
                OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked")
            }
            ServiceError::BadClientCredentials => OAuthError::InvalidClient,
            ServiceError::ScopeNotAllowed => {
                OAuthError::InvalidScope("a requested scope is not granted to this client")
            }
            ServiceError::Busy => OAuthError::TemporarilyUnavailable {
                retry_after: BUSY_RETRY_AFTER,
            },
            ServiceError::Unavailable => OAuthError::TemporarilyUnavailable {
                retry_after: UNAVAILABLE_RETRY_AFTER,
            },
            ServiceError::NotVerified => {
                OAuthError::InvalidGrant("the email address is not verified")
            }
            ServiceError::Throttled(throttled) => OAuthError::Throttled {
                retry_after: throttled.retry_after_secs(),
            },
            ServiceError::SecondFactorRequired(step) => OAuthError::MfaRequired(step),
            ServiceError::MfaCodeInvalid => OAuthError::InvalidGrant("the code is not valid"),
            ServiceError::MfaTokenInvalid => {
                OAuthError::InvalidGrant("the mfa_token is unknown, used or expired")
            }
            ServiceError::AuthorizationCodeInvalid => OAuthError::InvalidGrant(
                "the code is invalid, expired or used, or was issued to another client, redirect \
                 URI or code verifier",
            ),
            other => logged(other, OAuthError::Internal),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthError::TemporarilyUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        use OAuthErrorCode as Code;
        let (error, description) = match self {
            OAuthError::InvalidRequest(why) => (Code::InvalidRequest, *why),
            OAuthError::InvalidClient => (Code::InvalidClient, "client authentication failed"),
            OAuthError::InvalidGrant(why) => (Code::InvalidGrant, *why),
            OAuthError::UnsupportedGrantType => (
                Code::UnsupportedGrantType,
                "grant_type must be authorization_code, password, refresh_token, \
                 client_credentials or urn:gatehouse:grant-type:mfa",
            ),
            OAuthError::InvalidScope(why) => (Code::InvalidScope, *why),
            OAuthError::TemporarilyUnavailable { .. } => (
                Code::TemporarilyUnavailable,
                "the server is busy; retry shortly",
            ),
            OAuthError::Throttled { .. } => (
                Code::TemporarilyUnavailable,
                "too many attempts; retry after the time in Retry-After",
            ),
            OAuthError::Internal => (Code::ServerError, "the server could not answer"),
            OAuthError::MfaRequired(_) => (
                Code::MfaRequired,
                "the password is right; complete the login with the urn:gatehouse:grant-type:mfa \
                 grant",
            ),
        };
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        match self {
            OAuthError::InvalidClient => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="gatehouse""#));
            }
            OAuthError::TemporarilyUnavailable { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            OAuthError::Throttled { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        if let OAuthError::MfaRequired(step) = self {
            return response.json(MfaRequiredBody {
                error,
                error_description: description.to_owned(),
                mfa_token: step.mfa_token.clone(),
            });
        }
        response.json(OAuthErrorBody {
            error,
            error_description: description.to_owned(),
        })
    }
}
