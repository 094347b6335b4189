//! `gatehouse serve` (and no command at all): refusing to start on a bad configuration, the
//! development key, and what the logs hold.

use std::time::Duration;

use crate::harness::*;

/// Refusals to start must come quickly, before anything is served.
const QUICK_EXIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Refusing to start
// ---------------------------------------------------------------------------------------------

#[test]
fn production_serve_without_keys_refuses_naming_jwt_jwks() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("GATEHOUSE_ENV", "production")
        .env("ARGON2_MEMORY_KIB", "19456")
        .env("ARGON2_ITERATIONS", "2");
    let out = run(cmd, None, QUICK_EXIT);
    out.assert_failure();
    assert!(out.stderr.contains("JWT_JWKS"), "{}", out.describe());
    assert!(
        sandbox.files_named(KEY_FILE).is_empty(),
        "production generated a development key"
    );
}

#[test]
fn production_serve_with_weak_hashing_refuses_naming_argon2_memory() {
    let sandbox = Sandbox::new();
    let (_, keys) = keys_generate(sandbox.path());
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("GATEHOUSE_ENV", "production")
        .env("JWT_JWKS", &keys.encoded)
        .env("ARGON2_MEMORY_KIB", "8192")
        .env("ARGON2_ITERATIONS", "2");
    let out = run(cmd, None, QUICK_EXIT);
    out.assert_failure();
    assert!(
        out.stderr.contains("ARGON2_MEMORY_KIB"),
        "{}",
        out.describe()
    );
}

#[test]
fn an_invalid_setting_refuses_to_serve_naming_the_variable() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("ACCESS_TOKEN_TTL", "soon");
    let out = run(cmd, None, QUICK_EXIT);
    out.assert_failure();
    assert!(
        out.stderr.contains("ACCESS_TOKEN_TTL"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_jwt_leeway_over_a_minute_refuses_to_serve() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("JWT_LEEWAY", "300");
    let out = run(cmd, None, QUICK_EXIT);
    out.assert_failure();
    assert!(
        out.stderr.contains("JWT_LEEWAY") && out.stderr.contains("at most 60"),
        "{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Development serve
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn development_serve_generates_a_private_key_file_and_reuses_it_after_restart() {
    use std::os::unix::fs::PermissionsExt as _;

    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file();
    let mut first = sandbox.serve(&[]).await;
    let first_jwks = first.jwks().await;
    first.register("dev@example.com", PASSWORD).await;
    let (access, _) = first.login("dev@example.com", PASSWORD).await;
    let first_logs = first.stop();

    assert!(
        first_logs.contains(&key_file.display().to_string()),
        "no log line names the generated key file {}\n{first_logs}",
        key_file.display()
    );
    assert!(
        first_logs.contains(&format!("http://127.0.0.1:{}", sandbox.port)),
        "the startup line does not give the address\n{first_logs}"
    );
    assert!(
        !first_logs.contains("RS256 ID tokens are unavailable"),
        "the development key set has no RSA key\n{first_logs}"
    );
    assert!(key_file.is_file(), "no key file at {}", key_file.display());
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode is {mode:o}");
    let key_contents = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(sandbox.files_named(KEY_FILE), vec![key_file.clone()]);

    let mut second = sandbox.serve(&[]).await;
    let second_jwks = second.jwks().await;
    assert_eq!(
        str_of(ec_and_rsa(&second_jwks).0, "kid"),
        str_of(ec_and_rsa(&first_jwks).0, "kid"),
        "the key changed across a restart"
    );
    assert_eq!(ec_and_rsa(&second_jwks), ec_and_rsa(&first_jwks));
    // A token issued before the restart is still accepted.
    let me = second.me(&access).await;
    assert_eq!(me["email"], "dev@example.com");
    let second_logs = second.stop();
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key_contents);
    assert!(
        !second_logs.contains("generated"),
        "the restart claims to have generated a key\n{second_logs}"
    );
}

/// A development key file made before RS256 ID tokens holds one EC key: the next start adds an
/// RSA key to it (keeping the EC key, so tokens survive), says so once, and keeps it private.
#[tokio::test]
async fn development_serve_adds_an_rsa_key_to_an_older_key_file() {
    use std::os::unix::fs::PermissionsExt as _;

    let sandbox = Sandbox::new();
    let key_file = sandbox.key_file();
    let mut first = sandbox.serve(&[]).await;
    first.register("older@example.com", PASSWORD).await;
    let (access, _) = first.login("older@example.com", PASSWORD).await;
    first.stop();
    // Make it the file an older release wrote: its EC key alone.
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    let (ec, _) = ec_and_rsa(&stored);
    std::fs::write(&key_file, serde_json::json!({"keys": [ec]}).to_string()).unwrap();

    let mut second = sandbox.serve(&[]).await;
    let jwks = second.jwks().await;
    let (published_ec, _) = ec_and_rsa(&jwks);
    assert_eq!(str_of(published_ec, "kid"), str_of(ec, "kid"));
    assert_eq!(second.me(&access).await["email"], "older@example.com");
    let logs = second.stop();
    let said: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("added an RSA key"))
        .collect();
    assert_eq!(said.len(), 1, "{logs}");
    assert!(said[0].contains(&key_file.display().to_string()), "{logs}");
    let upgraded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    let (kept, rsa) = ec_and_rsa(&upgraded);
    assert_eq!(kept, ec);
    str_of(rsa, "d");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode is {mode:o}");
    assert_eq!(sandbox.files_named(KEY_FILE), vec![key_file.clone()]);
    let data_dir = key_file.parent().unwrap();
    let temporary: Vec<_> = std::fs::read_dir(data_dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temporary.is_empty(), "left behind: {temporary:?}");

    let mut third = sandbox.serve(&[]).await;
    assert_eq!(third.jwks().await, jwks);
    let logs = third.stop();
    assert!(!logs.contains("added an RSA key"), "{logs}");
}

#[tokio::test]
async fn running_without_a_command_serves() {
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve_args(&[], &[]).await;
    let jwks = server.jwks().await;
    ec_and_rsa(&jwks);
    let logs = server.stop();
    assert!(
        logs.contains(&format!("http://127.0.0.1:{}", sandbox.port)),
        "{logs}"
    );
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn debug_logs_carry_request_lines_but_no_password_token_or_hash() {
    const WRONG_PASSWORD: &str = "not the right passphrase at all";
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[("RUST_LOG", "debug")]).await;

    server.register("carol@example.com", PASSWORD).await;
    let failed = server
        .client
        .post(server.url("/auth/jwt/login"))
        .form(&[
            ("username", "carol@example.com"),
            ("password", WRONG_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 400);
    let (access, refresh) = server.login("carol@example.com", PASSWORD).await;
    let (next_access, next_refresh) = server.refresh(&refresh).await;
    server.me(&access).await;
    server.me(&next_access).await;
    let refused = server
        .client
        .get(server.url("/users/me"))
        .bearer_auth(format!("{next_access}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let logs = server.stop();
    let hash = user(&sandbox.db_path(), "carol@example.com").hashed_password;
    for (what, secret) in [
        ("the password", PASSWORD),
        ("a wrong password", WRONG_PASSWORD),
        ("the access token", access.as_str()),
        ("the refreshed access token", next_access.as_str()),
        ("the refresh token", refresh.as_str()),
        ("the next refresh token", next_refresh.as_str()),
        ("the password hash", hash.as_str()),
    ] {
        assert!(!logs.contains(secret), "the logs contain {what}\n{logs}");
    }
    // Nor a recognizable part of a token (its signature).
    for token in [&access, &next_access] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(signature),
            "the logs contain a token signature"
        );
    }
    assert!(
        logs.contains(" DEBUG "),
        "RUST_LOG=debug produced no debug line\n{logs}"
    );
    for line in [
        "POST /auth/register",
        "POST /auth/jwt/login",
        "POST /auth/jwt/refresh",
        "GET /users/me",
    ] {
        assert!(logs.contains(line), "no request line `{line}`\n{logs}");
    }
}

#[tokio::test]
async fn the_metrics_token_never_reaches_the_logs() {
    const TOKEN: &str = "metrics-token-that-must-stay-secret";
    let sandbox = Sandbox::new();
    let mut server = sandbox
        .serve(&[("RUST_LOG", "debug"), ("METRICS_TOKEN", TOKEN)])
        .await;
    for (token, status) in [(TOKEN, 200), ("metrics-token-that-must-stay-secreT", 401)] {
        let response = server
            .client
            .get(server.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }

    let logs = server.stop();
    assert!(logs.contains("GET /metrics"), "no request line\n{logs}");
    assert!(
        !logs.contains("must-stay-secre"),
        "the logs hold the token\n{logs}"
    );
}

/// Finding 10: the log of a failed login never holds what was typed into the email box when
/// it names no account (it may be a password), and a carriage return or line feed in it
/// cannot start a forged log line.
#[tokio::test]
async fn failed_logins_put_no_typed_secret_and_no_forged_line_in_the_log() {
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[]).await;
    let secret = "Tr0ub4dor&3-my-real-password";
    let forged = "x\r\n[2026-12-02T00:00:00Z WARN  gatehouse::forged] FORGED LINE";
    for username in [secret, forged] {
        let response = server
            .client
            .post(server.url("/auth/jwt/login"))
            .form(&[("username", username), ("password", "whatever it is")])
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 400);
    }

    let logs = server.stop();
    assert!(logs.contains("login failed for"), "{logs}");
    assert!(
        !logs.contains("Tr0ub4dor"),
        "the typed secret is logged\n{logs}"
    );
    for line in logs.lines() {
        assert!(
            !line.contains("FORGED") || line.contains("\\r\\n"),
            "a forged line: {line:?}\n{logs}"
        );
        assert!(!line.starts_with("[2026-12-02T00:00:00Z"), "{logs}");
    }
}

#[tokio::test]
async fn production_serve_warns_while_a_legacy_secret_is_set_and_starts() {
    let sandbox = Sandbox::new();
    sandbox.run(&["migrate"], &[], None).assert_success();
    let mut server = sandbox
        .serve(&[
            ("GATEHOUSE_ENV", "production"),
            ("MFA_KEY", MFA_KEY),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", "q3Pz0dXv8C2k1yJmS0nV4cYtR7bWfLhE9uAiKgQpZxM"),
            ("ARGON2_MEMORY_KIB", "19456"),
            ("ARGON2_ITERATIONS", "2"),
            ("PUBLIC_URL", "https://auth.example.com"),
            ("LEGACY_JWT_SECRET", "old-backend-passphrase"),
        ])
        .await;
    let logs = server.stop();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("LEGACY_JWT_SECRET"))
        .collect();
    assert_eq!(warnings.len(), 2, "set, and short\n{logs}");
    assert!(
        warnings[0].contains("gatehouse_legacy_tokens_accepted_total"),
        "{logs}"
    );
    assert!(
        !logs.contains("old-backend-passphrase"),
        "the secret was logged\n{logs}"
    );
}
