//! `/account`: the signed-in user's details, the change-password form, and their sessions.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::{device_name, ClientId, User};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{Authenticated, SignedIn};
use crate::routes::web::{
    display_time, flash, render, see_other, signed_in_redirect, CsrfForm, FieldErrors, Layout,
    NoFields, When,
};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::sessions::LogoutScope;
use crate::services::users::OwnChanges;
use crate::services::{mfa, oidc, sessions, users, ServiceError};
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
