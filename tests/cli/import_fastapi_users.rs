//! The move from a real fastapi-users application: fastapi-users itself (installed from PyPI
//! into a virtual environment under `target/`) registers users into its SQLite database and
//! signs an access token (`tests/import/make_fastapi_users_db.py`); `gatehouse import
//! fastapi-users` brings the users over; each signs in to Gatehouse with the same password,
//! keeps its id and flags, and has Gatehouse's argon2id hash afterwards; the app's token works
//! with `LEGACY_JWT_SECRET` and not without it.
//!
//! Without python3, or when the packages cannot be installed, the test says why and passes,
//! except under `CI=true`, where it fails (`.ci/run` installs them first).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::Value;

use crate::harness::*;

/// The old app's JWT secret (a string, as fastapi-users takes it).
const OLD_SECRET: &str = "the old app's secret, from its settings module";
const PIP_TIMEOUT: Duration = Duration::from_secs(900);

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import")
}

/// Where fastapi-users is installed: `FASTAPI_USERS_VENV`, or `target/tmp/fastapi-users-venv`
/// (kept between runs).
fn venv() -> PathBuf {
    std::env::var_os("FASTAPI_USERS_VENV")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("fastapi-users-venv"))
}

fn succeeds(cmd: &mut Command) -> Result<(), String> {
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{:?} {:?} failed ({}):\n{}{}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The virtual environment's python with fastapi-users importable, installing it if needed.
fn fastapi_users_python() -> Result<PathBuf, String> {
    let venv = venv();
    let python = venv.join("bin/python");
    let importable = |python: &Path| {
        succeeds(Command::new(python).args(["-c", "import fastapi_users, aiosqlite"])).is_ok()
    };
    if python.exists() && importable(&python) {
        return Ok(python);
    }
    succeeds(Command::new("python3").arg("--version")).map_err(|_| "python3 not found")?;
    succeeds(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(scripts().join("requirements.txt"));
    let finished = run(pip, None, PIP_TIMEOUT);
    if !finished.status.success() {
        return Err(format!(
            "pip could not install fastapi-users\n{}",
            finished.describe()
        ));
    }
    if !importable(&python) {
        return Err("fastapi-users is not importable after installing it".to_owned());
    }
    Ok(python)
}

/// fastapi-users' python, or `None` (and why, on stderr) when this machine cannot have it.
fn python_or_skip() -> Option<PathBuf> {
    match fastapi_users_python() {
        Ok(python) => Some(python),
        Err(why) if on_ci() => panic!("fastapi-users is needed under CI=true: {why}"),
        Err(why) => {
            eprintln!("skipping the fastapi-users import test: {why}");
            None
        }
    }
}

#[derive(Debug, QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    hashed_password: String,
}

fn stored_hash(db: &Path, email: &str) -> String {
    diesel::sql_query("SELECT hashed_password FROM users WHERE email = ?")
        .bind::<Text, _>(email)
        .get_result::<Stored>(&mut connect(db))
        .unwrap()
        .hashed_password
}

#[tokio::test]
async fn users_of_a_real_fastapi_users_app_move_over_with_their_passwords_and_tokens() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = sandbox.path().join("fastapi_users.db");
    let mut make = Command::new(&python);
    make.arg(scripts().join("make_fastapi_users_db.py"))
        .arg(&source)
        .arg(OLD_SECRET);
    let made = run(make, None, COMMAND_TIMEOUT);
    assert!(made.status.success(), "{}", made.describe());
    let made: Value = serde_json::from_str(&made.stdout).expect("the script's JSON");
    let users = made["users"].as_array().unwrap();
    let prefixes: Vec<&str> = users
        .iter()
        .map(|u| u["hash_prefix"].as_str().unwrap())
        .collect();
    assert!(
        prefixes.contains(&"argon2id") && prefixes.contains(&"2b"),
        "{prefixes:?}"
    );

    let url = format!("sqlite:///{}", source.display());
    let out = sandbox.run(&["import", "fastapi-users", "--from", &url], &[], None);
    out.assert_success();
    let summary = format!("{} imported, 0 skipped, 0 refused", users.len());
    assert!(out.stdout.contains(&summary), "{}", out.describe());
    let again = sandbox.run(&["import", "fastapi-users", "--from", &url], &[], None);
    again.assert_success();
    let skipped = format!("0 imported, {} skipped, 0 refused", users.len());
    assert!(again.stdout.contains(&skipped), "{}", again.describe());

    let mut server = sandbox.serve(&[("LEGACY_JWT_SECRET", OLD_SECRET)]).await;
    for user in users {
        let email = user["email"].as_str().unwrap();
        let password = user["password"].as_str().unwrap();
        if user["is_active"] == false {
            let refused = server
                .client
                .post(server.url("/auth/jwt/login"))
                .form(&[("username", email), ("password", password)]);
            Server::expect_json(refused, 400, "an inactive user").await;
            continue;
        }
        let (access, _) = server.login(email, password).await;
        let me = server.me(&access).await;
        for field in ["id", "email", "is_active", "is_superuser", "is_verified"] {
            assert_eq!(me[field], user[field], "{email}: {field}");
        }
        let hash = stored_hash(&sandbox.db_path(), email);
        assert!(
            hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
            "{email} keeps {hash}"
        );
    }

    // The app's own token, signed by its JWTStrategy.
    let token = made["token"]["value"].as_str().unwrap();
    let me = server.me(token).await;
    assert_eq!(me["id"], made["token"]["user_id"]);
    server.stop();

    let server = sandbox.serve(&[]).await;
    let refused = server
        .client
        .get(server.url("/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "without LEGACY_JWT_SECRET");
}
