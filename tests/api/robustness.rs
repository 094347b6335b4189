//! Hostile input and concurrency: garbage bodies, oversized passwords, racing registrations and updates.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const ADMIN: &str = "admin@example.com";
const QUICK: Duration = Duration::from_secs(2);

/// Every route that reads a JSON or form body, and whether it needs the superuser's token.
const BODY_ROUTES: [(&str, &str, bool); 5] = [
    ("POST", "/auth/register", false),
    ("POST", "/auth/jwt/login", false),
    ("POST", "/auth/jwt/refresh", false),
    ("PATCH", "/users/me", true),
    ("PATCH", "/users/{admin}", true),
];

/// Content types and bodies that no route should accept, and none should answer with a 5xx.
fn garbage_bodies() -> Vec<(Option<&'static str>, Vec<u8>)> {
    let deep_json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_form = format!("username{}=x&password=y", "[a]".repeat(2_000));
    vec![
        (Some("application/json"), b"".to_vec()),
        (Some("application/json"), b"{".to_vec()),
        (Some("application/json"), b"null".to_vec()),
        (Some("application/json"), b"[]".to_vec()),
        (Some("application/json"), b"\"just a string\"".to_vec()),
        (Some("application/json"), b"12345".to_vec()),
        (
            Some("application/json"),
            b"{\"email\": {\"$gt\": \"\"}}".to_vec(),
        ),
        (
            Some("application/json"),
            b"{\"email\": [1, 2], \"password\": true, \"token\": 7, \"refresh_token\": {}}"
                .to_vec(),
        ),
        (
            Some("application/json"),
            b"\xff\xfe{\"email\": \"\xc3\x28\"}".to_vec(),
        ),
        (
            Some("application/json"),
            b"{\"email\": \"nul\\u0000@example.com\", \"password\": \"\\ud800\"}".to_vec(),
        ),
        (Some("application/json"), deep_json.into_bytes()),
        (
            Some("application/json; charset=utf-16"),
            b"\xff\xfe{\x00}\x00".to_vec(),
        ),
        (Some("text/plain"), b"email=a&password=b".to_vec()),
        (
            Some("application/xml"),
            b"<user><email>a</email></user>".to_vec(),
        ),
        (None, b"\x00\x01\x02\x03".to_vec()),
        (
            Some("application/x-www-form-urlencoded"),
            b"%ZZ=%&&==&password".to_vec(),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            b"username=a&username=b&password=%FF%FE".to_vec(),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            deep_form.into_bytes(),
        ),
        (Some("multipart/form-data"), b"no boundary at all".to_vec()),
        (
            Some("multipart/form-data; boundary=xyz"),
            b"--xyz\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nunterminated"
                .to_vec(),
        ),
        (
            Some("multipart/form-data; boundary=xyz"),
            b"--xyz\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--xyz--\r\n".to_vec(),
        ),
        (
            Some("definitely not a mime type"),
            b"{\"email\": 1}".to_vec(),
        ),
    ]
}

async fn send_raw(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, app.url(path)).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap()
}

fn sessions(app: &TestApp) -> i64 {
    app.count("SELECT id FROM sessions")
}

/// Toggles the case of each letter of `email` by the bits of `n`, so each `n` spells it differently.
fn case_variant(email: &str, n: usize) -> String {
    email
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if (n >> (i % 16)) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

#[tokio::test]
async fn garbage_bodies_are_refused_with_4xx_on_every_body_route() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let admin_row = app.user_row(ADMIN).unwrap();
    let admin_path = format!("/users/{}", admin_row.id);
    let users_before = app.user_count();
    let sessions_before = sessions(&app);

    for (method, route, authenticated) in BODY_ROUTES {
        let path = route.replace("/users/{admin}", &admin_path);
        for (content_type, body) in garbage_bodies() {
            let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
            let token = authenticated.then_some(admin.access.as_str());
            let response = send_raw(&app, method, &path, token, content_type, body).await;
            let status = response.status();
            assert!(
                status.is_client_error() && status != 404 && status != 405,
                "{method} {path} with {content_type:?} {shown:?} gave {status}"
            );
        }
    }

    assert_eq!(app.user_count(), users_before);
    assert_eq!(sessions(&app), sessions_before);
    let after = app.user_row(ADMIN).unwrap();
    assert_eq!(after.hashed_password, admin_row.hashed_password);
    assert!(after.is_superuser && after.is_active);
    // The server is still healthy and the admin's token still works.
    assert_eq!(app.get("/users/me", &admin.access).await.status(), 200);
    app.tokens(ADMIN, PASSWORD).await;
}

#[tokio::test]
async fn a_one_megabyte_password_is_refused_quickly_on_register() {
    let app = spawn_app().await;
    let password = "a".repeat(1024 * 1024);

    let started = Instant::now();
    let response = app.register("huge@example.com", &password).await;
    let elapsed = started.elapsed();

    assert_eq!(response.status(), 413);
    assert!(elapsed < QUICK, "took {elapsed:?}");
    assert_eq!(app.user_count(), 0);
}

#[tokio::test]
async fn a_password_over_the_limit_but_under_the_body_limit_is_refused_by_policy() {
    let app = spawn_app().await;
    let password = "a".repeat(60 * 1024);

    let started = Instant::now();
    let response = app.register("long@example.com", &password).await;
    let elapsed = started.elapsed();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"]["code"], "REGISTER_INVALID_PASSWORD",
        "{body}"
    );
    assert!(elapsed < QUICK, "took {elapsed:?}");
    assert_eq!(app.user_count(), 0);
}

#[tokio::test]
async fn a_one_megabyte_password_is_refused_quickly_on_login() {
    let app = spawn_app().await;
    app.register("alice@example.com", PASSWORD).await;
    let password = "a".repeat(1024 * 1024);

    let started = Instant::now();
    let form = app.login("alice@example.com", &password).await;
    let form_elapsed = started.elapsed();
    let started = Instant::now();
    let multipart = app
        .client
        .post(app.url("/auth/jwt/login"))
        .multipart(
            reqwest::multipart::Form::new()
                .text("username", "alice@example.com")
                .text("password", password.clone()),
        )
        .send()
        .await
        .unwrap();
    let multipart_elapsed = started.elapsed();

    assert!(form.status().is_client_error(), "{}", form.status());
    assert!(form_elapsed < QUICK, "took {form_elapsed:?}");
    assert!(
        multipart.status().is_client_error(),
        "{}",
        multipart.status()
    );
    assert!(multipart_elapsed < QUICK, "took {multipart_elapsed:?}");
    assert_eq!(sessions(&app), 0);
    assert_eq!(app.count("SELECT token_hash FROM refresh_tokens"), 0);
}

#[tokio::test]
async fn a_one_megabyte_password_is_refused_quickly_on_patch_me() {
    let app = spawn_app().await;
    let tokens = app.user("alice@example.com").await;
    let before = app.user_row("alice@example.com").unwrap().hashed_password;
    let password = "a".repeat(1024 * 1024);

    let started = Instant::now();
    let response = app
        .patch(
            "/users/me",
            &tokens.access,
            json!({"password": password, "current_password": PASSWORD}),
        )
        .await;
    let elapsed = started.elapsed();

    assert_eq!(response.status(), 413);
    assert!(elapsed < QUICK, "took {elapsed:?}");
    assert_eq!(
        app.user_row("alice@example.com").unwrap().hashed_password,
        before
    );
    assert_eq!(app.get("/users/me", &tokens.access).await.status(), 200);
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_exactly_one_user() {
    let app = spawn_app().await;
    let emails: Vec<String> = (0..32)
        .map(|n| case_variant("racer@example.com", n * 37 % 1024))
        .collect();

    let responses = join_all(emails.iter().map(|email| app.register(email, PASSWORD))).await;

    let mut created = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            _ => assert_detail(response, 400, "REGISTER_USER_ALREADY_EXISTS").await,
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.user_count(), 1);
    assert_eq!(
        app.count("SELECT id FROM users WHERE email_normalized = 'racer@example.com'"),
        1
    );
}

#[tokio::test]
async fn concurrent_registrations_of_distinct_emails_all_succeed() {
    let app = spawn_app().await;
    let emails: Vec<String> = (0..32).map(|n| format!("user{n}@example.com")).collect();

    let responses = join_all(emails.iter().map(|email| app.register(email, PASSWORD))).await;

    for (email, response) in emails.iter().zip(responses) {
        assert_eq!(response.status(), 201, "{email}");
    }
    assert_eq!(app.user_count(), 32);
    for email in &emails {
        assert!(app.user_row(email).is_some(), "{email}");
    }
}

#[tokio::test]
async fn concurrent_updates_of_different_fields_are_all_applied() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let targets: Vec<String> = (0..4).map(|n| format!("target{n}@example.com")).collect();
    for email in &targets {
        assert_eq!(app.register(email, PASSWORD).await.status(), 201);
    }
    let new_password = "changed concurrently by an admin";

    let mut requests = Vec::new();
    for email in &targets {
        let path = format!("/users/{}", app.user_id(email));
        for body in [
            json!({"password": new_password}),
            json!({"is_verified": true}),
            json!({"is_superuser": true}),
        ] {
            requests.push((path.clone(), body));
        }
    }
    let responses = join_all(
        requests
            .iter()
            .map(|(path, body)| app.patch(path, &admin.access, body.clone())),
    )
    .await;

    for ((path, body), response) in requests.iter().zip(responses) {
        assert_eq!(response.status(), 200, "PATCH {path} {body}");
    }
    for email in &targets {
        let row = app.user_row(email).unwrap();
        assert!(row.is_verified, "{email} lost is_verified");
        assert!(row.is_superuser, "{email} lost is_superuser");
        assert!(row.is_active, "{email}");
        app.tokens(email, new_password).await;
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_are_405() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let admin_path = format!("/users/{}", app.user_id(ADMIN));

    for path in ["/nope", "/auth/registerx", "/users/me/extra", "/auth/jwt"] {
        let response = app.get(path, &admin.access).await;
        assert_detail(response, 404, "Not Found").await;
    }

    for (method, path) in [
        ("GET", "/auth/register"),
        ("GET", "/auth/jwt/login"),
        ("PUT", "/auth/jwt/login"),
        ("POST", "/users/me"),
        ("DELETE", "/users/me"),
        ("POST", admin_path.as_str()),
    ] {
        let response = send_raw(&app, method, path, Some(&admin.access), None, Vec::new()).await;
        assert_eq!(response.status(), 405, "{method} {path}");
    }

    assert_eq!(app.user_count(), 1);
    assert!(app.user_row(ADMIN).unwrap().is_superuser);
}
