//! A second relying party, in another language: Node's `openid-client` (v6), the script
//! `tests/rp/node/rp.mjs` that the README quotes. The test registers the application, runs
//! the script, plays the user between its authorization URL and its redirect URI, and reads
//! what it learnt. Without `node` or the script's modules (`npm ci --prefix tests/rp/node`)
//! the tests say so and pass, except with `CI=true`, where they fail.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::helpers::*;

const USER: &str = "grace.hopper@example.com";
/// How long the script may take for one step (discovery, or the exchange and userinfo).
const STEP: Duration = Duration::from_secs(30);

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp/node")
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

fn node_in_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("node").is_file()))
}

/// Whether the script can run; when it cannot, says why (and fails the test under CI).
fn node_ready(test: &str) -> bool {
    let missing = if !node_in_path() {
        "node is not installed"
    } else if !script_dir().join("node_modules/openid-client").is_dir() {
        "its modules are not installed (npm ci --prefix tests/rp/node)"
    } else {
        return true;
    };
    if on_ci() {
        panic!("{test} cannot run (CI=true): {missing}");
    }
    // Straight to the process's stderr, so that a skip is seen without `--nocapture`.
    let _ = writeln!(
        std::io::stderr(),
        "skipping {test}: the Node relying party cannot run: {missing}"
    );
    false
}

/// The next line of JSON the script prints (an error when it ended instead).
async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>, what: &str) -> Result<Value, String> {
    let line = tokio::time::timeout(STEP, lines.next_line())
        .await
        .map_err(|_| format!("no {what} in {STEP:?}"))?
        .map_err(|e| format!("reading the {what}: {e}"))?
        .ok_or_else(|| format!("the script ended before its {what}"))?;
    serde_json::from_str(&line).map_err(|e| format!("the {what} is not JSON ({e}): {line}"))
}

/// Runs `rp.mjs` for `registered` (with `env` besides the application's), walks the user
/// through login and consent, and returns what the script printed at the end.
async fn run_node_rp(app: &TestApp, registered: &RegisteredApp, env: &[(&str, &str)]) -> Value {
    let mut command = Command::new("node");
    command
        .arg("rp.mjs")
        .current_dir(script_dir())
        .env("GATEHOUSE_URL", &app.address)
        .env("CLIENT_ID", &registered.id)
        .env("REDIRECT_URI", &registered.redirect_uri)
        .env_remove("CLIENT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(secret) = &registered.secret {
        command.env("CLIENT_SECRET", secret);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let outcome = async {
        let start = next_json(&mut lines, "authorization URL").await?;
        let url = start["authorization_url"]
            .as_str()
            .ok_or_else(|| format!("no authorization_url in {start}"))?
            .to_owned();
        let browser = OidcBrowser::new(app);
        let back = browser.authorize(&url, USER, Decision::Allow).await;
        stdin
            .write_all(format!("{back}\n").as_bytes())
            .await
            .map_err(|e| format!("writing the callback URL: {e}"))?;
        stdin.flush().await.map_err(|e| e.to_string())?;
        next_json(&mut lines, "result").await
    }
    .await;
    drop(stdin);
    let status = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("the script ends")
        .unwrap();
    let mut errors = String::new();
    stderr.read_to_string(&mut errors).await.unwrap();
    match outcome {
        Ok(result) if status.success() => result,
        Ok(result) => {
            panic!("the Node relying party printed {result} but failed ({status}):\n{errors}")
        }
        Err(why) => panic!("the Node relying party failed ({status}): {why}\n{errors}"),
    }
}

async fn provider_with(spec: &AppSpec) -> (TestApp, RegisteredApp) {
    let app = spawn_oidc_app().await;
    let admin = app.superuser("root@example.com").await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let registered = app.application(&admin.access, spec).await;
    (app, registered)
}

#[tokio::test]
async fn node_openid_client_signs_in_verifies_the_id_token_reads_userinfo_and_refreshes() {
    if !node_ready("node_openid_client_signs_in") {
        return;
    }
    let (app, registered) = provider_with(&AppSpec::default()).await;

    let result = run_node_rp(&app, &registered, &[]).await;

    let claims = &result["claims"];
    let sub = app.user_id(USER);
    assert_eq!(claims["sub"], sub.as_str(), "{result}");
    assert_eq!(claims["iss"], app.address.as_str(), "{result}");
    assert_eq!(claims["email"], USER, "{result}");
    assert_eq!(claims["email_verified"], false, "{result}");
    assert!(claims["auth_time"].is_i64(), "{result}");
    assert_eq!(result["userinfo"]["sub"], sub.as_str(), "{result}");
    assert_eq!(result["userinfo"]["email"], USER, "{result}");
    assert_eq!(
        result["token_type"].as_str().map(str::to_ascii_lowercase),
        Some("bearer".into()),
        "{result}"
    );
    let scope: Vec<&str> = result["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .collect();
    for granted in ["openid", "email", "offline_access"] {
        assert!(scope.contains(&granted), "{granted} in {result}");
    }
    assert_eq!(
        result["refreshed"]["access_token_changed"], true,
        "{result}"
    );
    assert_eq!(
        result["refreshed"]["refresh_token_changed"], true,
        "{result}"
    );
}

#[tokio::test]
async fn node_openid_client_as_a_public_client() {
    if !node_ready("node_openid_client_as_a_public_client") {
        return;
    }
    let spec = AppSpec {
        name: "Acme Desktop".into(),
        redirect_uris: vec!["http://localhost:8765/callback".into()],
        public: true,
        ..AppSpec::default()
    };
    let (app, registered) = provider_with(&spec).await;
    assert_eq!(registered.secret, None);

    let result = run_node_rp(&app, &registered, &[]).await;

    assert_eq!(
        result["claims"]["sub"],
        app.user_id(USER).as_str(),
        "{result}"
    );
    assert!(
        audience_is(&result["claims"]["aud"], &registered.id),
        "{result}"
    );
    assert_eq!(result["userinfo"]["email"], USER, "{result}");
    assert_eq!(
        result["refreshed"]["refresh_token_changed"], true,
        "{result}"
    );
}
