//! One-time messages carried in the page session across a POST → 303 → GET.

use actix_session::Session;
use serde::{Deserialize, Serialize};

const SESSION_KEY: &str = "flash";

/// A message for the next page the browser shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `success`, `info` or `error`: names the CSS class and the ARIA role.
    pub level: String,
    pub text: String,
}

/// Queues a confirmation.
pub fn success(session: &Session, text: impl Into<String>) {
    push(session, "success", text.into());
}

/// Queues a notice: neither a success nor an error (something to do next).
pub fn info(session: &Session, text: impl Into<String>) {
    push(session, "info", text.into());
}

/// Queues an error.
pub fn error(session: &Session, text: impl Into<String>) {
    push(session, "error", text.into());
}

fn push(session: &Session, level: &str, text: String) {
    let mut queued = peek(session);
    queued.push(Flash {
        level: level.to_owned(),
        text,
    });
    if let Err(e) = session.insert(SESSION_KEY, queued) {
        log::warn!("could not queue a flash message: {e}");
    }
}

/// Takes the queued messages, so each shows once.
pub fn take(session: &Session) -> Vec<Flash> {
    let queued = peek(session);
    if !queued.is_empty() {
        session.remove(SESSION_KEY);
    }
    queued
}

fn peek(session: &Session) -> Vec<Flash> {
    session
        .get::<Vec<Flash>>(SESSION_KEY)
        .ok()
        .flatten()
        .unwrap_or_default()
}
