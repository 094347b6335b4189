//! The per-account counters (login attempts, emails sent), kept in the database so every
//! instance counts together. Nothing is counted when throttling is off.

use super::ServiceError;
use crate::auth::throttle::{
    over_limit, AccountCounter, Counter, LoginJudge, LoginKeys, LOGIN_KEY_SEPARATOR,
};
use crate::db::{self, throttle, DbError};
use crate::state::AppState;

/// Counts one hit on the address's `counter`, and refuses it once the window's budget is
/// spent, whether or not an account has the address.
pub(super) async fn count(
    state: &AppState,
    counter: AccountCounter,
    normalized_email: &str,
) -> Result<(), ServiceError> {
    let Some(limits) = state.throttle.account_limits() else {
        return Ok(());
    };
    let key = counter.key(normalized_email);
    let now = db::now();
    let window = limits.window.as_secs() as i64;
    let count = db::write(&state.pool, move |conn| {
        throttle::hit(conn, &key, now, window)
    })
    .await?;
    let limit = limits.limit(counter);
    match over_limit(
        count.hits,
        count.window_started_at,
        limit,
        limits.window,
        now,
    ) {
        Some(throttled) => Err(ServiceError::Throttled(throttled)),
        None => Ok(()),
    }
}

/// Counts a password guess against the account of `normalized_email` (whether or not there is
/// one) by `judge`, before the password is checked, so that parallel guesses cannot slip past
/// the limits; refuses it when `judge` has failed too often, or the account is making
/// strangers wait (see `auth::throttle`).
pub(super) async fn admit_login(
    state: &AppState,
    normalized_email: &str,
    judge: &LoginJudge,
) -> Result<(), ServiceError> {
    let Some(limits) = state.throttle.account_limits() else {
        return Ok(());
    };
    let keys = LoginKeys::new(normalized_email, judge);
    let by_device = matches!(judge, LoginJudge::Device(_));
    let now = db::now();
    let admitted = db::write(&state.pool, move |conn| {
        let client = counter(throttle::read(conn, &keys.client)?);
        if by_device {
            return match limits.admit_device(client, now) {
                Ok(client) => store(conn, &keys.client, client).map(|()| Ok(())),
                Err(refused) => Ok(Err(refused)),
            };
        }
        let account = counter(throttle::read(conn, &keys.account)?);
        match limits.admit_address(account, client, now) {
            Ok((account, client)) => {
                store(conn, &keys.account, account)?;
                store(conn, &keys.client, client)?;
                Ok::<_, DbError>(Ok(()))
            }
            Err(refused) => Ok(Err(refused)),
        }
    })
    .await?;
    admitted.map_err(ServiceError::Throttled)
}

/// Forgets the failures a successful password check by `judge` answers for: a known device's
/// own; a stranger's, and the account's (the owner is back).
pub(super) async fn login_succeeded(
    state: &AppState,
    normalized_email: &str,
    judge: &LoginJudge,
) -> Result<(), ServiceError> {
    if state.throttle.account_limits().is_none() {
        return Ok(());
    }
    let keys = LoginKeys::new(normalized_email, judge);
    let by_device = matches!(judge, LoginJudge::Device(_));
    db::write(&state.pool, move |conn| {
        throttle::clear(conn, &keys.client)?;
        if !by_device {
            throttle::clear(conn, &keys.account)?;
        }
        Ok::<_, DbError>(())
    })
    .await?;
    Ok(())
}

/// Forgets every login counter of the account: its owner has proved who they are another way
/// (a password reset through their mailbox), and the old failures guessed at an old password.
pub(super) async fn forget_logins(
    state: &AppState,
    normalized_email: &str,
) -> Result<(), ServiceError> {
    if state.throttle.account_limits().is_none() {
        return Ok(());
    }
    let account = LoginKeys::account(normalized_email);
    db::write(&state.pool, move |conn| {
        throttle::clear_family(conn, &account, LOGIN_KEY_SEPARATOR)
    })
    .await?;
    Ok(())
}

fn counter(stored: throttle::Stored) -> Counter {
    Counter {
        hits: u32::try_from(stored.hits).unwrap_or(0),
        window_started_at: stored.window_started_at,
        blocked_until: stored.blocked_until,
    }
}

fn store(conn: &mut db::Conn, key: &str, counter: Counter) -> Result<(), DbError> {
    let stored = throttle::Stored {
        hits: i32::try_from(counter.hits).unwrap_or(i32::MAX),
        window_started_at: counter.window_started_at,
        blocked_until: counter.blocked_until,
    };
    throttle::store(conn, key, stored)
}
