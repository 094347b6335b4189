//! Headers of every answer that the pages' own tests do not cover: JSON with personal data is
//! never cached, and production tells browsers to use HTTPS only.

use serde_json::json;

use crate::helpers::*;

const MEMBER: &str = "member@example.com";
const ADMIN: &str = "admin@example.com";

/// The `Cache-Control` of an answer, or "" when it has none.
fn cache_control(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("cache-control")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Finding 14: JSON answers that carry personal data (`/users/me`, `/users/{id}`, `/audit`,
/// `/clients`, the sessions) are `Cache-Control: no-store`, so no shared or browser cache
/// keeps them.
#[tokio::test]
async fn json_answers_with_personal_data_are_never_cached() {
    let app = spawn_app().await;
    let member = app.user(MEMBER).await;
    let admin = app.superuser(ADMIN).await;
    let member_id = app.user_id(MEMBER);

    let answers = [
        ("GET /users/me", app.get("/users/me", &member.access).await),
        (
            "PATCH /users/me",
            app.patch("/users/me", &member.access, json!({})).await,
        ),
        (
            "GET /users/me/sessions",
            app.get("/users/me/sessions", &member.access).await,
        ),
        (
            "GET /users/{id}",
            app.get(&format!("/users/{member_id}"), &admin.access).await,
        ),
        (
            "PATCH /users/{id}",
            app.patch(&format!("/users/{member_id}"), &admin.access, json!({}))
                .await,
        ),
        ("GET /audit", app.get("/audit", &admin.access).await),
        ("GET /clients", app.get("/clients", &admin.access).await),
    ];

    for (what, response) in answers {
        assert_eq!(response.status(), 200, "{what}");
        assert_eq!(cache_control(&response), "no-store", "{what}");
    }
}

/// A production app: explicit keys, an https `PUBLIC_URL`, hashing at the baseline, and `vars`.
async fn spawn_production_app(vars: &[(&str, &str)]) -> TestApp {
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut all = vec![
        ("GATEHOUSE_ENV", "production"),
        ("MFA_KEY", "sJWu3YnW2AUhzQlLd1XADGmNzP3214ukQDLVB-EIzCE"),
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET", secret.as_str()),
        ("PUBLIC_URL", "https://auth.example.com"),
        ("DATABASE_CREATE", "true"),
        ("ARGON2_MEMORY_KIB", "19456"),
        ("ARGON2_ITERATIONS", "2"),
    ];
    all.extend_from_slice(vars);
    spawn_app_with(&all).await
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn hsts(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("strict-transport-security")
        .map(|value| value.to_str().unwrap().to_owned())
}

/// Finding 14: production sends `Strict-Transport-Security` on every answer, pages and JSON.
#[tokio::test]
async fn production_answers_ask_for_https_only() {
    let app = spawn_production_app(&[]).await;

    for path in ["/health", "/login", "/no-such-page"] {
        let response = get_with(&app, path, &[]).await;
        let hsts = hsts(&response).unwrap_or_else(|| panic!("no HSTS on {path}"));
        assert!(hsts.starts_with("max-age="), "{path}: {hsts}");
        let max_age: u64 = hsts["max-age=".len()..]
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(max_age >= 31_536_000, "{path}: {hsts}");
    }
    // A client cannot talk the header away: only a trusted proxy's word counts.
    let spoofed = get_with(&app, "/health", &[("x-forwarded-proto", "http")]).await;
    assert!(hsts(&spoofed).is_some());
}

/// Finding 14: behind a trusted proxy, HSTS follows the scheme the proxy says the client used
/// (RFC 6797 §7.2: not over plain HTTP).
#[tokio::test]
async fn hsts_honours_a_trusted_proxys_forwarded_scheme() {
    let app = spawn_production_app(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;

    let https = get_with(&app, "/health", &[("x-forwarded-proto", "https")]).await;
    assert!(hsts(&https).is_some());
    let plain = get_with(&app, "/health", &[("x-forwarded-proto", "http")]).await;
    assert_eq!(hsts(&plain), None);
    let plain = get_with(
        &app,
        "/health",
        &[("forwarded", "for=192.0.2.1;proto=http")],
    )
    .await;
    assert_eq!(hsts(&plain), None);
}

/// Development (plain HTTP on localhost) sends no HSTS: it would pin `localhost` to HTTPS.
#[tokio::test]
async fn development_sends_no_hsts() {
    let app = spawn_app().await;

    assert_eq!(hsts(&get_with(&app, "/health", &[]).await), None);
}
