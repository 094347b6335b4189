//! The delivery loop: claims due messages from the outbox, delivers them, and records what
//! became of each (sent, to be tried again later, or given up).

use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::{join_all, select};
use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{MailError, Mailer};
use crate::config::EmailSettings;
use crate::db::outbox::{self, ClaimedMessage};
use crate::db::{self, Pool};

/// Messages claimed at once, then delivered side by side (the SMTP pool keeps up to 10
/// connections).
const BATCH: i64 = 8;
/// How long one delivery may take before it counts as a failed attempt.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a claim holds: well beyond a delivery's time, so that only the claims of a worker
/// that died lapse, and its messages come back.
const CLAIM: Duration = Duration::from_secs(120);
/// The longest the worker sleeps between looks at the outbox, for messages that another
/// instance queued or left behind.
const POLL: Duration = Duration::from_secs(10);
/// The shortest, so that a due message another worker is claiming right now does not spin us.
const MIN_PAUSE: Duration = Duration::from_millis(100);
/// How long a stopping worker may take to count what is left in the outbox.
const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where messages go.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Why a delivery failed, and whether trying again could help.
struct Failure {
    reason: String,
    permanent: bool,
}

impl Failure {
    fn temporary(reason: String) -> Failure {
        Failure {
            reason,
            permanent: false,
        }
    }

    fn permanent(reason: String) -> Failure {
        Failure {
            reason,
            permanent: true,
        }
    }
}

/// The delivering side: one per instance, [`MailWorker::start`]ed beside the server.
pub struct MailWorker {
    pool: Pool,
    transport: Transport,
    /// The envelope's sender (`MAIL FROM`): the address of `EMAIL_FROM`.
    sender: Address,
    retry_delays: Vec<Duration>,
    wake: Arc<Notify>,
    /// Whose claims are whose in the outbox: this worker's, for this run of the process.
    id: String,
}

/// A started worker, until it is [`RunningMailWorker::finish`]ed.
pub struct RunningMailWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    pool: Pool,
}

impl MailWorker {
    /// The worker for `mailer`'s messages, delivering from the outbox in `pool`.
    pub fn new(
        settings: &EmailSettings,
        pool: Pool,
        mailer: &Mailer,
    ) -> Result<MailWorker, MailError> {
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    // lettre's error names the part that is wrong, never the credentials.
                    .map_err(|e| MailError::SmtpUrl(e.to_string()))?
                    .timeout(Some(SEND_TIMEOUT))
                    .build(),
            ),
            None => Transport::Outbox(settings.outbox_dir.clone()),
        };
        Ok(MailWorker {
            pool,
            transport,
            sender: mailer.from.email.clone(),
            retry_delays: settings.retry_delays.clone(),
            wake: Arc::clone(&mailer.wake),
            id: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Where messages go, for the startup line.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(_) => "SMTP".to_owned(),
            Transport::Outbox(dir) => format!("the outbox {}", dir.display()),
        }
    }

    /// Starts delivering on its own task, until [`RunningMailWorker::finish`].
    pub fn start(self) -> RunningMailWorker {
        let (stop, stopping) = watch::channel(false);
        let pool = self.pool.clone();
        let task = tokio::spawn(self.run(stopping));
        RunningMailWorker { stop, task, pool }
    }

    /// Claims and delivers due messages until told to stop; between batches, sleeps until the
    /// next message is due, a message is queued here, or [`POLL`] has passed.
    async fn run(self, mut stopping: watch::Receiver<bool>) {
        loop {
            if *stopping.borrow_and_update() || stopping.has_changed().is_err() {
                return;
            }
            let claimer = self.id.clone();
            let claimed = db::run(&self.pool, move |conn| {
                outbox::claim(conn, &claimer, BATCH, CLAIM.as_secs() as i64)
            })
            .await;
            let pause = match claimed {
                Ok(batch) if batch.is_empty() => self.until_next_due().await,
                Ok(batch) => {
                    join_all(batch.into_iter().map(|message| self.deliver(message))).await;
                    continue;
                }
                Err(e) => {
                    log::warn!(
                        "cannot read the email outbox (looking again in {}s): {e}",
                        POLL.as_secs()
                    );
                    POLL
                }
            };
            let woken = pin!(self.wake.notified());
            let stopped = pin!(stopping.changed());
            let _ = tokio::time::timeout(pause, select(woken, stopped)).await;
        }
    }

    /// How long until the next message is due, at most [`POLL`].
    async fn until_next_due(&self) -> Duration {
        let pause = match db::run(&self.pool, outbox::next_due).await {
            Ok(Some(at)) => time_until(at).min(POLL),
            Ok(None) => POLL,
            Err(e) => {
                log::warn!("cannot read the email outbox: {e}");
                POLL
            }
        };
        pause.max(MIN_PAUSE)
    }

    /// Tries to deliver one claimed message, and records the outcome.
    async fn deliver(&self, claimed: ClaimedMessage) {
        let ClaimedMessage {
            id,
            recipient,
            message,
            attempts,
        } = claimed;
        let outcome = match message {
            Some(message) => {
                let delivery = self.transport.deliver(&self.sender, &recipient, &message);
                tokio::time::timeout(SEND_TIMEOUT, delivery)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure::temporary(format!(
                            "no answer within {}s",
                            SEND_TIMEOUT.as_secs()
                        )))
                    })
            }
            None => Err(Failure::permanent(
                "the message is missing from the outbox".to_owned(),
            )),
        };
        let attempt = usize::try_from(attempts).unwrap_or(0).max(1);
        let claimer = self.id.clone();
        let recorded = match outcome {
            Ok(how) => {
                log::info!("email to {recipient} {how}");
                db::write(&self.pool, move |conn| {
                    outbox::mark_sent(conn, &id, &claimer)
                })
                .await
            }
            Err(failure) => match self.retry_delays.get(attempt - 1) {
                Some(delay) if !failure.permanent => {
                    log::warn!(
                        "email to {recipient} failed (attempt {attempt}), retrying in {}s: {}",
                        delay.as_secs(),
                        failure.reason
                    );
                    let at = epoch_secs_after(*delay);
                    db::write(&self.pool, move |conn| {
                        outbox::retry_later(conn, &id, &claimer, at, &failure.reason)
                    })
                    .await
                }
                _ => {
                    log::error!(
                        "gave up on the email to {recipient} after {attempt} attempt(s): {}; \
                         it is kept in the outbox, marked failed",
                        failure.reason
                    );
                    db::write(&self.pool, move |conn| {
                        outbox::mark_failed(conn, &id, &claimer, &failure.reason)
                    })
                    .await
                }
            },
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => log::warn!(
                "the claim on the email to {recipient} had lapsed: another worker took it over"
            ),
            Err(e) => log::error!(
                "cannot record the delivery of the email to {recipient} (it is tried again \
                 when its claim lapses, within {}s): {e}",
                CLAIM.as_secs()
            ),
        }
    }
}

impl RunningMailWorker {
    /// Stops claiming messages and lets the deliveries under way finish, for at most `grace`.
    /// Returns how many messages remain queued in the outbox, for the next start (or another
    /// instance) to send; `None` if they could not be counted.
    pub async fn finish(self, grace: Duration) -> Option<i64> {
        let RunningMailWorker {
            stop,
            mut task,
            pool,
        } = self;
        let _ = stop.send(true);
        match tokio::time::timeout(grace, &mut task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("the email worker failed: {e}"),
            Err(_) => {
                task.abort();
                log::warn!(
                    "emails being sent when the time ran out are tried again once their \
                     claim lapses (within {}s)",
                    CLAIM.as_secs()
                );
            }
        }
        match tokio::time::timeout(COUNT_TIMEOUT, db::run(&pool, outbox::count_pending)).await {
            Ok(Ok(pending)) => Some(pending),
            Ok(Err(e)) => {
                log::warn!("cannot count the emails left in the outbox: {e}");
                None
            }
            Err(_) => {
                log::warn!("cannot count the emails left in the outbox: the database is slow");
                None
            }
        }
    }
}

impl Transport {
    async fn deliver(
        &self,
        sender: &Address,
        recipient: &str,
        message: &str,
    ) -> Result<String, Failure> {
        match self {
            Transport::Smtp(smtp) => {
                let to: Address = recipient.parse().map_err(|_| {
                    Failure::permanent(format!("`{recipient}` cannot be used as a recipient"))
                })?;
                let envelope = Envelope::new(Some(sender.clone()), vec![to])
                    .map_err(|e| Failure::permanent(e.to_string()))?;
                smtp.send_raw(&envelope, message.as_bytes())
                    .await
                    .map(|_| "sent by SMTP".to_owned())
                    .map_err(|e| Failure {
                        // A refusal (5xx) will not change: trying again only delays the news.
                        permanent: e.is_permanent(),
                        reason: e.to_string(),
                    })
            }
            Transport::Outbox(dir) => write_eml(dir, message.as_bytes())
                .await
                .map(|path| format!("written to {}", path.display()))
                .map_err(|e| {
                    Failure::temporary(format!("cannot write into {}: {e}", dir.display()))
                }),
        }
    }
}

/// Writes a message as `<time>-<random>.eml`, complete or not at all: readers of the outbox
/// never see half a message.
async fn write_eml(dir: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
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

/// The first whole second (since the epoch) at least `delay` from now: a retry never comes
/// early.
fn epoch_secs_after(delay: Duration) -> i64 {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(delay);
    let secs = at.as_secs() + u64::from(at.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// The time from now until `at` (seconds since the epoch); zero if it has passed.
fn time_until(at: i64) -> Duration {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap_or(0));
    at.duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::*;
    use crate::db::outbox::NewMessage;
    use crate::db::PoolSettings;

    struct Setup {
        dir: tempfile::TempDir,
        pool: Pool,
        mailer: Mailer,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("gatehouse.db").display().to_string();
        let pool = db::connect(
            &url,
            PoolSettings {
                size: 4,
                timeout: Duration::from_secs(5),
            },
            db::Creation::Allowed,
        )
        .unwrap();
        db::migrate(&pool).unwrap();
        let mailer = Mailer::new(&settings(PathBuf::new(), None, Vec::new())).unwrap();
        Setup { dir, pool, mailer }
    }

    fn settings(outbox_dir: PathBuf, smtp_url: Option<String>, delays: Vec<u64>) -> EmailSettings {
        EmailSettings {
            smtp_url: smtp_url.map(Into::into),
            outbox_dir,
            from: "Gatehouse <noreply@example.com>".into(),
            require_verification: false,
            reset_token_ttl: Duration::from_secs(3600),
            verify_token_ttl: Duration::from_secs(3600),
            retry_delays: delays.into_iter().map(Duration::from_secs).collect(),
        }
    }

    impl Setup {
        fn outbox(&self) -> PathBuf {
            self.dir.path().join("outbox")
        }

        fn worker(&self, outbox_dir: PathBuf, delays: Vec<u64>) -> MailWorker {
            self.worker_for(&self.mailer, outbox_dir, delays)
        }

        fn worker_for(&self, mailer: &Mailer, outbox_dir: PathBuf, delays: Vec<u64>) -> MailWorker {
            let settings = settings(outbox_dir, None, delays);
            MailWorker::new(&settings, self.pool.clone(), mailer).unwrap()
        }

        fn queue(&self, to: &str) {
            let message = format!("To: {to}\r\nSubject: Hello\r\n\r\nHello\r\n");
            let row = NewMessage {
                recipient: to,
                subject: "Hello",
                message: &message,
            };
            outbox::insert(&mut self.pool.get().unwrap(), row).unwrap();
            self.mailer.queued();
        }

        fn stats(&self) -> outbox::OutboxStats {
            outbox::stats(&mut self.pool.get().unwrap()).unwrap()
        }

        /// Waits (up to 10 s) for `done` to hold.
        async fn wait_for(&self, what: &str, done: impl Fn(&Setup) -> bool) {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !done(self) {
                assert!(std::time::Instant::now() < deadline, "waited for {what}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn eml_count(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                .count()
        })
    }

    #[tokio::test]
    async fn a_queued_message_is_delivered_and_marked_sent_without_its_body() {
        let s = setup();
        let running = s.worker(s.outbox(), vec![5]).start();
        s.queue("ada@example.com");

        s.wait_for("the .eml file", |s| eml_count(&s.outbox()) == 1)
            .await;
        s.wait_for("the sent mark", |s| s.stats().pending == 0)
            .await;
        assert_eq!(running.finish(Duration::from_secs(5)).await, Some(0));
        let bodies = crate::db::schema::email_outbox::table
            .select((
                crate::db::schema::email_outbox::status,
                crate::db::schema::email_outbox::message,
            ))
            .load::<(String, Option<String>)>(&mut **s.pool.get().unwrap())
            .unwrap();
        assert_eq!(bodies, [("sent".to_owned(), None)]);
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_after_its_delay() {
        let s = setup();
        // A file where the outbox directory should be: the first attempt fails.
        std::fs::write(s.outbox(), "not a directory yet").unwrap();
        let running = s.worker(s.outbox(), vec![1]).start();
        s.queue("ada@example.com");
        s.wait_for("the first attempt", |s| last_error(s).is_some())
            .await;
        std::fs::remove_file(s.outbox()).unwrap();

        s.wait_for("the second attempt", |s| eml_count(&s.outbox()) == 1)
            .await;
        assert_eq!(running.finish(Duration::from_secs(5)).await, Some(0));
    }

    #[tokio::test]
    async fn a_message_that_fails_every_attempt_is_kept_marked_failed() {
        let s = setup();
        std::fs::write(s.outbox(), "not a directory").unwrap();
        let running = s.worker(s.outbox().join("inner"), vec![0, 0]).start();
        s.queue("ada@example.com");

        s.wait_for("the give-up", |s| s.stats().failed == 1).await;
        assert_eq!(running.finish(Duration::from_secs(5)).await, Some(0));
        let (attempts, message) = crate::db::schema::email_outbox::table
            .select((
                crate::db::schema::email_outbox::attempts,
                crate::db::schema::email_outbox::message,
            ))
            .first::<(i32, Option<String>)>(&mut **s.pool.get().unwrap())
            .unwrap();
        assert_eq!((attempts, message), (3, None));
        let error = last_error(&s).unwrap();
        assert!(error.contains("cannot write"), "{error}");
    }

    #[tokio::test]
    async fn finishing_stops_claiming_and_counts_what_is_left() {
        let s = setup();
        std::fs::write(s.outbox(), "not a directory").unwrap();
        let running = s.worker(s.outbox().join("inner"), vec![60]).start();
        s.queue("ada@example.com");
        s.queue("bob@example.com");
        s.wait_for("both first attempts", |s| attempted(s) == 2)
            .await;

        assert_eq!(running.finish(Duration::from_secs(5)).await, Some(2));
        s.queue("cy@example.com");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(attempted(&s), 2, "nothing is claimed after the stop");
    }

    #[tokio::test]
    async fn finishing_gives_up_on_a_delivery_that_outlasts_the_time_left() {
        let s = setup();
        // A mail server that accepts the connection and never says a word.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("smtp://127.0.0.1:{}", silent.local_addr().unwrap().port());
        let settings = settings(PathBuf::new(), Some(url), vec![5]);
        let worker = MailWorker::new(&settings, s.pool.clone(), &s.mailer).unwrap();
        let running = worker.start();
        s.queue("ada@example.com");
        s.wait_for("the claim", |s| attempted(s) == 1).await;

        let started = std::time::Instant::now();
        assert_eq!(running.finish(Duration::from_millis(300)).await, Some(1));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn two_workers_deliver_each_message_once() {
        let s = setup();
        // As on two instances: each worker is woken by its own mailer.
        let other = Mailer::new(&settings(PathBuf::new(), None, Vec::new())).unwrap();
        let first = s.worker(s.outbox(), vec![5]).start();
        let second = s.worker_for(&other, s.outbox(), vec![5]).start();
        for n in 0..40 {
            s.queue(&format!("user{n}@example.com"));
            other.queued();
        }

        s.wait_for("every message", |s| s.stats().pending == 0)
            .await;
        assert_eq!(first.finish(Duration::from_secs(5)).await, Some(0));
        assert_eq!(second.finish(Duration::from_secs(5)).await, Some(0));
        assert_eq!(eml_count(&s.outbox()), 40);
    }

    fn last_error(s: &Setup) -> Option<String> {
        crate::db::schema::email_outbox::table
            .select(crate::db::schema::email_outbox::last_error)
            .first::<Option<String>>(&mut **s.pool.get().unwrap())
            .unwrap()
    }

    /// Messages tried at least once.
    fn attempted(s: &Setup) -> i64 {
        use crate::db::schema::email_outbox;
        email_outbox::table
            .filter(email_outbox::attempts.gt(0))
            .count()
            .get_result(&mut **s.pool.get().unwrap())
            .unwrap()
    }
}
