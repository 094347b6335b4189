//! `POST /auth/register`: the created user, the stored row, uniqueness, the password policy and 422s.

use serde_json::{json, Value};

use crate::helpers::*;

async fn register_json(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/auth/register"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn has_loc(entries: &[Value], field: &str) -> bool {
    entries
        .iter()
        .any(|entry| entry["loc"] == json!(["body", field]))
}

#[tokio::test]
async fn register_returns_201_with_the_new_user() {
    let app = spawn_app().await;

    let response = app.register("alice@example.com", PASSWORD).await;

    assert_eq!(response.status(), 201);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_user_read(&body, "alice@example.com");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["is_active"], true);
    assert_eq!(body["is_superuser"], false);
    assert_eq!(body["is_verified"], false);
    assert!(!body.to_string().contains("argon2"), "{body}");
}

#[tokio::test]
async fn register_stores_an_argon2id_hash_of_the_password() {
    let app = spawn_app().await;

    let body: Value = app
        .register("alice@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();

    let row = app.user_row("alice@example.com").expect("user stored");
    assert_eq!(body["id"], row.id.as_str());
    assert!(
        row.hashed_password
            .starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
        "{}",
        row.hashed_password
    );
    assert!(!row.hashed_password.contains(PASSWORD));
    assert!(row.is_active);
    assert!(!row.is_superuser);
    assert!(!row.is_verified);
    assert_eq!(app.user_count(), 1);
}

#[tokio::test]
async fn register_keeps_the_email_case_and_normalizes_a_lowercase_copy() {
    let app = spawn_app().await;

    let response = app.register("Mixed.Case@Example.COM", PASSWORD).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "Mixed.Case@Example.COM");
    assert_eq!(
        app.count(
            "SELECT id FROM users WHERE email = 'Mixed.Case@Example.COM' \
             AND email_normalized = 'mixed.case@example.com'"
        ),
        1
    );
}

#[tokio::test]
async fn register_trims_the_email() {
    let app = spawn_app().await;

    let response = app.register("  alice@example.com \t", PASSWORD).await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "alice@example.com");
    assert!(app.user_row("alice@example.com").is_some());
}

#[tokio::test]
async fn register_refuses_an_existing_email_in_any_case_or_padding() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("alice@example.com", PASSWORD).await.status(),
        201
    );
    let before = app.user_row("alice@example.com").unwrap();

    for email in [
        "alice@example.com",
        "ALICE@EXAMPLE.COM",
        "Alice@Example.com",
        "  alice@example.com  ",
        " aLiCe@eXaMpLe.CoM",
    ] {
        let response = app.register(email, "another fine passphrase").await;
        assert_detail(response, 400, "REGISTER_USER_ALREADY_EXISTS").await;
    }

    assert_eq!(app.user_count(), 1);
    let after = app.user_row("alice@example.com").unwrap();
    assert_eq!(after.hashed_password, before.hashed_password);
}

#[tokio::test]
async fn register_ignores_privileged_fields() {
    let app = spawn_app().await;
    let chosen_id = uuid::Uuid::new_v4().to_string();

    let response = register_json(
        &app,
        json!({
            "email": "mallory@example.com",
            "password": PASSWORD,
            "id": chosen_id,
            "is_active": false,
            "is_superuser": true,
            "is_verified": true,
        }),
    )
    .await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_user_read(&body, "mallory@example.com");
    assert_ne!(body["id"], chosen_id.as_str());
    assert_eq!(body["is_active"], true);
    assert_eq!(body["is_superuser"], false);
    assert_eq!(body["is_verified"], false);
    let row = app.user_row("mallory@example.com").unwrap();
    assert_ne!(row.id, chosen_id);
    assert!(row.is_active);
    assert!(!row.is_superuser);
    assert!(!row.is_verified);
}

#[tokio::test]
async fn register_ignores_unknown_fields() {
    let app = spawn_app().await;

    let response = register_json(
        &app,
        json!({
            "email": "alice@example.com",
            "password": PASSWORD,
            "favourite_colour": "blue",
            "nested": {"a": [1, 2, 3]},
        }),
    )
    .await;

    assert_eq!(response.status(), 201);
    assert_user_read(&response.json().await.unwrap(), "alice@example.com");
    assert_eq!(app.user_count(), 1);
}

#[tokio::test]
async fn register_rejects_invalid_emails_with_422() {
    let app = spawn_app().await;

    for email in [
        "",
        "   ",
        "plainaddress",
        "@example.com",
        "alice@",
        "alice@@example.com",
        "alice smith@example.com",
        "alice@exa mple.com",
    ] {
        let entries = assert_validation_error(app.register(email, PASSWORD).await).await;
        assert!(has_loc(&entries, "email"), "{email:?}: {entries:?}");
    }

    assert_eq!(app.user_count(), 0);
}

#[tokio::test]
async fn register_rejects_missing_fields_with_422() {
    let app = spawn_app().await;

    let entries =
        assert_validation_error(register_json(&app, json!({"password": PASSWORD})).await).await;
    assert!(has_loc(&entries, "email"), "{entries:?}");

    let entries =
        assert_validation_error(register_json(&app, json!({"email": "alice@example.com"})).await)
            .await;
    assert!(has_loc(&entries, "password"), "{entries:?}");

    assert_validation_error(register_json(&app, json!({})).await).await;
    assert_eq!(app.user_count(), 0);
}

#[tokio::test]
async fn register_rejects_wrong_types_and_bad_json_with_422() {
    let app = spawn_app().await;

    let entries = assert_validation_error(
        register_json(&app, json!({"email": 5, "password": PASSWORD})).await,
    )
    .await;
    assert!(has_loc(&entries, "email"), "{entries:?}");

    let entries = assert_validation_error(
        register_json(
            &app,
            json!({"email": "alice@example.com", "password": 12345678}),
        )
        .await,
    )
    .await;
    assert!(has_loc(&entries, "password"), "{entries:?}");

    assert_validation_error(
        register_json(
            &app,
            json!({"email": ["alice@example.com"], "password": null}),
        )
        .await,
    )
    .await;

    let response = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/json")
        .body(r#"{"email": "alice@example.com", "password": "#)
        .send()
        .await
        .unwrap();
    assert_validation_error(response).await;

    assert_eq!(app.user_count(), 0);
}

#[tokio::test]
async fn register_enforces_password_length_bounds() {
    let app = spawn_app().await;

    let response = app.register("short@example.com", "tz8Kq2v").await;
    assert_policy_error(response, "REGISTER_INVALID_PASSWORD").await;

    let response = app
        .register("long@example.com", &"tz8Kq2vR".repeat(16))
        .await;
    assert_eq!(response.status(), 201, "128 characters are allowed");

    let too_long = format!("{}x", "tz8Kq2vR".repeat(16));
    let response = app.register("toolong@example.com", &too_long).await;
    assert_policy_error(response, "REGISTER_INVALID_PASSWORD").await;

    let response = app.register("eight@example.com", "tz8Kq2vR").await;
    assert_eq!(response.status(), 201, "8 characters are allowed");

    assert!(app.user_row("short@example.com").is_none());
    assert!(app.user_row("toolong@example.com").is_none());
    assert_eq!(app.user_count(), 2);
}

#[tokio::test]
async fn register_refuses_common_passwords_in_any_case() {
    let app = spawn_app().await;

    for password in [
        "password123",
        "qwertyuiop",
        "iloveyou1",
        "PassWord123",
        "QWERTYUIOP",
    ] {
        let response = app.register("alice@example.com", password).await;
        assert_policy_error(response, "REGISTER_INVALID_PASSWORD").await;
    }

    assert_eq!(app.user_count(), 0);
}

#[tokio::test]
async fn register_refuses_a_password_containing_the_email_local_part() {
    let app = spawn_app().await;

    for password in ["margaret-is-great", "xxMARGARETxx99", "my name is Margaret"] {
        let response = app.register("margaret@example.com", password).await;
        assert_policy_error(response, "REGISTER_INVALID_PASSWORD").await;
    }
    assert_eq!(app.user_count(), 0);

    // A local part shorter than three characters is too short to be a useful signal.
    let response = app.register("jo@example.com", "banjo kazooie rules").await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn register_ignores_composition_by_default() {
    let app = spawn_app().await;

    let response = app
        .register("alice@example.com", "plainlowercasewords")
        .await;

    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn register_enforces_composition_when_configured() {
    let app = spawn_app_with(&[("PASSWORD_REQUIRE_COMPOSITION", "true")]).await;

    for password in [
        "plainlowercasewords",
        "Nodigitshere!",
        "nouppercase9!",
        "NOLOWERCASE9!",
        "Nospecial9char",
    ] {
        let response = app.register("alice@example.com", password).await;
        assert_policy_error(response, "REGISTER_INVALID_PASSWORD").await;
    }
    assert_eq!(app.user_count(), 0);

    let response = app.register("alice@example.com", "Everything9!here").await;
    assert_eq!(response.status(), 201);
}

/// Finding 13: an address that only looks like a registered one is that account's address —
/// fullwidth letters, a letter of another script (Cyrillic `е`), the domain in Unicode or in
/// Punycode — so it is `REGISTER_USER_ALREADY_EXISTS`, on signup and on an email change.
#[tokio::test]
async fn look_alike_addresses_are_already_taken() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("alice@example.com", PASSWORD).await.status(),
        201
    );
    assert_eq!(
        app.register("bob@exämple.com", PASSWORD).await.status(),
        201
    );

    for look_alike in [
        "ａｌｉｃｅ@example.com",
        "ALICE@ＥＸＡＭＰＬＥ．com",
        "alic\u{435}@example.com",
        "\u{430}lice@example.com",
        "alice@\u{435}xample.com",
        "bob@xn--exmple-cua.com",
        "BOB@EXÄMPLE.com",
        "bob@exa\u{308}mple.com",
    ] {
        let response = app.register(look_alike, "another fine passphrase").await;
        assert_eq!(response.status(), 400, "{look_alike}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"detail": "REGISTER_USER_ALREADY_EXISTS"}),
            "{look_alike}"
        );
    }
    assert_eq!(app.user_count(), 2);

    let carol = app.user("carol@example.com").await;
    let response = app
        .patch(
            "/users/me",
            &carol.access,
            json!({"email": "alic\u{435}@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_detail(response, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS").await;

    // The fullwidth spelling is the same account, so it logs in as Alice.
    app.tokens("ａｌｉｃｅ@example.com", PASSWORD).await;
}

/// Finding 13: invisible characters and RFC 2047 encoded words are no part of an address:
/// 422 everywhere an address is taken, so nothing reaches a `To:` header.
#[tokio::test]
async fn invisible_characters_and_encoded_words_are_refused() {
    let app = spawn_mail_app_with(&[]).await;
    assert_eq!(
        app.register("alice@example.com", PASSWORD).await.status(),
        201
    );

    for bad in [
        "alice\u{200b}@example.com",
        "al\u{200d}ice@example.com",
        "alice\u{ad}@example.com",
        "\u{202e}alice@example.com",
        "alice\u{feff}@example.com",
        "=?utf-8?q?x?=@example.com",
        "=?utf-8?b?YWxpY2U=?=@example.com",
    ] {
        let entries = assert_validation_error(
            register_json(&app, json!({"email": bad, "password": PASSWORD})).await,
        )
        .await;
        assert!(has_loc(&entries, "email"), "{bad:?}: {entries:?}");
        let forgot = app
            .post_json("/auth/forgot-password", json!({"email": bad}))
            .await;
        assert_eq!(forgot.status(), 422, "{bad:?}");
    }
    assert_eq!(app.user_count(), 1);
    app.assert_no_email_to("=?utf-8?q?x?=@example.com").await;
    assert!(app.outbox().is_empty());
}

/// Finding 13: accounts stored before addresses had a look-alike key get one when the
/// service starts on the database, so an old fullwidth spelling is found by its plain one.
#[tokio::test]
async fn accounts_stored_before_look_alike_keys_are_given_them_at_start() {
    let first = spawn_app().await;
    assert_eq!(
        first.register("bob@example.net", PASSWORD).await.status(),
        201
    );
    // As an older version stored it: the address as typed, only lower-cased, no skeleton.
    first.execute(
        "UPDATE users SET email = 'ｂｏｂ@example.com', email_normalized = 'ｂｏｂ@example.com', \
         email_skeleton = NULL WHERE email = 'bob@example.net'",
    );

    let settings = test_settings(&first.database.url, first.dir.path(), &[]);
    let second = spawn_with_settings(
        settings,
        tempfile::tempdir().unwrap(),
        TestDatabase::shared(&first.database.url),
    )
    .await;

    assert_eq!(
        second.count(
            "SELECT id FROM users WHERE email_normalized = 'bob@example.com' \
             AND email_skeleton = 'bob@example.com'"
        ),
        1
    );
    second.tokens("bob@example.com", PASSWORD).await;
    assert_detail(
        second.register("bob@example.com", PASSWORD).await,
        400,
        "REGISTER_USER_ALREADY_EXISTS",
    )
    .await;
}

/// Finding 11: blank and whitespace-only passwords, and passwords that are little more than
/// a word of the context (the service's name, the host of `PUBLIC_URL`, the email's local
/// part), are refused; a passphrase that merely mentions one is not.
#[tokio::test]
async fn register_refuses_blank_passwords_and_context_words() {
    let app = spawn_app_with(&[("PUBLIC_URL", "https://id.acme-widgets.test")]).await;

    for password in [
        "        ".to_owned(),
        "\t\t\t\t\t\t\t\t\t".to_owned(),
        "\u{3000}".repeat(10),
        "gatehouse123".to_owned(),
        "Gatehouse2024!".to_owned(),
        "ＧＡＴＥＨＯＵＳＥ１２３".to_owned(),
        "acme-widgets99".to_owned(),
        "id.acme-widgets.test".to_owned(),
        "margaret1234".to_owned(),
    ] {
        let response = app.register("margaret@example.com", &password).await;
        assert_policy_error(response, "REGISTER_INVALID_PASSWORD").await;
    }
    assert_eq!(app.user_count(), 0);

    let response = app
        .register("margaret@example.com", "the gatehouse by the old mill pond")
        .await;
    assert_eq!(response.status(), 201);
}

/// Finding 13: a look-alike that slipped in before the keys existed does not stop the service
/// from starting: it keeps its old key, both accounts still log in, and no third look-alike
/// can register.
#[tokio::test]
async fn an_old_look_alike_account_does_not_stop_the_service_from_starting() {
    let first = spawn_app().await;
    assert_eq!(
        first.register("alice@example.com", PASSWORD).await.status(),
        201
    );
    assert_eq!(
        first.register("old@example.net", PASSWORD).await.status(),
        201
    );
    first.execute(
        "UPDATE users SET email = 'alic\u{435}@example.com', \
         email_normalized = 'alic\u{435}@example.com', email_skeleton = NULL \
         WHERE email = 'old@example.net'",
    );

    let settings = test_settings(&first.database.url, first.dir.path(), &[]);
    let second = spawn_with_settings(
        settings,
        tempfile::tempdir().unwrap(),
        TestDatabase::shared(&first.database.url),
    )
    .await;

    assert_eq!(
        second.count("SELECT id FROM users WHERE email_skeleton IS NULL"),
        0
    );
    second.tokens("alice@example.com", PASSWORD).await;
    second.tokens("alic\u{435}@example.com", PASSWORD).await;
    assert_detail(
        second.register("\u{430}lice@example.com", PASSWORD).await,
        400,
        "REGISTER_USER_ALREADY_EXISTS",
    )
    .await;
}
