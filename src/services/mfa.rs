//! Second factors: enrolling an authenticator app, recovery codes, the second step of a
//! login, and an administrator's reset. Passkeys are in `services::passkeys`.

use std::time::Duration;

use secrecy::SecretString;
use uuid::Uuid;

use super::audit;
use super::context::Context;
use super::sessions::{self, LoggedIn};
use super::{account_limits, notices, ServiceError};
use crate::auth::mfa::{self, TotpSecret};
use crate::auth::passkeys::{Assertion, PublicKeyCredential};
use crate::auth::throttle::Throttled;
use crate::db::factors;
use crate::db::passkeys::{self, CeremonyPurpose};
use crate::db::{self, sessions as db_sessions, users, DbError};
use crate::domain::{normalize_email, AuditEvent, AuthMethods, Party, User, UserId};
use crate::metrics::LoginOutcome;
use crate::state::AppState;

/// Wrong codes one second step takes before it is void.
const STEP_MAX_FAILURES: i32 = 5;
/// Wrong codes a user's second steps take within [`FAILURE_WINDOW_SECS`] before every further
/// attempt is refused until the window moves on: guessing a 6-digit code (three are valid at
/// any moment) takes about 330,000 guesses on average; this allows 10 per quarter hour.
const USER_MAX_FAILURES: i64 = 10;
const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// The name the authenticator app shows for the account.
const ISSUER: &str = "Gatehouse";

/// A user's factors, as the account page and `GET /users/me/mfa` show them.
#[derive(Debug, Clone)]
pub struct Factors {
    pub totp: bool,
    pub passkeys: Vec<crate::db::passkeys::StoredPasskey>,
    pub recovery_codes_left: i64,
}

/// A pending authenticator app: what the app needs to know.
#[derive(Debug)]
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

/// What completes a second step.
#[derive(Debug)]
pub enum Proof {
    Code(String),
    RecoveryCode(String),
    /// The answer to a ceremony begun by `passkeys::begin_second_factor` for this step.
    Passkey {
        ceremony_id: Uuid,
        credential: Box<PublicKeyCredential>,
    },
}

pub async fn factors(state: &AppState, user_id: UserId) -> Result<Factors, ServiceError> {
    let (counts, passkeys) = db::run(&state.pool, move |conn| {
        Ok::<_, DbError>((
            factors::counts(conn, user_id)?,
            crate::db::passkeys::list(conn, user_id)?,
        ))
    })
    .await?;
    Ok(Factors {
        totp: counts.totp,
        passkeys,
        recovery_codes_left: counts.recovery_codes_left,
    })
}

/// The active user of a second step that may still be completed; `MfaTokenInvalid` for an
/// unknown, used, expired or worn-out step token.
pub(super) async fn step_user(state: &AppState, mfa_token: &str) -> Result<User, ServiceError> {
    let hash = mfa::step_token_hash(mfa_token);
    db::run(&state.pool, move |conn| {
        match factors::live_challenge(conn, &hash, STEP_MAX_FAILURES)? {
            Some(user_id) => users::find_by_id(conn, user_id),
            None => Ok(None),
        }
    })
    .await?
    .filter(|user| user.is_active)
    .ok_or(ServiceError::MfaTokenInvalid)
}

/// Completes a login's second step with a code or a passkey: the session's tokens, as a login
/// gives.
///
/// An unknown, used, expired or worn-out step token is `MfaTokenInvalid` whatever the code; a
/// wrong code, a replayed one and one of an expired step are alike `MfaCodeInvalid`, count
/// toward the account's failed logins and the step's and user's budgets of wrong codes (5 per
/// step, 10 per user in a quarter hour, then 429). So
/// does a passkey answer that does not verify, or whose ceremony is unknown, used, expired or
/// another user's.
pub async fn complete_login(
    state: &AppState,
    ctx: &Context,
    mfa_token: &str,
    proof: Proof,
) -> Result<LoggedIn, ServiceError> {
    let hash = mfa::step_token_hash(mfa_token);
    let user = step_user(state, mfa_token).await?;
    let user_id = user.id;
    let email = normalize_email(&user.email);
    let judge = sessions::judge(state, ctx, Some(&user));
    let (method, spend) = match &proof {
        Proof::Code(code) => (
            AuthMethods::ONE_TIME_CODE,
            Spend::TotpStep(totp_step(state, &user, code).await?),
        ),
        Proof::RecoveryCode(code) => (
            AuthMethods::ONE_TIME_CODE,
            Spend::RecoveryCode(state.mfa_key.recovery_code_hash(user.id, code)),
        ),
        Proof::Passkey {
            ceremony_id,
            credential,
        } => {
            let assertion = passkey_assertion(state, &user, *ceremony_id, credential).await?;
            let verified = match &assertion {
                Some(a) if a.user_verified => AuthMethods::KEY.with(AuthMethods::USER_VERIFIED),
                _ => AuthMethods::KEY,
            };
            (verified, Spend::Passkey(assertion))
        }
    };
    let spent_hash = hash.clone();
    let since = db::now() - FAILURE_WINDOW_SECS;
    // Judged and spent in one write transaction, which writers take one at a time: parallel
    // guesses cannot slip past the budgets between a check and the failure it records.
    let spent = db::write(&state.pool, move |conn| {
        if factors::live_challenge(conn, &spent_hash, STEP_MAX_FAILURES)?.is_none() {
            return Err(DbError::NotFound);
        }
        if factors::recent_failures(conn, user_id, since)? >= USER_MAX_FAILURES {
            return Ok(Spent::Throttled);
        }
        let spent = match &spend {
            Spend::TotpStep(Some(step)) => factors::spend_totp_step(conn, user_id, *step, false)?,
            Spend::TotpStep(None) => false,
            Spend::RecoveryCode(code_hash) => {
                factors::spend_recovery_code(conn, user_id, code_hash)?
            }
            Spend::Passkey(Some(assertion)) => {
                passkeys::record_use(conn, user_id, &assertion.credential_id, &assertion.stored)?
            }
            Spend::Passkey(None) => false,
        };
        if !spent {
            factors::fail_challenge(conn, &spent_hash)?;
            return Ok::<_, DbError>(Spent::WrongCode);
        }
        // The step is spent with the code, or neither is: a racing request with the same
        // token finds it used.
        if !factors::spend_challenge(conn, &spent_hash)? {
            return Err(DbError::NotFound);
        }
        Ok(Spent::Yes)
    })
    .await;
    match spent {
        Ok(Spent::Yes) => {}
        Ok(Spent::Throttled) => {
            log::warn!(
                "second factor refused for {}: too many wrong codes",
                user.email
            );
            return Err(ServiceError::Throttled(Throttled {
                retry_after: Duration::from_secs(FAILURE_WINDOW_SECS as u64),
            }));
        }
        Ok(Spent::WrongCode) => {
            log::info!("wrong second-factor code for {}", user.email);
            // A failed login of the account too, for its limits (a refusal there changes
            // nothing now: this attempt has failed already).
            match account_limits::admit_login(state, &email, &judge).await {
                Ok(()) | Err(ServiceError::Throttled(_)) => {}
                Err(other) => return Err(other),
            }
            let mut event = ctx.event(AuditEvent::LoginFailed, Some(Party::from(&user)));
            event.detail = Some(match proof {
                Proof::Code(_) => "wrong authenticator code".to_owned(),
                Proof::RecoveryCode(_) => "wrong recovery code".to_owned(),
                Proof::Passkey { .. } => "passkey refused".to_owned(),
            });
            audit::record(state, event).await;
            state.metrics.login(LoginOutcome::Failed);
            return Err(ServiceError::MfaCodeInvalid);
        }
        Err(DbError::NotFound) => return Err(ServiceError::MfaTokenInvalid),
        Err(other) => return Err(other.into()),
    }
    account_limits::login_succeeded(state, &email, &judge).await?;
    let how = match proof {
        Proof::Code(_) => "with an authenticator code".to_owned(),
        Proof::Passkey { .. } => "with a passkey".to_owned(),
        Proof::RecoveryCode(_) => {
            let left = db::run(&state.pool, move |conn| factors::counts(conn, user_id))
                .await?
                .recovery_codes_left;
            notices::factors_changed(
                state,
                &Context::user(&user, ctx.origin.clone()),
                &user,
                &format!("A recovery code was used to sign in to your account ({left} left)"),
            )
            .await;
            format!("with a recovery code ({left} left)")
        }
    };
    let methods = AuthMethods::PASSWORD.with(method);
    sessions::finish_login(state, ctx, &user, methods, Some(how)).await
}

enum Spend {
    /// The step of a right code; `None` when the code matches no step.
    TotpStep(Option<i64>),
    RecoveryCode(String),
    /// A verified passkey answer; `None` when it did not verify.
    Passkey(Option<Assertion>),
}

/// Checks a passkey's answer to a second-step ceremony begun for `user`: `None` when the
/// ceremony is unknown, used, expired or another user's, when the credential is not one of
/// the user's, or when the answer does not verify. The ceremony is spent either way.
async fn passkey_assertion(
    state: &AppState,
    user: &User,
    ceremony_id: Uuid,
    credential: &PublicKeyCredential,
) -> Result<Option<Assertion>, ServiceError> {
    let Some(rp) = state.passkeys.as_ref() else {
        return Err(ServiceError::PasskeysOff);
    };
    let user_id = user.id;
    let credential_id = crate::auth::passkeys::credential_id_of(credential);
    let found = db::write(&state.pool, move |conn| {
        let kept = passkeys::take_ceremony(
            conn,
            ceremony_id,
            CeremonyPurpose::SecondFactor,
            Some(user_id),
        )?;
        let key = passkeys::find_by_credential_id(conn, &credential_id)?
            .filter(|key| key.user_id == user_id);
        Ok::<_, DbError>(kept.zip(key))
    })
    .await?;
    let Some((kept, key)) = found else {
        return Ok(None);
    };
    match rp.finish_assertion(&kept, credential, &key.credential) {
        Ok(assertion) => Ok(Some(assertion)),
        Err(e) => {
            log::info!("passkey refused for {}: {e}", user.email);
            Ok(None)
        }
    }
}

enum Spent {
    Yes,
    WrongCode,
    /// The user's budget of wrong codes is spent for now.
    Throttled,
}

/// The step of the user's confirmed authenticator app that `code` is, if it is one.
async fn totp_step(state: &AppState, user: &User, code: &str) -> Result<Option<i64>, ServiceError> {
    let user_id = user.id;
    let stored = db::run(&state.pool, move |conn| factors::totp(conn, user_id)).await?;
    let Some(stored) = stored.filter(|t| t.confirmed) else {
        return Ok(None);
    };
    matching_step(state, user, &stored.sealed_secret, code)
}

fn matching_step(
    state: &AppState,
    user: &User,
    sealed: &str,
    code: &str,
) -> Result<Option<i64>, ServiceError> {
    let secret = state
        .mfa_key
        .open(user.id, sealed)
        .map_err(|e| ServiceError::Internal(e.into()))?;
    let totp = TotpSecret::new(secret, ISSUER, &user.email);
    let now = db::now().max(0) as u64;
    Ok(totp
        .matching_step(code, now)
        .and_then(|step| i64::try_from(step).ok()))
}

/// Begins enrolling an authenticator app (after the current password): a new secret, pending
/// until a code confirms it. Replaces a pending one; refused if one is on already.
pub async fn begin_totp(
    state: &AppState,
    ctx: &Context,
    user: &User,
    current_password: Option<SecretString>,
) -> Result<TotpEnrolment, ServiceError> {
    sessions::check_current_password(state, ctx, user, current_password).await?;
    let secret = mfa::new_totp_secret();
    let sealed = state.mfa_key.seal(user.id, &secret);
    let totp = TotpSecret::new(secret, ISSUER, &user.email);
    let user_id = user.id;
    db::write(&state.pool, move |conn| {
        if factors::totp(conn, user_id)?.is_some_and(|t| t.confirmed) {
            return Err(ServiceError::MfaAlreadyEnabled);
        }
        factors::put_pending_totp(conn, user_id, &sealed)?;
        Ok(())
    })
    .await?;
    log::info!("{} began enrolling an authenticator app", user.email);
    Ok(TotpEnrolment {
        secret: totp.base32(),
        otpauth_uri: totp.otpauth_uri(),
    })
}

/// The authenticator app a user began enrolling and has not confirmed yet, shown again (the
/// enrolment page after a wrong code); `None` when nothing is pending.
pub async fn pending_totp(
    state: &AppState,
    user: &User,
) -> Result<Option<TotpEnrolment>, ServiceError> {
    let user_id = user.id;
    let stored = db::run(&state.pool, move |conn| factors::totp(conn, user_id)).await?;
    let Some(pending) = stored.filter(|t| !t.confirmed) else {
        return Ok(None);
    };
    let secret = state
        .mfa_key
        .open(user.id, &pending.sealed_secret)
        .map_err(|e| ServiceError::Internal(e.into()))?;
    let totp = TotpSecret::new(secret, ISSUER, &user.email);
    Ok(Some(TotpEnrolment {
        secret: totp.base32(),
        otpauth_uri: totp.otpauth_uri(),
    }))
}

/// Confirms a pending authenticator app with one of its codes; answers the new recovery codes.
pub async fn confirm_totp(
    state: &AppState,
    ctx: &Context,
    user: &User,
    code: &str,
) -> Result<Vec<String>, ServiceError> {
    let user_id = user.id;
    let stored = db::run(&state.pool, move |conn| factors::totp(conn, user_id)).await?;
    let Some(pending) = stored.filter(|t| !t.confirmed) else {
        return Err(ServiceError::MfaNotPending);
    };
    let step = matching_step(state, user, &pending.sealed_secret, code)?;
    let codes = mfa::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|code| state.mfa_key.recovery_code_hash(user_id, code))
        .collect();
    db::write(&state.pool, move |conn| {
        let Some(step) = step else {
            return Err(ServiceError::MfaCodeInvalid);
        };
        if !factors::spend_totp_step(conn, user_id, step, true)? {
            // Confirmed meanwhile by another request, or a replay of the step.
            return Err(match factors::totp(conn, user_id)? {
                Some(t) if t.confirmed => ServiceError::MfaNotPending,
                _ => ServiceError::MfaCodeInvalid,
            });
        }
        factors::replace_recovery_codes(conn, user_id, &hashes)?;
        Ok(())
    })
    .await?;
    log::info!("{} turned on an authenticator app", user.email);
    let mut event = ctx.own_event(AuditEvent::MfaEnabled, user);
    event.detail = Some("authenticator app".to_owned());
    audit::record(state, event).await;
    notices::factors_changed(
        state,
        ctx,
        user,
        "An authenticator app was added to your account, and new recovery codes were made",
    )
    .await;
    Ok(codes)
}

/// Turns the authenticator app off (after the current password). When no factor is left, the
/// recovery codes go too.
pub async fn disable_totp(
    state: &AppState,
    ctx: &Context,
    user: &User,
    current_password: Option<SecretString>,
) -> Result<(), ServiceError> {
    sessions::check_current_password(state, ctx, user, current_password).await?;
    let user_id = user.id;
    let removed = db::write(&state.pool, move |conn| {
        let confirmed = factors::totp(conn, user_id)?.is_some_and(|t| t.confirmed);
        factors::delete_totp(conn, user_id)?;
        if !factors::counts(conn, user_id)?.any() {
            factors::delete_recovery_codes(conn, user_id)?;
        }
        Ok::<_, DbError>(confirmed)
    })
    .await?;
    if removed {
        log::info!("{} turned off their authenticator app", user.email);
        let mut event = ctx.own_event(AuditEvent::MfaDisabled, user);
        event.detail = Some("authenticator app".to_owned());
        audit::record(state, event).await;
        notices::factors_changed(
            state,
            ctx,
            user,
            "The authenticator app was removed from your account",
        )
        .await;
    }
    Ok(())
}

/// A new set of recovery codes (after the current password); the old set is void.
pub async fn renew_recovery_codes(
    state: &AppState,
    ctx: &Context,
    user: &User,
    current_password: Option<SecretString>,
) -> Result<Vec<String>, ServiceError> {
    sessions::check_current_password(state, ctx, user, current_password).await?;
    let user_id = user.id;
    let codes = mfa::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|code| state.mfa_key.recovery_code_hash(user_id, code))
        .collect();
    db::write(&state.pool, move |conn| {
        if !factors::counts(conn, user_id)?.any() {
            return Err(ServiceError::MfaNotEnabled);
        }
        factors::replace_recovery_codes(conn, user_id, &hashes)?;
        Ok(())
    })
    .await?;
    audit::record(state, ctx.own_event(AuditEvent::RecoveryCodesRenewed, user)).await;
    notices::factors_changed(
        state,
        ctx,
        user,
        "New recovery codes were made for your account, and the old ones no longer work",
    )
    .await;
    Ok(codes)
}

/// Removes every factor of a user (a lost phone) and ends their sessions: a superuser's act.
pub async fn reset(state: &AppState, ctx: &Context, user_id: UserId) -> Result<(), ServiceError> {
    let (user, removed, ended) = db::write(&state.pool, move |conn| {
        let user = users::find_by_id(conn, user_id)?.ok_or(DbError::NotFound)?;
        let removed = factors::delete_all(conn, user_id)?;
        let ended = db_sessions::revoke_all_for_user(conn, user_id)?;
        Ok::<_, DbError>((user, removed, ended))
    })
    .await?;
    log::info!(
        "second factors of {} reset ({removed} removed, {ended} session(s) ended)",
        user.email
    );
    let mut event = ctx.event(AuditEvent::MfaReset, Some(Party::from(&user)));
    event.detail = Some(format!(
        "{removed} factor(s) removed, {ended} session(s) ended"
    ));
    audit::record(state, event).await;
    notices::factors_changed(
        state,
        ctx,
        &user,
        "Every second factor of your account (authenticator app, passkeys, recovery codes) was \
         removed and every session ended",
    )
    .await;
    Ok(())
}
