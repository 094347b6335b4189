//! The audit log: who did what to whom, from where. Recording never fails the action it
//! records (that has already happened); a failure to record is logged as an error.

use super::ServiceError;
use crate::auth::origin::Origin;
use crate::db::audit::{AuditFilter, NewAuditEvent};
use crate::db::{self, audit, Listing, Page};
use crate::domain::{AuditEvent, AuditRecord, Party, User};
use crate::startup::AppState;

/// Who is acting and from where: what every audited service call needs to know about the
/// request behind it.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub actor: Option<Party>,
    pub origin: Origin,
}

impl Context {
    /// A request nobody has authenticated yet (signup, login, recovery).
    pub fn anonymous(origin: Origin) -> Context {
        Context {
            actor: None,
            origin,
        }
    }

    /// A request by a signed-in user.
    pub fn user(user: &User, origin: Origin) -> Context {
        Context {
            actor: Some(Party::from(user)),
            origin,
        }
    }

    /// The command line, on the server itself.
    pub fn command_line() -> Context {
        Context {
            actor: Some(Party {
                id: "cli".to_owned(),
                label: "command line".to_owned(),
            }),
            origin: Origin::default(),
        }
    }

    /// An event a user brought about on their own account (logging in, resetting the
    /// password): they are its actor and its subject, whoever asked before.
    pub fn own_event(&self, event: AuditEvent, user: &User) -> NewAuditEvent {
        let own = Party::from(user);
        NewAuditEvent {
            actor: Some(own.clone()),
            ..self.event(event, Some(own))
        }
    }

    /// An event in this context, about `subject`.
    pub fn event(&self, event: AuditEvent, subject: Option<Party>) -> NewAuditEvent {
        NewAuditEvent {
            event,
            occurred_at: db::now(),
            actor: self.actor.clone(),
            subject,
            ip: self.origin.ip.map(|ip| ip.to_string()),
            user_agent: self.origin.user_agent.clone(),
            detail: None,
        }
    }
}

/// Records one event.
pub async fn record(state: &AppState, event: NewAuditEvent) {
    let name = event.event;
    if let Err(e) = db::run(&state.pool, move |conn| audit::insert(conn, event)).await {
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
