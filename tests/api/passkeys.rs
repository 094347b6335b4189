//! Passkeys end to end with a software authenticator: registering, listing, renaming and
//! removing them; signing in with one alone; a login's second step with one; ceremonies kept
//! in the database (single use, finishable by another instance); audit events and notices.

use serde_json::{json, Value};

use crate::helpers::passkey::{Authenticator, PASSKEY_ORIGIN};
use crate::helpers::*;
use crate::tokens::claims_of;

async fn spawn() -> TestApp {
    spawn_app_with(&[("PUBLIC_URL", PASSKEY_ORIGIN)]).await
}

/// Begins a registration; the answer's JSON.
async fn register_begin(app: &TestApp, token: &str) -> Value {
    let response = app
        .post_authorized("/users/me/mfa/passkeys/register/begin", token, json!({}))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Registers a passkey on `authenticator` named `name` (or unnamed); the finish answer.
pub(crate) async fn add_passkey(
    app: &TestApp,
    token: &str,
    authenticator: &mut Authenticator,
    name: Option<&str>,
) -> Value {
    let begun = register_begin(app, token).await;
    let credential = authenticator.register(&begun);
    let mut body = json!({"ceremony_id": begun["ceremony_id"], "credential": credential});
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    let response = app
        .post_authorized("/users/me/mfa/passkeys/register/finish", token, body)
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn audit_count(app: &TestApp, event: &str, detail: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM audit_events WHERE event = '{event}' AND detail LIKE '{detail}'"
    ))
}

fn ceremonies(app: &TestApp, purpose: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM webauthn_ceremonies WHERE purpose = '{purpose}'"
    ))
}

/// The password step of a login for an account with a factor: its `mfa_token` and `methods`.
async fn password_step(app: &TestApp, email: &str) -> (String, Vec<String>) {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"]["code"], "LOGIN_MFA_REQUIRED");
    let methods = body["detail"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    (
        body["detail"]["mfa_token"].as_str().unwrap().to_owned(),
        methods,
    )
}

fn amr(access_token: &str) -> Vec<String> {
    claims_of(access_token)["amr"]
        .as_array()
        .expect("amr is a list")
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn passkeys_are_registered_listed_renamed_and_removed() {
    let app = spawn().await;
    let tokens = app.user("ada@example.com").await;
    let user_id = app.user_id("ada@example.com");
    let mut authenticator = Authenticator::new();

    // The options ask for a discoverable credential with user verification, for this site.
    let begun = register_begin(&app, &tokens.access).await;
    let options = &begun["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["rp"]["name"], "Gatehouse");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["requireResidentKey"],
        true
    );
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert!(options["excludeCredentials"]
        .as_array()
        .is_none_or(|a| a.is_empty()));
    assert_eq!(
        ceremonies(&app, "register"),
        1,
        "the state is in the database"
    );
    let credential = authenticator.register(&begun);
    let response = app.post_authorized("/users/me/mfa/passkeys/register/finish",
        &tokens.access,
        json!({"ceremony_id": begun["ceremony_id"], "name": " Laptop ", "credential": credential}),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["passkey"]["name"], "Laptop");
    assert!(first["passkey"]["last_used_at"].is_null());
    let codes = first["recovery_codes"].as_array().expect("recovery codes");
    assert_eq!(
        codes.len(),
        10,
        "the first factor comes with recovery codes"
    );
    assert_eq!(
        ceremonies(&app, "register"),
        0,
        "a finished ceremony is gone"
    );

    // The same ceremony cannot be finished twice.
    let replay = app
        .post_authorized(
            "/users/me/mfa/passkeys/register/finish",
            &tokens.access,
            json!({"ceremony_id": begun["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_detail(replay, 400, "PASSKEY_INVALID").await;

    // A second one, on another authenticator: the first is excluded (the same authenticator
    // refuses to register again); no name is "Passkey"; no new codes.
    let begun = register_begin(&app, &tokens.access).await;
    assert_eq!(
        begun["publicKey"]["excludeCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(authenticator.try_register(&begun).is_err());
    let credential = Authenticator::new().register(&begun);
    let response = app
        .post_authorized(
            "/users/me/mfa/passkeys/register/finish",
            &tokens.access,
            json!({"ceremony_id": begun["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["passkey"]["name"], "Passkey");
    assert!(second["recovery_codes"].is_null());

    let status: Value = app
        .get("/users/me/mfa", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = status["passkeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["Laptop", "Passkey"]);
    assert_eq!(status["recovery_codes_left"], 10);
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM passkeys WHERE user_id = '{user_id}'"
        )),
        2
    );

    // Renaming: the owner only, with a valid name.
    let second_id = second["passkey"]["id"].as_str().unwrap();
    let path = format!("/users/me/mfa/passkeys/{second_id}");
    let response = app
        .patch(&path, &tokens.access, json!({"name": "Phone"}))
        .await;
    assert_eq!(response.status(), 200);
    let renamed: Value = response.json().await.unwrap();
    assert_eq!(renamed["name"], "Phone");
    assert_eq!(renamed["id"], second_id);
    let response = app.patch(&path, &tokens.access, json!({"name": ""})).await;
    assert_validation_error(response).await;
    let response = app
        .patch(&path, &tokens.access, json!({"name": "x".repeat(65)}))
        .await;
    assert_validation_error(response).await;
    let other = app.user("bob@example.com").await;
    let response = app
        .patch(&path, &other.access, json!({"name": "Mine"}))
        .await;
    assert_detail(response, 404, "Not Found").await;
    let response = app
        .delete_with_body(&path, &other.access, json!({"current_password": PASSWORD}))
        .await;
    assert_detail(response, 404, "Not Found").await;

    // Removing needs the current password.
    let response = app
        .delete_with_body(
            &path,
            &tokens.access,
            json!({"current_password": "wrong password"}),
        )
        .await;
    assert_detail(response, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;
    let response = app.delete_with_body(&path, &tokens.access, json!({})).await;
    assert_detail(response, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;
    let response = app
        .delete_with_body(&path, &tokens.access, json!({"current_password": PASSWORD}))
        .await;
    assert_eq!(response.status(), 204);
    let response = app
        .delete_with_body(&path, &tokens.access, json!({"current_password": PASSWORD}))
        .await;
    assert_detail(response, 404, "Not Found").await;
    assert_eq!(app.count("SELECT code_hash FROM recovery_codes"), 10);

    // The last factor takes the recovery codes with it.
    let first_id = first["passkey"]["id"].as_str().unwrap();
    let response = app
        .delete_with_body(
            &format!("/users/me/mfa/passkeys/{first_id}"),
            &tokens.access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.count("SELECT id FROM passkeys"), 0);
    assert_eq!(app.count("SELECT code_hash FROM recovery_codes"), 0);
    let status: Value = app
        .get("/users/me/mfa", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["passkeys"], json!([]));
    assert_eq!(status["recovery_codes_left"], 0);

    // Every change is audited and notified.
    assert_eq!(audit_count(&app, "passkey_added", "%"), 2);
    assert_eq!(audit_count(&app, "passkey_added", "\"Laptop\""), 1);
    assert_eq!(audit_count(&app, "passkey_renamed", "now \"Phone\""), 1);
    assert_eq!(audit_count(&app, "passkey_removed", "%"), 2);
    let notices = [
        "A passkey (\"Laptop\") was added to your account, and recovery codes were made",
        "A passkey (\"Passkey\") was added to your account",
        "A passkey of your account was renamed \"Phone\"",
        "A passkey (\"Phone\") was removed from your account",
        "A passkey (\"Laptop\") was removed from your account",
    ];
    app.wait_for_email("ada@example.com", notices.len()).await;
    let emails = app.emails_to("ada@example.com");
    for notice in notices {
        assert!(
            emails.iter().any(|e| e.text.contains(notice)),
            "a notice says {notice:?}"
        );
    }
    for email in &emails {
        for code in codes {
            assert!(
                !email.text.contains(code.as_str().unwrap()),
                "no code in a notice"
            );
        }
    }
}

#[tokio::test]
async fn a_passkey_alone_signs_in_once_per_ceremony() {
    let app = spawn().await;
    let tokens = app.user("ada@example.com").await;
    let mut authenticator = Authenticator::new();
    let added = add_passkey(&app, &tokens.access, &mut authenticator, Some("Laptop")).await;

    let response = app.post_json("/auth/passkey/begin", json!({})).await;
    assert_eq!(response.status(), 200);
    let begun: Value = response.json().await.unwrap();
    assert!(
        begun["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "any passkey of the site may answer"
    );
    assert_eq!(begun["publicKey"]["userVerification"], "required");
    assert!(begun.get("mediation").is_none());
    assert_eq!(ceremonies(&app, "sign_in"), 1);
    let credential = authenticator.sign(&begun).unwrap();
    let body = json!({"ceremony_id": begun["ceremony_id"], "credential": credential});
    let response = app.post_json("/auth/passkey/finish", body.clone()).await;
    assert_eq!(response.status(), 200);
    let signed_in: Value = response.json().await.unwrap();
    let access = signed_in["access_token"].as_str().unwrap();
    assert!(signed_in["refresh_token"].is_string());
    assert_eq!(amr(access), ["hwk", "user", "mfa"]);
    let me = app.get("/users/me", access).await;
    assert_eq!(me.status(), 200);
    assert_eq!(ceremonies(&app, "sign_in"), 0);

    // A replay of the same answer finds no ceremony.
    let response = app.post_json("/auth/passkey/finish", body).await;
    assert_detail(response, 400, "PASSKEY_INVALID").await;

    let id = added["passkey"]["id"].as_str().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM passkeys WHERE id = '{id}' AND last_used_at IS NOT NULL"
        )),
        1
    );
    let status: Value = app.get("/users/me/mfa", access).await.json().await.unwrap();
    assert!(status["passkeys"][0]["last_used_at"].is_i64());
    assert_eq!(audit_count(&app, "login_succeeded", "with a passkey"), 1);

    // A second sign-in with the counter moved on still works.
    let begun: Value = app
        .post_json("/auth/passkey/begin", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let credential = authenticator.sign(&begun).unwrap();
    let response = app
        .post_json(
            "/auth/passkey/finish",
            json!({"ceremony_id": begun["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_sign_in_is_refused_alike_for_every_failure() {
    let app = spawn().await;
    let tokens = app.user("ada@example.com").await;
    let mut authenticator = Authenticator::new();
    add_passkey(&app, &tokens.access, &mut authenticator, None).await;
    let begin = || async {
        let begun: Value = app
            .post_json("/auth/passkey/begin", json!({}))
            .await
            .json()
            .await
            .unwrap();
        begun
    };

    // An unknown ceremony (and one that is no UUID).
    let begun = begin().await;
    let credential = authenticator.sign(&begun).unwrap();
    for ceremony in [json!(uuid::Uuid::new_v4().to_string()), json!("nonsense")] {
        let response = app
            .post_json(
                "/auth/passkey/finish",
                json!({"ceremony_id": ceremony, "credential": credential}),
            )
            .await;
        assert_detail(response, 400, "PASSKEY_INVALID").await;
    }

    // An expired ceremony.
    app.execute("UPDATE webauthn_ceremonies SET expires_at = 0");
    let response = app
        .post_json(
            "/auth/passkey/finish",
            json!({"ceremony_id": begun["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_detail(response, 400, "PASSKEY_INVALID").await;

    // A credential this site does not know (another authenticator's).
    let mut stranger = Authenticator::new();
    let elsewhere = app.user("bob@example.com").await;
    add_passkey(&app, &elsewhere.access, &mut stranger, None).await;
    app.execute("DELETE FROM passkeys WHERE user_id IN (SELECT id FROM users WHERE email = 'bob@example.com')");
    let begun = begin().await;
    let credential = stranger.sign(&begun).unwrap();
    let response = app
        .post_json(
            "/auth/passkey/finish",
            json!({"ceremony_id": begun["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_detail(response, 400, "PASSKEY_INVALID").await;

    // An answer to another challenge: a bad signature for this one.
    let begun = begin().await;
    let other = begin().await;
    let credential = authenticator.sign(&other).unwrap();
    let response = app
        .post_json(
            "/auth/passkey/finish",
            json!({"ceremony_id": begun["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_detail(response, 400, "PASSKEY_INVALID").await;

    // An inactive account.
    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'ada@example.com'");
    let begun = begin().await;
    let credential = authenticator.sign(&begun).unwrap();
    let response = app
        .post_json(
            "/auth/passkey/finish",
            json!({"ceremony_id": begun["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_detail(response, 400, "PASSKEY_INVALID").await;
    assert_eq!(
        app.count("SELECT id FROM sessions WHERE amr LIKE '%hwk%'"),
        0
    );
}

#[tokio::test]
async fn a_ceremony_begun_on_one_instance_finishes_on_another() {
    let mut first = spawn().await;
    let tokens = first.user("ada@example.com").await;
    let mut authenticator = Authenticator::new();
    add_passkey(&first, &tokens.access, &mut authenticator, None).await;
    let begun: Value = first
        .post_json("/auth/passkey/begin", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let id = begun["ceremony_id"].as_str().unwrap();
    assert_eq!(
        first.count(&format!(
            "SELECT id FROM webauthn_ceremonies WHERE id = '{id}' AND user_id IS NULL"
        )),
        1
    );
    first.stop().await;

    let second = first
        .another_instance(&[("PUBLIC_URL", PASSKEY_ORIGIN)])
        .await;
    let credential = authenticator.sign(&begun).unwrap();
    let response = second
        .post_json(
            "/auth/passkey/finish",
            json!({"ceremony_id": id, "credential": credential}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_passkey_completes_a_login_as_second_factor() {
    let app = spawn().await;
    let tokens = app.user("ada@example.com").await;
    let mut authenticator = Authenticator::new();
    add_passkey(&app, &tokens.access, &mut authenticator, None).await;
    add_passkey(&app, &tokens.access, &mut Authenticator::new(), None).await;

    let (mfa_token, methods) = password_step(&app, "ada@example.com").await;
    assert_eq!(methods, ["recovery_code", "passkey"]);

    let response = app
        .post_json("/auth/mfa/passkey/begin", json!({"mfa_token": "nonsense"}))
        .await;
    assert_detail(response, 400, "MFA_TOKEN_INVALID").await;

    let response = app
        .post_json("/auth/mfa/passkey/begin", json!({"mfa_token": mfa_token}))
        .await;
    assert_eq!(response.status(), 200);
    let begun: Value = response.json().await.unwrap();
    assert_eq!(
        begun["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "the account's passkeys, and only them"
    );
    let user_id = app.user_id("ada@example.com");
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM webauthn_ceremonies WHERE purpose = 'second_factor' AND user_id = '{user_id}'"
        )),
        1
    );
    let credential = authenticator.sign(&begun).unwrap();
    let body =
        json!({"mfa_token": mfa_token, "ceremony_id": begun["ceremony_id"], "passkey": credential});
    let response = app.post_json("/auth/mfa/verify", body.clone()).await;
    assert_eq!(response.status(), 200);
    let signed_in: Value = response.json().await.unwrap();
    let access = signed_in["access_token"].as_str().unwrap();
    assert_eq!(amr(access), ["pwd", "hwk", "user", "mfa"]);
    assert_eq!(audit_count(&app, "login_succeeded", "with a passkey"), 1);
    assert_eq!(ceremonies(&app, "second_factor"), 0);

    // The step and the ceremony are spent.
    let response = app.post_json("/auth/mfa/verify", body).await;
    assert_detail(response, 400, "MFA_TOKEN_INVALID").await;

    // The cookie form sets the cookies.
    let (mfa_token, _) = password_step(&app, "ada@example.com").await;
    let begun: Value = app
        .post_json("/auth/mfa/passkey/begin", json!({"mfa_token": mfa_token}))
        .await
        .json()
        .await
        .unwrap();
    let credential = authenticator.sign(&begun).unwrap();
    let response = app
        .post_json(
            "/auth/cookie/mfa/verify",
            json!({"mfa_token": mfa_token, "ceremony_id": begun["ceremony_id"], "passkey": credential}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert!(response.headers().contains_key("x-csrf-token"));
    assert!(response.headers().get_all("set-cookie").iter().count() >= 2);
}

#[tokio::test]
async fn another_users_passkey_does_not_complete_a_login() {
    let app = spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut adas = Authenticator::new();
    let mut bobs = Authenticator::new();
    add_passkey(&app, &ada.access, &mut adas, None).await;
    add_passkey(&app, &bob.access, &mut bobs, None).await;

    let (ada_token, _) = password_step(&app, "ada@example.com").await;
    let adas_ceremony: Value = app
        .post_json("/auth/mfa/passkey/begin", json!({"mfa_token": ada_token}))
        .await
        .json()
        .await
        .unwrap();
    // Bob's authenticator answers Bob's own second step; the answer is sent for Ada's.
    let (bob_token, _) = password_step(&app, "bob@example.com").await;
    let bobs_ceremony: Value = app
        .post_json("/auth/mfa/passkey/begin", json!({"mfa_token": bob_token}))
        .await
        .json()
        .await
        .unwrap();
    let bobs_answer = bobs.sign(&bobs_ceremony).unwrap();
    for ceremony in [&adas_ceremony, &bobs_ceremony] {
        let response = app
            .post_json(
                "/auth/mfa/verify",
                json!({"mfa_token": ada_token, "ceremony_id": ceremony["ceremony_id"], "passkey": bobs_answer}),
            )
            .await;
        assert_detail(response, 400, "MFA_CODE_INVALID").await;
    }
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM mfa_challenges WHERE token_hash = '{}' AND failures = 2",
            sha256_hex(&ada_token)
        )),
        1,
        "each refused answer counts as a wrong code"
    );
    assert_eq!(audit_count(&app, "login_failed", "passkey refused"), 2);
    // Bob's own ceremony was not spent by Ada's attempt: it still completes Bob's login.
    let response = app
        .post_json(
            "/auth/mfa/verify",
            json!({"mfa_token": bob_token, "ceremony_id": bobs_ceremony["ceremony_id"], "passkey": bobs_answer}),
        )
        .await;
    assert_eq!(response.status(), 200);
    // Ada's own passkey still completes hers, with a new ceremony.
    let begun: Value = app
        .post_json("/auth/mfa/passkey/begin", json!({"mfa_token": ada_token}))
        .await
        .json()
        .await
        .unwrap();
    let answer = adas.sign(&begun).unwrap();
    let response = app
        .post_json(
            "/auth/mfa/verify",
            json!({"mfa_token": ada_token, "ceremony_id": begun["ceremony_id"], "passkey": answer}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_cookie_sign_in_sets_the_cookies_for_this_site_only() {
    let app = spawn().await;
    let tokens = app.user("ada@example.com").await;
    let mut authenticator = Authenticator::new();
    add_passkey(&app, &tokens.access, &mut authenticator, None).await;

    let begun: Value = app
        .post_json("/auth/passkey/begin", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let credential = authenticator.sign(&begun).unwrap();
    let body = json!({"ceremony_id": begun["ceremony_id"], "credential": credential});
    let response = app
        .client
        .post(app.url("/auth/cookie/passkey/finish"))
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_detail(response, 403, "CSRF_FAILED").await;
    assert_eq!(
        ceremonies(&app, "sign_in"),
        1,
        "a refused request spends nothing"
    );

    let response = app
        .client
        .post(app.url("/auth/cookie/passkey/finish"))
        .header("origin", PASSKEY_ORIGIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let csrf = response.headers()["x-csrf-token"]
        .to_str()
        .unwrap()
        .to_owned();
    // The cookies sign the browser in.
    let me = app.client.get(app.url("/users/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["email"], "ada@example.com");
    // A cookie-authenticated change needs the CSRF header.
    let response = app
        .client
        .post(app.url("/users/me/mfa/passkeys/register/begin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .client
        .post(app.url("/users/me/mfa/passkeys/register/begin"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
