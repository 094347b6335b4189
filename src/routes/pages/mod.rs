//! The HTML pages: signup, login (and its second step), recovery, account and its security,
//! and the superusers' admin pages.
//!
//! Every form is POST → 303 → GET, carries the session's CSRF token (checked by `routes::web::CsrfForm`),
//! and reports back through flash messages or by re-rendering with its field errors.

mod account;
mod admin_audit;
mod admin_clients;
mod admin_new_user;
mod admin_user;
mod admin_users;
mod assets;
mod auth;
mod home;
mod oidc;
mod recovery;
mod second_step;
mod security;
mod sign_in;

use actix_web::{guard, web, FromRequest, Handler, Responder, Route};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(page(home::show)))
        .service(
            web::resource("/signup")
                .route(page(auth::signup_form))
                .post(auth::signup),
        )
        .service(
            web::resource("/login")
                .route(page(auth::login_form))
                .post(auth::login),
        )
        .service(
            web::resource("/login/verify")
                .route(page(second_step::form))
                .post(second_step::verify),
        )
        .service(web::resource("/logout").post(auth::logout))
        .service(
            web::resource("/forgot-password")
                .route(page(recovery::forgot_password_form))
                .post(recovery::forgot_password),
        )
        .service(web::resource("/forgot-password/sent").route(page(recovery::link_sent)))
        .service(
            web::resource("/reset-password")
                .route(page(recovery::reset_password_form))
                .post(recovery::reset_password),
        )
        .service(
            web::resource("/invitation")
                .route(page(recovery::invitation_form))
                .post(recovery::accept_invitation),
        )
        .service(
            web::resource("/verify")
                .route(page(recovery::verify_form))
                .post(recovery::verify),
        )
        .service(web::resource("/verify/resend").post(recovery::resend_verification))
        .service(web::resource("/account").route(page(account::show)))
        .service(web::resource("/account/password").post(account::change_password))
        .service(web::resource("/account/email").post(account::change_email))
        .service(
            web::resource("/account/email/confirm")
                .route(page(account::confirm_email_form))
                .post(account::confirm_email),
        )
        .service(web::resource("/account/delete").post(account::delete_account))
        .service(web::resource("/account/data").route(page(account::download_data)))
        .service(web::resource("/account/verify-email").post(recovery::send_verification))
        .service(web::resource("/account/sessions/end-others").post(account::end_other_sessions))
        .service(web::resource("/account/sessions/{id}/end").post(account::end_session))
        .service(web::resource("/account/security").route(page(security::show)))
        .service(
            web::resource("/account/security/totp")
                .route(page(security::enrolment))
                .post(security::begin_totp),
        )
        .service(web::resource("/account/security/totp/confirm").post(security::confirm_totp))
        .service(web::resource("/account/security/totp/disable").post(security::disable_totp))
        .service(
            web::resource("/account/security/recovery-codes").post(security::renew_recovery_codes),
        )
        .service(
            web::resource("/account/security/passkeys/{id}/rename").post(security::rename_passkey),
        )
        .service(
            web::resource("/account/security/passkeys/{id}/remove").post(security::remove_passkey),
        )
        .service(web::resource("/admin/users").route(page(admin_users::list)))
        // Before `/admin/users/{id}`, which would take "new" or "bulk" for an id.
        .service(
            web::resource("/admin/users/new")
                .route(page(admin_new_user::form))
                .post(admin_new_user::create),
        )
        .service(web::resource("/admin/users/bulk").post(admin_users::bulk))
        .service(web::resource("/admin/users/{id}").route(page(admin_user::show)))
        .service(
            web::resource("/admin/users/{id}/{action}")
                .route(page(admin_users::confirm))
                .post(admin_users::act),
        )
        .service(
            web::resource("/admin/users/{id}/sessions/{session}/end").post(admin_user::end_session),
        )
        .service(
            web::resource("/admin/clients")
                .route(page(admin_clients::list))
                .post(admin_clients::create),
        )
        .service(
            web::resource("/admin/clients/{id}/delete")
                .route(page(admin_clients::confirm_delete))
                .post(admin_clients::delete),
        )
        .service(web::resource("/admin/clients/{id}/settings").post(admin_clients::update))
        .service(web::resource("/admin/audit").route(page(admin_audit::list)))
        .service(
            web::resource("/oauth/authorize")
                .route(page(oidc::authorize_get))
                .post(oidc::authorize_post),
        )
        .service(web::resource("/oauth/consent").post(oidc::consent))
        .service(
            web::resource("/oauth/logout")
                .route(page(oidc::logout_get))
                .post(oidc::logout_post),
        )
        .service(web::resource("/account/apps/{client_id}/remove").post(account::remove_app))
        .service(web::resource("/static/{file}").route(page(assets::serve)));
}

/// A page answers GET, and HEAD as HTTP requires wherever GET works (the server sends the
/// headers without the body).
fn page<F, Args>(handler: F) -> Route
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::route()
        .guard(guard::Any(guard::Get()).or(guard::Head()))
        .to(handler)
}
