//! `--help`, at the top and for each command: it says what each does and touches nothing.

use crate::harness::*;

fn help(args: &[&str]) -> (Sandbox, Finished) {
    let sandbox = Sandbox::new();
    let finished = sandbox.run(args, &[], None);
    finished.assert_success();
    assert!(
        !sandbox.db_path().exists() && !sandbox.key_file().exists(),
        "--help must not touch the database or keys"
    );
    (sandbox, finished)
}

#[test]
fn top_level_help_lists_every_command() {
    let (_sandbox, out) = help(&["--help"]);
    for command in ["serve", "migrate", "create-superuser", "keys", "import"] {
        assert!(
            out.stdout.contains(command),
            "`{command}` missing\n{}",
            out.describe()
        );
    }
}

#[test]
fn serve_help_describes_serving() {
    let (_sandbox, out) = help(&["serve", "--help"]);
    assert!(out.stdout.contains("serve HTTP"), "{}", out.describe());
    assert!(out.stdout.contains("BIND_ADDR"), "{}", out.describe());
}

#[test]
fn migrate_help_describes_migrating() {
    let (_sandbox, out) = help(&["migrate", "--help"]);
    assert!(out.stdout.contains("migrations"), "{}", out.describe());
}

#[test]
fn create_superuser_help_describes_its_options() {
    let (_sandbox, out) = help(&["create-superuser", "--help"]);
    assert!(out.stdout.contains("superuser"), "{}", out.describe());
    assert!(out.stdout.contains("--email"), "{}", out.describe());
    assert!(
        out.stdout.contains("--password-stdin"),
        "{}",
        out.describe()
    );
}

#[test]
fn keys_generate_help_mentions_jwt_jwks() {
    let (_sandbox, out) = help(&["keys", "generate", "--help"]);
    assert!(out.stdout.contains("ES256"), "{}", out.describe());
    assert!(out.stdout.contains("JWT_JWKS"), "{}", out.describe());
    assert!(out.stdout.contains("RS256"), "{}", out.describe());
    assert!(out.stdout.contains("JWT_SIGNING_KID"), "{}", out.describe());
}

#[test]
fn import_fastapi_users_help_describes_its_options_and_what_it_keeps() {
    let (_sandbox, out) = help(&["import", "fastapi-users", "--help"]);
    for expected in [
        "--from",
        "--table",
        "--dry-run",
        "sqlite:///",
        "postgresql://",
        "[default: user]",
        "skipped",
        "refused",
    ] {
        assert!(
            out.stdout.contains(expected),
            "`{expected}` missing\n{}",
            out.describe()
        );
    }
}
