//! Every credential the service hands out works only where it is meant to: access tokens of
//! users and of machine clients, refresh tokens, and client secrets are never mistaken for one
//! another.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::page_client::{assert_see_other, spawn_page_app, PageClient, ACCESS};
use crate::tokens::{assert_invalid_token, claims_of, forge};

const ADMIN: &str = "admin@example.com";
const USER: &str = "user@example.com";

/// A superuser, a member, and a machine client with its token.
struct World {
    app: TestApp,
    admin: Tokens,
    user: Tokens,
    client: ClientCredentials,
    client_token: String,
}

async fn world_on(app: TestApp) -> World {
    let admin = app.superuser(ADMIN).await;
    let user = app.user(USER).await;
    let client = app
        .machine_client(&admin.access, "confused", &["read", "admin"])
        .await;
    let client_token = app.client_token(&client).await;
    World {
        app,
        admin,
        user,
        client,
        client_token,
    }
}

async fn world() -> World {
    world_on(spawn_app().await).await
}

/// Sends `method path` with a bearer token (and a JSON body for writes).
async fn send(app: &TestApp, method: &str, path: &str, token: &str) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(token);
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        request = request.json(&json!({"name": "x", "email": "x@example.com"}));
    }
    request.send().await.unwrap()
}

/// Asserts that `presented` is refused as a refresh token at both refresh endpoints.
async fn assert_not_a_refresh_token(app: &TestApp, presented: &str, what: &str) {
    let response = app.refresh(presented).await;
    assert_eq!(response.status(), 401, "{what} at /auth/jwt/refresh");
    assert_detail(response, 401, "REFRESH_TOKEN_INVALID").await;
    assert_oauth_error(
        app.refresh_grant(presented).await,
        400,
        "invalid_grant",
        what,
    )
    .await;
}

/// Asserts that `id` and `secret` are refused as client credentials, in the form and by Basic.
async fn assert_not_client_credentials(app: &TestApp, id: &str, secret: &str, what: &str) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    assert_oauth_error(app.token_request(&form).await, 401, "invalid_client", what).await;
    let response = app
        .token_request_with_authorization(
            &basic_authorization(id, secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let what = format!("{what}, by Basic");
    assert_oauth_error(response, 401, "invalid_client", &what).await;
}

// ---------------------------------------------------------------------------------------------
// Where an access token is expected

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let w = world().await;

    for path in ["/users/me", "/users/me/sessions", "/secret", "/clients"] {
        let what = format!("a user's refresh token at {path}");
        assert_invalid_token(w.app.get(path, &w.user.refresh).await, &what).await;
        let what = format!("a superuser's refresh token at {path}");
        assert_invalid_token(w.app.get(path, &w.admin.refresh).await, &what).await;
    }
}

#[tokio::test]
async fn a_client_secret_is_not_a_bearer_token() {
    let w = world().await;

    for path in ["/secret", "/users/me", "/clients"] {
        let what = format!("a client secret at {path}");
        assert_invalid_token(w.app.get(path, &w.client.secret).await, &what).await;
        let what = format!("a client id at {path}");
        assert_invalid_token(w.app.get(path, &w.client.id).await, &what).await;
    }
}

#[tokio::test]
async fn a_client_token_is_refused_by_every_user_route() {
    let w = world().await;
    let user_id = w.app.user_id(USER);
    let session = claims_of(&w.user.access)["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let routes = [
        ("GET", "/users/me".to_owned()),
        ("PATCH", "/users/me".to_owned()),
        ("GET", "/users/me/sessions".to_owned()),
        ("DELETE", format!("/users/me/sessions/{session}")),
        ("GET", format!("/users/{user_id}")),
        ("PATCH", format!("/users/{user_id}")),
        ("DELETE", format!("/users/{user_id}")),
        ("DELETE", format!("/users/{user_id}/sessions")),
        ("GET", "/clients".to_owned()),
        ("POST", "/clients".to_owned()),
        ("DELETE", format!("/clients/{}", w.client.id)),
        ("POST", "/auth/jwt/logout".to_owned()),
        ("POST", "/auth/jwt/logout?scope=global".to_owned()),
        ("POST", "/auth/cookie/logout".to_owned()),
    ];
    for (method, path) in &routes {
        let response = send(&w.app, method, path, &w.client_token).await;
        assert_invalid_token(response, &format!("a client token at {method} {path}")).await;
    }
    // Nothing changed, and the client token itself is still good where it belongs.
    assert_eq!(w.app.get("/users/me", &w.user.access).await.status(), 200);
    assert_eq!(w.app.count("SELECT id FROM clients"), 1);
    assert_eq!(w.app.get("/secret", &w.client_token).await.status(), 200);
}

#[tokio::test]
async fn a_client_token_in_the_access_cookie_signs_no_one_in() {
    let w = world_on(spawn_page_app().await).await;
    let browser = PageClient::new(&w.app);
    browser.set_cookie(ACCESS, &w.client_token);

    assert_see_other(&browser.get("/account").await, "/login?next=%2Faccount");
    let response = browser
        .client
        .get(browser.url("/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

// ---------------------------------------------------------------------------------------------
// Where client credentials are expected

#[tokio::test]
async fn user_tokens_are_not_client_credentials() {
    let w = world().await;
    let id = w.client.id.as_str();

    let cases = [
        (
            id,
            w.user.access.as_str(),
            "a user's access token as the secret",
        ),
        (
            id,
            w.user.refresh.as_str(),
            "a user's refresh token as the secret",
        ),
        (
            id,
            w.client_token.as_str(),
            "the client's own token as its secret",
        ),
        (
            w.user.access.as_str(),
            w.client.secret.as_str(),
            "a user token as the id",
        ),
        (USER, PASSWORD, "a user's email and password"),
    ];
    for (id, secret, what) in cases {
        assert_not_client_credentials(&w.app, id, secret, what).await;
    }
}

#[tokio::test]
async fn client_credentials_are_not_a_users_password() {
    let w = world().await;

    let response = w
        .app
        .token_request(&[
            ("grant_type", "password"),
            ("username", w.client.id.as_str()),
            ("password", w.client.secret.as_str()),
        ])
        .await;

    assert_oauth_error(
        response,
        400,
        "invalid_grant",
        "client credentials as a password",
    )
    .await;
    assert_eq!(
        w.app.login(&w.client.id, &w.client.secret).await.status(),
        400
    );
}

// ---------------------------------------------------------------------------------------------
// Where a refresh token is expected

#[tokio::test]
async fn a_client_token_is_not_a_refresh_token() {
    let w = world().await;

    assert_not_a_refresh_token(&w.app, &w.client_token, "a client's access token").await;
}

#[tokio::test]
async fn a_client_secret_is_not_a_refresh_token() {
    let w = world().await;
    // A client secret has the very shape of a refresh token.
    assert_eq!(w.client.secret.len(), w.user.refresh.len());

    assert_not_a_refresh_token(&w.app, &w.client.secret, "a client secret").await;
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token() {
    let w = world().await;

    assert_not_a_refresh_token(&w.app, &w.user.access, "a user's access token").await;
    // The user's real refresh token still works: the refusals were about what was presented.
    assert_eq!(w.app.refresh(&w.user.refresh).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Tokens that mix a user's and a client's claims (signed with the server's own key)

#[tokio::test]
async fn a_genuine_client_token_resigned_unchanged_is_accepted() {
    let w = world().await;

    // The forging kit reproduces a client token, so the refusals below are about the changes.
    let resigned = forge(&w.app, &claims_of(&w.client_token));

    assert_eq!(w.app.get("/secret", &resigned).await.status(), 200);
}

#[tokio::test]
async fn hybrid_tokens_are_refused() {
    let w = world().await;
    let client_claims = claims_of(&w.client_token);
    let user_claims = claims_of(&w.user.access);
    let user_id = w.app.user_id(USER);
    let admin = w.app.tokens(ADMIN, PASSWORD).await;
    let other = w.app.machine_client(&admin.access, "other", &[]).await;

    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut with_sid = client_claims.clone();
    with_sid["sid"] = user_claims["sid"].clone();
    cases.push(("a client token with a session id", with_sid));
    let mut with_client = user_claims.clone();
    with_client["client_id"] = json!(w.client.id);
    cases.push(("a user token with a client id", with_client));
    let mut user_subject = client_claims.clone();
    user_subject["sub"] = json!(user_id);
    cases.push(("a client token whose subject is a user", user_subject));
    let mut other_subject = client_claims.clone();
    other_subject["sub"] = json!(other.id);
    cases.push((
        "a client token whose subject is another client",
        other_subject,
    ));
    let mut client_subject = user_claims.clone();
    client_subject["sub"] = json!(w.client.id);
    cases.push(("a user token whose subject is a client", client_subject));
    let mut unknown = client_claims.clone();
    let unknown_id = format!("client_{}", "A".repeat(22));
    unknown["sub"] = json!(unknown_id);
    unknown["client_id"] = json!(unknown_id);
    cases.push(("a token for a client that does not exist", unknown));
    let mut neither = client_claims.clone();
    neither.as_object_mut().unwrap().remove("client_id");
    cases.push(("a client token without client_id", neither));
    let mut refresh_use = client_claims.clone();
    refresh_use["token_use"] = json!("refresh");
    cases.push((
        "a client token that says it is a refresh token",
        refresh_use,
    ));

    for (what, claims) in &cases {
        let token = forge(&w.app, claims);
        for path in ["/secret", "/users/me"] {
            let response = w.app.get(path, &token).await;
            assert_invalid_token(response, &format!("{what} at {path}")).await;
        }
    }
}
