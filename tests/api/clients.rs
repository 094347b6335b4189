//! `/clients`: superusers register, list and delete machine clients; a client's life from
//! registration to deletion.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::tokens::{assert_invalid_token, now};

const ADMIN: &str = "admin@example.com";
const MEMBER: &str = "member@example.com";

async fn admin_app() -> (TestApp, Tokens) {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    (app, admin)
}

async fn list(app: &TestApp, token: &str) -> Value {
    let response = app.get("/clients", token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn post_body(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/clients"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Asserts a 422 whose first error is at `["body", field]`.
async fn assert_invalid_field(response: reqwest::Response, field: &str, what: &str) {
    assert_eq!(response.status(), 422, "{what}");
    let body: Value = response.json().await.unwrap();
    let errors = body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {body}"));
    assert!(!errors.is_empty(), "{what}: {body}");
    assert_eq!(errors[0]["loc"], json!(["body", field]), "{what}: {body}");
    assert!(errors[0]["msg"].is_string(), "{what}: {body}");
    assert!(errors[0]["type"].is_string(), "{what}: {body}");
}

// ---------------------------------------------------------------------------------------------
// Registering

#[tokio::test]
async fn creating_a_client_shows_its_secret_once() {
    let (app, admin) = admin_app().await;

    let response = app
        .create_client(
            &admin.access,
            "billing",
            &["write:invoices", "read:invoices"],
        )
        .await;

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        [
            "client_id",
            "client_secret",
            "created_at",
            "id_token_signed_response_alg",
            "name",
            "post_logout_redirect_uris",
            "public",
            "redirect_uris",
            "scopes",
            "skip_consent"
        ],
        "{body}"
    );
    let id = body["client_id"].as_str().unwrap();
    let random = id.strip_prefix("client_").expect("client_ prefix");
    assert_eq!(random.len(), 22, "{id}");
    assert!(
        random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{id}"
    );
    let secret = body["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 32, "a long secret: {secret}");
    assert_eq!(body["name"], "billing");
    assert_eq!(body["scopes"], json!(["read:invoices", "write:invoices"]));
    let created_at = body["created_at"]
        .as_i64()
        .expect("seconds since the epoch");
    assert!((created_at - now()).abs() <= 60, "{created_at}");
}

#[tokio::test]
async fn each_client_gets_its_own_id_and_secret() {
    let (app, admin) = admin_app().await;

    let first = app.machine_client(&admin.access, "twin one", &[]).await;
    let second = app.machine_client(&admin.access, "twin two", &[]).await;

    assert_ne!(first.id, second.id);
    assert_ne!(first.secret, second.secret);
    assert_eq!(list(&app, &admin.access).await.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_name_is_trimmed_and_scopes_default_to_none() {
    let (app, admin) = admin_app().await;

    let response = post_body(&app, &admin.access, json!({"name": "  nightly export  "})).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "nightly export");
    assert_eq!(body["scopes"], json!([]));
}

#[tokio::test]
async fn repeated_scopes_are_kept_once_and_sorted() {
    let (app, admin) = admin_app().await;

    let response = app
        .create_client(&admin.access, "dupes", &["write", "read", "write", "admin"])
        .await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scopes"], json!(["admin", "read", "write"]));
}

#[tokio::test]
async fn the_longest_allowed_name_and_scopes_are_accepted() {
    let (app, admin) = admin_app().await;
    let name = "n".repeat(100);
    let long_scope = "s".repeat(64);
    let many: Vec<String> = (0..32).map(|i| format!("scope:{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    // Every printable ASCII character a scope token may hold.
    // Every character RFC 6749 allows in a scope but the comma, which Gatehouse refuses.
    let odd_scope = "!#$%&'()*+-./:;<=>?@[]^_`{|}~";

    for (name, scopes) in [
        (name.as_str(), vec![long_scope.as_str()]),
        ("many", many),
        ("odd", vec![odd_scope]),
        ("\u{e9}t\u{e9} \u{1f680}", vec![]),
    ] {
        let response = app.create_client(&admin.access, name, &scopes).await;
        assert_eq!(response.status(), 201, "{name:?} {scopes:?}");
    }
}

#[tokio::test]
async fn invalid_names_are_422_at_body_name() {
    let (app, admin) = admin_app().await;
    let too_long = "n".repeat(101);

    for name in ["", "   ", too_long.as_str(), "line\nbreak", "nul\u{0}"] {
        let response = app.create_client(&admin.access, name, &[]).await;
        assert_invalid_field(response, "name", &format!("name {name:?}")).await;
    }
    assert_eq!(app.client_count(), 0);
}

#[tokio::test]
async fn invalid_scopes_are_422_at_body_scopes() {
    let (app, admin) = admin_app().await;
    let too_long = "s".repeat(65);
    let too_many: Vec<String> = (0..33).map(|i| format!("scope:{i}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();

    let cases: Vec<Vec<&str>> = vec![
        vec![""],
        vec!["two words"],
        vec!["quo\"te"],
        vec!["back\\slash"],
        vec!["caf\u{e9}"],
        vec!["tab\t"],
        vec!["read", too_long.as_str()],
        too_many,
    ];
    for scopes in cases {
        let response = app
            .create_client(&admin.access, "bad scopes", &scopes)
            .await;
        let what = format!("scopes {scopes:?}");
        assert_invalid_field(response, "scopes", &what).await;
    }
    assert_eq!(app.client_count(), 0);
}

#[tokio::test]
async fn a_missing_or_mistyped_field_is_422() {
    let (app, admin) = admin_app().await;

    for body in [
        json!({}),
        json!({"scopes": ["read"]}),
        json!({"name": 7}),
        json!({"name": null}),
        json!({"name": "ok", "scopes": "read write"}),
        json!({"name": "ok", "scopes": [1, 2]}),
        json!(["name", "ok"]),
    ] {
        let response = post_body(&app, &admin.access, body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        let detail: Value = response.json().await.unwrap();
        assert!(detail["detail"].is_array(), "{body}: {detail}");
    }
    assert_eq!(app.client_count(), 0);
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_no_secret_can_be_chosen() {
    let (app, admin) = admin_app().await;

    let response = post_body(
        &app,
        &admin.access,
        json!({
            "name": "chooser",
            "client_id": "client_AAAAAAAAAAAAAAAAAAAAAA",
            "client_secret": "my-own-secret",
        }),
    )
    .await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_ne!(body["client_id"], "client_AAAAAAAAAAAAAAAAAAAAAA");
    assert_ne!(body["client_secret"], "my-own-secret");
}

// ---------------------------------------------------------------------------------------------
// Secrets are stored only as hashes and never shown again

#[tokio::test]
async fn the_secret_is_stored_only_as_its_sha256() {
    let (app, admin) = admin_app().await;
    let client = app.machine_client(&admin.access, "hashed", &["read"]).await;

    let hash = sha256_hex(&client.secret);
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM clients WHERE id = '{}' AND secret_hash = '{hash}'",
            client.id
        )),
        1,
        "secret_hash is the hex SHA-256 of the secret"
    );
    // Not in any column of the table, nor anywhere in the database files.
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM clients WHERE id || name || secret_hash || scopes LIKE '%{}%'",
            client.secret
        )),
        0
    );
    for entry in std::fs::read_dir(app.dir.path()).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        let found = bytes
            .windows(client.secret.len())
            .any(|window| window == client.secret.as_bytes());
        assert!(!found, "the secret is in {}", entry.path().display());
    }
}

#[tokio::test]
async fn listing_shows_clients_without_secrets_or_hashes() {
    let (app, admin) = admin_app().await;
    let first = app
        .machine_client(&admin.access, "first", &["b", "a"])
        .await;
    let second = app.machine_client(&admin.access, "second", &[]).await;

    let response = app.get("/clients", &admin.access).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();

    let clients = body.as_array().expect("a list");
    assert_eq!(clients.len(), 2, "{body}");
    for client in clients {
        assert_eq!(
            keys_of(client),
            [
                "client_id",
                "created_at",
                "id_token_signed_response_alg",
                "name",
                "post_logout_redirect_uris",
                "public",
                "redirect_uris",
                "scopes",
                "skip_consent"
            ],
            "{client}"
        );
    }
    let find = |id: &str| {
        clients
            .iter()
            .find(|c| c["client_id"] == id)
            .unwrap_or_else(|| panic!("{id} is listed: {body}"))
    };
    assert_eq!(find(&first.id)["name"], "first");
    assert_eq!(find(&first.id)["scopes"], json!(["a", "b"]));
    assert_eq!(find(&second.id)["name"], "second");
    assert_eq!(find(&second.id)["scopes"], json!([]));
    for secret in [&first.secret, &second.secret] {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is listed: {text}"
        );
        assert!(
            !text.contains(&sha256_hex(secret)),
            "a hash is listed: {text}"
        );
    }
}

#[tokio::test]
async fn an_empty_list_is_an_empty_array() {
    let (app, admin) = admin_app().await;

    assert_eq!(list(&app, &admin.access).await, json!([]));
}

// ---------------------------------------------------------------------------------------------
// Deleting

#[tokio::test]
async fn deleting_a_client_removes_it() {
    let (app, admin) = admin_app().await;
    let doomed = app.machine_client(&admin.access, "doomed", &[]).await;
    let kept = app.machine_client(&admin.access, "kept", &[]).await;

    let response = app
        .delete(&format!("/clients/{}", doomed.id), &admin.access)
        .await;

    assert_eq!(response.status(), 204);
    assert!(response.text().await.unwrap().is_empty());
    let listed = list(&app, &admin.access).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [kept.id.as_str()]);
    // Deleting it again: it is gone.
    assert_detail(
        app.delete(&format!("/clients/{}", doomed.id), &admin.access)
            .await,
        404,
        "Not Found",
    )
    .await;
}

#[tokio::test]
async fn deleting_an_unknown_or_malformed_client_is_404() {
    let (app, admin) = admin_app().await;
    app.machine_client(&admin.access, "survivor", &[]).await;

    for id in [
        format!("client_{}", "A".repeat(22)),
        "client_short".to_owned(),
        "not-a-client".to_owned(),
        uuid::Uuid::new_v4().to_string(),
    ] {
        let response = app.delete(&format!("/clients/{id}"), &admin.access).await;
        assert_detail(response, 404, "Not Found").await;
    }
    assert_eq!(app.client_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Who may manage clients

#[tokio::test]
async fn a_member_is_403_and_changes_nothing() {
    let (app, admin) = admin_app().await;
    let client = app.machine_client(&admin.access, "mine", &[]).await;
    let member = app.user(MEMBER).await;

    assert_detail(app.get("/clients", &member.access).await, 403, "Forbidden").await;
    assert_detail(
        app.create_client(&member.access, "sneaky", &[]).await,
        403,
        "Forbidden",
    )
    .await;
    assert_detail(
        app.delete(&format!("/clients/{}", client.id), &member.access)
            .await,
        403,
        "Forbidden",
    )
    .await;
    assert_eq!(app.client_count(), 1);
}

#[tokio::test]
async fn anonymous_callers_are_401() {
    let (app, admin) = admin_app().await;
    let client = app.machine_client(&admin.access, "mine", &[]).await;
    let url = |path: &str| app.url(path);

    let responses = [
        app.client.get(url("/clients")).send().await.unwrap(),
        app.client
            .post(url("/clients"))
            .json(&json!({"name": "anon"}))
            .send()
            .await
            .unwrap(),
        app.client
            .delete(url(&format!("/clients/{}", client.id)))
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        assert_eq!(response.status(), 401);
        assert!(response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert_detail(response, 401, "Unauthorized").await;
    }
    assert_eq!(app.client_count(), 1);
}

#[tokio::test]
async fn a_client_token_cannot_manage_clients() {
    let (app, admin) = admin_app().await;
    let client = app
        .machine_client(&admin.access, "ambitious", &["admin"])
        .await;
    let token = app.client_token(&client).await;

    assert_invalid_token(app.get("/clients", &token).await, "GET /clients").await;
    assert_invalid_token(
        app.create_client(&token, "spawned", &[]).await,
        "POST /clients",
    )
    .await;
    assert_invalid_token(
        app.delete(&format!("/clients/{}", client.id), &token).await,
        "DELETE /clients/{id}",
    )
    .await;
    assert_eq!(app.client_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// A client's life

#[tokio::test]
async fn client_lifecycle_from_registration_to_deletion() {
    let (app, admin) = admin_app().await;

    // Registered by a superuser ...
    let client = app
        .machine_client(&admin.access, "lifecycle", &["read"])
        .await;
    // ... it trades its credentials for a token ...
    let token = app.client_token(&client).await;
    // ... which opens /secret ...
    let response = app.get("/secret", &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["caller"]["kind"], "client");
    assert_eq!(body["caller"]["client_id"], client.id.as_str());
    assert_eq!(body["caller"]["name"], "lifecycle");
    assert_eq!(body["caller"]["scopes"], json!(["read"]));

    // ... until the client is deleted: its token fails at once, and it gets no new one.
    let response = app
        .delete(&format!("/clients/{}", client.id), &admin.access)
        .await;
    assert_eq!(response.status(), 204);
    assert_invalid_token(app.get("/secret", &token).await, "a deleted client's token").await;
    let response = app
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ])
        .await;
    assert_oauth_error(response, 401, "invalid_client", "a deleted client").await;
}

#[tokio::test]
async fn deleting_one_client_leaves_the_others_tokens_working() {
    let (app, admin) = admin_app().await;
    let doomed = app.machine_client(&admin.access, "doomed", &[]).await;
    let kept = app.machine_client(&admin.access, "kept", &[]).await;
    let doomed_token = app.client_token(&doomed).await;
    let kept_token = app.client_token(&kept).await;

    let response = app
        .delete(&format!("/clients/{}", doomed.id), &admin.access)
        .await;
    assert_eq!(response.status(), 204);

    assert_eq!(app.get("/secret", &doomed_token).await.status(), 401);
    assert_eq!(app.get("/secret", &kept_token).await.status(), 200);
}

#[tokio::test]
async fn a_client_outlives_the_superuser_who_registered_it() {
    let (app, admin) = admin_app().await;
    let client = app.machine_client(&admin.access, "orphan", &[]).await;
    app.superuser("second-admin@example.com").await;
    let admin_id = app.user_id(ADMIN);
    let second = app.tokens("second-admin@example.com", PASSWORD).await;
    let response = app
        .delete(&format!("/users/{admin_id}"), &second.access)
        .await;
    assert_eq!(response.status(), 204);

    let token = app.client_token(&client).await;

    assert_eq!(app.get("/secret", &token).await.status(), 200);
}

#[tokio::test]
async fn managing_clients_with_the_cookie_needs_the_csrf_header() {
    use crate::page_client::{spawn_page_app, PageClient};

    let app = spawn_page_app().await;
    let browser = PageClient::superuser(&app, ADMIN).await;
    let admin = app.tokens(ADMIN, PASSWORD).await;
    let existing = app.machine_client(&admin.access, "existing", &[]).await;
    let post = |csrf: Option<String>| {
        let mut request = browser
            .client
            .post(browser.url("/clients"))
            .json(&json!({"name": "from a browser"}));
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    let delete = |csrf: Option<String>| {
        let mut request = browser
            .client
            .delete(browser.url(&format!("/clients/{}", existing.id)));
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };

    assert_detail(post(None).await.unwrap(), 403, "CSRF_FAILED").await;
    assert_detail(delete(None).await.unwrap(), 403, "CSRF_FAILED").await;
    assert_eq!(app.client_count(), 1);

    let token = browser.token().await;
    assert_eq!(post(Some(token.clone())).await.unwrap().status(), 201);
    assert_eq!(delete(Some(token)).await.unwrap().status(), 204);
    let listed = list(&app, &admin.access).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "from a browser");
}
