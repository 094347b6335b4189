//! `/account/security`: the account's second factors (the authenticator app, recovery codes,
//! passkeys), and the pages that set up the app and show recovery codes once.
//!
//! Passkeys are added by the passkey script (WebAuthn needs JavaScript) through the JSON API;
//! renaming and removing one are plain forms here.
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
use uuid::Uuid;

use crate::auth::mfa::RECOVERY_CODES;
use crate::domain::{InvalidPasskeyName, PasskeyName};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{Authenticated, SignedIn};
use crate::routes::web::{display_date, flash, render, see_other, CsrfForm, FieldErrors, Layout};
use crate::services::context::{Context, Origin};
use crate::services::mfa::{self, TotpEnrolment};
use crate::services::passkeys;
use crate::services::ServiceError;
use crate::state::AppState;

const SECURITY: &str = "/account/security";
/// The security page at its passkeys.
const PASSKEYS: &str = "/account/security#passkeys";
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
    /// `PUBLIC_URL` names a relying party, so a passkey can be added.
    passkeys_on: bool,
    passkeys: Vec<PasskeyView>,
    errors: FieldErrors,
}

/// One passkey, ready to display, with the ids of its forms' fields and their errors.
struct PasskeyView {
    id: String,
    name: String,
    added: String,
    last_used: Option<String>,
    /// The rename form's field: the name shown in it, its id and its error.
    name_value: String,
    name_field: String,
    name_error: String,
    /// The remove form's password field: its id and its error.
    password_field: String,
    password_error: String,
}

/// A rename or removal of one passkey refused, shown beside that passkey's field.
struct PasskeyRefusal {
    id: Uuid,
    field: PasskeyField,
    message: &'static str,
}

enum PasskeyField {
    /// The new name, as it was typed.
    Name(String),
    Password,
}

async fn security_page(
    state: &AppState,
    session: &Session,
    auth: &Authenticated,
    errors: FieldErrors,
) -> Result<SecurityPage, PageError> {
    security_page_with(state, session, auth, errors, None).await
}

async fn security_page_with(
    state: &AppState,
    session: &Session,
    auth: &Authenticated,
    errors: FieldErrors,
    refusal: Option<PasskeyRefusal>,
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
        passkeys_on: state.passkeys.is_some(),
        passkeys: factors
            .passkeys
            .into_iter()
            .map(|p| {
                let refused = refusal.as_ref().filter(|r| r.id == p.id);
                let (name_value, name_error, password_error) = match refused {
                    Some(PasskeyRefusal {
                        field: PasskeyField::Name(typed),
                        message,
                        ..
                    }) => (typed.clone(), message.to_string(), String::new()),
                    Some(PasskeyRefusal {
                        field: PasskeyField::Password,
                        message,
                        ..
                    }) => (p.name.clone(), String::new(), message.to_string()),
                    None => (p.name.clone(), String::new(), String::new()),
                };
                PasskeyView {
                    name_field: format!("passkey-{}-name", p.id),
                    password_field: format!("passkey-{}-password", p.id),
                    id: p.id.to_string(),
                    name: p.name,
                    added: display_date(p.created_at),
                    last_used: p.last_used_at.map(display_date),
                    name_value,
                    name_error,
                    password_error,
                }
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

/// A passkey id from the path: one that is not a UUID names no passkey.
fn passkey_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw).map_err(|_| PageError::NotFound)
}

/// Re-renders the security page with one passkey's form refused; 404 when the passkey is not
/// the user's.
async fn passkey_refused(
    state: &AppState,
    session: &Session,
    auth: &Authenticated,
    refusal: PasskeyRefusal,
) -> Result<HttpResponse, PageError> {
    let id = refusal.id.to_string();
    let page =
        security_page_with(state, session, auth, FieldErrors::default(), Some(refusal)).await?;
    if !page.passkeys.iter().any(|p| p.id == id) {
        return Err(PageError::NotFound);
    }
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[derive(Deserialize)]
pub struct NameField {
    #[serde(default)]
    name: String,
}

/// `POST /account/security/passkeys/{id}/rename`.
pub async fn rename_passkey(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<NameField>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let id = passkey_id(&id)?;
    let name = match PasskeyName::parse(&form.name) {
        Ok(name) => name,
        Err(invalid) => {
            let message = match invalid {
                InvalidPasskeyName::Length if form.name.trim().is_empty() => {
                    "Give the passkey a name."
                }
                InvalidPasskeyName::Length => "Use at most 64 characters.",
                InvalidPasskeyName::Unprintable => "Use letters, digits, spaces and punctuation.",
            };
            let refusal = PasskeyRefusal {
                id,
                field: PasskeyField::Name(form.name),
                message,
            };
            return passkey_refused(&state, &session, &auth, refusal).await;
        }
    };
    let ctx = Context::user(&auth.user, origin);
    match passkeys::rename(&state, &ctx, &auth.user, id, name).await {
        Ok(renamed) => {
            flash::success(
                &session,
                format!("Your passkey is now called “{}”.", renamed.name),
            );
            Ok(see_other(PASSKEYS))
        }
        Err(ServiceError::NotFound) => Err(PageError::NotFound),
        Err(other) => Err(other.into()),
    }
}

/// `POST /account/security/passkeys/{id}/remove`: after the current password.
pub async fn remove_passkey(
    state: web::Data<AppState>,
    origin: Origin,
    session: Session,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<PasswordField>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let id = passkey_id(&id)?;
    let ctx = Context::user(&auth.user, origin);
    let password = Some(form.current_password.into());
    match passkeys::remove(&state, &ctx, &auth.user, id, password).await {
        Ok(()) => {
            flash::success(&session, "The passkey has been removed.");
            Ok(see_other(PASSKEYS))
        }
        Err(ServiceError::BadCurrentPassword) => {
            let refusal = PasskeyRefusal {
                id,
                field: PasskeyField::Password,
                message: WRONG_PASSWORD,
            };
            passkey_refused(&state, &session, &auth, refusal).await
        }
        Err(ServiceError::NotFound) => Err(PageError::NotFound),
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
