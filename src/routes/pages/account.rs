//! `/account`: the signed-in user's details, the change-password form, and their sessions.

use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::recovery as recovery_pages;
use crate::domain::{device_name, ClientId, Email, User};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{Authenticated, SignedIn, Visitor};
use crate::routes::web::{
    display_time, email_error, flash, render, see_other, signed_in_redirect, signed_out_redirect,
    CsrfForm, FieldErrors, Layout, NoFields, When,
};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::recovery::LinkPurpose;
use crate::services::sessions::LogoutScope;
use crate::services::users::OwnChanges;
use crate::services::{mfa, oidc, recovery, sessions, users, ServiceError};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    account: AccountView,
    sessions: Vec<SessionView>,
    /// The account has a second factor.
    two_factor: bool,
    /// Applications the user has allowed (OpenID Connect).
    apps: Vec<AppView>,
    errors: FieldErrors,
}

/// An application the user allowed, ready to display.
struct AppView {
    client_id: String,
    name: String,
    scopes: String,
    granted: String,
}

/// One signed-in device, ready to display.
struct SessionView {
    id: String,
    /// "Chrome on Windows".
    device: String,
    /// The whole user agent, for whoever wants the detail.
    user_agent: String,
    /// The client address it started from, or "".
    address: String,
    started: When,
    last_active: When,
    current: bool,
}

/// The account's details, ready to display.
struct AccountView {
    id: String,
    email: String,
    created: String,
    is_verified: bool,
    is_superuser: bool,
}

impl From<&User> for AccountView {
    fn from(user: &User) -> AccountView {
        AccountView {
            id: user.id.to_string(),
            email: user.email.clone(),
            created: display_time(user.created_at),
            is_verified: user.is_verified,
            is_superuser: user.is_superuser,
        }
    }
}

async fn page(
    state: &AppState,
    session: &Session,
    auth: &Authenticated,
    errors: FieldErrors,
) -> Result<AccountPage, PageError> {
    let current = auth.grant.session_id.to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sessions = sessions::list_live(state, auth.user.id)
        .await?
        .into_iter()
        .map(|live| SessionView {
            current: live.id == current,
            device: device_name(live.user_agent.as_deref()),
            user_agent: live.user_agent.unwrap_or_default(),
            address: live.ip_address.unwrap_or_default(),
            started: When::of(live.created_at, now),
            last_active: When::of(live.last_used_at, now),
            id: live.id,
        })
        .collect();
    let factors = mfa::factors(state, auth.user.id).await?;
    let apps = oidc::connected_apps(state, auth.user.id)
        .await?
        .into_iter()
        .map(|app| AppView {
            client_id: app.client_id.to_string(),
            scopes: app.scopes.to_space_separated(),
            granted: display_time(app.granted_at),
            name: app.name,
        })
        .collect();
    Ok(AccountPage {
        layout: Layout::new(state, session, Some(auth))?,
        account: AccountView::from(&auth.user),
        sessions,
        two_factor: factors.totp || !factors.passkeys.is_empty(),
        apps,
        errors,
    })
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let page = page(&state, &session, &auth, FieldErrors::default()).await?;
    render(StatusCode::OK, &page)
}

/// Ends another of the user's sessions (a lost phone, a shared computer).
pub async fn end_session(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    origin: Origin,
    CsrfForm(_): CsrfForm<NoFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let session_id = Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    let ctx = Context::user(&auth.user, origin);
    match sessions::end_own(&state, &ctx, auth.user.id, session_id).await {
        Ok(()) => flash::success(&session, "That session has been signed out."),
        Err(ServiceError::NotFound) => flash::error(&session, "That session had already ended."),
        Err(other) => return Err(other.into()),
    }
    Ok(see_other("/account"))
}

/// "Remove access": the application's tokens end and its consent is forgotten.
pub async fn remove_app(
    state: web::Data<AppState>,
    session: Session,
    client_id: web::Path<String>,
    origin: Origin,
    CsrfForm(_): CsrfForm<NoFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let client_id = ClientId::parse(&client_id).ok_or(PageError::NotFound)?;
    let ctx = Context::user(&auth.user, origin);
    match oidc::remove_access(&state, &ctx, &auth.user, client_id).await {
        Ok(()) => flash::success(
            &session,
            "The application’s access has been removed; it has been signed out.",
        ),
        Err(ServiceError::NotFound) => {
            flash::error(&session, "That application had no access already.")
        }
        Err(other) => return Err(other.into()),
    }
    Ok(see_other("/account"))
}

/// Ends every session of the user but this one.
pub async fn end_other_sessions(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    CsrfForm(_): CsrfForm<NoFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let ctx = Context::user(&auth.user, origin);
    sessions::logout_scoped(&state, &ctx, auth.grant, LogoutScope::Others).await?;
    flash::success(&session, "Every other session has been signed out.");
    Ok(see_other("/account"))
}

#[derive(Deserialize)]
pub struct PasswordFields {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

/// Changes the password. Every session of the user ends (that is the point of changing it),
/// so this browser gets a fresh one.
pub async fn change_password(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<PasswordFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    // Every error at once, in the order of the fields.
    let mut errors = FieldErrors::default();
    if form.current_password.is_empty() {
        errors.add("current_password", "Enter your current password");
    }
    if form.new_password.is_empty() {
        errors.add("new_password", "Enter a new password");
    } else if let Err(why) = state
        .password_policy
        .parse(&form.new_password, &auth.user.email)
    {
        errors.add("new_password", why.to_string());
    }
    if form.new_password_confirm.is_empty() && !form.new_password.is_empty() {
        errors.add(
            "new_password_confirm",
            "Enter the new password again to confirm it",
        );
    } else if form.new_password != form.new_password_confirm {
        errors.add("new_password_confirm", "The two passwords don’t match.");
    }
    if errors.is_empty() {
        let changes = OwnChanges {
            password: Some(form.new_password.into()),
            current_password: Some(form.current_password.into()),
            session: Some(auth.grant.session_id),
            ..OwnChanges::default()
        };
        let ctx = Context::user(&auth.user, origin);
        match users::update_own(&state, &ctx, &auth.user, changes).await {
            Ok(user) => {
                let tokens = sessions::start(&state, &user, &ctx.origin).await?;
                flash::success(
                    &session,
                    "Password changed. You have been signed out everywhere else.",
                );
                return signed_in_redirect(&state, &session, &tokens, "/account");
            }
            Err(ServiceError::BadCurrentPassword) => {
                errors.add("current_password", "That is not your current password.")
            }
            Err(ServiceError::WeakPassword(why)) => errors.add("new_password", why.to_string()),
            Err(other) => return Err(other.into()),
        }
    }
    let page = page(&state, &session, &auth, errors).await?;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[derive(Deserialize)]
pub struct EmailFields {
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    email_password: String,
}

/// Asks to move the account to another address: a link goes there, and nothing changes
/// until it is opened.
pub async fn change_email(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<EmailFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    let email = Email::parse(&form.new_email)
        .map_err(|_| errors.add("new_email", email_error(&form.new_email)))
        .ok();
    if let Some(email) = &email {
        if email.as_str() == auth.user.email {
            errors.add("new_email", "That is already your email address");
        }
    }
    if form.email_password.is_empty() {
        errors.add("email_password", "Enter your current password");
    }
    if let (Some(email), true) = (email, errors.is_empty()) {
        let ctx = Context::user(&auth.user, origin);
        let shown = email.to_string();
        let password = form.email_password.into();
        match recovery::request_email_change(&state, &ctx, &auth.user, email, password).await {
            Ok(()) => {
                flash::success(
                    &session,
                    format!(
                        "Check your inbox at {shown}: open the link we’ve sent there to finish \
                         changing your address. Until then, nothing changes."
                    ),
                );
                return Ok(see_other("/account"));
            }
            Err(ServiceError::BadCurrentPassword) => {
                errors.add("email_password", "That is not your current password.")
            }
            Err(ServiceError::EmailTaken) => errors.add(
                "new_email",
                "Another account already uses this email address.",
            ),
            Err(other) => return Err(other.into()),
        }
    }
    let page = page(&state, &session, &auth, errors).await?;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[derive(Template)]
#[template(path = "confirm_email_change.html")]
struct ConfirmEmailPage {
    layout: Layout,
    token: String,
}

#[derive(Deserialize)]
pub struct TokenFields {
    #[serde(default)]
    token: String,
}

/// The page the link to a new address opens: a button, as opening it alone changes nothing.
pub async fn confirm_email_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<TokenFields>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let layout = Layout::new(&state, &session, visitor.as_ref())?;
    let token = query.into_inner().token;
    if !recovery::link_works(&state, &token, LinkPurpose::ChangeEmail).await? {
        return recovery_pages::bad_email_change_link(layout);
    }
    render(StatusCode::OK, &ConfirmEmailPage { layout, token })
}

/// Moves the account to the new address; this browser stays signed in if it is the
/// account's, every other session ends.
pub async fn confirm_email(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<TokenFields>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let ctx = Context::anonymous(origin);
    let keep = visitor
        .as_ref()
        .map(|auth| (auth.user.id, auth.grant.session_id));
    match recovery::confirm_email_change(&state, &ctx, &form.token, keep).await {
        Ok(user) => {
            flash::success(
                &session,
                format!(
                    "Your email address is now {}. We’ve told your old address.",
                    user.email
                ),
            );
            let stays = visitor.is_some_and(|auth| auth.user.id == user.id);
            Ok(see_other(if stays { "/account" } else { "/login" }))
        }
        Err(ServiceError::BadToken) => {
            recovery_pages::bad_email_change_link(Layout::new(&state, &session, visitor.as_ref())?)
        }
        Err(ServiceError::EmailTaken) => {
            flash::error(
                &session,
                "Another account started using that address in the meantime, so yours was not \
                 changed.",
            );
            Ok(see_other("/account"))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct DeleteFields {
    #[serde(default)]
    delete_password: String,
}

/// Deletes the account, after the current password.
pub async fn delete_account(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<DeleteFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    if form.delete_password.is_empty() {
        errors.add("delete_password", "Enter your current password");
    } else {
        let ctx = Context::user(&auth.user, origin);
        let password = form.delete_password.into();
        match users::delete_own(&state, &ctx, &auth.user, password).await {
            Ok(()) => {
                flash::success(&session, "Your account has been deleted. Goodbye!");
                return signed_out_redirect(&state, &session, "/");
            }
            Err(ServiceError::BadCurrentPassword) => {
                errors.add("delete_password", "That is not your current password.")
            }
            Err(ServiceError::LastSuperuser) => errors.add(
                "delete_password",
                "You are the last superuser: make someone else a superuser before you delete \
                 your account.",
            ),
            Err(other) => return Err(other.into()),
        }
    }
    let page = page(&state, &session, &auth, errors).await?;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// "Download my data": everything kept about the account, as a JSON file.
pub async fn download_data(
    state: web::Data<AppState>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let data = users::export_own(&state, &auth.user).await?;
    let body = serde_json::to_vec_pretty(&data).map_err(PageError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"gatehouse-account.json\"",
        ))
        .body(body))
}
