//! The JSON API: the fastapi-users dialect and its extensions.

mod audit;
mod auth;
pub mod body;
mod clients;
mod meta;
mod oauth;
mod recovery;
mod sessions;
mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/register").post(auth::register))
        .service(web::resource("/auth/jwt/login").post(auth::login))
        .service(web::resource("/auth/jwt/logout").post(auth::logout))
        .service(web::resource("/auth/jwt/refresh").post(auth::refresh))
        .service(web::resource("/auth/token").post(oauth::token))
        .service(web::resource("/auth/cookie/login").post(auth::cookie_login))
        .service(web::resource("/auth/cookie/logout").post(auth::cookie_logout))
        .service(web::resource("/auth/csrf").get(auth::csrf_token))
        .service(web::resource("/auth/forgot-password").post(recovery::forgot_password))
        .service(web::resource("/auth/reset-password").post(recovery::reset_password))
        .service(web::resource("/auth/request-verify-token").post(recovery::request_verify_token))
        .service(web::resource("/auth/verify").post(recovery::verify))
        .service(
            web::resource("/users/me")
                .get(users::me)
                .patch(users::update_me),
        )
        .service(web::resource("/users/me/sessions").get(sessions::list_mine))
        .service(web::resource("/users/me/sessions/{id}").delete(sessions::end_mine))
        .service(web::resource("/users/{id}/sessions").delete(sessions::end_all_of_user))
        .service(
            web::resource("/users/{id}")
                .get(users::get_user)
                .patch(users::update_user)
                .delete(users::delete_user),
        )
        .service(
            web::resource("/clients")
                .get(clients::list)
                .post(clients::create),
        )
        .service(web::resource("/clients/{client_id}").delete(clients::delete))
        .service(web::resource("/audit").get(audit::list))
        .service(web::resource("/.well-known/jwks.json").get(meta::jwks))
        .service(web::resource("/secret").get(meta::secret))
        .service(web::resource("/health").get(meta::health));
}
