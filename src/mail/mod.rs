//! Email: composing messages, and delivering them from the outbox.
//!
//! A message is queued as a row of the database's outbox (`db::outbox`), in the transaction
//! that stores what it carries, so it survives a restart or a crash. A [`MailWorker`] on each
//! instance delivers due messages by SMTP (`SMTP_URL`) or, with no mail server configured,
//! writes each as an `.eml` file into the outbox directory and logs its path. A failed
//! delivery is retried with growing delays; a message that still fails is logged with its
//! recipient and kept in the outbox, marked failed, never dropped without a word.

mod messages;
mod worker;

use std::sync::Arc;

use lettre::message::Mailbox;
use tokio::sync::Notify;

pub use messages::{
    email_change_confirmation, email_changed, factors_changed, invitation, new_sign_in,
    password_reset, verification, Composed, EmailChange, FactorsChange, NewSignIn,
};
pub use worker::{MailWorker, RunningMailWorker};

use crate::config::EmailSettings;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SMTP_URL is not valid: {0}")]
    SmtpUrl(String),
    #[error("EMAIL_FROM is not a valid mailbox: {0}")]
    From(String),
    #[error("`{0}` cannot be used as a recipient")]
    Recipient(String),
    #[error("the message could not be built: {0}")]
    Build(String),
}

/// The composing side, shared by every request: the sender of every message, and the bell
/// that wakes this process's worker when a message has been queued.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    wake: Arc<Notify>,
}

impl Mailer {
    pub fn new(settings: &EmailSettings) -> Result<Mailer, MailError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))?;
        Ok(Mailer {
            from,
            wake: Arc::new(Notify::new()),
        })
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Says that a message has been committed to the outbox, so that this process's worker
    /// delivers it now rather than at its next look. Messages queued by other instances are
    /// found when the worker polls.
    pub fn queued(&self) {
        self.wake.notify_one();
    }
}

/// The recipient mailbox for an account's address.
fn recipient(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse()
        .map_err(|_| MailError::Recipient(address.to_owned()))
}
