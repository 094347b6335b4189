//! The per-account counters (failed logins, emails sent), kept in the database so every
//! instance counts together. Nothing is counted when throttling is off.

use super::ServiceError;
use crate::auth::throttle::{over_limit, AccountCounter};
use crate::db::{self, throttle};
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

/// Forgets the address's `counter`.
pub(super) async fn clear(
    state: &AppState,
    counter: AccountCounter,
    normalized_email: &str,
) -> Result<(), ServiceError> {
    if state.throttle.account_limits().is_none() {
        return Ok(());
    }
    let key = counter.key(normalized_email);
    db::write(&state.pool, move |conn| throttle::clear(conn, &key)).await?;
    Ok(())
}
