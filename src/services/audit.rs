//! The audit log: who did what to whom, from where. Recording never fails the action it
//! records (that has already happened); a failure to record is logged as an error.

use super::ServiceError;
use crate::db::audit::NewAuditEvent;
use crate::db::{self, audit};
use crate::domain::{AuditFilter, AuditRecord, Listing, Page};
use crate::state::AppState;

/// Records one event.
pub async fn record(state: &AppState, event: NewAuditEvent) {
    let name = event.event;
    if let Err(e) = db::write(&state.pool, move |conn| audit::insert(conn, event)).await {
        log::error!("could not record the audit event {name}: {e}");
    }
}

/// One page of events matching `filter`, newest first.
pub async fn list(
    state: &AppState,
    filter: AuditFilter,
    page: Page,
) -> Result<Listing<AuditRecord>, ServiceError> {
    Ok(db::run(&state.pool, move |conn| audit::list(conn, &filter, page)).await?)
}
