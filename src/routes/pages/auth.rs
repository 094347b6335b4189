//! `/signup`, `/login`, `/logout`: the pages that start and end a browser's session.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::second_step;
use super::sign_in::{
    after_login, end_previous_session, AFTER_LOGIN, FACTOR_NEEDED, SET_UP_A_FACTOR,
};
use crate::domain::Email;
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::Visitor;
use crate::routes::web::{
    email_error, flash, next_or, render, see_other, signed_in_redirect, signed_out_redirect,
    CsrfForm, FieldErrors, Layout, NoFields,
};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::{sessions, users, ServiceError};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    email: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub struct SignupFields {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn signup_form(
    state: web::Data<AppState>,
    session: Session,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    if visitor.is_some() {
        return Ok(see_other(AFTER_LOGIN));
    }
    let page = SignupPage {
        layout: Layout::new(&state, &session, visitor.as_ref())?,
        email: String::new(),
        errors: FieldErrors::default(),
    };
    render(StatusCode::OK, &page)
}

pub async fn signup(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<SignupFields>,
    Visitor(previous): Visitor,
) -> Result<HttpResponse, PageError> {
    // Every error at once, in the order of the fields.
    let mut errors = FieldErrors::default();
    let email = Email::parse(&form.email)
        .map_err(|_| errors.add("email", email_error(&form.email)))
        .ok();
    if form.password.is_empty() {
        errors.add("password", "Enter a password");
    } else if let Err(why) = state
        .password_policy
        .parse(&form.password, form.email.trim())
    {
        errors.add("password", why.to_string());
    }
    if form.password_confirm.is_empty() && !form.password.is_empty() {
        errors.add("password_confirm", "Enter the password again to confirm it");
    } else if form.password != form.password_confirm {
        errors.add("password_confirm", "The two passwords don’t match.");
    }
    if let (Some(email), true) = (email, errors.is_empty()) {
        let ctx = Context::anonymous(origin);
        match users::register(&state, &ctx, email, form.password.into()).await {
            // Registration has sent the link; the account may not log in before it is opened.
            Ok(user) if state.email.require_verification => {
                end_previous_session(&state, &ctx, previous).await?;
                flash::success(
                    &session,
                    format!(
                        "Almost done: we’ve sent a link to {}. Open it to verify your address, \
                         then log in.",
                        user.email
                    ),
                );
                return signed_out_redirect(&state, &session, "/login");
            }
            Ok(user) => {
                let tokens = sessions::start(&state, &user, &ctx.origin).await?;
                end_previous_session(&state, &ctx, previous).await?;
                flash::success(&session, "Welcome to Gatehouse! Your account is ready.");
                if state.mfa_policy.applies_to(user.is_superuser) {
                    flash::info(&session, FACTOR_NEEDED);
                    return signed_in_redirect(&state, &session, &tokens, SET_UP_A_FACTOR);
                }
                return signed_in_redirect(&state, &session, &tokens, AFTER_LOGIN);
            }
            Err(ServiceError::EmailTaken) => errors.add_with_link(
                "email",
                "An account with this email already exists.",
                ("/login", "Log in instead"),
            ),
            Err(ServiceError::WeakPassword(why)) => errors.add("password", why.to_string()),
            Err(other) => return Err(other.into()),
        }
    }
    let page = SignupPage {
        layout: Layout::new(&state, &session, previous.as_ref())?,
        email: form.email,
        errors,
    };
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
    /// One message for every failure, in the summary.
    errors: FieldErrors,
    /// The password was right but the address is not verified: offer to send the link again.
    unverified: bool,
    /// Passkeys are on (`PUBLIC_URL` names a domain): offer "Sign in with a passkey".
    passkeys: bool,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// Fills in the email field (an application's `login_hint`).
    email: Option<String>,
}

pub async fn login_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<LoginQuery>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let next = next_or(query.next.as_deref(), AFTER_LOGIN);
    // Someone signed in has nothing to do here, unless an application asks them to log in
    // again (`prompt=login`, `max_age`): then the form is the point.
    if visitor.is_some() && !next.as_str().starts_with(AUTHORIZE) {
        return Ok(see_other(AFTER_LOGIN));
    }
    let page = LoginPage {
        layout: Layout::new(&state, &session, visitor.as_ref())?,
        email: query
            .email
            .as_deref()
            .map(|hint| hint.trim().chars().take(320).collect())
            .unwrap_or_default(),
        next: next.to_string(),
        errors: FieldErrors::default(),
        unverified: false,
        passkeys: state.passkeys.is_some(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct LoginFields {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn login(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<LoginFields>,
    Visitor(previous): Visitor,
) -> Result<HttpResponse, PageError> {
    let next = next_or(form.next.as_deref(), AFTER_LOGIN);
    let ctx = Context::anonymous(origin);
    match sessions::login(&state, &ctx, &form.email, form.password.into()).await {
        Ok(logged_in) => {
            end_previous_session(&state, &ctx, previous).await?;
            after_login(&state, &session, logged_in, next.as_str()).await
        }
        Err(ServiceError::SecondFactorRequired(step)) => {
            second_step::start(&session, step, next.as_str())
        }
        Err(ServiceError::BadCredentials) => {
            let page = LoginPage {
                layout: Layout::new(&state, &session, previous.as_ref())?,
                email: form.email,
                next: next.to_string(),
                // One message for every failure: the page must not tell which part was wrong.
                errors: form_error("Incorrect email or password."),
                unverified: false,
                passkeys: state.passkeys.is_some(),
            };
            render(StatusCode::BAD_REQUEST, &page)
        }
        // Only the right password gets here, so saying so leaks nothing.
        Err(ServiceError::NotVerified) => {
            let page = LoginPage {
                layout: Layout::new(&state, &session, previous.as_ref())?,
                email: form.email,
                next: next.to_string(),
                errors: form_error(
                    "Please verify your email address first: check your inbox for the link.",
                ),
                unverified: true,
                passkeys: state.passkeys.is_some(),
            };
            render(StatusCode::BAD_REQUEST, &page)
        }
        Err(other) => Err(other.into()),
    }
}

/// The address of the authorization endpoint, whose requests may ask for a fresh login.
const AUTHORIZE: &str = "/oauth/authorize";

/// A message about the whole login form, which points at its first field.
fn form_error(message: &'static str) -> FieldErrors {
    let mut errors = FieldErrors::default();
    errors.add_to_form("email", message);
    errors
}

pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    CsrfForm(_): CsrfForm<NoFields>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    if let Some(auth) = visitor {
        let ctx = Context::user(&auth.user, origin);
        sessions::logout(&state, &ctx, auth.grant).await?;
    }
    flash::success(&session, "You have been logged out.");
    signed_out_redirect(&state, &session, "/")
}
