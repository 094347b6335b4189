//! A mail server for the tests: it speaks just enough SMTP (RFC 5321) to accept every message
//! (greeting, EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT), and records each one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::mail::{parse_email_message, Email, OUTBOX_TIMEOUT};

/// A message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope: `MAIL FROM` and `RCPT TO` addresses.
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message, decoded.
    pub email: Email,
}

/// A running SMTP server on `127.0.0.1`; it stops when dropped.
pub struct SmtpSink {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

/// A port nothing listens on (for now): where a mail server is down.
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl SmtpSink {
    /// Starts a server on a free port.
    pub async fn start() -> SmtpSink {
        SmtpSink::start_on(0).await
    }

    /// Starts a server on `port` (0 for any free one).
    pub async fn start_on(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("the SMTP sink cannot listen on port {port}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&received);
        let task = tokio::spawn(async move {
            // Sessions end with the server: the set aborts them when it is dropped.
            let mut sessions = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                sessions.spawn(session(stream, Arc::clone(&recorded)));
            }
        });
        SmtpSink {
            port,
            received,
            task,
        }
    }

    /// `SMTP_URL` for an app that sends here (plain SMTP, as development allows).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The messages to `address` so far (by envelope recipient), oldest first.
    pub fn emails_to(&self, address: &str) -> Vec<Email> {
        self.received()
            .into_iter()
            .filter(|r| r.rcpt_to.iter().any(|to| to.eq_ignore_ascii_case(address)))
            .map(|r| r.email)
            .collect()
    }

    /// Waits for `n` messages in all.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{n} messages expected, {} received",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the `n`-th message (counting from 1) to `address` and returns it.
    pub async fn wait_for_email(&self, address: &str, n: usize) -> Email {
        let deadline = Instant::now() + OUTBOX_TIMEOUT;
        loop {
            let mut emails = self.emails_to(address);
            if emails.len() >= n {
                return emails.swap_remove(n - 1);
            }
            assert!(
                Instant::now() < deadline,
                "message {n} to {address} did not arrive; the server received {:?}",
                self.received()
                    .iter()
                    .map(|r| &r.rcpt_to)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client's connection, until QUIT or until it hangs up.
async fn session(stream: TcpStream, received: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
            "HELO" => b"250 sink.test\r\n",
            "MAIL" => {
                mail_from = address_in(command);
                rcpt_to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" => {
                rcpt_to.push(address_in(command));
                b"250 2.1.5 OK\r\n"
            }
            "DATA" => {
                writer
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut reader).await?;
                received.lock().unwrap().push(Received {
                    mail_from: std::mem::take(&mut mail_from),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    email: parse_email_message(&data),
                });
                b"250 2.0.0 queued\r\n"
            }
            "RSET" => {
                mail_from.clear();
                rcpt_to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                writer.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        writer.write_all(reply).await?;
    }
}

/// The message after DATA, up to the line holding a single `.`, without dot-stuffing.
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(unstuffed);
    }
}

/// The address between `<` and `>` in `MAIL FROM:<…>` or `RCPT TO:<…>`.
fn address_in(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_owned()
}
