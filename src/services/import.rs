//! Bringing accounts over from fastapi-users (`gatehouse import fastapi-users`): each user
//! keeps its id, address, flags and password hash, which Gatehouse verifies at login and
//! re-hashes with its own argon2id parameters then.
//!
//! Every user is judged on its own and written by one insert, so nothing is half-imported: a
//! user is imported, skipped (already here, by id: a second run changes nothing), or refused
//! with the reason (an address Gatehouse would not accept, one that is the same address as
//! another's by Gatehouse's comparison, a hash it cannot verify, an id that is not a UUID).
//! Two accounts are never merged: every account of such a pair is refused, and the operator
//! decides.

use std::collections::HashMap;

use super::audit;
use super::context::Context;
use super::ServiceError;
use crate::auth::hash_formats::HashFormat;
use crate::db::fastapi_users::{Source, SourceError, SourceUser, TableName};
use crate::db::users::{self, ImportedUser};
use crate::db::{self, DbError};
use crate::domain::{printable, AuditEvent, Email, Party, User, UserId};
use crate::state::AppState;

/// What happened to one user of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written (or, in a dry run, would be), with the format of its password hash.
    Imported(String),
    /// Already in Gatehouse: nothing written.
    Skipped(String),
    /// Not imported, and why.
    Refused(String),
}

/// One user of the source and its outcome. `email` and `id` are as the source has them
/// (made printable).
#[derive(Debug, Clone)]
pub struct Line {
    pub email: String,
    pub id: String,
    pub outcome: Outcome,
}

/// The outcome of an import, user by user, in the source's order (by address).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<Line>,
    pub dry_run: bool,
}

impl Report {
    pub fn imported(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Imported(_)))
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    pub fn refused(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Refused(_)))
    }

    fn count(&self, which: impl Fn(&Outcome) -> bool) -> usize {
        self.lines
            .iter()
            .filter(|line| which(&line.outcome))
            .count()
    }

    /// `3 imported, 1 skipped, 2 refused`.
    pub fn summary(&self) -> String {
        format!(
            "{} {}, {} skipped, {} refused",
            self.imported(),
            if self.dry_run {
                "to import"
            } else {
                "imported"
            },
            self.skipped(),
            self.refused()
        )
    }
}

/// A user of the source that Gatehouse can take, before it is compared with who is here.
struct Candidate {
    id: UserId,
    email: Email,
    format: HashFormat,
    row: SourceUser,
}

/// Imports the users of a fastapi-users database (see the module documentation). In a dry
/// run nothing is written: the report says what a real run would do now.
pub async fn fastapi_users(
    state: &AppState,
    ctx: &Context,
    source: Source,
    table: TableName,
    dry_run: bool,
) -> Result<Report, ImportError> {
    let reader = source.clone();
    let rows = tokio::task::spawn_blocking(move || reader.read_users(&table))
        .await
        .map_err(|_| ImportError::Service(DbError::Cancelled.into()))??;
    let duplicates = duplicates_among(&rows);
    let mut report = Report {
        lines: Vec::with_capacity(rows.len()),
        dry_run,
    };
    for row in rows {
        let mut line = Line {
            email: printable(&row.email).into_owned(),
            id: printable(&row.id).into_owned(),
            outcome: Outcome::Refused(String::new()),
        };
        line.outcome = match candidate(row, &duplicates) {
            Err(why) => Outcome::Refused(why),
            Ok(candidate) => take(state, ctx, candidate, dry_run).await?,
        };
        if let Outcome::Refused(why) = &line.outcome {
            log::warn!("import: refused {} ({}): {why}", line.email, line.id);
        }
        report.lines.push(line);
    }
    if !dry_run {
        let mut event = ctx.event(AuditEvent::Imported, None);
        event.detail = Some(format!(
            "from fastapi-users ({source}): {}",
            report.summary()
        ));
        audit::record(state, event).await;
    }
    log::info!("import from fastapi-users ({source}): {}", report.summary());
    Ok(report)
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<DbError> for ImportError {
    fn from(error: DbError) -> ImportError {
        ImportError::Service(error.into())
    }
}

/// Checks what can be checked of a row alone: its id, its address, its hash, and whether
/// another row has the same address by Gatehouse's comparison.
fn candidate(row: SourceUser, duplicates: &Duplicates) -> Result<Candidate, String> {
    let id: UserId = row.id.trim().parse().map_err(|_| {
        "its id is not a UUID (Gatehouse keeps ids as UUIDs, as fastapi-users' default \
         SQLAlchemyBaseUserTableUUID does)"
            .to_owned()
    })?;
    let email = Email::parse(&row.email).map_err(|e| format!("its address is refused: {e}"))?;
    if let Some(others) = duplicates.others_than(&row) {
        return Err(format!(
            "the same address as {others} by Gatehouse's comparison (letter case, Unicode \
             form or look-alike letters); accounts are never merged: change or delete all but \
             one in fastapi-users and run the import again"
        ));
    }
    let format = HashFormat::recognise(&row.hashed_password)
        .and_then(|format| format.check_importable().map(|()| format))
        .map_err(|why| format!("its password hash cannot be used: {why}"))?;
    Ok(Candidate {
        id,
        email,
        format,
        row,
    })
}

/// Compares a candidate with who is here, and writes it unless this is a dry run.
async fn take(
    state: &AppState,
    ctx: &Context,
    candidate: Candidate,
    dry_run: bool,
) -> Result<Outcome, ImportError> {
    let (id, email) = (candidate.id, candidate.email.clone());
    let here = db::run(&state.pool, move |conn| present(conn, id, &email)).await?;
    if let Some(outcome) = here {
        return Ok(outcome);
    }
    let format = candidate.format.to_string();
    if dry_run {
        return Ok(Outcome::Imported(format));
    }
    let Candidate { id, email, row, .. } = candidate;
    let again = email.clone();
    let written = db::write(&state.pool, move |conn| {
        users::insert_imported(
            conn,
            ImportedUser {
                id,
                email: &email,
                password_hash: &row.hashed_password,
                is_active: row.is_active,
                is_superuser: row.is_superuser,
                is_verified: row.is_verified,
            },
        )
    })
    .await;
    match written {
        Ok(user) => {
            record(state, ctx, &user, &format).await;
            Ok(Outcome::Imported(format))
        }
        // Someone took the address or the id since it was looked at: say what is there now.
        Err(DbError::EmailTaken) => {
            let here = db::run(&state.pool, move |conn| present(conn, id, &again)).await?;
            Ok(here.unwrap_or_else(|| {
                Outcome::Refused("the address or id was taken while importing".to_owned())
            }))
        }
        Err(other) => Err(other.into()),
    }
}

/// Whether Gatehouse already has this user (skipped) or another with the same address
/// (refused); `None` when it can be imported.
fn present(conn: &mut db::Conn, id: UserId, email: &Email) -> Result<Option<Outcome>, DbError> {
    if let Some(user) = users::find_by_id(conn, id)? {
        let note = if user.email == email.as_str() {
            String::new()
        } else {
            format!(" (as {})", printable(&user.email))
        };
        return Ok(Some(Outcome::Skipped(format!(
            "already in Gatehouse{note}"
        ))));
    }
    let holder = match users::find_by_email(conn, &email.normalized())? {
        Some(user) => Some(user),
        None => users::find_by_skeleton(conn, &email.skeleton())?,
    };
    Ok(holder.map(|user: User| {
        Outcome::Refused(format!(
            "Gatehouse already has another account with the same address by its comparison: \
             {} (id {}); accounts are never merged",
            printable(&user.email),
            user.id
        ))
    }))
}

async fn record(state: &AppState, ctx: &Context, user: &User, format: &str) {
    let mut event = ctx.event(AuditEvent::Imported, Some(Party::from(user)));
    event.detail = Some(format!("from fastapi-users, password hash {format}"));
    audit::record(state, event).await;
}

/// The rows whose address is another row's by Gatehouse's comparison (its normalized key or
/// its look-alike skeleton).
struct Duplicates {
    /// Row (by id) → the other rows it collides with, as `email (id …)`.
    others: HashMap<String, Vec<String>>,
}

impl Duplicates {
    fn others_than(&self, row: &SourceUser) -> Option<String> {
        self.others.get(&row.id).map(|others| others.join(", "))
    }
}

fn duplicates_among(rows: &[SourceUser]) -> Duplicates {
    let mut by_key: HashMap<String, Vec<&SourceUser>> = HashMap::new();
    for row in rows {
        let Ok(email) = Email::parse(&row.email) else {
            continue;
        };
        by_key
            .entry(format!("n:{}", email.normalized()))
            .or_default()
            .push(row);
        by_key
            .entry(format!("s:{}", email.skeleton()))
            .or_default()
            .push(row);
    }
    let mut others: HashMap<String, Vec<String>> = HashMap::new();
    for group in by_key.values().filter(|group| group.len() > 1) {
        for row in group {
            let named = group
                .iter()
                .filter(|other| other.id != row.id)
                .map(|other| format!("{} (id {})", printable(&other.email), printable(&other.id)));
            let list = others.entry(row.id.clone()).or_default();
            for name in named {
                if !list.contains(&name) {
                    list.push(name);
                }
            }
        }
    }
    Duplicates { others }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, email: &str) -> SourceUser {
        SourceUser {
            id: id.to_owned(),
            email: email.to_owned(),
            hashed_password: "$2b$04$.D6SSaQKwNBKsVy7Sa/o2.3/jBJso/pCReTQvHzK0R2HnQ.AHV71q".into(),
            is_active: true,
            is_superuser: false,
            is_verified: false,
        }
    }

    #[test]
    fn addresses_that_gatehouse_reads_as_one_are_all_refused() {
        let rows = [
            row("1", "Alice@Example.com"),
            row("2", "alice@example.com"),
            row("3", "bob@example.com"),
            // A Cyrillic `о` in place of the Latin one.
            row("4", "b\u{43e}b@example.com"),
            row("5", "carol@example.com"),
        ];
        let duplicates = duplicates_among(&rows);
        assert_eq!(
            duplicates.others_than(&rows[0]).unwrap(),
            "alice@example.com (id 2)"
        );
        assert_eq!(
            duplicates.others_than(&rows[1]).unwrap(),
            "Alice@Example.com (id 1)"
        );
        assert!(duplicates.others_than(&rows[2]).unwrap().contains("(id 4)"));
        assert!(duplicates.others_than(&rows[3]).unwrap().contains("(id 3)"));
        assert!(duplicates.others_than(&rows[4]).is_none());
    }

    #[test]
    fn a_row_is_refused_for_its_id_its_address_or_its_hash() {
        let none = Duplicates {
            others: HashMap::new(),
        };
        let id = "5f0c3d2e-8f6b-4b7a-9c1d-2e3f4a5b6c7d";
        assert!(candidate(row(id, "dave@example.com"), &none).is_ok());
        let why = |row| candidate(row, &none).err().unwrap();
        assert!(why(row("17", "dave@example.com")).contains("not a UUID"));
        assert!(why(row(id, "dave@localhost")).contains("address is refused"));
        let mut pbkdf2 = row(id, "dave@example.com");
        pbkdf2.hashed_password = "$pbkdf2-sha256$29000$abc$def".into();
        let refused = why(pbkdf2);
        assert!(refused.contains("`$pbkdf2-sha256$`"), "{refused}");
    }
}
