//! `gatehouse create-superuser`: creating a superuser, refusing weak passwords, promoting and
//! reactivating an existing user.

use diesel::prelude::*;

use crate::harness::*;

#[tokio::test]
async fn create_superuser_with_password_stdin_creates_a_superuser_who_can_log_in() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &[
            "create-superuser",
            "--email",
            "admin@example.com",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    out.assert_success();
    assert!(
        out.stdout.contains("admin@example.com"),
        "{}",
        out.describe()
    );
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));

    let row = user(&sandbox.db_path(), "admin@example.com");
    assert!(row.is_superuser && row.is_active, "{row:?}");

    let server = sandbox.serve(&[]).await;
    let (access, _) = server.login("admin@example.com", PASSWORD).await;
    let me = server.me(&access).await;
    assert_eq!(me["email"], "admin@example.com");
    assert_eq!(me["is_superuser"], true, "{me}");
    assert_eq!(me["is_active"], true, "{me}");
}

#[test]
fn create_superuser_refuses_weak_passwords_with_a_reason_and_creates_nobody() {
    for (password, reason) in [
        ("password\n", "too common"),
        ("short\n", "at least 8 characters"),
    ] {
        let sandbox = Sandbox::new();
        let out = sandbox.run(
            &[
                "create-superuser",
                "--email",
                "admin@example.com",
                "--password-stdin",
            ],
            &[],
            Some(password),
        );
        out.assert_failure();
        assert!(
            out.stderr.contains(reason),
            "no human reason\n{}",
            out.describe()
        );
        assert!(
            users(&sandbox.db_path()).is_empty(),
            "a user was created: {:?}",
            users(&sandbox.db_path())
        );
    }
}

#[tokio::test]
async fn create_superuser_promotes_a_registered_user_without_asking_for_a_password() {
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[]).await;
    let registered = server.register("alice@example.com", PASSWORD).await;
    assert_eq!(registered["is_superuser"], false);
    server.stop();
    let before = user(&sandbox.db_path(), "alice@example.com");
    assert!(!before.is_superuser);

    // No --password-stdin and no terminal: prompting would fail.
    let out = sandbox.run(
        &["create-superuser", "--email", "alice@example.com"],
        &[],
        None,
    );
    out.assert_success();
    assert!(
        out.stdout.contains("alice@example.com"),
        "{}",
        out.describe()
    );

    let after = user(&sandbox.db_path(), "alice@example.com");
    assert!(after.is_superuser && after.is_active, "{after:?}");
    assert_eq!(
        after.hashed_password, before.hashed_password,
        "promotion changed the password"
    );
    assert_eq!(users(&sandbox.db_path()).len(), 1);
}

#[test]
fn create_superuser_again_promotes_and_reactivates_with_empty_stdin() {
    let sandbox = Sandbox::new();
    let args = [
        "create-superuser",
        "--email",
        "admin@example.com",
        "--password-stdin",
    ];
    sandbox
        .run(&args, &[], Some(&format!("{PASSWORD}\n")))
        .assert_success();
    let db = sandbox.db_path();
    let created = user(&db, "admin@example.com");
    diesel::sql_query("UPDATE users SET is_superuser = 0, is_active = 0")
        .execute(&mut connect(&db))
        .expect("demote and deactivate");

    let out = sandbox.run(&args, &[], Some(""));
    out.assert_success();

    let all = users(&db);
    assert_eq!(all.len(), 1, "{all:?}");
    let promoted = user(&db, "admin@example.com");
    assert!(promoted.is_superuser, "{promoted:?}");
    assert!(
        promoted.is_active,
        "promotion did not reactivate: {promoted:?}"
    );
    assert_eq!(promoted.hashed_password, created.hashed_password);
}
