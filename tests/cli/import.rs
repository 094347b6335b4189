//! `gatehouse import fastapi-users`: users of a fastapi-users database (its SQLAlchemy table,
//! made here as SQLAlchemy makes it) come over with their ids, flags and password hashes, and
//! sign in with their old passwords; a second run skips them; what cannot be taken is refused
//! and named. `import_fastapi_users.rs` does the same with a database fastapi-users made.

use std::path::{Path, PathBuf};

use argon2::password_hash::PasswordHasher as _;
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use serde_json::json;

use crate::harness::*;

/// The table fastapi-users-db-sqlalchemy creates on SQLite (`SQLAlchemyBaseUserTableUUID`).
const USER_TABLE: &str = "CREATE TABLE user (
    id CHAR(36) NOT NULL,
    email VARCHAR(320) NOT NULL,
    hashed_password VARCHAR(1024) NOT NULL,
    is_active BOOLEAN NOT NULL,
    is_superuser BOOLEAN NOT NULL,
    is_verified BOOLEAN NOT NULL,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_user_email ON user (email);";

const ALICE: &str = "0b6f5e1c-3d2a-4c8e-9f7b-1a2b3c4d5e6f";
const BOB: &str = "1c7a6f2d-4e3b-4d9f-8a6c-2b3c4d5e6f70";
const CAROL: &str = "2d8b7a3e-5f4c-4e0a-9b7d-3c4d5e6f7081";

/// A user row of the fastapi-users table.
struct Row<'a> {
    id: &'a str,
    email: &'a str,
    hash: String,
    active: bool,
    superuser: bool,
    verified: bool,
}

impl<'a> Row<'a> {
    fn new(id: &'a str, email: &'a str, hash: String) -> Row<'a> {
        Row {
            id,
            email,
            hash,
            active: true,
            superuser: false,
            verified: false,
        }
    }
}

/// bcrypt as Python's bcrypt (passlib, pwdlib) writes it, at the cheapest cost.
fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// argon2id at pwdlib's default parameters (argon2-cffi's: 64 MiB, 3 passes, 4 lanes).
fn pwdlib_argon2_hash(password: &str) -> String {
    let params = argon2::Params::new(65536, 3, 4, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .unwrap()
        .to_string()
}

/// A fastapi-users SQLite database holding `rows`; returns its path.
fn fastapi_users_db(sandbox: &Sandbox, rows: &[Row<'_>]) -> PathBuf {
    let path = sandbox.path().join("fastapi_users.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute(USER_TABLE).unwrap();
    for row in rows {
        diesel::sql_query("INSERT INTO user VALUES (?, ?, ?, ?, ?, ?)")
            .bind::<Text, _>(row.id)
            .bind::<Text, _>(row.email)
            .bind::<Text, _>(&row.hash)
            .bind::<Bool, _>(row.active)
            .bind::<Bool, _>(row.superuser)
            .bind::<Bool, _>(row.verified)
            .execute(&mut conn)
            .unwrap();
    }
    path
}

fn sqlite_url(path: &Path) -> String {
    // SQLAlchemy's absolute form: three slashes, then the path's own.
    format!("sqlite:///{}", path.display())
}

fn import(sandbox: &Sandbox, source: &Path, extra: &[&str]) -> Finished {
    let url = sqlite_url(source);
    let mut args = vec!["import", "fastapi-users", "--from", url.as_str()];
    args.extend_from_slice(extra);
    sandbox.run(&args, &[], None)
}

#[derive(Debug, QueryableByName)]
struct Imported {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    hashed_password: String,
    #[diesel(sql_type = Bool)]
    is_active: bool,
    #[diesel(sql_type = Bool)]
    is_superuser: bool,
    #[diesel(sql_type = Bool)]
    is_verified: bool,
}

fn gatehouse_users(db: &Path) -> Vec<Imported> {
    diesel::sql_query(
        "SELECT id, email, hashed_password, is_active, is_superuser, is_verified FROM users \
         ORDER BY email",
    )
    .load(&mut connect(db))
    .unwrap()
}

fn audit_events(db: &Path, event: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT COUNT(*) AS n FROM audit_events WHERE event = ?")
        .bind::<Text, _>(event)
        .get_result::<Count>(&mut connect(db))
        .unwrap()
        .n
}

fn line_of<'a>(out: &'a Finished, email: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|line| line.contains(&format!(" {email} (id ")))
        .unwrap_or_else(|| panic!("no line for {email}\n{}", out.describe()))
}

#[tokio::test]
async fn users_keep_their_ids_flags_and_passwords_and_move_to_gatehouses_hash_at_login() {
    let sandbox = Sandbox::new();
    let source = fastapi_users_db(
        &sandbox,
        &[
            Row {
                superuser: true,
                verified: true,
                ..Row::new(ALICE, "alice@example.com", pwdlib_argon2_hash(PASSWORD))
            },
            Row::new(BOB, "bob@example.com", bcrypt_hash("bob's old passphrase")),
            Row {
                active: false,
                ..Row::new(CAROL, "carol@example.com", bcrypt_hash(PASSWORD))
            },
        ],
    );
    let out = import(&sandbox, &source, &[]);
    out.assert_success();
    assert!(
        out.stdout.contains("3 imported, 0 skipped, 0 refused"),
        "{}",
        out.describe()
    );
    assert!(line_of(&out, "alice@example.com").contains("argon2id m=65536,t=3,p=4"));
    assert!(line_of(&out, "bob@example.com").contains("bcrypt"));
    assert_eq!(
        audit_events(&sandbox.db_path(), "imported"),
        4,
        "3 users and the run"
    );

    let users = gatehouse_users(&sandbox.db_path());
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, [ALICE, BOB, CAROL]);
    assert!(users[0].is_superuser && users[0].is_verified && users[0].is_active);
    assert!(!users[1].is_superuser && !users[1].is_verified && users[1].is_active);
    assert!(!users[2].is_active);
    assert!(
        users[1].hashed_password.starts_with("$2b$04$"),
        "kept as it was"
    );

    let server = sandbox.serve(&[]).await;
    let (alice, _) = server.login("alice@example.com", PASSWORD).await;
    let me = server.me(&alice).await;
    assert_eq!(me["id"], ALICE);
    assert_eq!(me["is_superuser"], true);
    let (bob, _) = server
        .login("bob@example.com", "bob's old passphrase")
        .await;
    assert_eq!(server.me(&bob).await["id"], BOB);
    let wrong = server
        .client
        .post(server.url("/auth/jwt/login"))
        .form(&[("username", "bob@example.com"), ("password", PASSWORD)]);
    let body = Server::expect_json(wrong, 400, "a wrong password").await;
    assert_eq!(body, json!({"detail": "LOGIN_BAD_CREDENTIALS"}));
    let inactive = server
        .client
        .post(server.url("/auth/jwt/login"))
        .form(&[("username", "carol@example.com"), ("password", PASSWORD)]);
    Server::expect_json(inactive, 400, "an inactive imported user").await;

    // The sandbox's argon2id parameters (8 MiB, 1 pass, 1 lane) replaced both old hashes.
    let users = gatehouse_users(&sandbox.db_path());
    for user in &users[..2] {
        assert!(
            user.hashed_password
                .starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
            "{}: {}",
            user.email,
            user.hashed_password
        );
    }
    assert!(
        users[2].hashed_password.starts_with("$2b$"),
        "no login, no re-hash"
    );
}

#[test]
fn a_second_run_skips_everyone_and_says_so() {
    let sandbox = Sandbox::new();
    let source = fastapi_users_db(
        &sandbox,
        &[
            Row::new(ALICE, "alice@example.com", bcrypt_hash(PASSWORD)),
            Row::new(BOB, "bob@example.com", bcrypt_hash(PASSWORD)),
        ],
    );
    import(&sandbox, &source, &[]).assert_success();
    let before = gatehouse_users(&sandbox.db_path());

    let again = import(&sandbox, &source, &[]);
    again.assert_success();
    assert!(
        again.stdout.contains("0 imported, 2 skipped, 0 refused"),
        "{}",
        again.describe()
    );
    assert!(line_of(&again, "alice@example.com").contains("already in Gatehouse"));
    let after = gatehouse_users(&sandbox.db_path());
    assert_eq!(after.len(), 2);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((&b.id, &b.hashed_password), (&a.id, &a.hashed_password));
    }
}

#[test]
fn a_dry_run_reports_and_writes_nothing() {
    let sandbox = Sandbox::new();
    let source = fastapi_users_db(
        &sandbox,
        &[
            Row::new(ALICE, "alice@example.com", bcrypt_hash(PASSWORD)),
            Row::new(
                BOB,
                "bob@example.com",
                "$pbkdf2-sha256$29000$abc$def".into(),
            ),
        ],
    );
    let out = import(&sandbox, &source, &["--dry-run"]);
    out.assert_failure();
    assert!(out.stdout.contains("dry run"), "{}", out.describe());
    assert!(line_of(&out, "alice@example.com").starts_with("would import"));
    assert!(line_of(&out, "bob@example.com").starts_with("refused"));
    assert!(
        out.stdout.contains("1 to import, 0 skipped, 1 refused"),
        "{}",
        out.describe()
    );
    assert!(gatehouse_users(&sandbox.db_path()).is_empty());
    assert_eq!(audit_events(&sandbox.db_path(), "imported"), 0);

    // The dry run's word held: a real run does what it said.
    let real = import(&sandbox, &source, &[]);
    assert!(real.stdout.contains("1 imported, 0 skipped, 1 refused"));
    assert_eq!(gatehouse_users(&sandbox.db_path()).len(), 1);
}

#[test]
fn addresses_that_differ_only_in_letter_case_are_both_refused_never_merged() {
    let sandbox = Sandbox::new();
    let source = fastapi_users_db(
        &sandbox,
        &[
            Row::new(ALICE, "Alice@Example.com", bcrypt_hash(PASSWORD)),
            Row::new(BOB, "alice@example.com", bcrypt_hash("another passphrase")),
            Row::new(CAROL, "carol@example.com", bcrypt_hash(PASSWORD)),
        ],
    );
    let out = import(&sandbox, &source, &[]);
    out.assert_failure();
    let upper = line_of(&out, "Alice@Example.com");
    assert!(upper.starts_with("refused"), "{upper}");
    assert!(
        upper.contains(&format!("alice@example.com (id {BOB})")),
        "{upper}"
    );
    let lower = line_of(&out, "alice@example.com");
    assert!(lower.starts_with("refused"), "{lower}");
    assert!(lower.contains(ALICE), "{lower}");
    assert!(out.stdout.contains("1 imported, 0 skipped, 2 refused"));
    assert!(
        out.stderr.contains("2 user(s) refused"),
        "{}",
        out.describe()
    );
    let emails: Vec<String> = gatehouse_users(&sandbox.db_path())
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(emails, ["carol@example.com"]);
}

#[tokio::test]
async fn an_address_gatehouse_already_has_in_another_case_is_refused() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve(&[]).await;
    server.register("alice@example.com", PASSWORD).await;
    let source = fastapi_users_db(
        &sandbox,
        &[Row::new(ALICE, "ALICE@example.com", bcrypt_hash(PASSWORD))],
    );
    let out = import(&sandbox, &source, &[]);
    out.assert_failure();
    let line = line_of(&out, "ALICE@example.com");
    assert!(line.contains("Gatehouse already has"), "{line}");
    assert!(line.contains("alice@example.com"), "{line}");
    assert_eq!(gatehouse_users(&sandbox.db_path()).len(), 1);
}

#[test]
fn unknown_hash_formats_and_refused_addresses_are_named_and_not_imported() {
    let sandbox = Sandbox::new();
    let source = fastapi_users_db(
        &sandbox,
        &[
            Row::new(ALICE, "alice@example.com", bcrypt_hash(PASSWORD)),
            Row::new(
                BOB,
                "bob@example.com",
                "$bcrypt-sha256$v=2,t=2b,r=12$n79VH.0Q2TMWmt3Oqt9uku$Kq4Noyk3094Y2QlB8NdRT8SvGiI4ft2"
                    .into(),
            ),
            Row::new(CAROL, "carol@localhost", bcrypt_hash(PASSWORD)),
            Row::new("17", "dave@example.com", bcrypt_hash(PASSWORD)),
        ],
    );
    let out = import(&sandbox, &source, &[]);
    out.assert_failure();
    let bob = line_of(&out, "bob@example.com");
    assert!(bob.starts_with("refused") && bob.contains(BOB), "{bob}");
    assert!(bob.contains("unknown password hash format"), "{bob}");
    assert!(bob.contains("`$bcrypt-sha256$`"), "{bob}");
    assert!(
        !bob.contains("Kq4Noyk"),
        "the hash itself is never shown: {bob}"
    );
    let carol = line_of(&out, "carol@localhost");
    assert!(carol.contains("address is refused"), "{carol}");
    assert!(line_of(&out, "dave@example.com").contains("not a UUID"));
    assert!(out.stdout.contains("1 imported, 0 skipped, 3 refused"));
    let ids: Vec<String> = gatehouse_users(&sandbox.db_path())
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, [ALICE]);
}

#[test]
fn another_table_name_and_sqlalchemy_driver_urls_are_understood() {
    let sandbox = Sandbox::new();
    let path = sandbox.path().join("app.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let table = USER_TABLE
        .replace("TABLE user", "TABLE account")
        .replace("ON user", "ON account");
    conn.batch_execute(&table).unwrap();
    diesel::sql_query("INSERT INTO account VALUES (?, 'alice@example.com', ?, 1, 0, 1)")
        .bind::<Text, _>(ALICE)
        .bind::<Text, _>(bcrypt_hash(PASSWORD))
        .execute(&mut conn)
        .unwrap();
    // Relative to the working directory, with the async driver the app used.
    let url = "sqlite+aiosqlite:///./app.db";
    let missing = sandbox.run(&["import", "fastapi-users", "--from", url], &[], None);
    missing.assert_failure();
    assert!(missing.stderr.contains("user"), "{}", missing.describe());

    let out = sandbox.run(
        &[
            "import",
            "fastapi-users",
            "--from",
            url,
            "--table",
            "account",
        ],
        &[],
        None,
    );
    out.assert_success();
    assert!(out.stdout.contains("1 imported"), "{}", out.describe());
    assert_eq!(gatehouse_users(&sandbox.db_path())[0].id, ALICE);

    let absent = sandbox.run(
        &["import", "fastapi-users", "--from", "sqlite:///absent.db"],
        &[],
        None,
    );
    absent.assert_failure();
    assert!(
        absent.stderr.contains("no SQLite database"),
        "{}",
        absent.describe()
    );
    assert!(!sandbox.path().join("absent.db").exists());
}
