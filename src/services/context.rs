//! Who is behind a service call: the acting party and the client's address and user agent.
//! The web kit builds it from a request; the command line has its own.

use std::net::IpAddr;

use crate::db::{self, audit::NewAuditEvent};
use crate::domain::{AuditEvent, Party, User};

/// The client behind a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    /// Shortened to 256 characters.
    pub user_agent: Option<String>,
    /// The device cookie the client presented, if any (`auth::device`), unverified.
    pub device_cookie: Option<DeviceCookie>,
}

/// A device cookie's value as presented: a credential of sorts, so it never shows in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCookie(pub String);

impl std::fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCookie([REDACTED])")
    }
}

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
