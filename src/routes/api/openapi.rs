//! The OpenAPI 3 document of the JSON API (`GET /openapi.json`) and its viewer (`/docs`).
//!
//! Each operation is described beside its handler with `#[utoipa::path]`; this file gathers
//! them, and holds the schemas of what no handler type describes: the hand-parsed forms and
//! the error bodies that `errors.rs` writes.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{OpenApi, PartialSchema, ToResponse, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{audit, auth, clients, meta, oauth, recovery, sessions, users};
use crate::errors::FieldError;

/// Where the document and the viewer are served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
pub const VIEWER_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        description = "Authentication in the fastapi-users dialect, with rotating refresh \
                       tokens, an OAuth2 token endpoint and a public JWKS.\n\n\
                       Authenticate with `Authorization: Bearer <access token>` (from \
                       `/auth/jwt/login`), or with the cookie that `/auth/cookie/login` sets; a \
                       state-changing request authenticated by the cookie must also carry the \
                       `X-CSRF-Token` header (see `/auth/csrf`)."
    ),
    paths(
        auth::register,
        auth::login,
        auth::logout,
        auth::refresh,
        oauth::token,
        auth::cookie_login,
        auth::cookie_logout,
        auth::csrf_token,
        recovery::forgot_password,
        recovery::reset_password,
        recovery::request_verify_token,
        recovery::verify,
        users::me,
        users::update_me,
        sessions::list_mine,
        sessions::end_mine,
        sessions::end_all_of_user,
        users::get_user,
        users::update_user,
        users::delete_user,
        clients::list,
        clients::create,
        clients::delete,
        audit::list,
        meta::jwks,
        meta::secret,
        meta::health,
        metrics,
    ),
    components(
        schemas(ErrorDetail, PasswordRefused, BadRequest, ValidationError, OAuthErrorBody),
        responses(
            Unauthorized,
            Forbidden,
            NotFound,
            ValidationFailed,
            PayloadTooLarge,
            TooManyRequests,
            Busy
        )
    ),
    tags(
        (name = "auth", description = "Registration, login and logout, tokens"),
        (name = "recovery", description = "Password reset and email verification"),
        (name = "users", description = "The signed-in user's account; any for superusers"),
        (name = "sessions", description = "Sessions, one per login"),
        (name = "clients", description = "Machine clients, for the client_credentials grant"),
        (name = "audit", description = "Security events (superusers)"),
        (name = "meta", description = "Health, metrics, public keys, an example resource"),
    )
)]
struct ApiDoc;

// The security schemes, by the names that operations' `security(...)` use.
const BEARER: &str = "bearer";
const COOKIE: &str = "cookie";
const CSRF: &str = "csrf";
const CLIENT_BASIC: &str = "client_basic";
const METRICS_TOKEN: &str = "metrics_token";

/// The document, naming the access cookie this server actually sets.
pub fn document(access_cookie: &str) -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from /auth/jwt/login, /auth/jwt/refresh or /auth/token \
                     (a machine client's token is accepted by /secret only).",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            access_cookie,
            "The HttpOnly access cookie set by /auth/cookie/login (renewed from its refresh \
             cookie when it expires). POST, PATCH and DELETE requests authenticated by it must \
             also send X-CSRF-Token.",
        ))),
    );
    components.add_security_scheme(
        CSRF,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            "The page session's CSRF token, from GET /auth/csrf or the X-CSRF-Token header of \
             /auth/cookie/login's answer. Required with the cookie on state-changing requests; \
             never with a bearer token.",
        ))),
    );
    components.add_security_scheme(
        CLIENT_BASIC,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "A machine client's id and secret, for the client_credentials grant of \
                     /auth/token (or send them as client_id and client_secret in the form).",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        METRICS_TOKEN,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The METRICS_TOKEN of the server's configuration, when it has one.",
                ))
                .build(),
        ),
    );
    document
}

/// The Prometheus metrics, for operators' scrapers.
///
/// In Prometheus' text format. With `METRICS_TOKEN` configured, only a request bearing it is
/// answered. (Served by `routes::metrics::scrape`; described here so that the document covers
/// every route meant for programs.)
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "The metrics",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, response = Unauthorized),
    )
)]
#[allow(dead_code)] // only its description is used
fn metrics() {}

/// The Content-Security-Policy of Swagger UI's files: the server's usual one, except that
/// Swagger UI sets inline styles and draws some icons from `data:` URLs. Scripts stay
/// `'self'` only (its page has no inline script).
pub const VIEWER_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; \
     object-src 'none'";

/// Whether `path` is one of Swagger UI's files (not the document, which is plain JSON).
pub fn is_viewer(path: &str) -> bool {
    path.strip_prefix(VIEWER_PATH)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Serves the document and Swagger UI from the binary: no CDN, nothing fetched at run time.
pub fn configure(cfg: &mut web::ServiceConfig, document: utoipa::openapi::OpenApi) {
    let viewer = Config::default()
        // The validator badge would send the document to validator.swagger.io.
        .validator_url("none")
        .try_it_out_enabled(true)
        .deep_linking(true)
        .display_operation_id(true);
    cfg.service(web::resource(VIEWER_PATH).get(|| async {
        // Swagger UI's page loads its assets relative to the directory.
        HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, format!("{VIEWER_PATH}/")))
            .finish()
    }))
    .service(
        SwaggerUi::new(format!("{VIEWER_PATH}/{{_:.*}}"))
            .url(DOCUMENT_PATH, document)
            .config(viewer),
    );
}

/// The JSON body `null`, as fastapi-users answers where there is nothing to say.
pub struct Null;

impl PartialSchema for Null {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl ToSchema for Null {}

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

/// A 400 of a route that also checks a new password: a code, or a code with a reason.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BadRequest {
    Code(ErrorDetail),
    Password(PasswordRefused),
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
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
}

/// The token pair of a login or a refresh.
#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    /// A JWT.
    pub access_token: String,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; single use: each refresh returns a new one.
    pub refresh_token: String,
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Bearer,
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

/// Throttled: too many attempts from this address or on this account.
#[derive(ToResponse)]
#[response(
    example = json!({"detail": "TOO_MANY_REQUESTS"}),
    headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))
)]
pub struct TooManyRequests(pub ErrorDetail);

/// Too many passwords are being hashed right now; retry shortly.
#[derive(ToResponse)]
#[response(
    example = json!({"detail": "Service Unavailable"}),
    headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))
)]
pub struct Busy(pub ErrorDetail);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PASSWORD_MAX_LEN, PASSWORD_MIN_LEN};

    /// Schema attributes take literals only: this keeps them in step with the policy.
    #[test]
    fn new_passwords_are_bounded_as_the_policy_bounds_them() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for body in [
            "RegisterBody",
            "ResetBody",
            "UpdateMeBody",
            "UpdateUserBody",
        ] {
            let password = &document["components"]["schemas"][body]["properties"]["password"];
            assert_eq!(password["minLength"], PASSWORD_MIN_LEN, "{body}");
            assert_eq!(password["maxLength"], PASSWORD_MAX_LEN, "{body}");
        }
    }
}
