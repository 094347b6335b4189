//! "Log in with Gatehouse" in a real browser: a relying party sends the user to
//! `/oauth/authorize`, the user logs in and answers the consent page, and the browser lands on
//! the relying party's callback, a small HTTP server of the test's own that records the
//! request line it receives. The test then exchanges the code as the relying party would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::app::{spawn_app, TestApp, PASSWORD};
use crate::harness::{Browser, TIMEOUT};

const EMAIL: &str = "ida.wells@example.com";
const ADMIN: &str = "root@example.com";

/// The relying party's callback: an HTTP server on a loopback port that answers every request
/// with a small page and reports the request lines of `/callback`.
struct Callback {
    uri: String,
    requests: mpsc::UnboundedReceiver<String>,
}

impl Callback {
    async fn start() -> Callback {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, requests) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    let page = "<!doctype html><title>Acme Notes</title>\
                                <h1 id=\"rp-callback\">Back at Acme Notes</h1>";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                        page.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                    if line.starts_with("GET /callback") {
                        let _ = sender.send(line);
                    }
                });
            }
        });
        Callback {
            uri: format!("http://127.0.0.1:{port}/callback"),
            requests,
        }
    }

    /// The query of the next request to `/callback`.
    async fn next_query(&mut self, browser: &Browser) -> Vec<(String, String)> {
        let Ok(line) = tokio::time::timeout(TIMEOUT, self.requests.recv()).await else {
            let at = browser.current_url().await;
            let errors = browser.console_errors().await;
            browser.screenshot("callback-timeout").await;
            panic!("the callback received nothing in {TIMEOUT:?}; the browser is at {at}, console: {errors:#?}");
        };
        let line = line.expect("the callback server runs");
        let target = line.split(' ').nth(1).unwrap_or_default();
        let url = url::Url::parse(&format!("http://relying.party{target}")).unwrap();
        url.query_pairs().into_owned().collect()
    }
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Registers an application named `name` sending users back to `redirect_uri`; its id and
/// secret.
async fn register_application(
    app: &TestApp,
    admin: &str,
    name: &str,
    redirect_uri: &str,
) -> (String, String) {
    let response = app
        .http
        .post(app.url("/clients"))
        .bearer_auth(admin)
        .json(&json!({"name": name, "redirect_uris": [redirect_uri]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "register {name}");
    let body: Value = response.json().await.unwrap();
    (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// An authorization request's path and the secrets the relying party keeps: the PKCE
/// verifier, the state and the nonce.
struct Request {
    path: String,
    verifier: String,
    state: String,
    nonce: String,
}

fn authorization_request(client_id: &str, redirect_uri: &str) -> Request {
    let random = || {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    };
    let (verifier, state, nonce) = (random(), random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    Request {
        path: format!("/oauth/authorize?{query}"),
        verifier,
        state,
        nonce,
    }
}

const ALLOW: &str = "button[name=decision][value=allow]";
const DENY: &str = "button[name=decision][value=deny]";

#[tokio::test]
async fn a_relying_party_signs_its_user_in_through_login_and_consent() {
    let app = spawn_app().await;
    let user_id = app.register(EMAIL, PASSWORD).await;
    app.register_superuser(ADMIN, PASSWORD).await;
    let admin = app.access_token(ADMIN, PASSWORD).await;
    let mut callback = Callback::start().await;
    let (client_id, secret) = register_application(&app, &admin, "Acme Notes", &callback.uri).await;
    let Some(browser) = Browser::launch("oidc", &app.base_url).await else {
        return;
    };

    // The relying party's "Log in with Gatehouse" link: the login page first.
    let request = authorization_request(&client_id, &callback.uri);
    browser.goto(&request.path).await;
    browser.wait_for_location("/login").await;
    browser.screenshot("login").await;
    browser.log_in(EMAIL, PASSWORD).await;

    // The consent page names the application; "Allow".
    browser.wait_for_text("h1", "Acme Notes").await;
    browser.find(DENY).await;
    browser.screenshots("consent").await;
    browser.click(ALLOW).await;

    // Back at the relying party with a code, the state and the issuer.
    let query = callback.next_query(&browser).await;
    assert_eq!(
        param(&query, "state"),
        Some(request.state.as_str()),
        "{query:?}"
    );
    assert_eq!(
        param(&query, "iss"),
        Some(app.base_url.as_str()),
        "{query:?}"
    );
    let code = param(&query, "code").expect("a code").to_owned();
    browser
        .wait_for_text("#rp-callback", "Back at Acme Notes")
        .await;

    // The relying party exchanges it: the ID token names the user.
    let response = app
        .http
        .post(app.url("/auth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.uri.as_str()),
            ("code_verifier", request.verifier.as_str()),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the code exchange");
    let tokens: Value = response.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sub"], user_id.as_str(), "{claims}");
    assert_eq!(claims["nonce"], request.nonce.as_str(), "{claims}");
    assert_eq!(claims["email"], EMAIL, "{claims}");

    // Another application, and the user says no: the relying party hears access_denied.
    let (other_id, _) = register_application(&app, &admin, "Acme Calendar", &callback.uri).await;
    let request = authorization_request(&other_id, &callback.uri);
    browser.goto(&request.path).await;
    browser.wait_for_text("h1", "Acme Calendar").await;
    browser.click(DENY).await;
    let query = callback.next_query(&browser).await;
    assert_eq!(param(&query, "error"), Some("access_denied"), "{query:?}");
    assert_eq!(
        param(&query, "state"),
        Some(request.state.as_str()),
        "{query:?}"
    );
    assert_eq!(param(&query, "code"), None, "{query:?}");

    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|message| !message.contains("/favicon.ico"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
}

#[tokio::test]
async fn with_consent_remembered_the_login_form_leads_straight_back_to_the_relying_party() {
    let app = spawn_app().await;
    app.register(EMAIL, PASSWORD).await;
    app.register_superuser(ADMIN, PASSWORD).await;
    let admin = app.access_token(ADMIN, PASSWORD).await;
    let mut callback = Callback::start().await;
    let (client_id, _) = register_application(&app, &admin, "Acme Notes", &callback.uri).await;
    let Some(browser) = Browser::launch("oidc-remembered", &app.base_url).await else {
        return;
    };

    let request = authorization_request(&client_id, &callback.uri);
    browser.goto(&request.path).await;
    browser.wait_for_location("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    browser.click(ALLOW).await;
    let query = callback.next_query(&browser).await;
    assert!(param(&query, "code").is_some(), "{query:?}");

    // Signed out of Gatehouse, the user comes back through the relying party: the login form
    // leads through the authorization endpoint straight to the callback.
    browser.goto("/account").await;
    browser.submit("form#logout-form").await;
    browser.wait_for_location("/").await;
    let request = authorization_request(&client_id, &callback.uri);
    browser.goto(&request.path).await;
    browser.wait_for_location("/login").await;
    browser.log_in(EMAIL, PASSWORD).await;
    let query = callback.next_query(&browser).await;
    assert_eq!(
        param(&query, "state"),
        Some(request.state.as_str()),
        "{query:?}"
    );
    assert!(param(&query, "code").is_some(), "{query:?}");
    browser.close().await;
}
