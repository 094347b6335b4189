//! Public endpoints: health, the JWKS, the demo `/secret`, and the JSON 404.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::tokens::{header_of, www_authenticate};

async fn get_anonymous(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn health_is_ok() {
    let app = spawn_app().await;

    let response = get_anonymous(&app, "/health").await;

    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("application/json"));
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn jwks_publishes_the_public_key_only() {
    let app = spawn_app().await;
    let tokens = app.user("jwks@example.com").await;

    let response = get_anonymous(&app, "/.well-known/jwks.json").await;

    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("application/json"));
    let cache = response
        .headers()
        .get(CACHE_CONTROL)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(cache.contains("max-age"), "Cache-Control: {cache}");
    let text = response.text().await.unwrap();
    let jwks: Value = serde_json::from_str(&text).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    // The development set: the EC key that signs access tokens, then an RSA key for RS256 ID
    // tokens.
    assert_eq!(keys.len(), 2);
    let key = keys[0].as_object().unwrap();
    let mut members: Vec<&str> = key.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], header_of(&tokens.access)["kid"]);

    // The private scalar the server keeps on disk appears nowhere in the document.
    let private: Value = serde_json::from_str(
        &std::fs::read_to_string(app.dir.path().join("gatehouse-dev-jwks.json")).unwrap(),
    )
    .unwrap();
    let d = private["keys"][0]["d"]
        .as_str()
        .expect("the key file holds d");
    assert!(!text.contains(d), "the JWKS leaks the private key");
    assert!(!text.contains("\"d\""), "the JWKS has a `d` member: {text}");
    assert_eq!(key["x"], private["keys"][0]["x"]);
    assert_eq!(key["y"], private["keys"][0]["y"]);

    let rsa = keys[1].as_object().unwrap();
    let mut members: Vec<&str> = rsa.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["alg"], "RS256");
    assert_eq!(rsa["n"], private["keys"][1]["n"]);
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        let secret = private["keys"][1][member]
            .as_str()
            .expect("the key file holds it");
        assert!(
            !text.contains(secret),
            "the JWKS leaks the RSA key's `{member}`"
        );
    }
}

#[tokio::test]
async fn secret_requires_authentication() {
    let app = spawn_app().await;

    let response = get_anonymous(&app, "/secret").await;

    assert_eq!(response.status(), 401);
    assert!(www_authenticate(&response).starts_with("Bearer"));
    assert_detail(response, 401, "Unauthorized").await;
}

#[tokio::test]
async fn secret_names_the_caller() {
    let app = spawn_app().await;
    let tokens = app.user("insider@example.com").await;
    let me: Value = app
        .get("/users/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();

    let response = app.get("/secret", &tokens.access).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(
        body["caller"],
        json!({"kind": "user", "id": me["id"], "email": "insider@example.com"})
    );
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = spawn_app().await;

    for path in [
        "/no-such-route",
        "/auth/jwt/nothing",
        "/.well-known/other.json",
    ] {
        let response = get_anonymous(&app, path).await;
        assert!(
            content_type(&response).starts_with("application/json"),
            "{path}"
        );
        assert_detail(response, 404, "Not Found").await;
    }
}

#[tokio::test]
async fn json_answers_declare_utf8() {
    let app = spawn_app().await;
    for path in [
        "/health",
        "/.well-known/jwks.json",
        "/users/me",
        "/no-such-route",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8",
            "{path}"
        );
    }
}
