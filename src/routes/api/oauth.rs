//! `POST /auth/token`: the OAuth2 token endpoint (RFC 6749) for the authorization-code
//! (OpenID Connect), password, refresh-token and client-credentials grants. The password and
//! a user's refresh-token grants share their machinery with `/auth/jwt/login` and
//! `/auth/jwt/refresh`.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use serde_json::json;

use super::schemas::{TokenForm, TokenResponse};
use crate::domain::{Client, Scopes};
use crate::routes::web::errors::OAuthError;
use crate::routes::web::errors::OAuthErrorBody;
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::mfa::{self, Proof};
use crate::services::{clients, oidc, sessions};
use crate::state::AppState;

/// The grant that completes a password grant answered `mfa_required`.
const MFA_GRANT: &str = "urn:gatehouse:grant-type:mfa";

/// The OAuth2 token endpoint (RFC 6749).
///
/// Grants: `authorization_code` (OpenID Connect: `code`, `redirect_uri`, `code_verifier`,
/// and the application's authentication, or `client_id` alone for a public client),
/// `password`, `refresh_token` (an application's with its authentication), `client_credentials`, and
/// `urn:gatehouse:grant-type:mfa`: when the password grant answers `mfa_required` with an
/// `mfa_token`, send that token with `otp` (an authenticator app's code) or `recovery_code`.
#[utoipa::path(
    post,
    path = "/auth/token",
    tag = "auth",
    request_body(content((TokenForm = "application/x-www-form-urlencoded"))),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "A token; with a refresh token for the password and \
            refresh_token grants, with `scope` for client_credentials", body = TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant` (also a wrong code, or \
            an unknown, used or expired `mfa_token`), `unsupported_grant_type`, `invalid_scope`; \
            or `mfa_required` with an `mfa_token` (`MfaRequiredBody`) when the password is right \
            and the account has a second factor", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`: unknown client or wrong secret",
            body = OAuthErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"gatehouse\"`")),
            example = json!({
                "error": "invalid_client",
                "error_description": "client authentication failed"
            })),
        (status = 413, description = "The body is longer than 64 KiB"),
        (status = 429, description = "`temporarily_unavailable`: throttled", body = OAuthErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "`temporarily_unavailable`: busy hashing passwords",
            body = OAuthErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: Origin,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::parse(&req, &body)?;
    let ctx = Context::anonymous(origin);
    let answer = match params.get("grant_type") {
        None => return Err(OAuthError::InvalidRequest("grant_type is required")),
        Some("password") => {
            let username = params.require("username")?;
            let password = params.require("password")?.into();
            json!(
                sessions::login(&state, &ctx, username, password)
                    .await?
                    .tokens
            )
        }
        Some(MFA_GRANT) => {
            let mfa_token = params.require("mfa_token")?;
            let proof = match (params.get("otp"), params.get("recovery_code")) {
                (Some(code), None) => Proof::Code(code.to_owned()),
                (None, Some(code)) => Proof::RecoveryCode(code.to_owned()),
                _ => {
                    return Err(OAuthError::InvalidRequest(
                        "send one of otp and recovery_code",
                    ))
                }
            };
            json!(
                mfa::complete_login(&state, &ctx, mfa_token, proof)
                    .await?
                    .tokens
            )
        }
        Some("authorization_code") => {
            let client = app_client(&state, &req, &params).await?;
            let tokens = oidc::exchange_code(
                &state,
                &ctx,
                &client,
                params.require("code")?,
                params.require("redirect_uri")?,
                params.require("code_verifier")?,
            )
            .await?;
            app_tokens_json(tokens)
        }
        Some("refresh_token") => {
            let refresh_token = params.require("refresh_token")?;
            if presents_client(&req, &params) {
                // An application's refresh token: only with that application's authentication.
                let client = app_client(&state, &req, &params).await?;
                app_tokens_json(oidc::refresh(&state, &ctx, &client, refresh_token).await?)
            } else {
                json!(sessions::refresh(&state, &ctx, refresh_token).await?.tokens)
            }
        }
        Some("client_credentials") => {
            let (client_id, secret) = client_credentials(&req, &params)?;
            // Who is asking comes first: a stranger learns nothing about scopes.
            let client = clients::authenticate(&state, &client_id, &secret).await?;
            let requested = params
                .get("scope")
                .map(Scopes::parse_space_separated)
                .transpose()
                .map_err(|_| OAuthError::InvalidScope("the scope parameter is malformed"))?;
            let token = clients::issue_token(&state, &client, requested)?;
            json!({
                "access_token": token.access_token,
                "token_type": "bearer",
                "expires_in": token.expires_in,
                "scope": token.scopes.to_space_separated(),
            })
        }
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(answer))
}

fn app_tokens_json(tokens: oidc::AppTokens) -> serde_json::Value {
    let mut answer = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "id_token": tokens.id_token,
        "scope": tokens.scopes.to_space_separated(),
    });
    if let Some(refresh_token) = tokens.refresh_token {
        answer["refresh_token"] = json!(refresh_token);
    }
    answer
}

/// Whether the request names a client (HTTP Basic, or `client_id` in the form).
fn presents_client(req: &HttpRequest, params: &Params) -> bool {
    req.headers().contains_key(header::AUTHORIZATION) || params.get("client_id").is_some()
}

/// The application making a request: authenticated by its secret (`client_secret_basic`,
/// `client_secret_post`), or, for a public client, named by `client_id` alone.
pub(super) async fn app_client(
    state: &AppState,
    req: &HttpRequest,
    params: &Params,
) -> Result<Client, OAuthError> {
    let (client_id, secret) = match (basic_credentials(req)?, params.get("client_id")) {
        (None, Some(id)) if params.get("client_secret").is_none() => (id.to_owned(), None),
        _ => {
            let (id, secret) = client_credentials(req, params)?;
            (id, Some(secret))
        }
    };
    Ok(oidc::authenticate_client(state, &client_id, secret.as_ref()).await?)
}

/// The form parameters of a token request.
pub(super) struct Params(HashMap<String, String>);

impl Params {
    /// Parses a form body; a parameter may appear once, and one sent empty counts as absent
    /// (RFC 6749 §3.1).
    pub(super) fn parse(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::InvalidRequest("the body is not a valid form"))?;
        let mut params = HashMap::new();
        for (name, value) in pairs {
            if params.insert(name, value).is_some() {
                return Err(OAuthError::InvalidRequest("a parameter is repeated"));
            }
        }
        params.retain(|_, value| !value.is_empty());
        Ok(Params(params))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(super) fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or(OAuthError::InvalidRequest(match name {
            "username" => "username is required",
            "password" => "password is required",
            "mfa_token" => "mfa_token is required",
            "code" => "code is required",
            "redirect_uri" => "redirect_uri is required",
            "code_verifier" => "code_verifier is required (PKCE)",
            "token" => "token is required",
            _ => "refresh_token is required",
        }))
    }
}

/// The client's id and secret, from HTTP Basic (RFC 6749 §2.3.1) or the form, never both.
fn client_credentials(
    req: &HttpRequest,
    params: &Params,
) -> Result<(String, SecretString), OAuthError> {
    let basic = basic_credentials(req)?;
    let form_id = params.get("client_id");
    let form_secret = params.get("client_secret");
    match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::InvalidRequest(
            "use one way to authenticate the client, not both",
        )),
        (Some((id, _)), Some(form_id), None) if form_id != id => Err(OAuthError::InvalidRequest(
            "client_id differs from the Authorization header's",
        )),
        (Some((id, secret)), _, None) => Ok((id, secret.into())),
        (None, Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned().into())),
        (None, _, _) => Err(OAuthError::InvalidClient),
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))`, if present.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::InvalidClient;
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidRequest(
            "client credentials go in HTTP Basic or the form",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |part: &str| {
        percent_decode_str(&part.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| malformed())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}
