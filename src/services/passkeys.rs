//! Passkeys: registering, renaming and removing them, signing in with one alone, and
//! beginning a login's second step with one (`services::mfa::complete_login` finishes it).
//!
//! Each ceremony's state is kept in the database for [`CEREMONY_TTL_SECS`] and taken once,
//! so any instance finishes a ceremony another began, and none is finished twice.

use secrecy::SecretString;
use uuid::Uuid;

use super::audit;
use super::context::Context;
use super::sessions::{self, LoggedIn};
use super::{mfa, notices, ServiceError};
use crate::auth::mfa as codes;
use crate::auth::passkeys::{
    CreationChallengeResponse, Passkeys, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use crate::auth::throttle::Bucket;
use crate::db::factors;
pub use crate::db::passkeys::StoredPasskey;
use crate::db::passkeys::{self, CeremonyPurpose};
use crate::db::{self, users, DbError};
use crate::domain::{AuditEvent, AuthMethods, Party, PasskeyName, User};
use crate::metrics::LoginOutcome;
use crate::state::AppState;

/// How long a begun ceremony may be finished.
pub const CEREMONY_TTL_SECS: i64 = 5 * 60;

/// A ceremony begun: its id, to send back with the answer, and the options for the browser.
#[derive(Debug)]
pub struct Ceremony<T> {
    pub id: Uuid,
    pub options: T,
}

/// A passkey just registered, and the recovery codes made with it if it is the account's
/// first factor (shown once).
#[derive(Debug)]
pub struct Registered {
    pub passkey: StoredPasskey,
    pub recovery_codes: Option<Vec<String>>,
}

/// The relying party, or `PasskeysOff` when `PUBLIC_URL` allows none.
pub(super) fn relying_party(state: &AppState) -> Result<&Passkeys, ServiceError> {
    state.passkeys.as_ref().ok_or(ServiceError::PasskeysOff)
}

/// Begins registering a passkey for a signed-in user; the user's passkeys are excluded.
pub async fn begin_registration(
    state: &AppState,
    user: &User,
) -> Result<Ceremony<CreationChallengeResponse>, ServiceError> {
    let rp = relying_party(state)?;
    let user_id = user.id;
    let existing = db::run(&state.pool, move |conn| {
        passkeys::credentials(conn, user_id)
    })
    .await?;
    let begun = rp
        .begin_registration(user.id, &user.email, &existing)
        .map_err(|e| ServiceError::Internal(e.into()))?;
    let id = keep(state, CeremonyPurpose::Register, Some(user), begun.state).await?;
    Ok(Ceremony {
        id,
        options: begun.options,
    })
}

/// Finishes a registration begun by the same user: stores the passkey under `name`. The
/// account's first factor comes with a new set of recovery codes.
pub async fn finish_registration(
    state: &AppState,
    ctx: &Context,
    user: &User,
    ceremony_id: Uuid,
    name: PasskeyName,
    credential: &RegisterPublicKeyCredential,
) -> Result<Registered, ServiceError> {
    let rp = relying_party(state)?;
    let kept = take(state, ceremony_id, CeremonyPurpose::Register, Some(user)).await?;
    let new = rp.finish_registration(&kept, credential).map_err(|e| {
        log::info!("passkey registration refused for {}: {e}", user.email);
        ServiceError::PasskeyInvalid
    })?;
    let user_id = user.id;
    let codes = codes::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|code| state.mfa_key.recovery_code_hash(user_id, code))
        .collect();
    let stored_name = name.as_str().to_owned();
    let (passkey, first) = db::write(&state.pool, move |conn| {
        if passkeys::find_by_credential_id(conn, &new.credential_id)?.is_some() {
            return Err(ServiceError::PasskeyInvalid);
        }
        let before = factors::counts(conn, user_id)?;
        let first = !before.any() && before.recovery_codes_left == 0;
        let passkey =
            passkeys::insert(conn, user_id, &stored_name, &new.credential_id, &new.stored)?;
        if first {
            factors::replace_recovery_codes(conn, user_id, &hashes)?;
        }
        Ok((passkey, first))
    })
    .await?;
    log::info!("{} added a passkey", user.email);
    let mut event = ctx.own_event(AuditEvent::PasskeyAdded, user);
    event.detail = Some(format!("\"{}\"", name.as_str()));
    audit::record(state, event).await;
    let what = if first {
        format!(
            "A passkey (\"{}\") was added to your account, and recovery codes were made",
            name.as_str()
        )
    } else {
        format!(
            "A passkey (\"{}\") was added to your account",
            name.as_str()
        )
    };
    notices::factors_changed(state, ctx, user, &what).await;
    Ok(Registered {
        passkey,
        recovery_codes: first.then_some(codes),
    })
}

/// Renames one of the user's passkeys; `NotFound` if it is not theirs.
pub async fn rename(
    state: &AppState,
    ctx: &Context,
    user: &User,
    id: Uuid,
    name: PasskeyName,
) -> Result<StoredPasskey, ServiceError> {
    let user_id = user.id;
    let new_name = name.as_str().to_owned();
    let renamed = db::write(&state.pool, move |conn| {
        passkeys::rename(conn, user_id, id, &new_name)
    })
    .await?
    .ok_or(ServiceError::NotFound)?;
    let mut event = ctx.own_event(AuditEvent::PasskeyRenamed, user);
    event.detail = Some(format!("now \"{}\"", name.as_str()));
    audit::record(state, event).await;
    notices::factors_changed(
        state,
        ctx,
        user,
        &format!(
            "A passkey of your account was renamed \"{}\"",
            name.as_str()
        ),
    )
    .await;
    Ok(renamed)
}

/// Removes one of the user's passkeys (after the current password). When no factor is left,
/// the recovery codes go too.
pub async fn remove(
    state: &AppState,
    ctx: &Context,
    user: &User,
    id: Uuid,
    current_password: Option<SecretString>,
) -> Result<(), ServiceError> {
    sessions::check_current_password(state, ctx, user, current_password).await?;
    let user_id = user.id;
    let removed = db::write(&state.pool, move |conn| {
        let removed = passkeys::delete(conn, user_id, id)?;
        if removed.is_some() && !factors::counts(conn, user_id)?.any() {
            factors::delete_recovery_codes(conn, user_id)?;
        }
        Ok::<_, DbError>(removed)
    })
    .await?
    .ok_or(ServiceError::NotFound)?;
    log::info!("{} removed a passkey", user.email);
    let mut event = ctx.own_event(AuditEvent::PasskeyRemoved, user);
    event.detail = Some(format!("\"{}\"", removed.name));
    audit::record(state, event).await;
    notices::factors_changed(
        state,
        ctx,
        user,
        &format!(
            "A passkey (\"{}\") was removed from your account",
            removed.name
        ),
    )
    .await;
    Ok(())
}

/// Begins a passwordless sign-in: any of this site's discoverable credentials may answer.
pub async fn begin_sign_in(
    state: &AppState,
    ctx: &Context,
) -> Result<Ceremony<RequestChallengeResponse>, ServiceError> {
    let rp = relying_party(state)?;
    // Each begun ceremony is a stored row: as many as logins may be asked for, no more.
    state.throttle.check_ip(Bucket::Login, ctx.origin.ip)?;
    let begun = rp
        .begin_sign_in()
        .map_err(|e| ServiceError::Internal(e.into()))?;
    let id = keep(state, CeremonyPurpose::SignIn, None, begun.state).await?;
    Ok(Ceremony {
        id,
        options: begun.options,
    })
}

/// Finishes a passwordless sign-in: the session of the passkey's user, whose authenticator
/// verified them. An unknown, used or expired ceremony, an unknown credential, one that is
/// not the named user's, a bad signature and an inactive account are all `PasskeyInvalid`.
pub async fn finish_sign_in(
    state: &AppState,
    ctx: &Context,
    ceremony_id: Uuid,
    credential: &PublicKeyCredential,
) -> Result<LoggedIn, ServiceError> {
    let rp = relying_party(state)?;
    let kept = take(state, ceremony_id, CeremonyPurpose::SignIn, None).await?;
    let (handle, credential_id) = rp.identify(credential).ok_or_else(|| {
        log::info!("passkey sign-in refused: the answer names no user");
        ServiceError::PasskeyInvalid
    })?;
    let found = db::run(&state.pool, move |conn| {
        let Some(key) = passkeys::find_by_credential_id(conn, &credential_id)? else {
            return Ok(None);
        };
        let user = users::find_by_id(conn, key.user_id)?;
        Ok::<_, DbError>(user.map(|user| (key, user)))
    })
    .await?;
    let Some((key, user)) = found.filter(|(key, _)| key.user_id == handle) else {
        log::info!("passkey sign-in refused: unknown credential");
        state.metrics.login(LoginOutcome::Failed);
        return Err(ServiceError::PasskeyInvalid);
    };
    let verified = rp
        .finish_sign_in(&kept, credential, &key.credential)
        .ok()
        .filter(|assertion| assertion.user_verified);
    let Some(assertion) = verified.filter(|_| user.is_active) else {
        log::info!("passkey sign-in refused for {}", user.email);
        let mut event = ctx.event(AuditEvent::LoginFailed, Some(Party::from(&user)));
        event.detail = Some("passkey refused (or inactive account)".to_owned());
        audit::record(state, event).await;
        state.metrics.login(LoginOutcome::Failed);
        return Err(ServiceError::PasskeyInvalid);
    };
    let user_id = user.id;
    let recorded = db::write(&state.pool, move |conn| {
        passkeys::record_use(conn, user_id, &assertion.credential_id, &assertion.stored)
    })
    .await?;
    if !recorded {
        // Removed while the ceremony ran.
        return Err(ServiceError::PasskeyInvalid);
    }
    let methods = AuthMethods::KEY.with(AuthMethods::USER_VERIFIED);
    let how = Some("with a passkey".to_owned());
    sessions::finish_login(state, ctx, &user, methods, how).await
}

/// Begins a login's second step with a passkey: only the passkeys of the step's user may
/// answer. The step is completed by `mfa::complete_login` with `Proof::Passkey`.
pub async fn begin_second_factor(
    state: &AppState,
    mfa_token: &str,
) -> Result<Ceremony<RequestChallengeResponse>, ServiceError> {
    let rp = relying_party(state)?;
    let user = mfa::step_user(state, mfa_token).await?;
    let user_id = user.id;
    let credentials = db::run(&state.pool, move |conn| {
        passkeys::credentials(conn, user_id)
    })
    .await?;
    if credentials.is_empty() {
        return Err(ServiceError::PasskeyInvalid);
    }
    let begun = rp
        .begin_assertion(&credentials)
        .map_err(|e| ServiceError::Internal(e.into()))?;
    let id = keep(
        state,
        CeremonyPurpose::SecondFactor,
        Some(&user),
        begun.state,
    )
    .await?;
    Ok(Ceremony {
        id,
        options: begun.options,
    })
}

async fn keep(
    state: &AppState,
    purpose: CeremonyPurpose,
    user: Option<&User>,
    kept: String,
) -> Result<Uuid, ServiceError> {
    let user_id = user.map(|u| u.id);
    Ok(db::write(&state.pool, move |conn| {
        passkeys::insert_ceremony(conn, purpose, user_id, &kept, CEREMONY_TTL_SECS)
    })
    .await?)
}

async fn take(
    state: &AppState,
    id: Uuid,
    purpose: CeremonyPurpose,
    user: Option<&User>,
) -> Result<String, ServiceError> {
    let user_id = user.map(|u| u.id);
    db::write(&state.pool, move |conn| {
        passkeys::take_ceremony(conn, id, purpose, user_id)
    })
    .await?
    .ok_or_else(|| {
        log::info!("passkey ceremony {id} is unknown, used or expired");
        ServiceError::PasskeyInvalid
    })
}
