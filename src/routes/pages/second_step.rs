//! `/login/verify`: the second step of a page login, after a right password for an account
//! with a second factor.
//!
//! The step's token (a bearer secret for five minutes, worthless without the second factor)
//! and the factors the account has wait in the page session, an encrypted HttpOnly cookie
//! (`routes::web::middleware::page_session`); they never appear in an address.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::sign_in::{after_login, end_previous_session, AFTER_LOGIN};
use crate::domain::SecondFactor;
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::Visitor;
use crate::routes::web::{flash, next_or, render, see_other, CsrfForm, Layout};
use crate::services::context::{Context, Origin};
use crate::services::mfa::{self, Proof};
use crate::services::second_step::SecondStep;
use crate::services::ServiceError;
use crate::state::AppState;

const STEP_KEY: &str = "mfa_step";
const VERIFY: &str = "/login/verify";

/// A login's second step, as the page session keeps it.
#[derive(Serialize, Deserialize)]
struct PendingStep {
    token: String,
    totp: bool,
    recovery_code: bool,
    passkey: bool,
    next: String,
}

/// Keeps the step for `/login/verify` and sends the browser there.
pub(super) fn start(
    session: &Session,
    step: SecondStep,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let has = |factor| step.methods.contains(&factor);
    let pending = PendingStep {
        totp: has(SecondFactor::Totp),
        recovery_code: has(SecondFactor::RecoveryCode),
        passkey: has(SecondFactor::Passkey),
        token: step.mfa_token,
        next: next.to_owned(),
    };
    session
        .insert(STEP_KEY, pending)
        .map_err(PageError::internal)?;
    Ok(see_other(VERIFY))
}

fn pending(session: &Session) -> Option<PendingStep> {
    session.get::<PendingStep>(STEP_KEY).ok().flatten()
}

#[derive(Template)]
#[template(path = "login_verify.html")]
struct VerifyPage {
    layout: Layout,
    /// Show the recovery code field (else the app's code field, if the account has the app).
    recovery: bool,
    totp: bool,
    recovery_codes: bool,
    /// The account has a passkey, and the script that uses one is served.
    passkey: bool,
    /// For the passkey script, which completes the step itself.
    token: String,
    next: String,
    error: &'static str,
}

impl VerifyPage {
    fn new(layout: Layout, step: &PendingStep, recovery: bool, error: &'static str) -> VerifyPage {
        let passkey = step.passkey;
        VerifyPage {
            layout,
            // Without the app, a passkey comes first; without either, a recovery code is the
            // only field there is.
            recovery: step.recovery_code && (recovery || !(step.totp || passkey)),
            totp: step.totp,
            recovery_codes: step.recovery_code,
            passkey,
            token: step.token.clone(),
            next: step.next.clone(),
            error,
        }
    }
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    method: Option<String>,
}

/// `GET /login/verify[?method=recovery_code]`.
pub async fn form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<VerifyQuery>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let Some(step) = pending(&session) else {
        return Ok(see_other("/login"));
    };
    let recovery = query.method.as_deref() == Some("recovery_code");
    let layout = Layout::new(&state, &session, visitor.as_ref())?;
    render(
        StatusCode::OK,
        &VerifyPage::new(layout, &step, recovery, ""),
    )
}

#[derive(Deserialize)]
pub struct VerifyFields {
    code: Option<String>,
    recovery_code: Option<String>,
}

/// `POST /login/verify`: completes the login with a code, as the password login would have.
pub async fn verify(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<VerifyFields>,
    Visitor(previous): Visitor,
) -> Result<HttpResponse, PageError> {
    let Some(step) = pending(&session) else {
        return Ok(took_too_long(&session, AFTER_LOGIN));
    };
    let (proof, recovery) = match (form.code, form.recovery_code) {
        (Some(code), None) => (Proof::Code(code.trim().to_owned()), false),
        (None, Some(code)) => (Proof::RecoveryCode(code.trim().to_owned()), true),
        _ => return Err(PageError::BadRequest),
    };
    let empty = match &proof {
        Proof::Code(code) | Proof::RecoveryCode(code) => code.is_empty(),
        Proof::Passkey { .. } => false,
    };
    let refused = |error| -> Result<HttpResponse, PageError> {
        let layout = Layout::new(&state, &session, previous.as_ref())?;
        let page = VerifyPage::new(layout, &step, recovery, error);
        render(StatusCode::BAD_REQUEST, &page)
    };
    if empty {
        return refused(if recovery {
            "Enter one of your recovery codes."
        } else {
            "Enter the 6-digit code your app shows."
        });
    }
    let ctx = Context::anonymous(origin);
    match mfa::complete_login(&state, &ctx, &step.token, proof).await {
        Ok(logged_in) => {
            session.remove(STEP_KEY);
            end_previous_session(&state, &ctx, previous.clone()).await?;
            let next = next_or(Some(&step.next), AFTER_LOGIN);
            after_login(&state, &session, logged_in, next.as_str()).await
        }
        Err(ServiceError::MfaCodeInvalid) => refused(if recovery {
            "That recovery code didn’t work. Check it and try again; each code works once."
        } else {
            "That code didn’t work. Enter the newest code your app shows for Gatehouse."
        }),
        Err(ServiceError::MfaTokenInvalid) => Ok(took_too_long(&session, &step.next)),
        Err(other) => Err(other.into()),
    }
}

/// The step is gone (expired, used, or worn out by wrong codes): back to the password.
fn took_too_long(session: &Session, next: &str) -> HttpResponse {
    session.remove(STEP_KEY);
    flash::error(session, "Your sign-in took too long; please start again.");
    let location = if next == AFTER_LOGIN {
        "/login".to_owned()
    } else {
        format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
        )
    };
    see_other(&location)
}
