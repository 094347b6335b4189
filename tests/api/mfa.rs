//! Multi-factor authentication through the JSON API (contract section 7): authenticator apps,
//! recovery codes, the login's second step on every transport, the policy, a superuser's
//! reset, and what each change records and tells. Codes are computed with
//! `helpers::totp`, not with the server's implementation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::totp::{code_at, code_now, now};
use crate::helpers::*;

const SECURITY_NOTICE: &str = "How you sign in to Gatehouse changed";

/// A signed-in user with a confirmed authenticator app: its secret, recovery codes and the
/// tokens of the session that enrolled it.
struct Enrolled {
    secret: String,
    recovery_codes: Vec<String>,
    tokens: Tokens,
}

async fn enrol(app: &TestApp, email: &str) -> Enrolled {
    let tokens = app.user(email).await;
    let begun = app
        .post_authorized(
            "/users/me/mfa/totp",
            &tokens.access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(begun.status(), 200);
    let secret = begun.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirmed = app
        .post_authorized(
            "/users/me/mfa/totp/confirm",
            &tokens.access,
            json!({"code": code_now(&secret)}),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let body: Value = confirmed.json().await.unwrap();
    let recovery_codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    Enrolled {
        secret,
        recovery_codes,
        tokens,
    }
}

/// Logs in with the password and expects the second step: its `mfa_token` and `methods`.
async fn password_step(app: &TestApp, email: &str) -> (String, Value) {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"]["code"], "LOGIN_MFA_REQUIRED", "{body}");
    assert!(body["detail"]["reason"].is_string(), "{body}");
    assert!(body.get("access_token").is_none() && body["detail"].get("access_token").is_none());
    let token = body["detail"]["mfa_token"].as_str().unwrap().to_owned();
    (token, body["detail"]["methods"].clone())
}

async fn verify(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_json("/auth/mfa/verify", body).await
}

/// A code of the next step: right, and not the one enrolment spent.
fn next_code(secret: &str) -> String {
    code_at(secret, now() + 30)
}

/// A code that is none of the three the server accepts now.
fn wrong_code(secret: &str) -> String {
    let valid: Vec<String> = [now() - 30, now(), now() + 30]
        .iter()
        .map(|&t| code_at(secret, t))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn audit_count(app: &TestApp, event: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM audit_events WHERE event = '{event}'"
    ))
}

#[tokio::test]
async fn an_authenticator_app_is_pending_until_a_code_confirms_it() {
    let app = spawn_app().await;
    let tokens = app.user("ada@example.com").await;
    let wrong = app
        .post_authorized(
            "/users/me/mfa/totp",
            &tokens.access,
            json!({"current_password": "not the password"}),
        )
        .await;
    assert_detail(wrong, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;
    let missing = app
        .post_authorized("/users/me/mfa/totp", &tokens.access, json!({}))
        .await;
    assert_detail(missing, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;

    let begun = app
        .post_authorized(
            "/users/me/mfa/totp",
            &tokens.access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(begun.status(), 200);
    assert_no_store(&begun, "the secret");
    let body: Value = begun.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap();
    assert!(secret.len() * 5 >= 128, "at least 128 bits: {secret}");
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        uri.contains(&format!("secret={secret}")) && uri.contains("issuer="),
        "{uri}"
    );
    // Stored sealed, never as the app is given it.
    let user_id = app.user_id("ada@example.com");
    assert_eq!(
        app.count(&format!(
            "SELECT user_id FROM totp_factors WHERE user_id = '{user_id}' \
             AND confirmed_at IS NULL AND sealed_secret NOT LIKE '%{secret}%'"
        )),
        1
    );

    // Pending: not on, and not asked for at login.
    let status: Value = app
        .get("/users/me/mfa", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        json!({"totp": false, "passkeys": [], "recovery_codes_left": 0})
    );
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);

    let confirm = |code: String| {
        let (app, access) = (&app, tokens.access.clone());
        async move {
            app.post_authorized("/users/me/mfa/totp/confirm", &access, json!({"code": code}))
                .await
        }
    };
    assert_detail(confirm(wrong_code(secret)).await, 400, "MFA_CODE_INVALID").await;
    let confirmed = confirm(code_now(secret)).await;
    assert_eq!(confirmed.status(), 200);
    assert_no_store(&confirmed, "recovery codes");
    let codes: Value = confirmed.json().await.unwrap();
    let codes = codes["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    // Stored as hashes only.
    for code in codes {
        let code = code.as_str().unwrap();
        assert_eq!(
            app.count(&format!(
                "SELECT code_hash FROM recovery_codes WHERE code_hash LIKE '%{code}%'"
            )),
            0
        );
    }
    assert_detail(confirm(next_code(secret)).await, 409, "MFA_NOT_PENDING").await;
    let again = app
        .post_authorized(
            "/users/me/mfa/totp",
            &tokens.access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_detail(again, 409, "MFA_ALREADY_ENABLED").await;
    let status: Value = app
        .get("/users/me/mfa", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        json!({"totp": true, "passkeys": [], "recovery_codes_left": 10})
    );
}

#[tokio::test]
async fn confirming_with_nothing_pending_is_a_conflict() {
    let app = spawn_app().await;
    let tokens = app.user("ada@example.com").await;
    let response = app
        .post_authorized(
            "/users/me/mfa/totp/confirm",
            &tokens.access,
            json!({"code": "123456"}),
        )
        .await;
    assert_detail(response, 409, "MFA_NOT_PENDING").await;
    let anonymous = app
        .post_json("/users/me/mfa/totp/confirm", json!({"code": "123456"}))
        .await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        app.client
            .get(app.url("/users/me/mfa"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn a_password_alone_never_yields_tokens_once_a_factor_is_on() {
    let app = spawn_app().await;
    let ada = enrol(&app, "ada@example.com").await;
    let (mfa_token, methods) = password_step(&app, "ada@example.com").await;
    assert_eq!(methods, json!(["totp", "recovery_code"]));
    assert!(mfa_token.len() >= 32);
    // Stored as a hash only.
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM mfa_challenges WHERE token_hash = '{}'",
            sha256_hex(&mfa_token)
        )),
        1
    );
    // The cookie login is the same: no cookie is set.
    let cookie = app
        .client
        .post(app.url("/auth/cookie/login"))
        .form(&[("username", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), 400);
    assert!(cookie.headers().get_all("set-cookie").iter().all(|c| {
        let c = c.to_str().unwrap();
        !c.contains("access") && !c.contains("refresh")
    }));
    let body: Value = cookie.json().await.unwrap();
    assert_eq!(body["detail"]["code"], "LOGIN_MFA_REQUIRED");
    // A wrong password says nothing of factors.
    let wrong = app.login("ada@example.com", "not the password").await;
    assert_detail(wrong, 400, "LOGIN_BAD_CREDENTIALS").await;

    let done = verify(
        &app,
        json!({"mfa_token": mfa_token, "code": next_code(&ada.secret)}),
    )
    .await;
    assert_eq!(done.status(), 200);
    assert_no_store(&done, "tokens");
    let body: Value = done.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let issued = claims(access);
    assert_eq!(issued["amr"], json!(["pwd", "otp", "mfa"]), "{issued}");
    let auth_time = issued["auth_time"].as_i64().unwrap();
    assert!((auth_time - now() as i64).abs() < 60, "{issued}");
    assert_eq!(app.get("/users/me", access).await.status(), 200);
    // A refreshed access token keeps the session's amr and auth_time.
    let refreshed: Value = app
        .refresh(body["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let again = claims_of_pair(&refreshed);
    assert_eq!(again["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(again["auth_time"], auth_time);
    // A password login without factors is `pwd` only.
    let plain = app.user("bob@example.com").await;
    assert_eq!(claims(&plain.access)["amr"], json!(["pwd"]));
}

fn claims_of_pair(pair: &Value) -> Value {
    claims(pair["access_token"].as_str().unwrap())
}

#[tokio::test]
async fn a_code_and_a_step_token_are_accepted_once() {
    let app = spawn_app().await;
    let ada = enrol(&app, "ada@example.com").await;
    // The code that confirmed the app is spent.
    let (token, _) = password_step(&app, "ada@example.com").await;
    let replay = verify(
        &app,
        json!({"mfa_token": token, "code": code_now(&ada.secret)}),
    )
    .await;
    assert_detail(replay, 400, "MFA_CODE_INVALID").await;
    let code = next_code(&ada.secret);
    let ok = verify(&app, json!({"mfa_token": token, "code": code})).await;
    assert_eq!(ok.status(), 200);
    // The token is spent, even with a right code.
    let again = verify(
        &app,
        json!({"mfa_token": token, "code": code_at(&ada.secret, now() + 60)}),
    )
    .await;
    assert_detail(again, 400, "MFA_TOKEN_INVALID").await;
    // A new login cannot use the same code twice.
    let (second, _) = password_step(&app, "ada@example.com").await;
    let replayed = verify(&app, json!({"mfa_token": second, "code": code})).await;
    assert_detail(replayed, 400, "MFA_CODE_INVALID").await;
    // Unknown tokens, with any code.
    let unknown = verify(&app, json!({"mfa_token": "x".repeat(43), "code": code})).await;
    assert_detail(unknown, 400, "MFA_TOKEN_INVALID").await;
}

#[tokio::test]
async fn a_step_token_expires_after_five_minutes() {
    let app = spawn_app().await;
    let ada = enrol(&app, "ada@example.com").await;
    let (token, _) = password_step(&app, "ada@example.com").await;
    let row = app.count(&format!(
        "SELECT token_hash FROM mfa_challenges WHERE token_hash = '{}' \
         AND expires_at - created_at = 300",
        sha256_hex(&token)
    ));
    assert_eq!(row, 1, "valid five minutes");
    app.execute(&format!(
        "UPDATE mfa_challenges SET expires_at = expires_at - 301 WHERE token_hash = '{}'",
        sha256_hex(&token)
    ));
    let expired = verify(
        &app,
        json!({"mfa_token": token, "code": next_code(&ada.secret)}),
    )
    .await;
    assert_detail(expired, 400, "MFA_TOKEN_INVALID").await;
}

#[tokio::test]
async fn each_recovery_code_works_once_and_renewing_voids_the_set() {
    let app = spawn_mail_app_with(&[]).await;
    let ada = enrol(&app, "ada@example.com").await;
    let code = ada.recovery_codes[0].clone();
    let (token, _) = password_step(&app, "ada@example.com").await;
    // Typed loosely: upper case, spaces instead of the dash.
    let typed = code.to_uppercase().replace('-', " ");
    let ok = verify(&app, json!({"mfa_token": token, "recovery_code": typed})).await;
    assert_eq!(ok.status(), 200);
    let pair: Value = ok.json().await.unwrap();
    assert_eq!(claims_of_pair(&pair)["amr"], json!(["pwd", "otp", "mfa"]));
    let access = pair["access_token"].as_str().unwrap();
    let status: Value = app.get("/users/me/mfa", access).await.json().await.unwrap();
    assert_eq!(status["recovery_codes_left"], 9);
    // Using a recovery code is told to the owner, without the code.
    let notice = app.wait_for_email("ada@example.com", 2).await;
    assert!(notice.text.contains("recovery code"), "{}", notice.text);
    assert!(!notice.text.contains(&code), "the code is in the notice");

    let (token, _) = password_step(&app, "ada@example.com").await;
    let used = verify(&app, json!({"mfa_token": token, "recovery_code": code})).await;
    assert_detail(used, 400, "MFA_CODE_INVALID").await;

    let wrong = app
        .post_authorized(
            "/users/me/mfa/recovery-codes",
            access,
            json!({"current_password": "nope nope nope"}),
        )
        .await;
    assert_detail(wrong, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;
    let renewed = app
        .post_authorized(
            "/users/me/mfa/recovery-codes",
            access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(renewed.status(), 200);
    assert_no_store(&renewed, "recovery codes");
    let fresh: Value = renewed.json().await.unwrap();
    assert_eq!(fresh["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(audit_count(&app, "recovery_codes_renewed"), 1);
    let old = verify(
        &app,
        json!({"mfa_token": token, "recovery_code": ada.recovery_codes[1]}),
    )
    .await;
    assert_detail(old, 400, "MFA_CODE_INVALID").await;
    let new = fresh["recovery_codes"][0].as_str().unwrap();
    let ok = verify(&app, json!({"mfa_token": token, "recovery_code": new})).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn recovery_codes_need_a_factor() {
    let app = spawn_app().await;
    let tokens = app.user("ada@example.com").await;
    let response = app
        .post_authorized(
            "/users/me/mfa/recovery-codes",
            &tokens.access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_detail(response, 409, "MFA_NOT_ENABLED").await;
}

#[tokio::test]
async fn wrong_codes_wear_out_the_step_and_then_the_account_is_throttled() {
    let app = spawn_app().await;
    let ada = enrol(&app, "ada@example.com").await;
    let (token, _) = password_step(&app, "ada@example.com").await;
    for _ in 0..5 {
        let wrong = verify(
            &app,
            json!({"mfa_token": token, "code": wrong_code(&ada.secret)}),
        )
        .await;
        assert_detail(wrong, 400, "MFA_CODE_INVALID").await;
    }
    // Worn out: even the right code is refused with it.
    let right = verify(
        &app,
        json!({"mfa_token": token, "code": next_code(&ada.secret)}),
    )
    .await;
    assert_detail(right, 400, "MFA_TOKEN_INVALID").await;
    assert_eq!(audit_count(&app, "login_failed"), 5);
    // Ten wrong codes in a quarter hour, over any number of password logins: then 429.
    let (token, _) = password_step(&app, "ada@example.com").await;
    for _ in 0..5 {
        let wrong = verify(
            &app,
            json!({"mfa_token": token, "code": wrong_code(&ada.secret)}),
        )
        .await;
        assert_detail(wrong, 400, "MFA_CODE_INVALID").await;
    }
    let (token, _) = password_step(&app, "ada@example.com").await;
    let throttled = verify(
        &app,
        json!({"mfa_token": token, "code": next_code(&ada.secret)}),
    )
    .await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    // The step is not spent by a refused attempt.
    assert_eq!(
        app.count(&format!(
            "SELECT token_hash FROM mfa_challenges WHERE token_hash = '{}' AND used_at IS NULL",
            sha256_hex(&token)
        )),
        1
    );
}

#[tokio::test]
async fn a_right_password_clears_no_failure_until_the_second_factor_succeeds() {
    let app = spawn_app_with(&[("RATE_LIMIT", "on"), ("RATE_LIMIT_LOGIN_FAILURES", "3")]).await;
    let ada = enrol(&app, "ada@example.com").await;
    for _ in 0..2 {
        assert_detail(
            app.login("ada@example.com", "wrong password!").await,
            400,
            "LOGIN_BAD_CREDENTIALS",
        )
        .await;
    }
    let (token, _) = password_step(&app, "ada@example.com").await;
    let stored =
        |app: &TestApp| app.count("SELECT counter_key FROM throttle_counters WHERE hits > 0");
    assert!(stored(&app) > 0, "the failures are still counted");
    let ok = verify(
        &app,
        json!({"mfa_token": token, "code": next_code(&ada.secret)}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        stored(&app),
        0,
        "the owner is back: the failures are forgotten"
    );
}

#[tokio::test]
async fn the_token_endpoint_completes_a_login_with_the_mfa_grant() {
    let app = spawn_app().await;
    let ada = enrol(&app, "ada@example.com").await;
    let response = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", "ada@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(response.status(), 400);
    assert_no_store(&response, "mfa_required");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "mfa_required", "{body}");
    assert!(body["error_description"].is_string());
    let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();

    let grant = "urn:gatehouse:grant-type:mfa";
    let wrong = app
        .token_request(&[
            ("grant_type", grant),
            ("mfa_token", &mfa_token),
            ("otp", &wrong_code(&ada.secret)),
        ])
        .await;
    assert_oauth_error(wrong, 400, "invalid_grant", "a wrong code").await;
    let code = next_code(&ada.secret);
    let ok = app
        .token_request(&[
            ("grant_type", grant),
            ("mfa_token", &mfa_token),
            ("otp", &code),
        ])
        .await;
    assert_eq!(ok.status(), 200);
    let pair: Value = ok.json().await.unwrap();
    assert_eq!(pair["token_type"], "bearer");
    assert_eq!(claims_of_pair(&pair)["amr"], json!(["pwd", "otp", "mfa"]));
    let spent = app
        .token_request(&[
            ("grant_type", grant),
            ("mfa_token", &mfa_token),
            ("otp", &code),
        ])
        .await;
    assert_oauth_error(spent, 400, "invalid_grant", "a spent mfa_token").await;
    let missing = app
        .token_request(&[("grant_type", grant), ("otp", &code)])
        .await;
    assert_oauth_error(missing, 400, "invalid_request", "no mfa_token").await;
    // A wrong password is invalid_grant, with no mfa_token.
    let bad = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", "ada@example.com"),
            ("password", "not the password"),
        ])
        .await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("mfa_token").is_none());
}

#[tokio::test]
async fn the_cookie_second_step_sets_the_cookies() {
    let app = spawn_app().await;
    let ada = enrol(&app, "ada@example.com").await;
    let (token, _) = password_step(&app, "ada@example.com").await;
    let response = app
        .client
        .post(app.url("/auth/cookie/mfa/verify"))
        .form(&[
            ("mfa_token", token.as_str()),
            ("code", &next_code(&ada.secret)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.headers().contains_key("x-csrf-token"));
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().any(|c| c.contains("HttpOnly")),
        "{cookies:?}"
    );
    // Another site cannot complete a login in this browser.
    let (token, _) = password_step(&app, "ada@example.com").await;
    let forged = app
        .client
        .post(app.url("/auth/cookie/mfa/verify"))
        .header("origin", "https://evil.example")
        .form(&[
            ("mfa_token", token.as_str()),
            ("code", &next_code(&ada.secret)),
        ])
        .send()
        .await
        .unwrap();
    assert_detail(forged, 403, "CSRF_FAILED").await;
}

#[tokio::test]
async fn turning_the_app_off_needs_the_password_and_is_audited_and_told() {
    let app = spawn_mail_app_with(&[]).await;
    let ada = enrol(&app, "ada@example.com").await;
    assert_eq!(audit_count(&app, "mfa_enabled"), 1);
    let added = app.wait_for_email("ada@example.com", 1).await;
    assert_eq!(added.header("subject"), Some(SECURITY_NOTICE));
    assert!(
        added.text.contains("authenticator app was added"),
        "{}",
        added.text
    );
    assert!(!added.text.contains(&ada.secret) && !added.html.contains(&ada.secret));
    for code in &ada.recovery_codes {
        assert!(
            !added.text.contains(code.as_str()),
            "a recovery code in the notice"
        );
    }

    let wrong = app
        .delete_with_body(
            "/users/me/mfa/totp",
            &ada.tokens.access,
            json!({"current_password": "nope nope nope"}),
        )
        .await;
    assert_detail(wrong, 400, "UPDATE_USER_BAD_CURRENT_PASSWORD").await;
    assert_eq!(app.count("SELECT user_id FROM totp_factors"), 1);
    let off = app
        .delete_with_body(
            "/users/me/mfa/totp",
            &ada.tokens.access,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(off.status(), 204);
    assert_eq!(app.count("SELECT user_id FROM totp_factors"), 0);
    // No factor left: the recovery codes went with it.
    assert_eq!(app.count("SELECT code_hash FROM recovery_codes"), 0);
    assert_eq!(audit_count(&app, "mfa_disabled"), 1);
    let removed = app.wait_for_email("ada@example.com", 2).await;
    assert!(removed.text.contains("removed"), "{}", removed.text);
    // A password is enough again.
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_superuser_can_reset_a_users_factors_which_ends_their_sessions() {
    let app = spawn_mail_app_with(&[]).await;
    let admin = app.superuser("admin@example.com").await;
    let ada = enrol(&app, "ada@example.com").await;
    let ada_id = app.user_id("ada@example.com");
    let path = format!("/users/{ada_id}/mfa");

    let by_user = app
        .delete_with_body(&path, &ada.tokens.access, json!({}))
        .await;
    assert_eq!(by_user.status(), 403);
    let unknown = app
        .delete(
            &format!("/users/{}/mfa", uuid::Uuid::new_v4()),
            &admin.access,
        )
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        app.delete("/users/not-a-uuid/mfa", &admin.access)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.client
            .delete(app.url(&path))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let reset = app.delete(&path, &admin.access).await;
    assert_eq!(reset.status(), 204);
    assert_eq!(app.count("SELECT user_id FROM totp_factors"), 0);
    assert_eq!(app.count("SELECT code_hash FROM recovery_codes"), 0);
    assert_ended(
        &app,
        &ada.tokens,
        "a session of a user whose factors were reset",
    )
    .await;
    assert_eq!(audit_count(&app, "mfa_reset"), 1);
    let notice = app.wait_for_email("ada@example.com", 2).await;
    assert!(notice.text.contains("administrator"), "{}", notice.text);
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn the_policy_keeps_superusers_without_a_second_factor_out_of_superuser_routes() {
    let app = spawn_app_with(&[("MFA_REQUIRED", "superusers")]).await;
    let admin = app.superuser("admin@example.com").await;
    let ada = app.user("ada@example.com").await;
    let ada_id = app.user_id("ada@example.com");
    let user_path = format!("/users/{ada_id}");
    assert_detail(
        app.get(&user_path, &admin.access).await,
        403,
        "MFA_REQUIRED",
    )
    .await;
    // Ordinary routes are open to them, and ordinary users are not in scope.
    assert_eq!(app.get("/users/me", &admin.access).await.status(), 200);
    assert_eq!(app.get("/users/me", &ada.access).await.status(), 200);

    // Enrolling does not lift the session; a login with the second factor does.
    let begun: Value = app
        .post_authorized(
            "/users/me/mfa/totp",
            &admin.access,
            json!({"current_password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = begun["secret"].as_str().unwrap().to_owned();
    let confirmed = app
        .post_authorized(
            "/users/me/mfa/totp/confirm",
            &admin.access,
            json!({"code": code_now(&secret)}),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    assert_detail(
        app.get(&user_path, &admin.access).await,
        403,
        "MFA_REQUIRED",
    )
    .await;
    let (token, _) = password_step(&app, "admin@example.com").await;
    let pair: Value = verify(
        &app,
        json!({"mfa_token": token, "code": next_code(&secret)}),
    )
    .await
    .json()
    .await
    .unwrap();
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(app.get(&user_path, access).await.status(), 200);
}

#[tokio::test]
async fn every_user_in_scope_when_the_policy_is_all() {
    let app = spawn_app_with(&[("MFA_REQUIRED", "all")]).await;
    let admin = app.superuser("admin@example.com").await;
    assert_detail(app.get("/audit", &admin.access).await, 403, "MFA_REQUIRED").await;
}

#[tokio::test]
async fn a_verify_body_needs_one_proof() {
    let app = spawn_app().await;
    let both = verify(
        &app,
        json!({"mfa_token": "t", "code": "123456", "recovery_code": "abcde-fghjk"}),
    )
    .await;
    assert_eq!(both.status(), 422);
    let none = verify(&app, json!({"mfa_token": "t"})).await;
    assert_eq!(none.status(), 422);
    let no_token = verify(&app, json!({"code": "123456"})).await;
    assert_eq!(no_token.status(), 422);
}

#[tokio::test]
async fn parallel_attempts_spend_a_step_once_and_guess_no_more_than_the_budget() {
    let app = spawn_app().await;
    let ada = enrol(&app, "ada@example.com").await;
    let (token, _) = password_step(&app, "ada@example.com").await;
    let code = next_code(&ada.secret);
    let attempts = (0..10).map(|_| verify(&app, json!({"mfa_token": token, "code": code})));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        app.count("SELECT id FROM sessions"),
        2,
        "the enrolling one and one more"
    );

    let (token, _) = password_step(&app, "ada@example.com").await;
    let wrong = wrong_code(&ada.secret);
    let guesses = (0..20).map(|_| verify(&app, json!({"mfa_token": token, "code": wrong})));
    let answers = futures_util::future::join_all(guesses).await;
    let mut wrong_answers = 0;
    for answer in answers {
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap();
        match body["detail"].as_str() {
            Some("MFA_CODE_INVALID") => wrong_answers += 1,
            Some("MFA_TOKEN_INVALID") => {}
            other => panic!("{status} {other:?}"),
        }
    }
    assert_eq!(
        wrong_answers, 5,
        "a step takes five wrong codes, however they race"
    );
}
