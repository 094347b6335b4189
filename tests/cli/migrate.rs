//! `gatehouse migrate`: creates the database, applies every migration once.

use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::harness::*;

#[derive(Debug, QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

fn tables(db: &Path) -> Vec<String> {
    diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .load::<TableName>(&mut connect(db))
        .expect("list tables")
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// How many migrations the source tree ships.
fn migration_count() -> usize {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"))
        .expect("migrations directory")
        .flatten()
        .filter(|e| e.path().is_dir())
        .count()
}

#[test]
fn migrate_creates_the_database_then_reports_it_up_to_date() {
    let sandbox = Sandbox::new();
    let db = sandbox.db_path();
    assert!(!db.exists());

    let first = sandbox.run(&["migrate"], &[], None);
    first.assert_success();
    let applied = first
        .stdout
        .lines()
        .filter(|line| line.starts_with("applied "))
        .count();
    assert_eq!(
        applied,
        migration_count(),
        "one `applied …` line per migration\n{}",
        first.describe()
    );
    assert!(db.exists(), "migrate did not create {}", db.display());
    let tables = tables(&db);
    for table in ["users", "sessions", "refresh_tokens"] {
        assert!(
            tables.iter().any(|t| t == table),
            "no {table} in {tables:?}"
        );
    }
    assert!(users(&db).is_empty());

    let second = sandbox.run(&["migrate"], &[], None);
    second.assert_success();
    assert!(
        second.stdout.contains("up to date"),
        "second run\n{}",
        second.describe()
    );
    assert!(
        !second.stdout.contains("applied "),
        "second run applied again\n{}",
        second.describe()
    );
}
