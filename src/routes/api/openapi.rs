//! The OpenAPI 3 document of the JSON API (`GET /openapi.json`) and its viewer (`/docs`).
//!
//! Each operation is described beside its handler with `#[utoipa::path]`; this file gathers
//! them with the schemas of `schemas.rs` and the error bodies of `routes::web::errors`.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes,
    SecurityRequirement, SecurityScheme,
};
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::schemas::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
    ValidationFailed,
};
use super::{audit, auth, clients, meta, mfa, oauth, oidc, passkeys, recovery, sessions, users};
use crate::routes::web::errors::{
    ErrorDetail, MfaRequiredBody, OAuthErrorBody, PasswordRefused, SecondFactorRequired,
    ValidationError,
};
use crate::routes::web::middleware::VIEWER_PATH;

/// Where the document and the viewer are served.
pub const DOCUMENT_PATH: &str = "/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        description = "Authentication in the fastapi-users dialect, with rotating refresh \
                       tokens, an OAuth2 token endpoint and a public JWKS.\n\n\
                       Authenticate with `Authorization: Bearer <access token>` (from \
                       `/auth/jwt/login`), or with the cookie that `/auth/cookie/login` sets; a \
                       state-changing request authenticated by the cookie must also carry the \
                       `X-CSRF-Token` header (see `/auth/csrf`).\n\n\
                       JSON answers are `Cache-Control: no-store` unless an operation says \
                       otherwise (the JWKS may be cached for five minutes). In production, \
                       every answer carries `Strict-Transport-Security`."
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
        mfa::verify_second_factor,
        mfa::cookie_verify_second_factor,
        passkeys::second_factor_begin,
        passkeys::sign_in_begin,
        passkeys::sign_in_finish,
        passkeys::cookie_sign_in_finish,
        recovery::forgot_password,
        recovery::reset_password,
        recovery::request_verify_token,
        recovery::verify,
        users::me,
        users::update_me,
        sessions::list_mine,
        sessions::end_mine,
        mfa::status,
        mfa::begin_totp,
        mfa::confirm_totp,
        mfa::disable_totp,
        mfa::renew_recovery_codes,
        passkeys::register_begin,
        passkeys::register_finish,
        passkeys::rename,
        passkeys::remove,
        mfa::reset,
        sessions::end_all_of_user,
        users::get_user,
        users::update_user,
        users::delete_user,
        clients::list,
        clients::create,
        clients::delete,
        audit::list,
        meta::jwks,
        oidc::discovery,
        oidc::userinfo,
        oidc::userinfo_post,
        oidc::revoke,
        oidc::introspect,
        meta::secret,
        meta::health,
        metrics,
    ),
    components(
        schemas(
            ErrorDetail,
            PasswordRefused,
            BadRequest,
            ValidationError,
            OAuthErrorBody,
            SecondFactorRequired,
            MfaRequiredBody
        ),
        responses(
            Unauthorized,
            Forbidden,
            NotFound,
            ValidationFailed,
            PayloadTooLarge,
            TooManyRequests,
            Unavailable
        )
    ),
    tags(
        (name = "auth", description = "Registration, login and logout, tokens"),
        (name = "recovery", description = "Password reset and email verification"),
        (name = "users", description = "The signed-in user's account; any for superusers"),
        (name = "sessions", description = "Sessions, one per login"),
        (name = "mfa", description = "Second factors: authenticator apps, recovery codes, \
            passkeys"),
        (name = "clients", description = "Machine clients, for the client_credentials grant"),
        (name = "audit", description = "Security events (superusers)"),
        (name = "meta", description = "Health, metrics, public keys, an example resource"),
        (name = "openid-connect", description = "\"Log in with Gatehouse\" for other \
            applications: discovery, userinfo, revocation, introspection (the authorization \
            endpoint is a page; the token endpoint is /auth/token)"),
    )
)]
struct ApiDoc;

// The security schemes, by the names that operations' `security(...)` use.
const BEARER: &str = "bearer";
const COOKIE: &str = "cookie";
const CSRF: &str = "csrf";
const CLIENT_BASIC: &str = "client_basic";
const METRICS_TOKEN: &str = "metrics_token";
/// FastAPI's name for it, which fastapi-users' document uses.
const PASSWORD_FLOW: &str = "OAuth2PasswordBearer";
/// Where the password flow logs in: an absolute path, so the viewer finds it wherever the
/// document is served from.
pub const PASSWORD_FLOW_TOKEN_URL: &str = "/auth/jwt/login";

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
    let mut password_flow = OAuth2::new([Flow::Password(Password::new(
        PASSWORD_FLOW_TOKEN_URL,
        Scopes::new(),
    ))]);
    password_flow.description = Some(
        "Logs in with an email (as the username) and a password at /auth/jwt/login, then sends \
         the access token as a bearer token: Swagger UI's Authorize button does this (leave the \
         client id and secret empty)."
            .to_owned(),
    );
    components.add_security_scheme(PASSWORD_FLOW, SecurityScheme::OAuth2(password_flow));
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
    offer_password_flow(&mut document);
    document
}

/// Adds the password flow wherever a bearer token is accepted, as an alternative to it (it
/// ends in the same bearer token), as fastapi-users' document lists its OAuth2PasswordBearer.
fn offer_password_flow(document: &mut utoipa::openapi::OpenApi) {
    let password_flow = SecurityRequirement::new(PASSWORD_FLOW, Vec::<String>::new());
    let names_bearer = |requirement: &SecurityRequirement| {
        serde_json::to_value(requirement).is_ok_and(|value| value.get(BEARER).is_some())
    };
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            if let Some(security) = &mut operation.security {
                if security.iter().any(names_bearer) {
                    security.push(password_flow.clone());
                }
            }
        }
    }
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
