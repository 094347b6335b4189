//! The JSON API: the fastapi-users dialect and its extensions.

mod audit;
mod auth;
pub mod body;
mod clients;
mod meta;
mod mfa;
mod oauth;
mod oidc;
pub mod openapi;
mod passkeys;
mod recovery;
pub mod schemas;
mod sessions;
mod users;

use actix_web::http::Method;
use actix_web::{web, Route};

/// Every JSON route: `configure` serves exactly these, and the OpenAPI test compares them with
/// the document. Order matters where paths overlap: `/users/me` before `/users/{id}`.
#[rustfmt::skip] // one route a line reads better than rustfmt's wrapping
fn routes() -> Vec<(Method, &'static str, Route)> {
    use Method as M;
    vec![
        (M::POST, "/auth/register", web::to(auth::register)),
        (M::POST, "/auth/jwt/login", web::to(auth::login)),
        (M::POST, "/auth/jwt/logout", web::to(auth::logout)),
        (M::POST, "/auth/jwt/refresh", web::to(auth::refresh)),
        (M::POST, "/auth/token", web::to(oauth::token)),
        (M::POST, "/auth/cookie/login", web::to(auth::cookie_login)),
        (M::POST, "/auth/cookie/logout", web::to(auth::cookie_logout)),
        (M::GET, "/auth/csrf", web::to(auth::csrf_token)),
        (M::POST, "/auth/mfa/verify", web::to(mfa::verify_second_factor)),
        (M::POST, "/auth/cookie/mfa/verify", web::to(mfa::cookie_verify_second_factor)),
        (M::POST, "/auth/mfa/passkey/begin", web::to(passkeys::second_factor_begin)),
        (M::POST, "/auth/passkey/begin", web::to(passkeys::sign_in_begin)),
        (M::POST, "/auth/passkey/finish", web::to(passkeys::sign_in_finish)),
        (M::POST, "/auth/cookie/passkey/finish", web::to(passkeys::cookie_sign_in_finish)),
        (M::POST, "/auth/forgot-password", web::to(recovery::forgot_password)),
        (M::POST, "/auth/reset-password", web::to(recovery::reset_password)),
        (M::POST, "/auth/request-verify-token", web::to(recovery::request_verify_token)),
        (M::POST, "/auth/verify", web::to(recovery::verify)),
        (M::GET, "/users/me", web::to(users::me)),
        (M::PATCH, "/users/me", web::to(users::update_me)),
        (M::GET, "/users/me/sessions", web::to(sessions::list_mine)),
        (M::DELETE, "/users/me/sessions/{id}", web::to(sessions::end_mine)),
        (M::GET, "/users/me/mfa", web::to(mfa::status)),
        (M::POST, "/users/me/mfa/totp", web::to(mfa::begin_totp)),
        (M::DELETE, "/users/me/mfa/totp", web::to(mfa::disable_totp)),
        (M::POST, "/users/me/mfa/totp/confirm", web::to(mfa::confirm_totp)),
        (M::POST, "/users/me/mfa/recovery-codes", web::to(mfa::renew_recovery_codes)),
        (M::POST, "/users/me/mfa/passkeys/register/begin", web::to(passkeys::register_begin)),
        (M::POST, "/users/me/mfa/passkeys/register/finish", web::to(passkeys::register_finish)),
        (M::PATCH, "/users/me/mfa/passkeys/{id}", web::to(passkeys::rename)),
        (M::DELETE, "/users/me/mfa/passkeys/{id}", web::to(passkeys::remove)),
        (M::DELETE, "/users/{id}/mfa", web::to(mfa::reset)),
        (M::DELETE, "/users/{id}/sessions", web::to(sessions::end_all_of_user)),
        (M::GET, "/users/{id}", web::to(users::get_user)),
        (M::PATCH, "/users/{id}", web::to(users::update_user)),
        (M::DELETE, "/users/{id}", web::to(users::delete_user)),
        (M::GET, "/clients", web::to(clients::list)),
        (M::POST, "/clients", web::to(clients::create)),
        (M::DELETE, "/clients/{client_id}", web::to(clients::delete)),
        (M::GET, "/audit", web::to(audit::list)),
        (M::GET, "/.well-known/jwks.json", web::to(meta::jwks)),
        (M::GET, "/.well-known/openid-configuration", web::to(oidc::discovery)),
        (M::GET, "/oauth/userinfo", web::to(oidc::userinfo)),
        (M::POST, "/oauth/userinfo", web::to(oidc::userinfo_post)),
        (M::POST, "/oauth/revoke", web::to(oidc::revoke)),
        (M::POST, "/oauth/introspect", web::to(oidc::introspect)),
        (M::GET, "/secret", web::to(meta::secret)),
        (M::GET, "/health", web::to(meta::health)),
    ]
}

/// One resource per path, with a route per method; another method on it gets 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut resources: Vec<(&'static str, Vec<Route>)> = Vec::new();
    for (method, path, route) in routes() {
        let route = route.method(method);
        match resources.iter_mut().find(|(known, _)| *known == path) {
            Some((_, routes)) => routes.push(route),
            None => resources.push((path, vec![route])),
        }
    }
    for (path, routes) in resources {
        let resource = routes
            .into_iter()
            .fold(web::resource(path), |resource, route| resource.route(route));
        cfg.service(resource);
    }
}

/// The method and path of every JSON route, as `configure` serves them.
pub fn api_routes() -> Vec<(Method, &'static str)> {
    routes()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}
