//! Throttling (`RATE_LIMIT=on`): token buckets per client address for logins, signups, emails
//! and refreshes; failed-login and email counters per address; `X-Forwarded-For` from trusted
//! proxies only.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::*;

const USER: &str = "user@example.com";
const OTHER: &str = "other@example.com";
const WRONG: &str = "not the password at all";
/// A limit no test reaches, for the limits a test is not about.
const GENEROUS: &str = "1000/60";

/// Spawns the app with throttling on, every limit generous, then `vars` on top.
async fn throttled_app(vars: &[(&str, &str)]) -> TestApp {
    let mut all = vec![
        ("RATE_LIMIT", "on"),
        ("RATE_LIMIT_LOGIN_PER_IP", GENEROUS),
        ("RATE_LIMIT_SIGNUP_PER_IP", GENEROUS),
        ("RATE_LIMIT_EMAIL_PER_IP", GENEROUS),
        ("RATE_LIMIT_REFRESH_PER_IP", GENEROUS),
        ("RATE_LIMIT_LOGIN_FAILURES", "1000"),
        ("RATE_LIMIT_EMAILS_PER_ADDRESS", "1000"),
    ];
    all.extend_from_slice(vars);
    spawn_mail_app_with(&all).await
}

fn retry_after(response: &reqwest::Response) -> u64 {
    let value = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap();
    let secs: u64 = value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is whole seconds: {value}"));
    assert!(secs >= 1, "Retry-After is at least 1: {secs}");
    secs
}

/// Asserts 429 `{"detail": "TOO_MANY_REQUESTS"}` with `Retry-After`; returns its seconds.
async fn assert_throttled(response: reqwest::Response, what: &str) -> u64 {
    assert_eq!(response.status(), 429, "{what}");
    let secs = retry_after(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"detail": "TOO_MANY_REQUESTS"}), "{what}");
    secs
}

/// Asserts the token endpoint's 429: `temporarily_unavailable` with `Retry-After`.
async fn assert_oauth_throttled(response: reqwest::Response, what: &str) -> u64 {
    let secs = retry_after(&response);
    assert_oauth_error(response, 429, "temporarily_unavailable", what).await;
    secs
}

async fn assert_not_throttled(response: reqwest::Response, what: &str) -> reqwest::Response {
    assert_ne!(response.status(), 429, "{what}");
    response
}

async fn token_login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.token_request(&[
        ("grant_type", "password"),
        ("username", email),
        ("password", password),
    ])
    .await
}

async fn cookie_login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/cookie/login"))
        .form(&[("username", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

async fn login_via(app: &TestApp, forwarded_for: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/jwt/login"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("username", USER), ("password", password)])
        .send()
        .await
        .unwrap()
}

fn failed_logins_from(app: &TestApp, ip: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM audit_events WHERE event = 'login_failed' AND ip = '{ip}'"
    ))
}

// ---------------------------------------------------------------------------------------------
// Per-address buckets

#[tokio::test]
async fn logins_beyond_the_burst_get_429_with_retry_after() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_PER_IP", "3/30")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    for _ in 0..3 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    let secs = assert_throttled(app.login(USER, PASSWORD).await, "the fourth login").await;

    assert!(secs <= 10, "one login comes back every 10 s: {secs}");
    assert_eq!(app.count("SELECT id FROM sessions"), 0);
}

#[tokio::test]
async fn every_way_to_log_in_shares_the_login_bucket() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_PER_IP", "3/60")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    assert_detail(
        cookie_login(&app, USER, WRONG).await,
        400,
        "LOGIN_BAD_CREDENTIALS",
    )
    .await;
    assert_oauth_error(
        token_login(&app, USER, WRONG).await,
        400,
        "invalid_grant",
        "token",
    )
    .await;

    assert_throttled(app.login(USER, PASSWORD).await, "jwt login").await;
    assert_throttled(cookie_login(&app, USER, PASSWORD).await, "cookie login").await;
    assert_oauth_throttled(token_login(&app, USER, PASSWORD).await, "token endpoint").await;
}

#[tokio::test]
async fn a_bucket_lets_requests_through_again_after_retry_after() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_PER_IP", "2/2")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    for _ in 0..2 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    let secs = assert_throttled(app.login(USER, PASSWORD).await, "over the burst").await;
    assert_eq!(secs, 1, "one login comes back every second");

    tokio::time::sleep(Duration::from_secs(secs) + Duration::from_millis(100)).await;

    assert_eq!(app.login(USER, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn signups_beyond_the_burst_get_429_and_create_nobody() {
    let app = throttled_app(&[("RATE_LIMIT_SIGNUP_PER_IP", "2/60")]).await;
    assert_eq!(
        app.register("one@example.com", PASSWORD).await.status(),
        201
    );
    assert_eq!(
        app.register("two@example.com", PASSWORD).await.status(),
        201
    );

    assert_throttled(app.register("three@example.com", PASSWORD).await, "signup").await;

    assert_eq!(app.user_count(), 2);
    assert!(app.user_row("three@example.com").is_none());
    // Other buckets are untouched.
    assert_eq!(app.login("one@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn both_email_requests_share_the_email_bucket() {
    let app = throttled_app(&[("RATE_LIMIT_EMAIL_PER_IP", "2/60")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    assert_null(app.forgot_password(USER).await, 202).await;
    assert_null(app.request_verify_token(USER).await, 202).await;

    assert_throttled(app.forgot_password(USER).await, "forgot-password").await;
    assert_throttled(app.request_verify_token(USER).await, "request-verify-token").await;
    // Redeeming links and logging in draw from the login bucket.
    let garbage = "C".repeat(43);
    assert_detail(app.verify(&garbage).await, 400, "VERIFY_USER_BAD_TOKEN").await;
    assert_eq!(app.login(USER, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn redeeming_emailed_links_draws_from_the_login_bucket() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_PER_IP", "3/60")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let garbage = "C".repeat(43);

    assert_detail(
        app.reset_password(&garbage, "a brand new passphrase").await,
        400,
        "RESET_PASSWORD_BAD_TOKEN",
    )
    .await;
    assert_detail(app.verify(&garbage).await, 400, "VERIFY_USER_BAD_TOKEN").await;
    assert_eq!(app.login(USER, PASSWORD).await.status(), 200);

    assert_throttled(
        app.reset_password(&garbage, "a brand new passphrase").await,
        "reset-password",
    )
    .await;
    assert_throttled(app.verify(&garbage).await, "verify").await;
    assert_throttled(app.login(USER, PASSWORD).await, "login").await;
}

#[tokio::test]
async fn a_password_reset_lifts_the_account_lock() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "2")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    for _ in 0..2 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    assert_throttled(app.login(USER, PASSWORD).await, "locked").await;

    // Whoever reads the mailbox is the owner: after a reset the new password works at once.
    let token = app.reset_token(USER).await;
    assert_null(
        app.reset_password(&token, "a brand new passphrase").await,
        200,
    )
    .await;
    assert_eq!(
        app.login(USER, "a brand new passphrase").await.status(),
        200
    );
}

#[tokio::test]
async fn both_refresh_routes_share_the_refresh_bucket() {
    let app = throttled_app(&[("RATE_LIMIT_REFRESH_PER_IP", "2/60")]).await;
    let tokens = app.user(USER).await;

    let first = app.refresh(&tokens.refresh).await;
    assert_eq!(first.status(), 200);
    let next: Value = first.json().await.unwrap();
    let second = app
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", next["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(second.status(), 200);
    let last: Value = second.json().await.unwrap();
    let last = last["refresh_token"].as_str().unwrap();

    assert_throttled(app.refresh(last).await, "jwt refresh").await;
    assert_oauth_throttled(
        app.token_request(&[("grant_type", "refresh_token"), ("refresh_token", last)])
            .await,
        "token endpoint refresh",
    )
    .await;
    // The throttled attempts did not use the token up.
    assert_eq!(app.login(USER, PASSWORD).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Failed logins per account and client address

#[tokio::test]
async fn past_the_failure_limit_an_address_is_refused_even_the_right_password() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "3")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    for _ in 0..3 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    let secs = assert_throttled(app.login(USER, PASSWORD).await, "the right password").await;

    assert!(
        (850..=900).contains(&secs),
        "the rest of the window: {secs}"
    );
    assert_throttled(app.login(USER, WRONG).await, "a wrong password").await;
    assert_oauth_throttled(token_login(&app, USER, PASSWORD).await, "token endpoint").await;
    assert_eq!(app.count("SELECT id FROM sessions"), 0);
    // Counted per account and per (account, address); refused attempts are not counted.
    for key in [
        format!("login:{USER}"),
        format!("login:{USER}|ip:127.0.0.1"),
    ] {
        assert_eq!(
            app.count(&format!(
                "SELECT counter_key FROM throttle_counters WHERE counter_key = '{key}' \
                 AND hits = 3"
            )),
            1,
            "{key}"
        );
    }
}

#[tokio::test]
async fn an_unknown_address_locks_like_a_known_one() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "3")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    for email in [USER, "nobody@example.com"] {
        for _ in 0..3 {
            assert_detail(app.login(email, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
        }
        assert_throttled(app.login(email, WRONG).await, email).await;
    }
    assert_eq!(
        app.count(
            "SELECT counter_key FROM throttle_counters \
             WHERE counter_key = 'login:nobody@example.com'"
        ),
        1
    );
}

#[tokio::test]
async fn the_failure_count_ignores_letter_case() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "3")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    for email in ["USER@example.com", "user@EXAMPLE.com", " user@example.com "] {
        assert_detail(app.login(email, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }

    assert_throttled(app.login(USER, PASSWORD).await, "another spelling").await;
}

#[tokio::test]
async fn a_lockout_leaves_other_accounts_alone() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "2")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    assert_eq!(app.register(OTHER, PASSWORD).await.status(), 201);
    for _ in 0..2 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    assert_throttled(app.login(USER, PASSWORD).await, "the locked account").await;

    assert_eq!(app.login(OTHER, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_successful_login_clears_the_failure_count() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "3")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    for _ in 0..2 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }

    assert_eq!(app.login(USER, PASSWORD).await.status(), 200);

    assert_eq!(
        app.count(&format!(
            "SELECT counter_key FROM throttle_counters WHERE counter_key = 'login:{USER}'"
        )),
        0
    );
    for _ in 0..3 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    assert_throttled(app.login(USER, WRONG).await, "a fresh count").await;
}

#[tokio::test]
async fn parallel_guesses_cannot_slip_past_the_failure_limit() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "3")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    let answers = join_all((0..10).map(|_| app.login(USER, WRONG))).await;

    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_lock_ends_with_the_window() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_FAILURES", "2"),
        ("RATE_LIMIT_ACCOUNT_WINDOW", "2"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    for _ in 0..2 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    let secs = assert_throttled(app.login(USER, PASSWORD).await, "locked").await;
    assert!(secs <= 2, "{secs}");

    tokio::time::sleep(Duration::from_secs(secs) + Duration::from_millis(200)).await;

    assert_eq!(app.login(USER, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn locked_attempts_write_no_audit_row() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "2")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    for _ in 0..2 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    assert_eq!(failed_logins_from(&app, "127.0.0.1"), 2);

    assert_throttled(app.login(USER, WRONG).await, "locked, wrong").await;
    assert_throttled(app.login(USER, PASSWORD).await, "locked, right").await;

    assert_eq!(failed_logins_from(&app, "127.0.0.1"), 2);
    assert_eq!(
        app.count("SELECT id FROM audit_events WHERE event = 'login_succeeded'"),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Nobody can lock the owner out

const ATTACKER: &str = "203.0.113.66";
const OWNER_HOME: &str = "198.51.100.10";

/// A client that keeps cookies (a browser, or an API client with a jar).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A JSON login by `client`, as if forwarded for `from` by a trusted proxy.
async fn jwt_login_from(
    app: &TestApp,
    client: &reqwest::Client,
    from: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/auth/jwt/login"))
        .header("x-forwarded-for", from)
        .form(&[("username", USER), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// Finding 3: ten wrong passwords from one address used to lock the account for everyone, its
/// owner with the right password included, for 15 minutes. Now only that address is refused
/// for the window; the owner, from anywhere else, waits a second at most.
#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_owner_out() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_FAILURES", "10"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    for _ in 0..10 {
        assert_detail(
            login_via(&app, ATTACKER, WRONG).await,
            400,
            "LOGIN_BAD_CREDENTIALS",
        )
        .await;
    }
    let secs = assert_throttled(login_via(&app, ATTACKER, PASSWORD).await, "the attacker").await;
    assert!(
        secs > 800,
        "the attacker's address waits for the window: {secs}"
    );

    let mut owner = login_via(&app, OWNER_HOME, PASSWORD).await;
    if owner.status() == 429 {
        let secs = retry_after(&owner);
        assert!(
            secs <= 1,
            "the owner waits a moment, not the window: {secs}"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        owner = login_via(&app, OWNER_HOME, PASSWORD).await;
    }

    assert_eq!(owner.status(), 200, "the owner signs in");
}

/// Finding 3: past its free failures, an account slows guessing from every address it does not
/// know with a delay that doubles at each attempt, rather than locking the door.
#[tokio::test]
async fn guesses_from_many_addresses_are_slowed_down_more_and_more() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_FAILURES", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let addresses: Vec<String> = (1..=10).map(|n| format!("192.0.2.{n}")).collect();
    let mut addresses = addresses.iter();
    for from in addresses.by_ref().take(2) {
        assert_detail(
            login_via(&app, from, WRONG).await,
            400,
            "LOGIN_BAD_CREDENTIALS",
        )
        .await;
    }

    let mut waits = Vec::new();
    for _ in 0..3 {
        let refused = login_via(&app, addresses.next().unwrap(), WRONG).await;
        let secs = assert_throttled(refused, "a guess while the account waits").await;
        waits.push(secs);
        assert!(secs <= 4, "a delay, not the rest of the window: {waits:?}");
        tokio::time::sleep(Duration::from_secs(secs) + Duration::from_millis(100)).await;
        let admitted = login_via(&app, addresses.next().unwrap(), WRONG).await;
        assert_detail(admitted, 400, "LOGIN_BAD_CREDENTIALS").await;
    }

    assert_eq!(waits[0], 1, "{waits:?}");
    assert!(waits[1] >= 1 && waits[1] <= 2, "{waits:?}");
    assert!(waits[2] >= 3 && waits[2] <= 4, "{waits:?}");
}

/// Finding 3: a browser that signed in before carries a device cookie; its logins are judged
/// by its own failures, so while guesses from many addresses make strangers wait, the owner's
/// browser (or an API client that keeps cookies) signs in at once, even from an address the
/// guesses came from.
#[tokio::test]
async fn a_known_device_signs_in_while_the_account_is_under_attack() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_FAILURES", "3"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("COOKIE_SECURE", "false"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let owner = browser();
    let signed_in = owner
        .post(app.url("/auth/cookie/login"))
        .header("x-forwarded-for", OWNER_HOME)
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 204);
    let device = crate::page_client::set_cookie(&signed_in, "gatehouse_device")
        .expect("the cookie login sets a device cookie");
    device.assert_locked_down(false);
    assert!(device.max_age().unwrap() > 30 * 24 * 3600, "{}", device.raw);

    let stranger = reqwest::Client::new();
    let mut refused = 0;
    for n in 1..=12 {
        let from = format!("192.0.2.{n}");
        if jwt_login_from(&app, &stranger, &from, WRONG).await.status() == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 8, "strangers wait: {refused} of 12 refused");
    assert_throttled(
        jwt_login_from(&app, &stranger, OWNER_HOME, PASSWORD).await,
        "a stranger with the right password, right now",
    )
    .await;

    let known = jwt_login_from(&app, &owner, "192.0.2.1", PASSWORD).await;

    assert_eq!(known.status(), 200, "the known device signs in at once");
}

/// A device cookie speaks for its own account only, and only as the server issued it.
#[tokio::test]
async fn a_device_cookie_of_another_account_or_forged_counts_for_nothing() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_FAILURES", "2"),
        ("COOKIE_SECURE", "false"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    assert_eq!(app.register(OTHER, PASSWORD).await.status(), 201);
    let other = browser();
    let signed_in = other
        .post(app.url("/auth/cookie/login"))
        .form(&[("username", OTHER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = crate::page_client::set_cookie(&signed_in, "gatehouse_device").unwrap();
    let mut forged = cookie.value.clone();
    forged.pop();
    forged.push(if cookie.value.ends_with('A') {
        'B'
    } else {
        'A'
    });

    for value in [cookie.value.as_str(), forged.as_str()] {
        let login = |password: &'static str| {
            app.client
                .post(app.url("/auth/jwt/login"))
                .header("cookie", format!("gatehouse_device={value}"))
                .form(&[("username", USER), ("password", password)])
                .send()
        };
        for _ in 0..2 {
            assert_detail(login(WRONG).await.unwrap(), 400, "LOGIN_BAD_CREDENTIALS").await;
        }
        assert_throttled(login(PASSWORD).await.unwrap(), "judged by the address").await;
        app.execute("DELETE FROM throttle_counters");
    }
}

/// A known device that guesses wrong is refused for the rest of the window after its own
/// failures, like an address: a stolen device cookie is no way around the limits.
#[tokio::test]
async fn a_known_device_is_refused_after_its_own_failures() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_FAILURES", "2"),
        ("COOKIE_SECURE", "false"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let device = browser();
    let signed_in = device
        .post(app.url("/auth/cookie/login"))
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 204);

    for _ in 0..2 {
        let answer = jwt_login_from(&app, &device, OWNER_HOME, WRONG).await;
        assert_detail(answer, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    let secs = assert_throttled(
        jwt_login_from(&app, &device, OWNER_HOME, PASSWORD).await,
        "the device",
    )
    .await;

    assert!(secs > 800, "for the rest of the window: {secs}");
    // Its failures were its own: the account makes nobody else wait.
    assert_eq!(app.login(USER, PASSWORD).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Checks of the current password

async fn change_password(app: &TestApp, access: &str, current: &str) -> reqwest::Response {
    app.patch(
        "/users/me",
        access,
        json!({"password": "a brand new passphrase", "current_password": current}),
    )
    .await
}

/// Finding 4: `current_password` on `PATCH /users/me` was an unthrottled password oracle.
/// Each check is now a login attempt on the account: wrong ones are failed logins, and past
/// the limit even the right one is refused, as a login would be.
#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_failed_logins() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_FAILURES", "3")]).await;
    let tokens = app.user(USER).await;

    for _ in 0..3 {
        assert_detail(
            change_password(&app, &tokens.access, WRONG).await,
            400,
            "UPDATE_USER_BAD_CURRENT_PASSWORD",
        )
        .await;
    }
    assert_throttled(
        change_password(&app, &tokens.access, PASSWORD).await,
        "the right current password, past the limit",
    )
    .await;
    assert_throttled(
        app.login(USER, PASSWORD).await,
        "a login from the same address",
    )
    .await;

    assert_eq!(
        app.count(
            "SELECT id FROM audit_events WHERE event = 'login_failed' \
             AND detail = 'wrong current password'"
        ),
        3
    );
    assert!(app
        .user_row(USER)
        .unwrap()
        .hashed_password
        .contains("argon2"));
    assert_eq!(app.get("/users/me", &tokens.access).await.status(), 200);
}

/// Finding 4: the account page's change-password form is throttled the same way.
#[tokio::test]
async fn the_change_password_form_is_throttled_like_a_login() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_FAILURES", "3"),
        ("COOKIE_SECURE", "false"),
    ])
    .await;
    let browser = crate::page_client::PageClient::user(&app, USER).await;
    let form = |current: &'static str| {
        let browser = &browser;
        async move {
            browser
                .submit(
                    "/account/password",
                    &[
                        ("current_password", current),
                        ("new_password", "a brand new passphrase"),
                        ("new_password_confirm", "a brand new passphrase"),
                    ],
                )
                .await
        }
    };

    for _ in 0..3 {
        assert_eq!(form(WRONG).await.status(), 422, "the form says it is wrong");
    }
    let refused = form(PASSWORD).await;

    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(
        app.count("SELECT id FROM audit_events WHERE event = 'password_changed'"),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Address changes per user

async fn change_email(app: &TestApp, access: &str, email: &str) -> reqwest::Response {
    app.patch(
        "/users/me",
        access,
        json!({"email": email, "current_password": PASSWORD}),
    )
    .await
}

/// Finding 5: each attempt to change one's address says whether the new one is taken, so a
/// signed-in user could enumerate the registered addresses (60 in 0.09 s). Attempts are now
/// counted per user, from every address and session alike.
#[tokio::test]
async fn address_changes_are_throttled_per_user() {
    let app = throttled_app(&[("RATE_LIMIT_EMAIL_CHANGES", "3")]).await;
    let tokens = app.user(USER).await;
    let other = app.user(OTHER).await;
    let second_session = app.tokens(USER, PASSWORD).await;
    for taken in ["one@example.com", "two@example.com", "three@example.com"] {
        assert_eq!(app.register(taken, PASSWORD).await.status(), 201);
    }

    for taken in ["one@example.com", "two@example.com"] {
        let answer = change_email(&app, &tokens.access, taken).await;
        assert_detail(answer, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS").await;
    }
    let answer = change_email(&app, &second_session.access, "three@example.com").await;
    assert_detail(answer, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS").await;

    let secs = assert_throttled(
        change_email(&app, &tokens.access, "free@example.com").await,
        "a fourth attempt, even to a free address",
    )
    .await;
    assert!(secs > 800, "for the rest of the window: {secs}");
    assert!(app.user_row(USER).is_some(), "the address did not change");
    // Other users, and other changes, are untouched.
    let moved = change_email(&app, &other.access, "moved@example.com").await;
    assert_eq!(moved.status(), 200);
    let unchanged = app
        .patch("/users/me", &tokens.access, json!({"email": USER}))
        .await;
    assert_eq!(
        unchanged.status(),
        200,
        "keeping one's address is no attempt"
    );
}

// ---------------------------------------------------------------------------------------------
// Emails per address

#[tokio::test]
async fn emails_to_one_address_beyond_the_limit_are_refused() {
    let app = throttled_app(&[("RATE_LIMIT_EMAILS_PER_ADDRESS", "2")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    assert_eq!(app.register(OTHER, PASSWORD).await.status(), 201);

    assert_null(app.forgot_password(USER).await, 202).await;
    assert_null(app.request_verify_token(USER).await, 202).await;
    let secs = assert_throttled(app.forgot_password(USER).await, "a third email").await;
    assert!(
        (850..=900).contains(&secs),
        "the rest of the window: {secs}"
    );
    assert_throttled(
        app.request_verify_token("USER@Example.com").await,
        "any case",
    )
    .await;

    assert_null(app.forgot_password(OTHER).await, 202).await;
    app.wait_for_email(OTHER, 1).await;
    app.wait_for_email(USER, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.emails_to(USER).len(), 2);
}

#[tokio::test]
async fn an_unknown_address_runs_out_of_emails_like_a_known_one() {
    let app = throttled_app(&[("RATE_LIMIT_EMAILS_PER_ADDRESS", "2")]).await;

    for _ in 0..2 {
        assert_null(app.forgot_password("nobody@example.com").await, 202).await;
    }

    assert_throttled(app.forgot_password("nobody@example.com").await, "unknown").await;
    assert_throttled(
        app.request_verify_token("nobody@example.com").await,
        "unknown",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// X-Forwarded-For

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_PER_IP", "2/60"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    for _ in 0..2 {
        let answer = login_via(&app, "198.51.100.1", WRONG).await;
        assert_detail(answer, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    assert_throttled(login_via(&app, "198.51.100.1", WRONG).await, "client A").await;

    assert_detail(
        login_via(&app, "198.51.100.2", WRONG).await,
        400,
        "LOGIN_BAD_CREDENTIALS",
    )
    .await;
    assert_eq!(failed_logins_from(&app, "198.51.100.1"), 2);
    assert_eq!(failed_logins_from(&app, "198.51.100.2"), 1);
    assert_eq!(failed_logins_from(&app, "127.0.0.1"), 0);
}

#[tokio::test]
async fn a_client_cannot_escape_its_bucket_by_prepending_to_x_forwarded_for() {
    let app = throttled_app(&[
        ("RATE_LIMIT_LOGIN_PER_IP", "2/60"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    for _ in 0..2 {
        let answer = login_via(&app, "198.51.100.1", WRONG).await;
        assert_detail(answer, 400, "LOGIN_BAD_CREDENTIALS").await;
    }

    let spoofed = login_via(&app, "203.0.113.9, 198.51.100.1", WRONG).await;

    assert_throttled(spoofed, "a spoofed left-hand entry").await;
    assert_eq!(
        app.count("SELECT id FROM audit_events WHERE ip = '203.0.113.9'"),
        0
    );
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = throttled_app(&[("RATE_LIMIT_LOGIN_PER_IP", "2/60")]).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    for _ in 0..2 {
        let answer = login_via(&app, "198.51.100.1", WRONG).await;
        assert_detail(answer, 400, "LOGIN_BAD_CREDENTIALS").await;
    }

    assert_throttled(login_via(&app, "198.51.100.2", WRONG).await, "client B").await;
    assert_eq!(failed_logins_from(&app, "127.0.0.1"), 2);
    assert_eq!(
        app.count("SELECT id FROM audit_events WHERE ip LIKE '198.51.100.%'"),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Dual-stack listeners

/// A client that connects from `local` (any address of 127.0.0.0/8 is this machine's).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(local.parse().unwrap()))
        .build()
        .unwrap()
}

async fn register_from(app: &TestApp, client: &reqwest::Client, email: &str) -> reqwest::Response {
    client
        .post(app.url("/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

/// Finding 1: on a dual-stack listener (`BIND_ADDR=[::]:…`) IPv4 clients arrive as
/// `::ffff:a.b.c.d`. Each still has a bucket of its own (not one /64 shared by all of IPv4),
/// and is audited as the IPv4 address it is.
#[tokio::test]
async fn ipv4_clients_of_a_dual_stack_listener_have_buckets_of_their_own() {
    let app = throttled_app(&[
        ("BIND_ADDR", "[::]:0"),
        ("RATE_LIMIT_SIGNUP_PER_IP", "2/60"),
    ])
    .await;
    let (one, two) = (client_from("127.0.0.1"), client_from("127.0.0.2"));

    for email in ["a@example.com", "b@example.com"] {
        assert_eq!(register_from(&app, &one, email).await.status(), 201);
    }
    assert_throttled(
        register_from(&app, &one, "c@example.com").await,
        "the first client's third signup",
    )
    .await;

    let other = register_from(&app, &two, "d@example.com").await;
    assert_eq!(other.status(), 201, "another IPv4 client is not throttled");
    assert_eq!(
        app.count("SELECT id FROM audit_events WHERE event = 'signup' AND ip = '127.0.0.2'"),
        1
    );
    assert_eq!(
        app.count("SELECT id FROM audit_events WHERE ip LIKE '%:%'"),
        0,
        "no IPv4-mapped address is recorded"
    );
}

/// Finding 1: `TRUSTED_PROXIES` written as IPv4 match the proxy on a dual-stack listener too,
/// so each forwarded client is throttled and audited as itself.
#[tokio::test]
async fn ipv4_trusted_proxies_match_on_a_dual_stack_listener() {
    let app = throttled_app(&[
        ("BIND_ADDR", "[::]:0"),
        ("RATE_LIMIT_LOGIN_PER_IP", "2/60"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);

    for _ in 0..2 {
        let answer = login_via(&app, "198.51.100.1", WRONG).await;
        assert_detail(answer, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    assert_throttled(login_via(&app, "198.51.100.1", WRONG).await, "client A").await;

    let answer = login_via(&app, "198.51.100.2", WRONG).await;
    assert_detail(answer, 400, "LOGIN_BAD_CREDENTIALS").await;
    assert_eq!(failed_logins_from(&app, "198.51.100.1"), 2);
    assert_eq!(failed_logins_from(&app, "198.51.100.2"), 1);
}

// ---------------------------------------------------------------------------------------------
// RATE_LIMIT=off

#[tokio::test]
async fn with_rate_limit_off_nothing_is_throttled() {
    let app = spawn_mail_app_with(&[
        ("RATE_LIMIT", "off"),
        ("RATE_LIMIT_LOGIN_PER_IP", "1/60"),
        ("RATE_LIMIT_SIGNUP_PER_IP", "1/60"),
        ("RATE_LIMIT_EMAIL_PER_IP", "1/60"),
        ("RATE_LIMIT_REFRESH_PER_IP", "1/60"),
        ("RATE_LIMIT_LOGIN_FAILURES", "1"),
        ("RATE_LIMIT_EMAILS_PER_ADDRESS", "1"),
    ])
    .await;

    for email in [USER, OTHER, "third@example.com"] {
        assert_eq!(app.register(email, PASSWORD).await.status(), 201);
    }
    for _ in 0..4 {
        assert_detail(app.login(USER, WRONG).await, 400, "LOGIN_BAD_CREDENTIALS").await;
    }
    let tokens = app.tokens(USER, PASSWORD).await;
    let mut refresh = tokens.refresh;
    for _ in 0..3 {
        let answer = app.refresh(&refresh).await;
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
    }
    for _ in 0..3 {
        assert_null(app.forgot_password(USER).await, 202).await;
        assert_null(app.request_verify_token(OTHER).await, 202).await;
    }
    for _ in 0..3 {
        assert_not_throttled(app.verify(&"D".repeat(43)).await, "verify").await;
    }
    assert_eq!(app.count("SELECT counter_key FROM throttle_counters"), 0);
    app.wait_for_email(USER, 3).await;
}
