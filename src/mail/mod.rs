//! Email delivery. Requests only queue a message; a worker delivers it by SMTP (`SMTP_URL`)
//! or, with no mail server configured, writes it as an `.eml` file into the outbox directory
//! and logs its path. A failed delivery is logged and retried with growing delays; a message
//! that still fails is logged as given up, never dropped without a word.

mod messages;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;

pub use messages::{email_changed, password_reset, verification, EmailChange};

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

/// The delivering side; runs as long as the server does, then [`MailWorker::finish`]es.
pub struct MailWorker {
    transport: Transport,
    inbox: mpsc::Receiver<Envelope>,
    retries: mpsc::Sender<Envelope>,
    /// The message being delivered: kept here, so that a delivery cut short at shutdown is
    /// tried again by `finish` rather than lost.
    current: Option<Envelope>,
    /// Failed messages waiting out their delay before the next attempt.
    waiting: Arc<AtomicUsize>,
    /// Messages whose delivery failed while the server was stopping (not retried).
    abandoned: usize,
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
            current: None,
            waiting: Arc::new(AtomicUsize::new(0)),
            abandoned: 0,
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

    /// Delivers queued messages, retrying failures later, until the server stops (this future
    /// is then dropped, and [`MailWorker::finish`] takes over).
    pub async fn run(&mut self) {
        self.deliver_queued(true).await;
    }

    /// Stops taking messages and delivers those already queued, for at most `grace`, without
    /// retrying failures. Logs every message it could not deliver, and returns how many.
    pub async fn finish(mut self, grace: Duration) -> usize {
        // Senders now fail, and say so; what is queued can still be received.
        self.inbox.close();
        let _ = tokio::time::timeout(grace, self.deliver_queued(false)).await;
        let mut left: Vec<Envelope> = self.current.take().into_iter().collect();
        while let Ok(envelope) = self.inbox.try_recv() {
            left.push(envelope);
        }
        for envelope in &left {
            log::error!(
                "email to {} not sent: the server stopped",
                envelope.recipient
            );
        }
        let waiting = self.waiting.load(Ordering::SeqCst);
        if waiting > 0 {
            log::error!(
                "{waiting} email(s) waiting for another attempt not sent: the server stopped"
            );
        }
        left.len() + waiting + self.abandoned
    }

    /// Delivers messages until the queue is closed and empty.
    async fn deliver_queued(&mut self, retry: bool) {
        loop {
            if self.current.is_none() {
                self.current = self.inbox.recv().await;
            }
            let Some(envelope) = self.current.as_mut() else {
                return;
            };
            envelope.attempts += 1;
            let outcome = self.transport.deliver(&envelope.message).await;
            let Some(envelope) = self.current.take() else {
                return;
            };
            match outcome {
                Ok(how) => log::info!("email to {} {how}", envelope.recipient),
                Err(why) if retry => self.retry_later(envelope, &why),
                Err(why) => {
                    self.abandoned += 1;
                    log::error!(
                        "gave up on the email to {} (the server is stopping): {why}",
                        envelope.recipient
                    );
                }
            }
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
        let waiting = Arc::clone(&self.waiting);
        waiting.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            waiting.fetch_sub(1, Ordering::SeqCst);
            let recipient = envelope.recipient.clone();
            if retries.send(envelope).await.is_err() {
                log::error!("email to {recipient} not retried: the server is stopping");
            }
        });
    }
}

impl Transport {
    async fn deliver(&self, message: &Message) -> Result<String, String> {
        match self {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mail_to(outbox_dir: PathBuf) -> (Mailer, MailWorker) {
        mailer_with(outbox_dir, None)
    }

    fn mailer_with(outbox_dir: PathBuf, smtp_url: Option<String>) -> (Mailer, MailWorker) {
        let settings = EmailSettings {
            smtp_url: smtp_url.map(Into::into),
            outbox_dir,
            from: "Gatehouse <noreply@example.com>".into(),
            require_verification: false,
            reset_token_ttl: Duration::from_secs(3600),
            verify_token_ttl: Duration::from_secs(3600),
        };
        Mailer::new(&settings).unwrap()
    }

    fn queue(mailer: &Mailer, to: &str) {
        let message = password_reset(mailer, to, "https://x/reset-password?token=t", "1 hour");
        mailer.send(message.unwrap(), to);
    }

    fn eml_count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                .count()
        })
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_later() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the outbox directory should be: the first attempt fails.
        let outbox = dir.path().join("outbox");
        std::fs::write(&outbox, "not a directory yet").unwrap();
        let (mailer, worker) = mail_to(outbox.clone());
        let running = tokio::spawn(async move {
            let mut worker = worker;
            worker.run().await;
        });
        queue(&mailer, "ada@example.com");
        tokio::time::sleep(Duration::from_millis(500)).await;
        std::fs::remove_file(&outbox).unwrap();

        // The retry comes RETRY_DELAYS[0] after the failure.
        let deadline = std::time::Instant::now() + RETRY_DELAYS[0] + Duration::from_secs(10);
        while eml_count(&outbox) == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        running.abort();
        assert_eq!(eml_count(&outbox), 1, "delivered on the second attempt");
    }

    #[tokio::test]
    async fn finishing_delivers_what_is_queued_and_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let (mailer, worker) = mail_to(outbox.clone());
        queue(&mailer, "ada@example.com");
        queue(&mailer, "bob@example.com");

        assert_eq!(worker.finish(Duration::from_secs(10)).await, 0);
        assert_eq!(eml_count(&outbox), 2);
        queue(&mailer, "cy@example.com");
        assert_eq!(eml_count(&outbox), 2, "the queue is closed");
    }

    #[tokio::test]
    async fn finishing_counts_what_it_could_not_deliver() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the outbox directory should be: every delivery fails.
        let blocked = dir.path().join("outbox");
        std::fs::write(&blocked, "not a directory").unwrap();
        let (mailer, worker) = mail_to(blocked.join("inner"));
        queue(&mailer, "ada@example.com");
        queue(&mailer, "bob@example.com");

        // Failures at shutdown are final: given up at once, not retried.
        assert_eq!(worker.finish(Duration::from_secs(10)).await, 2);
    }

    #[tokio::test]
    async fn finishing_gives_up_when_its_time_is_over() {
        // A mail server that accepts the connection and never says a word.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("smtp://127.0.0.1:{}", silent.local_addr().unwrap().port());
        let (mailer, worker) = mailer_with(PathBuf::from("unused"), Some(url));
        queue(&mailer, "ada@example.com");
        queue(&mailer, "bob@example.com");

        // The first message is cut short, the second never tried: both are counted.
        assert_eq!(worker.finish(Duration::from_millis(300)).await, 2);
    }
}
