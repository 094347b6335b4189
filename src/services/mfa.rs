//! Second factors: enrolling an authenticator app, recovery codes, the second step of a
//! login, and an administrator's reset. Passkeys are in `services::passkeys`.

use std::time::Duration;

use secrecy::SecretString;

use super::audit;
use super::context::Context;
use super::sessions::{self, LoggedIn};
use super::{account_limits, notices, ServiceError};
use crate::auth::mfa::{self, TotpSecret};
use crate::auth::throttle::Throttled;
use crate::db::factors::{self, FactorCounts};
use crate::db::{self, sessions as db_sessions, users, DbError};
use crate::domain::{normalize_email, AuditEvent, AuthMethods, Party, SecondFactor, User, UserId};
use crate::metrics::LoginOutcome;
use crate::state::AppState;

/// How long the token of a login's second step lives.
pub const STEP_TOKEN_TTL_SECS: i64 = 5 * 60;
/// Wrong codes one second step takes before it is void.
const STEP_MAX_FAILURES: i32 = 5;
/// Wrong codes a user's second steps take within [`FAILURE_WINDOW_SECS`] before every further
/// attempt is refused until the window moves on: guessing a 6-digit code (three are valid at
/// any moment) takes about 330,000 guesses on average; this allows 10 per quarter hour.
const USER_MAX_FAILURES: i64 = 10;
const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// The name the authenticator app shows for the account.
const ISSUER: &str = "Gatehouse";

/// The second step a login owes: its token, and the factors the account can complete it with.
#[derive(Debug, Clone)]
pub struct SecondStep {
    pub mfa_token: String,
    pub methods: Vec<SecondFactor>,
}

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

/// The factors a login by this user must be completed with; empty if a password is enough.
pub(super) async fn second_factors(
    state: &AppState,
    user_id: UserId,
) -> Result<Vec<SecondFactor>, ServiceError> {
    let counts = db::run(&state.pool, move |conn| factors::counts(conn, user_id)).await?;
    Ok(methods_of(&counts))
}

fn methods_of(counts: &FactorCounts) -> Vec<SecondFactor> {
    if !counts.any() {
        return Vec::new();
    }
    let mut methods = Vec::new();
    if counts.totp {
        methods.push(SecondFactor::Totp);
    }
    if counts.recovery_codes_left > 0 {
        methods.push(SecondFactor::RecoveryCode);
    }
    if counts.passkeys > 0 {
        methods.push(SecondFactor::Passkey);
    }
    methods
}

/// Opens a login's second step for a user whose password was right.
pub(super) async fn open_second_step(
    state: &AppState,
    user: &User,
    methods: Vec<SecondFactor>,
) -> Result<SecondStep, ServiceError> {
    let token = mfa::new_step_token();
    let hash = mfa::step_token_hash(&token);
    let user_id = user.id;
    db::write(&state.pool, move |conn| {
        factors::create_challenge(conn, &hash, user_id, STEP_TOKEN_TTL_SECS)
    })
    .await?;
    log::info!(
        "password accepted for {}; a second factor is owed",
        user.email
    );
    Ok(SecondStep {
        mfa_token: token,
        methods,
    })
}

/// Completes a login's second step with a code: the session's tokens, as a login gives.
///
/// An unknown, used, expired or worn-out step token is `MfaTokenInvalid` whatever the code; a
/// wrong code, a replayed one and one of an expired step are alike `MfaCodeInvalid`, count
/// toward the account's failed logins and the step's and user's budgets of wrong codes.
pub async fn complete_login(
    state: &AppState,
    ctx: &Context,
    mfa_token: &str,
    proof: Proof,
) -> Result<LoggedIn, ServiceError> {
    let hash = mfa::step_token_hash(mfa_token);
    let lookup = hash.clone();
    let user = db::run(&state.pool, move |conn| {
        match factors::live_challenge(conn, &lookup, STEP_MAX_FAILURES)? {
            Some(user_id) => users::find_by_id(conn, user_id),
            None => Ok(None),
        }
    })
    .await?
    .filter(|user| user.is_active)
    .ok_or(ServiceError::MfaTokenInvalid)?;
    let since = db::now() - FAILURE_WINDOW_SECS;
    let user_id = user.id;
    let failures = db::run(&state.pool, move |conn| {
        factors::recent_failures(conn, user_id, since)
    })
    .await?;
    if failures >= USER_MAX_FAILURES {
        log::warn!(
            "second factor refused for {}: too many wrong codes",
            user.email
        );
        return Err(ServiceError::Throttled(Throttled {
            retry_after: Duration::from_secs(FAILURE_WINDOW_SECS as u64),
        }));
    }
    let email = normalize_email(&user.email);
    let judge = sessions::judge(state, ctx, Some(&user));
    account_limits::admit_login(state, &email, &judge).await?;

    let (method, spend) = match &proof {
        Proof::Code(code) => (
            AuthMethods::ONE_TIME_CODE,
            Spend::TotpStep(totp_step(state, &user, code).await?),
        ),
        Proof::RecoveryCode(code) => (
            AuthMethods::ONE_TIME_CODE,
            Spend::RecoveryCode(state.mfa_key.recovery_code_hash(user.id, code)),
        ),
    };
    let spent_hash = hash.clone();
    let spent = db::write(&state.pool, move |conn| {
        let spent = match &spend {
            Spend::TotpStep(Some(step)) => factors::spend_totp_step(conn, user_id, *step, false)?,
            Spend::TotpStep(None) => false,
            Spend::RecoveryCode(code_hash) => {
                factors::spend_recovery_code(conn, user_id, code_hash)?
            }
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
        Ok(Spent::WrongCode) => {
            log::info!("wrong second-factor code for {}", user.email);
            let mut event = ctx.event(AuditEvent::LoginFailed, Some(Party::from(&user)));
            event.detail = Some(match proof {
                Proof::Code(_) => "wrong authenticator code".to_owned(),
                Proof::RecoveryCode(_) => "wrong recovery code".to_owned(),
            });
            audit::record(state, event).await;
            state.metrics.login(LoginOutcome::Failed);
            return Err(ServiceError::MfaCodeInvalid);
        }
        Err(DbError::NotFound) => return Err(ServiceError::MfaTokenInvalid),
        Err(other) => return Err(other.into()),
    }
    account_limits::login_succeeded(state, &email, &judge).await?;
    if matches!(proof, Proof::RecoveryCode(_)) {
        let left = db::run(&state.pool, move |conn| factors::counts(conn, user_id))
            .await?
            .recovery_codes_left;
        let mut event = ctx.own_event(AuditEvent::LoginSucceeded, &user);
        event.detail = Some(format!("with a recovery code ({left} left)"));
        audit::record(state, event).await;
        notices::factors_changed(
            state,
            &Context::user(&user, ctx.origin.clone()),
            &user,
            &format!("A recovery code was used to sign in to your account ({left} left)"),
        )
        .await;
    } else {
        let mut event = ctx.own_event(AuditEvent::LoginSucceeded, &user);
        event.detail = Some("with an authenticator code".to_owned());
        audit::record(state, event).await;
    }
    sessions::finish_login(state, ctx, &user, AuthMethods::PASSWORD.with(method)).await
}

enum Spend {
    /// The step of a right code; `None` when the code matches no step.
    TotpStep(Option<i64>),
    RecoveryCode(String),
}

enum Spent {
    Yes,
    WrongCode,
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
