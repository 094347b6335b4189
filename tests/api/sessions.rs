//! Sessions: one per login. `GET /users/me/sessions`, `DELETE /users/me/sessions/{id}`,
//! scoped logout, and a superuser's `DELETE /users/{id}/sessions`.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::tokens::{assert_invalid_token, session_of};

const USER: &str = "user@example.com";
const OTHER: &str = "other@example.com";
const ADMIN: &str = "admin@example.com";
const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) Laptop";
const PHONE: &str = "Mozilla/5.0 (iPhone) Phone";

/// Registers `email` and logs it in from a laptop and a phone.
async fn two_devices(app: &TestApp, email: &str) -> (Tokens, Tokens) {
    assert_eq!(app.register(email, PASSWORD).await.status(), 201);
    let laptop = login_from(app, email, LAPTOP).await;
    let phone = login_from(app, email, PHONE).await;
    (laptop, phone)
}

async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let response = app.get("/users/me/sessions", access).await;
    assert_eq!(response.status(), 200);
    response
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn ids(sessions: &[Value]) -> Vec<String> {
    sessions
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn logout(app: &TestApp, access: &str, query: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/auth/jwt/logout{query}")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// Asserts the session behind `tokens` still works (without using its refresh token).
async fn assert_live(app: &TestApp, tokens: &Tokens, what: &str) {
    assert_eq!(
        app.get("/users/me", &tokens.access).await.status(),
        200,
        "{what}"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM sessions WHERE id = '{}' AND revoked_at IS NULL",
            session_of(&tokens.access)
        )),
        1,
        "{what}"
    );
}

// ---------------------------------------------------------------------------------------------
// Listing

#[tokio::test]
async fn each_login_is_a_session_listed_with_its_user_agent() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;

    let listed = sessions(&app, &laptop.access).await;

    assert_eq!(listed.len(), 2, "{listed:?}");
    for session in &listed {
        assert_eq!(
            keys_of(session),
            ["created_at", "current", "id", "last_used_at", "user_agent"],
            "{session}"
        );
        assert!(session["created_at"].as_i64().is_some(), "{session}");
        assert!(session["last_used_at"].as_i64().is_some(), "{session}");
    }
    let agent_of = |id: &str| {
        listed
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("session {id} is listed: {listed:?}"))["user_agent"]
            .clone()
    };
    assert_eq!(agent_of(&session_of(&laptop.access)), LAPTOP);
    assert_eq!(agent_of(&session_of(&phone.access)), PHONE);
}

#[tokio::test]
async fn current_marks_the_session_of_the_asking_token() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;

    for (tokens, what) in [(&laptop, "laptop"), (&phone, "phone")] {
        let listed = sessions(&app, &tokens.access).await;
        let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1, "{what}: {listed:?}");
        assert_eq!(current[0]["id"], session_of(&tokens.access), "{what}");
        assert!(
            listed.iter().all(|s| s["current"].is_boolean()),
            "{listed:?}"
        );
    }
}

#[tokio::test]
async fn sessions_are_listed_most_recently_used_first() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;
    let (laptop_id, phone_id) = (session_of(&laptop.access), session_of(&phone.access));
    let now = crate::tokens::now();
    app.execute(&format!(
        "UPDATE sessions SET last_used_at = {} WHERE id = '{laptop_id}'; \
         UPDATE sessions SET last_used_at = {} WHERE id = '{phone_id}';",
        now - 100,
        now - 50
    ));

    assert_eq!(
        ids(&sessions(&app, &laptop.access).await),
        [phone_id.clone(), laptop_id.clone()]
    );

    // Refreshing is using: the laptop comes first again.
    assert_eq!(app.refresh(&laptop.refresh).await.status(), 200);
    let listed = sessions(&app, &phone.access).await;
    assert_eq!(ids(&listed), [laptop_id, phone_id]);
    assert!(
        listed[0]["last_used_at"].as_i64().unwrap() >= now,
        "{listed:?}"
    );
    assert!(
        listed[0]["created_at"].as_i64().unwrap() <= listed[0]["last_used_at"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn a_login_without_a_user_agent_lists_null() {
    let app = spawn_app().await;
    let tokens = app.user(USER).await;

    let listed = sessions(&app, &tokens.access).await;

    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["user_agent"], Value::Null);
    assert_eq!(listed[0]["current"], true);
}

#[tokio::test]
async fn a_long_user_agent_is_kept_to_256_characters() {
    let app = spawn_app().await;
    app.register(USER, PASSWORD).await;
    let long = format!("Agent/{}", "x".repeat(1000));

    let tokens = login_from(&app, USER, &long).await;

    let listed = sessions(&app, &tokens.access).await;
    assert_eq!(listed[0]["user_agent"], long[..256]);
}

#[tokio::test]
async fn only_your_own_live_sessions_are_listed() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;
    let other = app.user(OTHER).await;
    assert_eq!(logout(&app, &phone.access, "").await.status(), 204);

    let mine = sessions(&app, &laptop.access).await;
    let theirs = sessions(&app, &other.access).await;

    assert_eq!(ids(&mine), [session_of(&laptop.access)]);
    assert_eq!(ids(&theirs), [session_of(&other.access)]);
}

#[tokio::test]
async fn expired_sessions_are_not_listed() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;
    app.execute(&format!(
        "UPDATE sessions SET expires_at = 1 WHERE id = '{}'",
        session_of(&phone.access)
    ));

    assert_eq!(
        ids(&sessions(&app, &laptop.access).await),
        [session_of(&laptop.access)]
    );
}

#[tokio::test]
async fn an_expired_session_cannot_be_ended_again() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;
    let phone_session = session_of(&phone.access);
    app.execute(&format!(
        "UPDATE sessions SET expires_at = 1 WHERE id = '{phone_session}'"
    ));

    let path = format!("/users/me/sessions/{phone_session}");
    assert_detail(app.delete(&path, &laptop.access).await, 404, "Not Found").await;
}

#[tokio::test]
async fn listing_sessions_needs_a_user() {
    let app = spawn_app().await;
    app.user(USER).await;

    let response = app
        .client
        .get(app.url("/users/me/sessions"))
        .send()
        .await
        .unwrap();
    assert_detail(response, 401, "Unauthorized").await;
    assert_invalid_token(app.get("/users/me/sessions", "garbage").await, "garbage").await;
}

// ---------------------------------------------------------------------------------------------
// Ending one session

#[tokio::test]
async fn ending_another_devices_session_signs_it_out_and_keeps_this_one() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;

    let response = app
        .delete(
            &format!("/users/me/sessions/{}", session_of(&phone.access)),
            &laptop.access,
        )
        .await;

    assert_eq!(response.status(), 204);
    assert_ended(&app, &phone, "the phone").await;
    assert_live(&app, &laptop, "the laptop").await;
    assert_eq!(
        ids(&sessions(&app, &laptop.access).await),
        [session_of(&laptop.access)]
    );
}

#[tokio::test]
async fn an_ended_sessions_refresh_token_fails_even_within_the_reuse_grace() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "3600")]).await;
    let (laptop, phone) = two_devices(&app, USER).await;
    // The phone has refreshed once: both its old and its new refresh token are known.
    let response = app.refresh(&phone.refresh).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let child = Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    };

    let path = format!("/users/me/sessions/{}", session_of(&phone.access));
    assert_eq!(app.delete(&path, &laptop.access).await.status(), 204);

    assert_ended(&app, &child, "the refreshed phone").await;
    assert_detail(
        app.refresh(&phone.refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
    assert_invalid_token(app.get("/users/me", &phone.access).await, "first access").await;
}

#[tokio::test]
async fn ending_the_current_session_signs_this_token_out() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;

    let path = format!("/users/me/sessions/{}", session_of(&laptop.access));
    assert_eq!(app.delete(&path, &laptop.access).await.status(), 204);

    assert_ended(&app, &laptop, "the laptop").await;
    assert_live(&app, &phone, "the phone").await;
}

#[tokio::test]
async fn ending_a_session_that_is_not_yours_or_not_live_is_404() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;
    let other = app.user(OTHER).await;
    let phone_path = format!("/users/me/sessions/{}", session_of(&phone.access));
    assert_eq!(app.delete(&phone_path, &laptop.access).await.status(), 204);

    for (id, what) in [
        (session_of(&other.access), "another user's session"),
        (session_of(&phone.access), "an ended session"),
        (uuid::Uuid::new_v4().to_string(), "an unknown session"),
        ("not-a-uuid".to_owned(), "a malformed id"),
        ("0".to_owned(), "a number"),
    ] {
        let response = app
            .delete(&format!("/users/me/sessions/{id}"), &laptop.access)
            .await;
        assert_eq!(response.status(), 404, "{what}");
        assert_detail(response, 404, "Not Found").await;
    }
    assert_live(&app, &other, "the other user").await;
    assert_live(&app, &laptop, "the laptop").await;
}

#[tokio::test]
async fn ending_a_session_needs_a_user() {
    let app = spawn_app().await;
    let tokens = app.user(USER).await;
    let path = format!("/users/me/sessions/{}", session_of(&tokens.access));

    let response = app.client.delete(app.url(&path)).send().await.unwrap();

    assert_detail(response, 401, "Unauthorized").await;
    assert_live(&app, &tokens, "untouched").await;
}

// ---------------------------------------------------------------------------------------------
// Scoped logout

#[tokio::test]
async fn logout_without_a_scope_ends_only_this_session() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;

    let response = logout(&app, &laptop.access, "").await;

    assert_eq!(response.status(), 204);
    assert_ended(&app, &laptop, "the laptop").await;
    assert_live(&app, &phone, "the phone").await;
}

#[tokio::test]
async fn logout_scope_local_ends_only_this_session() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;

    let response = logout(&app, &laptop.access, "?scope=local").await;

    assert_eq!(response.status(), 204);
    assert_ended(&app, &laptop, "the laptop").await;
    assert_live(&app, &phone, "the phone").await;
}

#[tokio::test]
async fn logout_scope_global_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;
    let tablet = login_from(&app, USER, "Tablet").await;
    let other = app.user(OTHER).await;

    let response = logout(&app, &phone.access, "?scope=global").await;

    assert_eq!(response.status(), 204);
    for (tokens, what) in [(&laptop, "laptop"), (&phone, "phone"), (&tablet, "tablet")] {
        assert_ended(&app, tokens, what).await;
    }
    assert_live(&app, &other, "another user").await;
}

#[tokio::test]
async fn logout_scope_others_keeps_only_this_session() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;
    let tablet = login_from(&app, USER, "Tablet").await;
    let other = app.user(OTHER).await;

    let response = logout(&app, &laptop.access, "?scope=others").await;

    assert_eq!(response.status(), 204);
    assert_live(&app, &laptop, "the laptop").await;
    assert_ended(&app, &phone, "the phone").await;
    assert_ended(&app, &tablet, "the tablet").await;
    assert_live(&app, &other, "another user").await;
    assert_eq!(
        ids(&sessions(&app, &laptop.access).await),
        [session_of(&laptop.access)]
    );
    // The kept session still refreshes.
    assert_eq!(app.refresh(&laptop.refresh).await.status(), 200);
}

#[tokio::test]
async fn logout_with_an_unknown_scope_is_422_and_ends_nothing() {
    let app = spawn_app().await;
    let (laptop, phone) = two_devices(&app, USER).await;

    for query in [
        "?scope=everything",
        "?scope=LOCAL",
        "?scope=Global",
        "?scope=",
        "?scope=local%20global",
    ] {
        let response = logout(&app, &laptop.access, query).await;
        assert_eq!(response.status(), 422, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["query", "scope"]),
            "{query}: {body}"
        );
    }
    assert_live(&app, &laptop, "the laptop").await;
    assert_live(&app, &phone, "the phone").await;
}

#[tokio::test]
async fn logging_in_again_after_a_global_logout_starts_a_new_session() {
    let app = spawn_app().await;
    let (laptop, _) = two_devices(&app, USER).await;
    assert_eq!(
        logout(&app, &laptop.access, "?scope=global").await.status(),
        204
    );

    let fresh = login_from(&app, USER, LAPTOP).await;

    assert_ne!(session_of(&fresh.access), session_of(&laptop.access));
    assert_eq!(
        ids(&sessions(&app, &fresh.access).await),
        [session_of(&fresh.access)]
    );
}

// ---------------------------------------------------------------------------------------------
// A superuser ends all of a user's sessions

fn sessions_path(app: &TestApp, email: &str) -> String {
    format!("/users/{}/sessions", app.user_id(email))
}

#[tokio::test]
async fn a_superuser_ends_every_session_of_a_user() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let (laptop, phone) = two_devices(&app, USER).await;
    let other = app.user(OTHER).await;

    let response = app.delete(&sessions_path(&app, USER), &admin.access).await;

    assert_eq!(response.status(), 204);
    assert!(response.text().await.unwrap().is_empty());
    assert_ended(&app, &laptop, "the laptop").await;
    assert_ended(&app, &phone, "the phone").await;
    assert_live(&app, &admin, "the superuser").await;
    assert_live(&app, &other, "another user").await;
    // The user is signed out, not locked out.
    login_from(&app, USER, LAPTOP).await;
}

#[tokio::test]
async fn a_superuser_may_end_a_user_with_no_sessions_and_their_own() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    let response = app.delete(&sessions_path(&app, USER), &admin.access).await;
    assert_eq!(response.status(), 204, "a user with no session");

    let response = app.delete(&sessions_path(&app, ADMIN), &admin.access).await;
    assert_eq!(response.status(), 204, "the superuser's own");
    assert_ended(&app, &admin, "the superuser").await;
}

#[tokio::test]
async fn ending_the_sessions_of_an_unknown_user_is_404() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;

    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let response = app
            .delete(&format!("/users/{id}/sessions"), &admin.access)
            .await;
        assert_detail(response, 404, "Not Found").await;
    }
}

#[tokio::test]
async fn a_member_cannot_end_anyones_sessions() {
    let app = spawn_app().await;
    let admin = app.superuser(ADMIN).await;
    let member = app.user(USER).await;
    let other = app.user(OTHER).await;

    for email in [OTHER, ADMIN, USER] {
        let response = app
            .delete(&sessions_path(&app, email), &member.access)
            .await;
        assert_detail(response, 403, "Forbidden").await;
    }
    assert_live(&app, &other, "the other user").await;
    assert_live(&app, &admin, "the superuser").await;
    assert_live(&app, &member, "the member").await;
}

#[tokio::test]
async fn ending_a_users_sessions_anonymously_is_401() {
    let app = spawn_app().await;
    let target = app.user(USER).await;

    let response = app
        .client
        .delete(app.url(&sessions_path(&app, USER)))
        .send()
        .await
        .unwrap();

    assert_detail(response, 401, "Unauthorized").await;
    assert_live(&app, &target, "the user").await;
}

// ---------------------------------------------------------------------------------------------
// With the browser's cookie instead of a bearer token

mod with_the_cookie {
    use super::*;
    use crate::page_client::{spawn_page_app, PageClient};

    async fn send(
        browser: &PageClient,
        method: reqwest::Method,
        path: &str,
        csrf: Option<&str>,
    ) -> reqwest::Response {
        let mut request = browser.client.request(method, browser.url(path));
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        request.send().await.unwrap()
    }

    #[tokio::test]
    async fn a_browser_lists_its_sessions_with_itself_current() {
        let app = spawn_page_app().await;
        let browser = PageClient::user(&app, USER).await;
        let phone = login_from(&app, USER, PHONE).await;

        let response = send(&browser, reqwest::Method::GET, "/users/me/sessions", None).await;

        assert_eq!(response.status(), 200);
        let listed: Vec<Value> = response.json().await.unwrap();
        assert_eq!(listed.len(), 2);
        for session in &listed {
            let here = session["id"] == browser.session();
            assert_eq!(session["current"], here, "{session}");
        }
        assert!(ids(&listed).contains(&session_of(&phone.access)));
    }

    #[tokio::test]
    async fn ending_a_session_with_the_cookie_needs_the_csrf_header() {
        let app = spawn_page_app().await;
        let browser = PageClient::user(&app, USER).await;
        let phone = login_from(&app, USER, PHONE).await;
        let path = format!("/users/me/sessions/{}", session_of(&phone.access));

        for csrf in [None, Some("forged")] {
            let response = send(&browser, reqwest::Method::DELETE, &path, csrf).await;
            assert_detail(response, 403, "CSRF_FAILED").await;
        }
        assert_live(&app, &phone, "the phone").await;

        let token = browser.token().await;
        let response = send(&browser, reqwest::Method::DELETE, &path, Some(&token)).await;
        assert_eq!(response.status(), 204);
        assert_ended(&app, &phone, "the phone").await;
    }

    #[tokio::test]
    async fn a_global_logout_with_the_cookie_needs_the_csrf_header() {
        let app = spawn_page_app().await;
        let browser = PageClient::user(&app, USER).await;
        let phone = login_from(&app, USER, PHONE).await;
        let path = "/auth/jwt/logout?scope=global";

        let response = send(&browser, reqwest::Method::POST, path, None).await;
        assert_detail(response, 403, "CSRF_FAILED").await;
        assert_live(&app, &phone, "the phone").await;
        assert_eq!(browser.signed_in_as().await.as_deref(), Some(USER));

        let token = browser.token().await;
        let response = send(&browser, reqwest::Method::POST, path, Some(&token)).await;
        assert_eq!(response.status(), 204);
        assert_ended(&app, &phone, "the phone").await;
        assert_eq!(browser.signed_in_as().await, None);
    }
}
