//! The audit log: who did what to whom, from where. Recording never fails the action it
//! records (that has already happened); a failure to record is logged as an error.

use std::borrow::Cow;

use super::ServiceError;
use crate::db::audit::NewAuditEvent;
use crate::db::{self, audit};
use crate::domain::{printable, AuditFilter, AuditRecord, Listing, Page};
use crate::state::AppState;

/// Records one event, with every text in it made printable (a carriage return in a name or
/// a user agent is stored escaped, so no reader of the trail can be shown a forged line).
pub async fn record(state: &AppState, mut event: NewAuditEvent) {
    let name = event.event;
    for party in [&mut event.actor, &mut event.subject].into_iter().flatten() {
        escape(&mut party.label);
    }
    for text in [&mut event.detail, &mut event.user_agent]
        .into_iter()
        .flatten()
    {
        escape(text);
    }
    if let Err(e) = db::write(&state.pool, move |conn| audit::insert(conn, event)).await {
        log::error!("could not record the audit event {name}: {e}");
    }
}

fn escape(text: &mut String) {
    if let Cow::Owned(escaped) = printable(text) {
        *text = escaped;
    }
}

/// One page of events matching `filter`, newest first.
pub async fn list(
    state: &AppState,
    filter: AuditFilter,
    page: Page,
) -> Result<Listing<AuditRecord>, ServiceError> {
    Ok(db::run(&state.pool, move |conn| audit::list(conn, &filter, &page)).await?)
}
