//! `gatehouse clients create`: machine-client credentials that work at the token endpoint.

use std::path::Path;

use diesel::prelude::*;
use serde_json::json;

use crate::harness::*;

/// The value of the `key=` line of a command's output.
fn printed(out: &Finished, key: &str) -> String {
    out.stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no `{key}=` line\n{}", out.describe()))
        .to_owned()
}

/// How many machine clients the database holds (none if it does not exist).
fn client_count(db: &Path) -> i64 {
    if !db.exists() {
        return 0;
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT COUNT(*) AS n FROM clients")
        .get_result::<Count>(&mut connect(db))
        .map(|c| c.n)
        .unwrap_or(0)
}

#[tokio::test]
async fn clients_create_prints_credentials_that_work_at_the_token_endpoint() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &[
            "clients",
            "create",
            "--name",
            "billing service",
            "--scope",
            "write:invoices",
            "--scope",
            "read:invoices",
        ],
        &[],
        None,
    );
    out.assert_success();
    let client_id = printed(&out, "client_id");
    let client_secret = printed(&out, "client_secret");
    assert!(client_id.starts_with("client_"), "{}", out.describe());
    assert!(client_secret.len() >= 32, "{}", out.describe());
    assert_eq!(printed(&out, "scopes"), "read:invoices write:invoices");
    assert!(
        out.stdout.lines().any(|line| line.starts_with('#')),
        "a comment line\n{}",
        out.describe()
    );
    assert!(
        !out.stderr.contains(&client_secret),
        "the secret goes to stdout only"
    );
    assert_eq!(client_count(&sandbox.db_path()), 1);

    let server = sandbox.serve(&[]).await;
    let request = server.client.post(server.url("/auth/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id.as_str()),
        ("client_secret", client_secret.as_str()),
    ]);
    let token = Server::expect_json(request, 200, "client_credentials").await;
    assert_eq!(token["scope"], "read:invoices write:invoices");
    assert!(token.get("refresh_token").is_none(), "{token}");
    let request = server
        .client
        .get(server.url("/secret"))
        .bearer_auth(string_field(&token, "access_token"));
    let secret = Server::expect_json(request, 200, "GET /secret").await;
    assert_eq!(
        secret["caller"],
        json!({
            "kind": "client",
            "client_id": client_id,
            "name": "billing service",
            "scopes": ["read:invoices", "write:invoices"],
        })
    );
}

#[test]
fn clients_create_refuses_a_bad_name_or_scope_and_creates_nothing() {
    let long_name = "n".repeat(101);
    for (args, topic) in [
        (vec!["--name", ""], "name"),
        (vec!["--name", "   "], "name"),
        (vec!["--name", long_name.as_str()], "name"),
        (vec!["--name", "ok", "--scope", "two words"], "scope"),
        (vec!["--name", "ok", "--scope", "quo\"te"], "scope"),
    ] {
        let sandbox = Sandbox::new();
        let mut full = vec!["clients", "create"];
        full.extend_from_slice(&args);
        let out = sandbox.run(&full, &[], None);
        out.assert_failure();
        assert!(
            out.stderr.to_lowercase().contains(topic),
            "no message about the {topic}\n{}",
            out.describe()
        );
        assert!(!out.stdout.contains("client_secret="), "{}", out.describe());
        assert_eq!(client_count(&sandbox.db_path()), 0, "{args:?}");
    }
}

#[tokio::test]
async fn clients_create_registers_an_application_that_discovery_and_authorize_accept() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &[
            "clients",
            "create",
            "--name",
            "Notes app",
            "--redirect-uri",
            "http://127.0.0.1:9999/callback",
            "--redirect-uri",
            "https://notes.example.com/callback",
            "--public",
        ],
        &[],
        None,
    );
    out.assert_success();
    let client_id = printed(&out, "client_id");
    assert!(
        !out.stdout.contains("client_secret="),
        "a public client has no secret\n{}",
        out.describe()
    );
    assert!(out
        .stdout
        .contains("redirect_uri=http://127.0.0.1:9999/callback"));
    assert!(out
        .stdout
        .contains("redirect_uri=https://notes.example.com/callback"));

    let server = sandbox.serve(&[]).await;
    let request = server
        .client
        .get(server.url("/.well-known/openid-configuration"));
    let discovery = Server::expect_json(request, 200, "discovery").await;
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );

    // A registered redirect URI: on to the login page. Another: an error page, no redirect.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = |redirect_uri: &str| {
        browser.get(server.url("/oauth/authorize")).query(&[
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", "openid"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
    };
    let response = authorize("http://127.0.0.1:9999/callback")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));
    let response = authorize("http://127.0.0.1:9999/other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[test]
fn clients_create_refuses_insecure_redirect_uris_and_creates_nothing() {
    for uri in [
        "http://notes.example.com/callback",
        "https://notes.example.com/cb#fragment",
        "not a url",
    ] {
        let sandbox = Sandbox::new();
        let out = sandbox.run(
            &["clients", "create", "--name", "app", "--redirect-uri", uri],
            &[],
            None,
        );
        out.assert_failure();
        assert!(
            out.stderr.contains(uri) || out.stderr.contains("URL"),
            "{}",
            out.describe()
        );
        assert_eq!(client_count(&sandbox.db_path()), 0, "{uri}");
    }
}
