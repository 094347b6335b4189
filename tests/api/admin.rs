//! `GET/PATCH/DELETE /users/{id}`: superuser-only management, and the last-superuser rule.

use serde_json::{json, Value};

use crate::helpers::*;

const ADMIN: &str = "admin@example.com";
const TARGET: &str = "target@example.com";
const NEW_PASSWORD: &str = "set by an administrator";

fn user_path(app: &TestApp, email: &str) -> String {
    format!("/users/{}", app.user_id(email))
}

/// Asserts a 200 whose body is exactly a `UserRead` for `email`; returns the body.
async fn assert_ok_user_read(response: reqwest::Response, email: &str) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_user_read(&body, email);
    body
}

/// A superuser and a normal user with their tokens.
async fn admin_and_target(app: &TestApp) -> (Tokens, Tokens) {
    let admin = app.superuser(ADMIN).await;
    let target = app.user(TARGET).await;
    (admin, target)
}

#[tokio::test]
async fn superuser_reads_a_user_by_id() {
    let app = spawn_app().await;
    let (admin, _) = admin_and_target(&app).await;
    let id = app.user_id(TARGET);

    let body = assert_ok_user_read(
        app.get(&format!("/users/{id}"), &admin.access).await,
        TARGET,
    )
    .await;

    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["is_superuser"], false);
    assert_eq!(body["is_active"], true);
}

#[tokio::test]
async fn users_by_id_without_a_token_is_401() {
    let app = spawn_app().await;
    admin_and_target(&app).await;
    let url = app.url(&user_path(&app, TARGET));

    let responses = [
        app.client.get(&url).send().await.unwrap(),
        app.client
            .patch(&url)
            .json(&json!({"is_superuser": true}))
            .send()
            .await
            .unwrap(),
        app.client.delete(&url).send().await.unwrap(),
    ];

    for response in responses {
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"detail": "Unauthorized"})
        );
    }
    let row = app.user_row(TARGET).unwrap();
    assert!(!row.is_superuser);
}

#[tokio::test]
async fn users_by_id_is_403_for_a_normal_user() {
    let app = spawn_app().await;
    let (_, target) = admin_and_target(&app).await;
    let own = user_path(&app, TARGET);
    let admin_path = user_path(&app, ADMIN);

    assert_detail(app.get(&own, &target.access).await, 403, "Forbidden").await;
    assert_detail(app.get(&admin_path, &target.access).await, 403, "Forbidden").await;
    let promote = app
        .patch(&own, &target.access, json!({"is_superuser": true}))
        .await;
    assert_detail(promote, 403, "Forbidden").await;
    let demote = app
        .patch(&admin_path, &target.access, json!({"is_superuser": false}))
        .await;
    assert_detail(demote, 403, "Forbidden").await;
    assert_detail(
        app.delete(&admin_path, &target.access).await,
        403,
        "Forbidden",
    )
    .await;

    assert!(!app.user_row(TARGET).unwrap().is_superuser);
    assert!(app.user_row(ADMIN).unwrap().is_superuser);
    assert_eq!(app.user_count(), 2);
}

#[tokio::test]
async fn users_by_id_is_404_for_an_unknown_or_malformed_id() {
    let app = spawn_app().await;
    let (admin, _) = admin_and_target(&app).await;
    let unknown = format!("/users/{}", uuid::Uuid::new_v4());

    for path in [unknown.as_str(), "/users/not-a-uuid", "/users/123"] {
        assert_detail(app.get(path, &admin.access).await, 404, "Not Found").await;
        let patch = app
            .patch(path, &admin.access, json!({"is_verified": true}))
            .await;
        assert_detail(patch, 404, "Not Found").await;
        assert_detail(app.delete(path, &admin.access).await, 404, "Not Found").await;
    }
    assert_eq!(app.user_count(), 2);
}

#[tokio::test]
async fn superuser_patches_flags_email_and_password() {
    let app = spawn_app().await;
    let (admin, _) = admin_and_target(&app).await;
    let path = user_path(&app, TARGET);
    let before = app.user_row(TARGET).unwrap().hashed_password;

    let response = app
        .patch(
            &path,
            &admin.access,
            json!({
                "email": "Renamed@Example.com",
                "password": NEW_PASSWORD,
                "is_verified": true,
            }),
        )
        .await;

    let body = assert_ok_user_read(response, "Renamed@Example.com").await;
    assert_eq!(body["is_verified"], true);
    assert!(app.user_row(TARGET).is_none());
    let row = app.user_row("Renamed@Example.com").unwrap();
    assert!(row.is_verified);
    assert_ne!(row.hashed_password, before);
    let old = app.login("renamed@example.com", PASSWORD).await;
    assert_detail(old, 400, "LOGIN_BAD_CREDENTIALS").await;
    app.tokens("Renamed@Example.com", NEW_PASSWORD).await;

    let response = app
        .patch(&path, &admin.access, json!({"is_active": false}))
        .await;
    let body = assert_ok_user_read(response, "Renamed@Example.com").await;
    assert_eq!(body["is_active"], false);
    assert!(!app.user_row("Renamed@Example.com").unwrap().is_active);
}

#[tokio::test]
async fn superuser_email_change_resets_verification_unless_given() {
    let app = spawn_app().await;
    let (admin, _) = admin_and_target(&app).await;
    let path = user_path(&app, TARGET);
    app.execute(&format!(
        "UPDATE users SET is_verified = TRUE WHERE email = '{TARGET}'"
    ));

    let response = app
        .patch(&path, &admin.access, json!({"email": "first@example.com"}))
        .await;
    let body = assert_ok_user_read(response, "first@example.com").await;
    assert_eq!(body["is_verified"], false);
    assert!(!app.user_row("first@example.com").unwrap().is_verified);

    app.execute("UPDATE users SET is_verified = TRUE WHERE email = 'first@example.com'");
    let response = app
        .patch(
            &path,
            &admin.access,
            json!({"email": "second@example.com", "is_verified": true}),
        )
        .await;
    let body = assert_ok_user_read(response, "second@example.com").await;
    assert_eq!(body["is_verified"], true);
    assert!(app.user_row("second@example.com").unwrap().is_verified);
}

#[tokio::test]
async fn superuser_patch_refuses_a_taken_email_and_a_bad_password() {
    let app = spawn_app().await;
    let (admin, _) = admin_and_target(&app).await;
    let path = user_path(&app, TARGET);
    let before = app.user_row(TARGET).unwrap().hashed_password;

    let taken = app
        .patch(&path, &admin.access, json!({"email": "ADMIN@example.com"}))
        .await;
    assert_detail(taken, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS").await;

    let weak = app
        .patch(&path, &admin.access, json!({"password": "password123"}))
        .await;
    assert_eq!(weak.status(), 400);
    let body: Value = weak.json().await.unwrap();
    assert_eq!(
        body["detail"]["code"], "UPDATE_USER_INVALID_PASSWORD",
        "{body}"
    );
    assert!(
        !body["detail"]["reason"].as_str().unwrap().trim().is_empty(),
        "{body}"
    );

    let invalid = app
        .patch(&path, &admin.access, json!({"email": "nope"}))
        .await;
    assert_eq!(invalid.status(), 422);

    let row = app.user_row(TARGET).unwrap();
    assert_eq!(row.hashed_password, before);
    assert!(app.user_row(ADMIN).is_some());
}

#[tokio::test]
async fn superuser_password_change_revokes_the_users_sessions() {
    let app = spawn_app().await;
    let (admin, target) = admin_and_target(&app).await;
    let path = user_path(&app, TARGET);

    let response = app
        .patch(&path, &admin.access, json!({"password": NEW_PASSWORD}))
        .await;

    assert_ok_user_read(response, TARGET).await;
    assert_eq!(app.get("/users/me", &target.access).await.status(), 401);
    assert_eq!(app.refresh(&target.refresh).await.status(), 401);
    assert_eq!(app.get("/users/me", &admin.access).await.status(), 200);
}

#[tokio::test]
async fn deactivating_a_user_locks_them_out_at_once() {
    let app = spawn_app().await;
    let (admin, target) = admin_and_target(&app).await;
    let path = user_path(&app, TARGET);
    assert_eq!(app.get("/users/me", &target.access).await.status(), 200);

    let response = app
        .patch(&path, &admin.access, json!({"is_active": false}))
        .await;

    assert_ok_user_read(response, TARGET).await;
    assert_eq!(app.get("/users/me", &target.access).await.status(), 401);
    let login = app.login(TARGET, PASSWORD).await;
    assert_detail(login, 400, "LOGIN_BAD_CREDENTIALS").await;

    let response = app
        .patch(&path, &admin.access, json!({"is_active": true}))
        .await;
    assert_ok_user_read(response, TARGET).await;
    app.tokens(TARGET, PASSWORD).await;
}

#[tokio::test]
async fn superuser_deletes_a_user() {
    let app = spawn_app().await;
    let (admin, target) = admin_and_target(&app).await;
    let path = user_path(&app, TARGET);

    let response = app.delete(&path, &admin.access).await;

    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    assert!(app.user_row(TARGET).is_none());
    assert_eq!(app.user_count(), 1);
    assert_eq!(app.get("/users/me", &target.access).await.status(), 401);
    assert_detail(app.get(&path, &admin.access).await, 404, "Not Found").await;
    assert_detail(app.delete(&path, &admin.access).await, 404, "Not Found").await;
    let login = app.login(TARGET, PASSWORD).await;
    assert_detail(login, 400, "LOGIN_BAD_CREDENTIALS").await;
}

#[tokio::test]
async fn the_last_superuser_cannot_demote_deactivate_or_delete_themselves() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let path = user_path(&app, ADMIN);

    for body in [
        json!({"is_superuser": false}),
        json!({"is_active": false}),
        json!({"is_superuser": false, "is_active": false}),
    ] {
        let response = app.patch(&path, &admin.access, body).await;
        assert_detail(response, 409, "LAST_SUPERUSER").await;
    }
    assert_detail(
        app.delete(&path, &admin.access).await,
        409,
        "LAST_SUPERUSER",
    )
    .await;

    let row = app.user_row(ADMIN).unwrap();
    assert!(row.is_superuser);
    assert!(row.is_active);
    assert_eq!(app.get(&path, &admin.access).await.status(), 200);
}

#[tokio::test]
async fn a_refused_last_superuser_change_applies_no_other_field() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let path = user_path(&app, ADMIN);

    let response = app
        .patch(
            &path,
            &admin.access,
            json!({"email": "renamed-admin@example.com", "is_superuser": false}),
        )
        .await;

    assert_detail(response, 409, "LAST_SUPERUSER").await;
    assert!(app.user_row(ADMIN).unwrap().is_superuser);
    assert!(app.user_row("renamed-admin@example.com").is_none());
}

#[tokio::test]
async fn an_inactive_superuser_does_not_count_as_another_superuser() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    app.register("dormant@example.com", PASSWORD).await;
    app.execute(
        "UPDATE users SET is_superuser = TRUE, is_active = FALSE \
         WHERE email = 'dormant@example.com'",
    );
    let path = user_path(&app, ADMIN);

    let response = app
        .patch(&path, &admin.access, json!({"is_superuser": false}))
        .await;

    assert_detail(response, 409, "LAST_SUPERUSER").await;
    assert!(app.user_row(ADMIN).unwrap().is_superuser);
}

#[tokio::test]
async fn with_two_superusers_one_can_be_demoted_but_not_the_last() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let second = app.superuser("second@example.com").await;
    let admin_path = user_path(&app, ADMIN);
    let second_path = user_path(&app, "second@example.com");

    let response = app
        .patch(&second_path, &admin.access, json!({"is_superuser": false}))
        .await;
    let body = assert_ok_user_read(response, "second@example.com").await;
    assert_eq!(body["is_superuser"], false);
    assert!(!app.user_row("second@example.com").unwrap().is_superuser);
    // Privileges are read from the database, not from the token.
    assert_detail(app.get(&admin_path, &second.access).await, 403, "Forbidden").await;

    let response = app
        .patch(&admin_path, &admin.access, json!({"is_superuser": false}))
        .await;
    assert_detail(response, 409, "LAST_SUPERUSER").await;
    assert!(app.user_row(ADMIN).unwrap().is_superuser);
}

#[tokio::test]
async fn with_two_superusers_one_can_demote_or_delete_themselves() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let second = app.superuser("second@example.com").await;
    let admin_path = user_path(&app, ADMIN);
    let second_path = user_path(&app, "second@example.com");

    let response = app
        .patch(&admin_path, &admin.access, json!({"is_superuser": false}))
        .await;
    assert_ok_user_read(response, ADMIN).await;
    assert!(!app.user_row(ADMIN).unwrap().is_superuser);

    let response = app.delete(&second_path, &second.access).await;
    assert_detail(response, 409, "LAST_SUPERUSER").await;

    let response = app.delete(&admin_path, &second.access).await;
    assert_eq!(response.status(), 204);
    assert!(app.user_row(ADMIN).is_none());
}

#[tokio::test]
async fn a_promoted_user_can_manage_users() {
    let app = spawn_app().await;
    let (admin, target) = admin_and_target(&app).await;
    let target_path = user_path(&app, TARGET);
    let admin_path = user_path(&app, ADMIN);
    assert_detail(app.get(&admin_path, &target.access).await, 403, "Forbidden").await;

    let response = app
        .patch(&target_path, &admin.access, json!({"is_superuser": true}))
        .await;

    let body = assert_ok_user_read(response, TARGET).await;
    assert_eq!(body["is_superuser"], true);
    assert!(app.user_row(TARGET).unwrap().is_superuser);
    assert_ok_user_read(app.get(&admin_path, &target.access).await, ADMIN).await;

    // With two superusers the promoted one may now demote the first.
    let response = app
        .patch(&admin_path, &target.access, json!({"is_superuser": false}))
        .await;
    let body = assert_ok_user_read(response, ADMIN).await;
    assert_eq!(body["is_superuser"], false);
    let fresh = app.tokens(TARGET, PASSWORD).await;
    assert_ok_user_read(app.get(&target_path, &fresh.access).await, TARGET).await;
}

#[tokio::test]
async fn superuser_patch_ignores_the_id_and_unknown_fields() {
    let app = spawn_app().await;
    let (admin, _) = admin_and_target(&app).await;
    let id = app.user_id(TARGET);

    let response = app
        .patch(
            &format!("/users/{id}"),
            &admin.access,
            json!({"id": uuid::Uuid::new_v4().to_string(), "colour": "blue"}),
        )
        .await;

    let body = assert_ok_user_read(response, TARGET).await;
    assert_eq!(body["id"], id.as_str());
    assert_eq!(app.user_id(TARGET), id);
}
