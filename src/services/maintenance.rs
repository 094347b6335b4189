//! Keeping the service in shape: the health check, and the periodic purge of what expired.

use std::sync::Arc;
use std::time::Duration;

use super::ServiceError;
use crate::db::{self, email_tokens, factors, oidc, outbox, passkeys, sessions, throttle, DbError};
use crate::state::AppState;

/// How often expired sessions and used refresh tokens are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// How long sent emails stay in the outbox (without their body) before they are deleted.
const SENT_EMAILS_KEPT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Whether the service can do its job: the database answers, can store data, and (SQLite)
/// is still the file that was opened. The verdict stands for a second, so probes stay cheap.
pub async fn check_health(state: &AppState) -> Result<(), ServiceError> {
    let healthy = match state.pool.recent_health() {
        Some(healthy) => healthy,
        None => {
            let probed = db::write(&state.pool, db::probe_write).await;
            if let Err(e) = &probed {
                log::warn!("health check failed: {e}");
            }
            state.pool.remember_health(probed.is_ok());
            probed.is_ok()
        }
    };
    match healthy {
        true => Ok(()),
        false => Err(ServiceError::Unavailable),
    }
}

/// Deletes what has expired: sessions and refresh tokens, emailed tokens, throttle counters
/// whose window has passed, idle per-address buckets, and emails sent a week ago (failed ones
/// stay for inspection).
pub async fn purge_expired(state: Arc<AppState>) -> std::convert::Infallible {
    let mut ticks = tokio::time::interval(PURGE_INTERVAL);
    let window = state
        .throttle
        .account_limits()
        .map_or(0, |l| l.window.as_secs() as i64);
    loop {
        ticks.tick().await;
        state.throttle.forget_idle();
        let purged = db::write(&state.pool, move |conn| {
            let now = db::now();
            Ok::<_, DbError>((
                sessions::purge_expired(conn, now)?,
                // Second steps are kept a day: their wrong codes count against their user.
                email_tokens::purge(conn, now)?
                    + factors::purge_challenges(conn, now - 86_400)?
                    + passkeys::purge_ceremonies(conn, now)?
                    // Used authorization codes are kept a day, so a replay still ends what
                    // the code started.
                    + oidc::purge_codes(conn, now - 86_400)?,
                throttle::purge(conn, now - window)?,
                outbox::purge_sent(conn, now - SENT_EMAILS_KEPT.as_secs() as i64)?,
            ))
        })
        .await;
        match purged {
            Ok((0, 0, 0, 0)) => {}
            Ok((sessions, tokens, counters, emails)) => log::info!(
                "purged {sessions} expired sessions and refresh tokens, {tokens} emailed tokens, login steps, passkey ceremonies and authorization codes, \
                 {counters} throttle counters, {emails} sent emails"
            ),
            Err(e) => log::warn!("could not purge expired rows: {e}"),
        }
    }
}
