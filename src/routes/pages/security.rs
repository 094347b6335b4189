//! `/account/security`: the account's second factors (the authenticator app, recovery codes,
//! passkeys), and the pages that set up the app and show recovery codes once.
//!
//! A pending app's secret stays in the database, sealed, between the password and the code
//! that confirms it: the enrolment page shows it again from there, and only to the session
//! that gave the password (the page session remembers which one; the secret never travels
//! back from the browser).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde::Deserialize;

use crate::auth::mfa::RECOVERY_CODES;
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{Authenticated, SignedIn};
use crate::routes::web::{display_date, flash, render, see_other, CsrfForm, FieldErrors, Layout};
use crate::services::context::{Context, Origin};
use crate::services::mfa::{self, TotpEnrolment};
use crate::services::ServiceError;
use crate::state::AppState;

const SECURITY: &str = "/account/security";
const ENROLMENT: &str = "/account/security/totp";
/// The page session's note of the signed-in session that began enrolling an app.
const ENROLMENT_KEY: &str = "totp_enrolment";
/// At most this many recovery codes left is worth a warning.
const FEW_CODES: i64 = 3;
const WRONG_PASSWORD: &str = "That is not your current password.";

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    layout: Layout,
    totp: bool,
    has_factor: bool,
    /// `MFA_REQUIRED` applies to this user.
    required: bool,
    recovery_left: i64,
    recovery_total: usize,
    recovery_low: bool,
    passkeys: Vec<PasskeyView>,
    errors: FieldErrors,
}

/// One passkey, ready to display.
struct PasskeyView {
    id: String,
    name: String,
    added: String,
    last_used: Option<String>,
}

async fn security_page(
    state: &AppState,
    session: &Session,
    auth: &Authenticated,
    errors: FieldErrors,
) -> Result<SecurityPage, PageError> {
    let factors = mfa::factors(state, auth.user.id).await?;
    let has_factor = factors.totp || !factors.passkeys.is_empty();
    Ok(SecurityPage {
        layout: Layout::new(state, session, Some(auth))?,
        totp: factors.totp,
        has_factor,
        required: state.mfa_policy.applies_to(auth.user.is_superuser),
        recovery_left: factors.recovery_codes_left,
        recovery_total: RECOVERY_CODES,
        recovery_low: factors.recovery_codes_left <= FEW_CODES,
        passkeys: factors
            .passkeys
            .into_iter()
            .map(|p| PasskeyView {
                id: p.id.to_string(),
                name: p.name,
                added: display_date(p.created_at),
                last_used: p.last_used_at.map(display_date),
            })
            .collect(),
        errors,
    })
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let page = security_page(&state, &session, &auth, FieldErrors::default()).await?;
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct PasswordField {
    #[serde(default)]
    current_password: String,
}

/// Re-renders the security page with one form's password refused.
async fn wrong_password(
    state: &AppState,
    session: &Session,
    auth: &Authenticated,
    field: &'static str,
) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    errors.add(field, WRONG_PASSWORD);
    let page = security_page(state, session, auth, errors).await?;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// `POST /account/security/totp`: after the current password, a new pending secret; the
/// enrolment page shows it.
pub async fn begin_totp(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<PasswordField>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let ctx = Context::user(&auth.user, origin);
    let password = Some(form.current_password.into());
    match mfa::begin_totp(&state, &ctx, &auth.user, password).await {
        Ok(_) => {
            session
                .insert(ENROLMENT_KEY, auth.grant.session_id.to_string())
                .map_err(PageError::internal)?;
            Ok(see_other(ENROLMENT))
        }
        Err(ServiceError::BadCurrentPassword) => {
            wrong_password(&state, &session, &auth, "setup-password").await
        }
        Err(ServiceError::MfaAlreadyEnabled) => {
            flash::info(&session, "Your authenticator app is already on.");
            Ok(see_other(SECURITY))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "security_totp.html")]
struct EnrolmentPage {
    layout: Layout,
    email: String,
    /// The QR code of the `otpauth://` address, an SVG made here.
    qr_svg: String,
    /// The secret in groups of four, for typing.
    secret_groups: String,
    errors: FieldErrors,
}

/// The enrolment page of the app this session began enrolling; `None` when there is none (it
/// was confirmed, replaced elsewhere, or begun by another session).
async fn enrolment_page(
    state: &AppState,
    session: &Session,
    auth: &Authenticated,
    errors: FieldErrors,
) -> Result<Option<EnrolmentPage>, PageError> {
    let began_here = session
        .get::<String>(ENROLMENT_KEY)
        .ok()
        .flatten()
        .is_some_and(|id| id == auth.grant.session_id.to_string());
    if !began_here {
        return Ok(None);
    }
    let Some(TotpEnrolment {
        secret,
        otpauth_uri,
    }) = mfa::pending_totp(state, &auth.user).await?
    else {
        return Ok(None);
    };
    Ok(Some(EnrolmentPage {
        layout: Layout::new(state, session, Some(auth))?,
        email: auth.user.email.clone(),
        qr_svg: qr_svg(&otpauth_uri)?,
        secret_groups: groups_of_four(&secret),
        errors,
    }))
}

/// Back to the security page, when there is no enrolment to show.
fn nothing_pending(session: &Session) -> HttpResponse {
    session.remove(ENROLMENT_KEY);
    flash::info(
        session,
        "No authenticator app is being set up in this browser right now.",
    );
    see_other(SECURITY)
}

/// `GET /account/security/totp`: the QR code and setup key of the pending app.
pub async fn enrolment(
    state: web::Data<AppState>,
    session: Session,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    match enrolment_page(&state, &session, &auth, FieldErrors::default()).await? {
        Some(page) => render(StatusCode::OK, &page),
        None => Ok(nothing_pending(&session)),
    }
}

#[derive(Deserialize)]
pub struct CodeField {
    #[serde(default)]
    code: String,
}

#[derive(Template)]
#[template(path = "security_recovery_codes.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
    /// A `data:` address of the codes as a text file.
    download_href: String,
    /// The codes come with a newly confirmed app.
    enrolled: bool,
}

fn codes_page(
    state: &AppState,
    session: &Session,
    auth: &Authenticated,
    codes: Vec<String>,
    enrolled: bool,
) -> Result<HttpResponse, PageError> {
    let text = format!(
        "Gatehouse recovery codes for {}\nEach code signs you in once. Keep them somewhere safe.\n\n{}\n",
        auth.user.email,
        codes.join("\n")
    );
    let page = RecoveryCodesPage {
        layout: Layout::new(state, session, Some(auth))?,
        download_href: format!(
            "data:text/plain;charset=utf-8,{}",
            utf8_percent_encode(&text, NON_ALPHANUMERIC)
        ),
        codes,
        enrolled,
    };
    render(StatusCode::OK, &page)
}

/// `POST /account/security/totp/confirm`: a code from the app turns it on; the recovery codes
/// are shown this once.
pub async fn confirm_totp(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<CodeField>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let code = form.code.trim();
    let mut errors = FieldErrors::default();
    if code.is_empty() {
        errors.add("code", "Enter the 6-digit code your app shows.");
    } else {
        let ctx = Context::user(&auth.user, origin);
        match mfa::confirm_totp(&state, &ctx, &auth.user, code).await {
            Ok(codes) => {
                session.remove(ENROLMENT_KEY);
                return codes_page(&state, &session, &auth, codes, true);
            }
            Err(ServiceError::MfaCodeInvalid) => errors.add(
                "code",
                "That code didn’t match. Enter the newest code your app shows for Gatehouse.",
            ),
            Err(ServiceError::MfaNotPending) => return Ok(nothing_pending(&session)),
            Err(other) => return Err(other.into()),
        }
    }
    match enrolment_page(&state, &session, &auth, errors).await? {
        Some(page) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        None => Ok(nothing_pending(&session)),
    }
}

/// `POST /account/security/totp/disable`: after the current password.
pub async fn disable_totp(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<PasswordField>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let ctx = Context::user(&auth.user, origin);
    let password = Some(form.current_password.into());
    match mfa::disable_totp(&state, &ctx, &auth.user, password).await {
        Ok(()) => {
            flash::success(&session, "Your authenticator app has been turned off.");
            Ok(see_other(SECURITY))
        }
        Err(ServiceError::BadCurrentPassword) => {
            wrong_password(&state, &session, &auth, "disable-password").await
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /account/security/recovery-codes`: a new set, shown this once; the old set is void.
pub async fn renew_recovery_codes(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    CsrfForm(form): CsrfForm<PasswordField>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let ctx = Context::user(&auth.user, origin);
    let password = Some(form.current_password.into());
    match mfa::renew_recovery_codes(&state, &ctx, &auth.user, password).await {
        Ok(codes) => codes_page(&state, &session, &auth, codes, false),
        Err(ServiceError::BadCurrentPassword) => {
            wrong_password(&state, &session, &auth, "renew-password").await
        }
        Err(ServiceError::MfaNotEnabled) => {
            flash::error(
                &session,
                "Recovery codes come with an authenticator app: set one up first.",
            );
            Ok(see_other(SECURITY))
        }
        Err(other) => Err(other.into()),
    }
}

/// The QR code of `content` as an inline SVG element, named for assistive technology.
fn qr_svg(content: &str) -> Result<String, PageError> {
    let code =
        QrCode::with_error_correction_level(content, EcLevel::M).map_err(PageError::internal)?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inside HTML, the XML declaration has no place.
    let element = image
        .find("<svg")
        .map(|start| &image[start..])
        .ok_or_else(|| PageError::internal("the QR code renderer made no <svg>"))?;
    Ok(element.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" focusable=\"false\" ",
        1,
    ))
}

/// `ABCDEFGHIJ` as `ABCD EFGH IJ`.
fn groups_of_four(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_shown_in_groups_of_four() {
        assert_eq!(groups_of_four("ABCDEFGHIJ"), "ABCD EFGH IJ");
        assert_eq!(groups_of_four("ABCD"), "ABCD");
    }

    #[test]
    fn the_qr_code_is_an_inline_svg_with_a_name() {
        let svg = qr_svg("otpauth://totp/Gatehouse:a%40example.com?secret=ABCD").unwrap();
        assert!(svg.starts_with("<svg role=\"img\" aria-label="), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("<?xml"), "{svg}");
    }
}
