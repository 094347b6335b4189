//! Email delivery. Requests only queue a message; a worker delivers it by SMTP (`SMTP_URL`)
//! or, with no mail server configured, writes it as an `.eml` file into the outbox directory
//! and logs its path. A failed delivery is logged and retried with growing delays; a message
//! that still fails is logged as given up, never dropped without a word.

mod messages;

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;

pub use messages::{password_reset, verification};

use crate::config::EmailSettings;

/// Messages waiting for the worker; more are refused (and logged) rather than held without
/// limit.
const QUEUE: usize = 1024;
/// Delays before the second, third, … attempt.
const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

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

/// Where messages go.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// A message on its way, and how many times delivery has been tried.
struct Envelope {
    message: Message,
    recipient: String,
    attempts: usize,
}

/// The sending side, shared by every request.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    queue: mpsc::Sender<Envelope>,
}

/// The delivering side; runs as long as the server does.
pub struct MailWorker {
    transport: Transport,
    inbox: mpsc::Receiver<Envelope>,
    retries: mpsc::Sender<Envelope>,
}

impl Mailer {
    pub fn new(settings: &EmailSettings) -> Result<(Mailer, MailWorker), MailError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))?;
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    // lettre's error names the part that is wrong, never the credentials.
                    .map_err(|e| MailError::SmtpUrl(e.to_string()))?
                    .build(),
            ),
            None => Transport::Outbox(settings.outbox_dir.clone()),
        };
        let (queue, inbox) = mpsc::channel(QUEUE);
        let worker = MailWorker {
            transport,
            inbox,
            retries: queue.clone(),
        };
        Ok((Mailer { from, queue }, worker))
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Queues a message for delivery without waiting for it.
    pub fn send(&self, message: Message, recipient: &str) {
        let envelope = Envelope {
            message,
            recipient: recipient.to_owned(),
            attempts: 0,
        };
        if let Err(e) = self.queue.try_send(envelope) {
            log::error!(
                "email to {recipient} not sent: the delivery queue is {}",
                match e {
                    mpsc::error::TrySendError::Full(_) => "full",
                    mpsc::error::TrySendError::Closed(_) => "closed",
                }
            );
        }
    }
}

impl MailWorker {
    /// Where messages go, for the startup line.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(_) => "SMTP".to_owned(),
            Transport::Outbox(dir) => format!("the outbox {}", dir.display()),
        }
    }

    /// Delivers queued messages until the server stops.
    pub async fn run(mut self) {
        while let Some(mut envelope) = self.inbox.recv().await {
            envelope.attempts += 1;
            match self.deliver(&envelope.message).await {
                Ok(how) => log::info!("email to {} {how}", envelope.recipient),
                Err(why) => self.retry_later(envelope, &why),
            }
        }
    }

    async fn deliver(&self, message: &Message) -> Result<String, String> {
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(|_| "sent by SMTP".to_owned())
                .map_err(|e| e.to_string()),
            Transport::Outbox(dir) => write_eml(dir, &message.formatted())
                .await
                .map(|path| format!("written to {}", path.display()))
                .map_err(|e| format!("cannot write into {}: {e}", dir.display())),
        }
    }

    fn retry_later(&self, envelope: Envelope, why: &str) {
        let Some(delay) = RETRY_DELAYS.get(envelope.attempts - 1).copied() else {
            log::error!(
                "gave up on the email to {} after {} attempts: {why}",
                envelope.recipient,
                envelope.attempts
            );
            return;
        };
        log::warn!(
            "email to {} failed (attempt {}), retrying in {}s: {why}",
            envelope.recipient,
            envelope.attempts,
            delay.as_secs()
        );
        let retries = self.retries.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let recipient = envelope.recipient.clone();
            if retries.send(envelope).await.is_err() {
                log::error!("email to {recipient} not retried: the server is stopping");
            }
        });
    }
}

/// Writes a message as `<time>-<random>.eml`, complete or not at all: readers of the outbox
/// never see half a message.
async fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let name = format!(
        "{}-{}.eml",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
        uuid::Uuid::new_v4().simple()
    );
    let partial = dir.join(format!(".{name}.partial"));
    tokio::fs::write(&partial, bytes).await?;
    let path = dir.join(name);
    tokio::fs::rename(&partial, &path).await?;
    Ok(path)
}

/// The recipient mailbox for an account's address.
fn recipient(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse()
        .map_err(|_| MailError::Recipient(address.to_owned()))
}
