//! The JSON side of the OpenID Connect provider: discovery, userinfo, revocation (RFC 7009)
//! and introspection (RFC 7662). The browser's side is `routes::pages::oidc`; the token
//! endpoint is `oauth.rs`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::oauth::{app_client, Params};
use crate::routes::web::errors::{ApiError, OAuthError};
use crate::services::context::{Context, Origin};
use crate::services::oidc::{self, SUPPORTED_SCOPES};
use crate::state::AppState;

/// OpenID Connect Discovery 1.0.
///
/// Not found under `JWT_ALGORITHM=HS256`: ID tokens must be verifiable with public keys.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "openid-connect",
    responses(
        (status = 200, description = "The provider's metadata"),
        (status = 404, description = "The provider is off (HS256)"),
    )
)]
pub async fn discovery(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let algorithms: Vec<&str> = state
        .oidc_algorithms()
        .into_iter()
        .map(|alg| alg.as_str())
        .collect();
    if algorithms.is_empty() {
        return Err(ApiError::NotFound);
    }
    let issuer = state.issuer();
    let at = |path: &str| format!("{issuer}{path}");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(json!({
            "issuer": issuer,
            "authorization_endpoint": at("/oauth/authorize"),
            "token_endpoint": at("/auth/token"),
            "userinfo_endpoint": at("/oauth/userinfo"),
            "jwks_uri": at("/.well-known/jwks.json"),
            "end_session_endpoint": at("/oauth/logout"),
            "revocation_endpoint": at("/oauth/revoke"),
            "introspection_endpoint": at("/oauth/introspect"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": [
                "authorization_code", "refresh_token", "client_credentials", "password"
            ],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SUPPORTED_SCOPES,
            "id_token_signing_alg_values_supported": algorithms,
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "subject_types_supported": ["public"],
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr",
                "azp", "email", "email_verified"
            ],
            "prompt_values_supported": ["none", "login", "consent"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
        })))
}

/// The user an application's access token speaks for (OpenID Connect Core §5.3).
#[utoipa::path(
    get,
    path = "/oauth/userinfo",
    tag = "openid-connect",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{sub, email, email_verified}`, as the scopes allow"),
        (status = 401, description = "No application's access token, or one that has ended",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    )
)]
pub async fn userinfo(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token = bearer(&req).ok_or(ApiError::Unauthorized {
        invalid_token: false,
    })?;
    let info = oidc::userinfo(&state, token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(info))
}

/// `POST /oauth/userinfo`: the same, for clients that POST (OpenID Connect Core §5.3.1).
#[utoipa::path(
    post,
    path = "/oauth/userinfo",
    tag = "openid-connect",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "As `GET /oauth/userinfo`"),
        (status = 401, description = "As `GET /oauth/userinfo`"),
    )
)]
pub async fn userinfo_post(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    userinfo(state, req).await
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The form of a revocation or introspection request; the client authenticates as at the
/// token endpoint.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the form for the OpenAPI document; `Params` parses it
pub struct TokenParams {
    /// An access or refresh token the calling client received.
    token: String,
    /// `access_token` or `refresh_token`; optional (every kind is looked for).
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Revokes an application's access or refresh token (RFC 7009): its session ends at once.
///
/// 200 for any token, known or not, as the RFC asks; the client must authenticate.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "openid-connect",
    request_body(content((TokenParams = "application/x-www-form-urlencoded"))),
    security(("client_basic" = [])),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "`invalid_request`: no token"),
        (status = 401, description = "`invalid_client`"),
    )
)]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: Origin,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::parse(&req, &body)?;
    let client = app_client(&state, &req, &params).await?;
    let token = params.require("token")?;
    oidc::revoke(&state, &Context::anonymous(origin), &client, token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Introspects a token (RFC 7662) for the client it was issued to.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "openid-connect",
    request_body(content((TokenParams = "application/x-www-form-urlencoded"))),
    security(("client_basic" = [])),
    responses(
        (status = 200, description = "`{active: true, sub, client_id, exp, scope, token_type}` \
            for a live token of the calling client; `{active: false}` for anything else"),
        (status = 400, description = "`invalid_request`: no token"),
        (status = 401, description = "`invalid_client`"),
    )
)]
pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::parse(&req, &body)?;
    let client = app_client(&state, &req, &params).await?;
    let token = params.require("token")?;
    let answer = oidc::introspect(&state, &client, token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}
