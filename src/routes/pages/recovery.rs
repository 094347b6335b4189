//! `/forgot-password`, `/reset-password`, `/verify`, `/invitation`: the pages behind the links
//! in emails, and the buttons that ask for a verification link.
//!
//! A link only opens a page with a form; the token is spent by that form's POST, because mail
//! scanners fetch every link in a message and a GET must change nothing.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::Email;
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{SignedIn, Visitor};
use crate::routes::web::{
    email_error, flash, render, see_other, signed_out_redirect, CsrfForm, FieldErrors, Layout,
    NoFields,
};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::recovery::LinkPurpose;
use crate::services::{invitations, recovery, ServiceError};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPasswordPage {
    layout: Layout,
    email: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub struct EmailFields {
    #[serde(default)]
    email: String,
}

pub async fn forgot_password_form(
    state: web::Data<AppState>,
    session: Session,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let page = ForgotPasswordPage {
        layout: Layout::new(&state, &session, visitor.as_ref())?,
        email: String::new(),
        errors: FieldErrors::default(),
    };
    render(StatusCode::OK, &page)
}

/// Answers the same whether or not an account has the address.
pub async fn forgot_password(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<EmailFields>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(_) => {
            let mut errors = FieldErrors::default();
            errors.add("email", email_error(&form.email));
            let page = ForgotPasswordPage {
                layout: Layout::new(&state, &session, visitor.as_ref())?,
                email: form.email,
                errors,
            };
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let shown = email.to_string();
    recovery::forgot_password(&state, &Context::anonymous(origin), email).await?;
    session
        .insert(LINK_SENT_TO, shown)
        .map_err(PageError::internal)?;
    Ok(see_other("/forgot-password/sent"))
}

/// The page session's note of the address a reset link was asked for, for "Check your inbox".
const LINK_SENT_TO: &str = "reset_link_sent_to";

#[derive(Template)]
#[template(path = "check_inbox.html")]
struct CheckInboxPage {
    layout: Layout,
    email: String,
    valid_for: String,
}

/// "Check your inbox", after asking for a reset link.
pub async fn link_sent(
    state: web::Data<AppState>,
    session: Session,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let Some(email) = session
        .get::<String>(LINK_SENT_TO)
        .map_err(PageError::internal)?
    else {
        return Ok(see_other("/forgot-password"));
    };
    let page = CheckInboxPage {
        layout: Layout::new(&state, &session, visitor.as_ref())?,
        email,
        valid_for: recovery::reset_link_lifetime(&state),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPasswordPage {
    layout: Layout,
    token: String,
    errors: FieldErrors,
}

/// The page for a link that cannot be used (unknown, expired or spent), and where to get a
/// new one.
#[derive(Template)]
#[template(path = "bad_link.html")]
struct BadLinkPage {
    layout: Layout,
    message: &'static str,
    next_step: NextStep,
}

/// Where someone with a dead link gets a new one.
enum NextStep {
    ForgotPassword,
    AccountPage,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

pub async fn reset_password_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<TokenQuery>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let layout = Layout::new(&state, &session, visitor.as_ref())?;
    let token = query.into_inner().token.unwrap_or_default();
    // A dead link says so now, before anyone types a new password.
    let works = recovery::link_works(&state, &token, LinkPurpose::Reset).await?;
    match works.then_some(token) {
        Some(token) => {
            let page = ResetPasswordPage {
                layout,
                token,
                errors: FieldErrors::default(),
            };
            render(StatusCode::OK, &page)
        }
        None => bad_reset_link(layout),
    }
}

#[derive(Deserialize)]
pub struct ResetFields {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

/// Sets the new password. Every session of the account has ended, so this browser forgets
/// its tokens too.
pub async fn reset_password(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<ResetFields>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let mut errors = new_password_errors(&form);
    if errors.is_empty() {
        let ctx = Context::anonymous(origin);
        match recovery::reset_password(&state, &ctx, &form.token, form.new_password.into()).await {
            Ok(_) => {
                flash::success(
                    &session,
                    "Your password has been reset. Log in with your new password.",
                );
                return signed_out_redirect(&state, &session, "/login");
            }
            Err(ServiceError::BadToken) => {
                let layout = Layout::new(&state, &session, visitor.as_ref())?;
                return bad_reset_link(layout);
            }
            Err(ServiceError::WeakPassword(why)) => errors.add("new_password", why.to_string()),
            Err(other) => return Err(other.into()),
        }
    }
    let page = ResetPasswordPage {
        layout: Layout::new(&state, &session, visitor.as_ref())?,
        token: form.token,
        errors,
    };
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// What is missing from a new password and its confirmation, before the policy is asked.
fn new_password_errors(form: &ResetFields) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if form.new_password.is_empty() {
        errors.add("new_password", "Enter a new password");
    }
    if form.new_password_confirm.is_empty() && !form.new_password.is_empty() {
        errors.add(
            "new_password_confirm",
            "Enter the new password again to confirm it",
        );
    } else if form.new_password != form.new_password_confirm {
        errors.add("new_password_confirm", "The two passwords don’t match.");
    }
    errors
}

fn bad_reset_link(layout: Layout) -> Result<HttpResponse, PageError> {
    let page = BadLinkPage {
        layout,
        message: "This password reset link is invalid, has expired or has already been used.",
        next_step: NextStep::ForgotPassword,
    };
    render(StatusCode::BAD_REQUEST, &page)
}

#[derive(Template)]
#[template(path = "accept_invitation.html")]
struct InvitationPage {
    layout: Layout,
    token: String,
    errors: FieldErrors,
}

/// An invitation's link: the form that chooses the account's first password.
pub async fn invitation_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<TokenQuery>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let layout = Layout::new(&state, &session, visitor.as_ref())?;
    let token = query.into_inner().token.unwrap_or_default();
    let works = recovery::link_works(&state, &token, LinkPurpose::Invite).await?;
    match works.then_some(token) {
        Some(token) => {
            let page = InvitationPage {
                layout,
                token,
                errors: FieldErrors::default(),
            };
            render(StatusCode::OK, &page)
        }
        None => bad_invitation_link(layout),
    }
}

pub async fn accept_invitation(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<ResetFields>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let mut errors = new_password_errors(&form);
    if errors.is_empty() {
        let ctx = Context::anonymous(origin);
        match invitations::accept(&state, &ctx, &form.token, form.new_password.into()).await {
            Ok(user) => {
                flash::success(
                    &session,
                    format!("Your password is set. Log in as {} with it.", user.email),
                );
                return signed_out_redirect(&state, &session, "/login");
            }
            Err(ServiceError::BadToken) => {
                let layout = Layout::new(&state, &session, visitor.as_ref())?;
                return bad_invitation_link(layout);
            }
            Err(ServiceError::WeakPassword(why)) => errors.add("new_password", why.to_string()),
            Err(other) => return Err(other.into()),
        }
    }
    let page = InvitationPage {
        layout: Layout::new(&state, &session, visitor.as_ref())?,
        token: form.token,
        errors,
    };
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

fn bad_invitation_link(layout: Layout) -> Result<HttpResponse, PageError> {
    let page = BadLinkPage {
        layout,
        message: "This invitation link is invalid, has expired or has already been used.",
        next_step: NextStep::ForgotPassword,
    };
    render(StatusCode::BAD_REQUEST, &page)
}

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyEmailPage {
    layout: Layout,
    token: String,
}

/// Shows the button that verifies the address; opening the link alone changes nothing.
pub async fn verify_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<TokenQuery>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let layout = Layout::new(&state, &session, visitor.as_ref())?;
    let token = query.into_inner().token.unwrap_or_default();
    let works = recovery::link_works(&state, &token, LinkPurpose::Verify).await?;
    match works.then_some(token) {
        Some(token) => render(StatusCode::OK, &VerifyEmailPage { layout, token }),
        None => bad_verify_link(layout),
    }
}

#[derive(Deserialize)]
pub struct TokenFields {
    #[serde(default)]
    token: String,
}

pub async fn verify(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<TokenFields>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let ctx = Context::anonymous(origin);
    match recovery::verify(&state, &ctx, &form.token).await {
        Ok(_) => flash::success(&session, "Your email address is verified."),
        Err(ServiceError::AlreadyVerified) => {
            flash::success(&session, "Your email address was already verified.")
        }
        Err(ServiceError::BadToken) => {
            let layout = Layout::new(&state, &session, visitor.as_ref())?;
            return bad_verify_link(layout);
        }
        Err(other) => return Err(other.into()),
    }
    Ok(see_other("/account"))
}

/// The 400 page of a dead link to confirm a new address.
pub(super) fn bad_email_change_link(layout: Layout) -> Result<HttpResponse, PageError> {
    let page = BadLinkPage {
        layout,
        message: "This link to confirm a new email address is invalid, has expired or has \
                  already been used.",
        next_step: NextStep::AccountPage,
    };
    render(StatusCode::BAD_REQUEST, &page)
}

fn bad_verify_link(layout: Layout) -> Result<HttpResponse, PageError> {
    let page = BadLinkPage {
        layout,
        message: "This verification link is invalid or has expired.",
        next_step: NextStep::AccountPage,
    };
    render(StatusCode::BAD_REQUEST, &page)
}

/// "Send the link again", from the login page that refused an unverified address. Answers
/// the same whether or not the address needs verifying.
pub async fn resend_verification(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<EmailFields>,
) -> Result<HttpResponse, PageError> {
    // The address comes from a hidden field the login page filled in: a bad one was tampered with.
    let email = Email::parse(&form.email).map_err(|_| PageError::BadRequest)?;
    recovery::request_verification(&state, &Context::anonymous(origin), email).await?;
    flash::success(
        &session,
        "If that address needs verifying, we’ve sent it a new link.",
    );
    Ok(see_other("/login"))
}

/// "Send verification email", from the account page.
pub async fn send_verification(
    state: web::Data<AppState>,
    session: Session,
    CsrfForm(_): CsrfForm<NoFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    if auth.user.is_verified {
        flash::success(&session, "Your email address was already verified.");
    } else {
        recovery::send_verification(&state, &auth.user).await?;
        flash::success(
            &session,
            format!("We’ve sent a verification link to {}.", auth.user.email),
        );
    }
    Ok(see_other("/account"))
}
