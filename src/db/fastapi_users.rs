//! Reading a fastapi-users database, for `gatehouse import fastapi-users`: its URL as
//! SQLAlchemy writes it, and the rows of its user table (SQLAlchemy's `user` by default), read
//! as they are. Nothing here writes to it: a SQLite file is opened read-only, and PostgreSQL
//! is only queried.

use std::fmt;
use std::path::PathBuf;

use diesel::pg::PgConnection;
use diesel::sql_types::{Bool, Text};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};

/// Where the fastapi-users database is.
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// A SQLite file (`sqlite:///relative.db`, `sqlite:////absolute.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL URL for libpq (`postgresql://…`), with SQLAlchemy's `+driver` removed.
    Postgres(String),
}

/// A table name, checked to be a plain SQL identifier (optionally `schema.table`), so it can
/// be quoted into the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName(Vec<String>);

/// Why the source could not be read, in words for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(String);

/// One row of the user table, as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct SourceUser {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub hashed_password: String,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
    #[diesel(sql_type = Bool)]
    pub is_superuser: bool,
    #[diesel(sql_type = Bool)]
    pub is_verified: bool,
}

impl Source {
    /// Reads a database URL as SQLAlchemy writes it: `sqlite:///app.db` (a path relative to
    /// the working directory), `sqlite:////var/lib/app.db` (absolute), or
    /// `postgresql://user:password@host/db`; a driver (`sqlite+aiosqlite`,
    /// `postgresql+asyncpg`) is dropped, as Gatehouse brings its own.
    pub fn parse(url: &str) -> Result<Source, SourceError> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            SourceError(
                "expected a database URL such as sqlite:///app.db or postgresql://…".to_owned(),
            )
        })?;
        let dialect = scheme
            .split_once('+')
            .map_or(scheme, |(dialect, _)| dialect);
        match dialect.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let path = rest.strip_prefix('/').unwrap_or_default();
                let path = path.split_once('?').map_or(path, |(path, _)| path);
                if path.is_empty() || path == ":memory:" {
                    return Err(SourceError(
                        "a SQLite URL must name a file: sqlite:///relative.db or \
                         sqlite:////absolute/path.db"
                            .to_owned(),
                    ));
                }
                Ok(Source::Sqlite(PathBuf::from(path)))
            }
            "postgresql" | "postgres" => Ok(Source::Postgres(format!("postgresql://{rest}"))),
            other => Err(SourceError(format!(
                "unsupported database `{other}`: fastapi-users' SQLAlchemy databases on SQLite \
                 and PostgreSQL can be imported"
            ))),
        }
    }

    /// Reads every row of `table`, ordered by address and id.
    pub fn read_users(&self, table: &TableName) -> Result<Vec<SourceUser>, SourceError> {
        let query = format!(
            "SELECT CAST(id AS TEXT) AS id, email, hashed_password, is_active, is_superuser, \
             is_verified FROM {} ORDER BY email, id",
            table.quoted()
        );
        let failed = |e: &dyn fmt::Display| SourceError(format!("cannot read {self}: {e}"));
        match self {
            Source::Sqlite(path) => {
                if !path.is_file() {
                    return Err(SourceError(format!(
                        "there is no SQLite database at {}",
                        path.display()
                    )));
                }
                let mut conn =
                    SqliteConnection::establish(&read_only_uri(path)).map_err(|e| failed(&e))?;
                diesel::sql_query(query)
                    .load(&mut conn)
                    .map_err(|e| failed(&e))
            }
            Source::Postgres(url) => {
                let mut conn = PgConnection::establish(url).map_err(|e| failed(&e))?;
                diesel::sql_query(query)
                    .load(&mut conn)
                    .map_err(|e| failed(&e))
            }
        }
    }
}

/// The URL without its password, for the report and the audit trail.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Sqlite(path) => write!(f, "SQLite {}", path.display()),
            Source::Postgres(url) => {
                let rest = url.strip_prefix("postgresql://").unwrap_or(url);
                let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
                let host = match authority.rsplit_once('@') {
                    Some((credentials, host)) => {
                        let user = credentials.split(':').next().unwrap_or_default();
                        format!("{user}@{host}")
                    }
                    None => authority.to_owned(),
                };
                let database = tail.split('?').next().unwrap_or_default();
                write!(f, "PostgreSQL {host}/{database}")
            }
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({self})")
    }
}

impl TableName {
    /// `user`, `users` or `auth.user`: letters, digits and underscores, not starting with a
    /// digit.
    pub fn parse(raw: &str) -> Result<TableName, SourceError> {
        let parts: Vec<String> = raw.split('.').map(str::to_owned).collect();
        let plain = |part: &String| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && part.len() <= 63
        };
        if parts.len() > 2 || !parts.iter().all(plain) {
            return Err(SourceError(format!(
                "`{raw}` is not a table name (letters, digits and `_`, optionally `schema.table`)"
            )));
        }
        Ok(TableName(parts))
    }

    /// Each part in double quotes: `user` is a reserved word in PostgreSQL.
    fn quoted(&self) -> String {
        self.0
            .iter()
            .map(|part| format!("\"{part}\""))
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A SQLite URI that opens `path` read-only (and never creates it).
fn read_only_uri(path: &std::path::Path) -> String {
    let escaped = path
        .to_string_lossy()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    format!("file:{escaped}?mode=ro")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sqlalchemy_urls_and_drops_the_driver() {
        for (url, expected) in [
            ("sqlite:///app.db", Source::Sqlite("app.db".into())),
            (
                "sqlite+aiosqlite:///./test.db",
                Source::Sqlite("./test.db".into()),
            ),
            (
                "sqlite:////var/lib/app/users.db",
                Source::Sqlite("/var/lib/app/users.db".into()),
            ),
            ("sqlite:///app.db?mode=ro", Source::Sqlite("app.db".into())),
            (
                "postgresql+asyncpg://app:s3cret@db:5432/app",
                Source::Postgres("postgresql://app:s3cret@db:5432/app".into()),
            ),
            (
                "postgres://app@db/app?sslmode=require",
                Source::Postgres("postgresql://app@db/app?sslmode=require".into()),
            ),
        ] {
            assert_eq!(Source::parse(url).unwrap(), expected, "{url}");
        }
        for bad in [
            "app.db",
            "sqlite://",
            "sqlite:///:memory:",
            "mysql://app@db/app",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn never_shows_the_password() {
        let source = Source::parse("postgresql+asyncpg://app:s3cret@db:5432/app?ssl=on").unwrap();
        assert_eq!(source.to_string(), "PostgreSQL app@db:5432/app");
        assert!(!format!("{source:?}").contains("s3cret"));
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        assert_eq!(TableName::parse("user").unwrap().quoted(), "\"user\"");
        assert_eq!(
            TableName::parse("auth.user_account").unwrap().quoted(),
            "\"auth\".\"user_account\""
        );
        for bad in [
            "",
            "user; DROP TABLE users",
            "\"user\"",
            "a.b.c",
            "1user",
            "us-er",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_the_user_table_of_a_sqlite_file_without_writing_to_it() {
        use diesel::connection::SimpleConnection as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.batch_execute(
            "CREATE TABLE user (id CHAR(36) PRIMARY KEY, email VARCHAR(320) NOT NULL, \
             hashed_password VARCHAR(1024) NOT NULL, is_active BOOLEAN NOT NULL, \
             is_superuser BOOLEAN NOT NULL, is_verified BOOLEAN NOT NULL);
             INSERT INTO user VALUES ('8a0f6d6e-4f7b-4a3e-9d0c-2f1e5b6a7c8d', 'b@example.com', \
             '$2b$12$x', 1, 0, 1), ('0b0f6d6e-4f7b-4a3e-9d0c-2f1e5b6a7c8d', 'a@example.com', \
             '$argon2id$x', 0, 1, 0);",
        )
        .unwrap();
        drop(conn);
        let source = Source::parse(&format!("sqlite:///{}", path.display())).unwrap();
        let rows = source
            .read_users(&TableName::parse("user").unwrap())
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].email, "a@example.com");
        assert!(!rows[0].is_active && rows[0].is_superuser && !rows[0].is_verified);
        assert_eq!(rows[1].id, "8a0f6d6e-4f7b-4a3e-9d0c-2f1e5b6a7c8d");
        assert!(rows[1].is_active && !rows[1].is_superuser && rows[1].is_verified);

        let missing = source.read_users(&TableName::parse("accounts").unwrap());
        assert!(missing.unwrap_err().to_string().contains("accounts"));
        let absent = Source::Sqlite(dir.path().join("absent.db"));
        assert!(absent
            .read_users(&TableName::parse("user").unwrap())
            .is_err());
        assert!(!dir.path().join("absent.db").exists(), "nothing is created");
    }
}
