//! `/account`: the signed-in user's details and the change-password form.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::super::user_agent;
use super::{display_time, flash, render, signed_in_redirect, CsrfForm, FieldErrors, Layout};
use crate::auth::extractors::SignedIn;
use crate::domain::User;
use crate::errors::PageError;
use crate::services::users::OwnChanges;
use crate::services::{sessions, users, ServiceError};
use crate::startup::AppState;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    account: AccountView,
    errors: FieldErrors,
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

fn page(session: &Session, user: &User, errors: FieldErrors) -> Result<AccountPage, PageError> {
    Ok(AccountPage {
        layout: Layout::new(session, Some(user))?,
        account: AccountView::from(user),
        errors,
    })
}

pub async fn show(session: Session, SignedIn(auth): SignedIn) -> Result<HttpResponse, PageError> {
    render(
        StatusCode::OK,
        &page(&session, &auth.user, FieldErrors::default())?,
    )
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
    req: HttpRequest,
    session: Session,
    CsrfForm(form): CsrfForm<PasswordFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    if form.new_password != form.new_password_confirm {
        errors.add("new_password_confirm", "The two passwords don’t match.");
    } else {
        let changes = OwnChanges {
            password: Some(form.new_password.into()),
            current_password: Some(form.current_password.into()),
            ..OwnChanges::default()
        };
        match users::update_own(&state, &auth.user, changes).await {
            Ok(user) => {
                let tokens = sessions::start(&state, &user, user_agent(&req)).await?;
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
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &page(&session, &auth.user, errors)?,
    )
}
