//! Email: the outbox the app writes messages to without SMTP, the messages decoded (headers,
//! MIME parts, the link token), and the recovery and verification requests that send them.

use std::path::PathBuf;

use super::app::{assert_null, spawn_app_with, TestApp};

/// The base of the links in emails, for apps spawned with [`spawn_mail_app_with`].
pub const PUBLIC_URL: &str = "http://gatehouse.test";

/// How long a message may take to reach the outbox after the request that queued it.
pub(super) const OUTBOX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Spawns the app with `PUBLIC_URL` set to [`PUBLIC_URL`] and extra variables.
pub async fn spawn_mail_app_with(vars: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("PUBLIC_URL", PUBLIC_URL)];
    all.extend_from_slice(vars);
    spawn_app_with(&all).await
}

/// The subject of the notice of a sign-in from a new device.
pub const SIGN_IN_NOTICE_SUBJECT: &str = "New sign-in to your Gatehouse account";

/// One message of the outbox, decoded.
#[derive(Debug, Clone)]
pub struct Email {
    /// The message's top-level headers, unfolded, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded `text/plain` part.
    pub text: String,
    /// The decoded `text/html` part.
    pub html: String,
    /// The `token` of the first link in the text part (empty if there is none).
    pub token: String,
    /// The link in the text part up to `?token=` (empty if there is none).
    pub link_base: String,
}

impl Email {
    /// The value of the first header called `name` (any letter case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is the notice of a sign-in from a device the account was not seen on.
    pub fn is_sign_in_notice(&self) -> bool {
        self.header("subject") == Some(SIGN_IN_NOTICE_SUBJECT)
    }

    /// Whether the message is addressed to `address` (any letter case).
    pub fn is_to(&self, address: &str) -> bool {
        self.header("to").is_some_and(|to| {
            let to = to.trim();
            let bare = match (to.find('<'), to.rfind('>')) {
                (Some(start), Some(end)) if start < end => &to[start + 1..end],
                _ => to,
            };
            bare.trim().eq_ignore_ascii_case(address)
        })
    }
}

impl TestApp {
    /// Where messages go without `SMTP_URL`: `outbox/` beside the database.
    pub fn outbox_dir(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Every complete message in the outbox so far, oldest first.
    pub fn outbox(&self) -> Vec<Email> {
        let Ok(entries) = std::fs::read_dir(self.outbox_dir()) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.') && n.ends_with(".eml"))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| parse_email_message(&std::fs::read(path).unwrap()))
            .collect()
    }

    /// The messages to `address` so far, oldest first, but for notices of a sign-in from a
    /// new device (which any login from another client may send: see
    /// [`TestApp::sign_in_notices_to`]).
    pub fn emails_to(&self, address: &str) -> Vec<Email> {
        self.outbox()
            .into_iter()
            .filter(|email| email.is_to(address) && !email.is_sign_in_notice())
            .collect()
    }

    /// The notices of a sign-in from a new device sent to `address` so far, oldest first.
    pub fn sign_in_notices_to(&self, address: &str) -> Vec<Email> {
        self.outbox()
            .into_iter()
            .filter(|email| email.is_to(address) && email.is_sign_in_notice())
            .collect()
    }

    /// Waits for the `n`-th message (counting from 1) to `address` and returns it.
    pub async fn wait_for_email(&self, address: &str, n: usize) -> Email {
        let deadline = std::time::Instant::now() + OUTBOX_TIMEOUT;
        loop {
            let mut emails = self.emails_to(address);
            if emails.len() >= n {
                return emails.swap_remove(n - 1);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "message {n} to {address} did not arrive; the outbox holds {:?}",
                self.outbox()
                    .iter()
                    .map(|e| (
                        e.header("to").map(str::to_owned),
                        e.header("subject").map(str::to_owned)
                    ))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Asserts that no message to `address` arrives (after giving the background work a
    /// moment to run).
    pub async fn assert_no_email_to(&self, address: &str) {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let emails = self.emails_to(address);
        assert!(
            emails.is_empty(),
            "no message to {address} expected: {emails:?}"
        );
    }

    pub async fn forgot_password(&self, email: &str) -> reqwest::Response {
        self.post_json("/auth/forgot-password", serde_json::json!({"email": email}))
            .await
    }

    pub async fn request_verify_token(&self, email: &str) -> reqwest::Response {
        self.post_json(
            "/auth/request-verify-token",
            serde_json::json!({"email": email}),
        )
        .await
    }

    pub async fn reset_password(&self, token: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/auth/reset-password",
            serde_json::json!({"token": token, "password": password}),
        )
        .await
    }

    pub async fn verify(&self, token: &str) -> reqwest::Response {
        self.post_json("/auth/verify", serde_json::json!({"token": token}))
            .await
    }

    /// Asks for a password reset for `email` and returns the token of the message it sends.
    pub async fn reset_token(&self, email: &str) -> String {
        let before = self.emails_to(email).len();
        assert_null(self.forgot_password(email).await, 202).await;
        self.wait_for_email(email, before + 1).await.token
    }

    /// Asks for a verification link for `email` and returns the token of the message it sends.
    pub async fn verify_token(&self, email: &str) -> String {
        let before = self.emails_to(email).len();
        assert_null(self.request_verify_token(email).await, 202).await;
        self.wait_for_email(email, before + 1).await.token
    }
}

/// Parses an RFC 5322 message with a `text/plain` and a `text/html` part (or one of them).
pub(super) fn parse_email_message(raw: &[u8]) -> Email {
    let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let headers = unfold_headers(head);
    let mut email = Email {
        headers,
        text: String::new(),
        html: String::new(),
        token: String::new(),
        link_base: String::new(),
    };
    let content_type = email
        .header("content-type")
        .unwrap_or("text/plain")
        .to_owned();
    let encoding = email
        .header("content-transfer-encoding")
        .unwrap_or("7bit")
        .to_owned();
    match boundary_of(&content_type) {
        Some(boundary) => {
            let delimiter = format!("--{boundary}");
            for part in body.split(&delimiter).skip(1) {
                if part.starts_with("--") {
                    break;
                }
                let part = part.strip_prefix('\n').unwrap_or(part);
                let (head, body) = part.split_once("\n\n").unwrap_or((part, ""));
                let headers = unfold_headers(head);
                let find = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                store_part(
                    &mut email,
                    &find("content-type"),
                    &find("content-transfer-encoding"),
                    body,
                );
            }
        }
        None => store_part(&mut email, &content_type, &encoding, body),
    }
    if let Some(at) = email.text.find("?token=") {
        let start = at + "?token=".len();
        email.token = email.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let line_start = email.text[..at]
            .rfind(char::is_whitespace)
            .map_or(0, |i| i + 1);
        email.link_base = email.text[line_start..at].to_owned();
    }
    email
}

fn store_part(email: &mut Email, content_type: &str, encoding: &str, body: &str) {
    let decoded = match encoding.trim().to_ascii_lowercase().as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            use base64::Engine as _;
            let compact: String = body.split_whitespace().collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("a base64 part"),
            )
            .into_owned()
        }
        _ => body.to_owned(),
    };
    let kind = content_type.to_ascii_lowercase();
    if kind.starts_with("text/plain") {
        email.text = decoded.replace("\r\n", "\n");
    } else if kind.starts_with("text/html") {
        email.html = decoded.replace("\r\n", "\n");
    }
}

fn unfold_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

fn boundary_of(content_type: &str) -> Option<String> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    let at = content_type.to_ascii_lowercase().find("boundary=")?;
    let rest = &content_type[at + "boundary=".len()..];
    let boundary = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split([';', ' ']).next()?,
    };
    Some(boundary.to_owned())
}

/// Decodes quoted-printable text (RFC 2045 §6.7): soft line breaks go, `=XX` become bytes.
pub fn decode_quoted_printable(encoded: &str) -> String {
    let encoded = encoded.replace("=\r\n", "").replace("=\n", "");
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
