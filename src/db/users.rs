//! Queries on the `users` table.

use diesel::prelude::*;

use super::models::{NewUserRecord, UserRecord, USER_COLUMNS};
use super::schema::users;
use super::{
    count_up_to_limit, is_unique_violation, now, one, search, Boundary, Conn, DbError, Listing,
    Page,
};
use crate::domain::{Email, User, UserFilter, UserId, UserSort};

/// A new account, with its password already hashed.
pub struct NewUser<'a> {
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub is_superuser: bool,
}

/// The fields a change may set; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<Email>,
    pub password_hash: Option<String>,
    pub is_active: Option<bool>,
    pub is_superuser: Option<bool>,
    pub is_verified: Option<bool>,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct UserChangeset {
    email: Option<String>,
    email_normalized: Option<String>,
    email_skeleton: Option<String>,
    hashed_password: Option<String>,
    is_active: Option<bool>,
    is_superuser: Option<bool>,
    is_verified: Option<bool>,
    updated_at: i64,
}

/// Inserts a user; the unique indexes turn a taken address (in any letter case, or a
/// look-alike of it) into [`DbError::EmailTaken`], however many requests race for it.
pub fn insert(conn: &mut Conn, new: NewUser<'_>) -> Result<User, DbError> {
    insert_imported(
        conn,
        ImportedUser {
            id: UserId::new(),
            email: new.email,
            password_hash: new.password_hash,
            is_active: true,
            is_superuser: new.is_superuser,
            is_verified: false,
        },
    )
}

/// An account brought over from another system, with its id, flags and password hash as
/// they were there.
pub struct ImportedUser<'a> {
    pub id: UserId,
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
}

/// Inserts an imported account as it was, in one statement; a taken address (or id) is
/// [`DbError::EmailTaken`], as for [`insert`].
pub fn insert_imported(conn: &mut Conn, new: ImportedUser<'_>) -> Result<User, DbError> {
    let now = now();
    let record = NewUserRecord {
        id: new.id.to_string(),
        email: new.email.as_str(),
        email_normalized: new.email.normalized(),
        email_skeleton: new.email.skeleton(),
        hashed_password: new.password_hash,
        is_active: new.is_active,
        is_superuser: new.is_superuser,
        is_verified: new.is_verified,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(users::table)
        .values(&record)
        .returning(USER_COLUMNS)
        .get_result::<UserRecord>(conn)
        .map_err(email_taken_or)?
        .try_into()
}

pub fn find_by_id(conn: &mut Conn, id: UserId) -> Result<Option<User>, DbError> {
    users::table
        .find(id.to_string())
        .select(UserRecord::as_select())
        .get_result(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

/// Finds a user by address, in any letter case.
pub fn find_by_email(conn: &mut Conn, normalized_email: &str) -> Result<Option<User>, DbError> {
    users::table
        .filter(users::email_normalized.eq(normalized_email))
        .select(UserRecord::as_select())
        .get_result(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

/// Finds the user whose address has this confusable skeleton (see `Email::skeleton`).
pub fn find_by_skeleton(conn: &mut Conn, skeleton: &str) -> Result<Option<User>, DbError> {
    users::table
        .filter(users::email_skeleton.eq(skeleton))
        .select(UserRecord::as_select())
        .get_result(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

/// One page of the users `filter` matches, in its order, read from an index whatever its
/// depth. A search of three or more characters matches any part of the address, a shorter one
/// its start; both in any letter case.
pub fn list(conn: &mut Conn, filter: &UserFilter, page: &Page) -> Result<Listing<User>, DbError> {
    let sqlite = matches!(conn, Conn::Sqlite(_));
    let needle = crate::domain::normalize_email(&filter.search);
    let short = needle.chars().count() < search::TRIGRAM;
    let pattern = match short {
        true => format!("{}%", escape_like(&needle)),
        false => format!("%{}%", escape_like(&needle)),
    };
    let query = || {
        let mut query = users::table.into_boxed();
        if !needle.is_empty() {
            query = query.filter(users::email_normalized.like(pattern.clone()).escape('\\'));
            if sqlite && short {
                // `LIKE` ignores the letter case, so SQLite reads the index by range instead.
                let end = format!("{needle}{}", char::MAX);
                query = query.filter(
                    users::email_normalized
                        .ge(needle.clone())
                        .and(users::email_normalized.lt(end)),
                );
            } else if let Some(indexed) = search::trigram_condition(sqlite, "users", &needle) {
                query = query.filter(indexed);
            }
        }
        if let Some(active) = filter.is_active {
            query = query.filter(users::is_active.eq(active));
        }
        if let Some(verified) = filter.is_verified {
            query = query.filter(users::is_verified.eq(verified));
        }
        if let Some(superuser) = filter.is_superuser {
            query = query.filter(users::is_superuser.eq(superuser));
        }
        query
    };
    let total = count_up_to_limit(conn, query().select(one()))?;

    let boundary = match &page.from {
        Some(Boundary::After(id) | Boundary::Before(id)) => users::table
            .filter(users::id.eq(id))
            .select((
                users::email_normalized,
                users::created_at,
                users::last_login_at,
                users::id,
            ))
            .get_result::<(String, i64, Option<i64>, String)>(conn)
            .optional()?,
        None => None,
    };
    // A boundary that is gone (deleted since, or a hand-made link) starts from the top.
    let page = match boundary {
        Some(_) => page.clone(),
        None => Page::first(page.size),
    };
    let descending = filter.descending != page.backwards();
    let limit = page.size + 1;
    let select = UserRecord::as_select();
    let rows: Vec<UserRecord> = match filter.sort {
        UserSort::Email => keyset!(
            query(),
            users::email_normalized,
            users::id,
            boundary.map(|(email, _, _, id)| (email, id)),
            descending
        )
        .limit(limit)
        .select(select)
        .load(conn)?,
        UserSort::Created => keyset!(
            query(),
            users::created_at,
            users::id,
            boundary.map(|(_, created, _, id)| (created, id)),
            descending
        )
        .limit(limit)
        .select(select)
        .load(conn)?,
        UserSort::LastSignIn => {
            // Accounts that signed in, by when; then those that never did, newest first (or
            // oldest, ascending). Each part is read from an index of its own.
            let signed_in = |bound: Option<(i64, String)>| {
                keyset!(
                    query().filter(users::last_login_at.is_not_null()),
                    users::last_login_at,
                    users::id,
                    bound,
                    descending
                )
            };
            let never = |bound: Option<(i64, String)>| {
                keyset!(
                    query().filter(users::last_login_at.is_null()),
                    users::created_at,
                    users::id,
                    bound,
                    descending
                )
            };
            let mut parts = [true, false];
            if page.backwards() {
                parts.reverse();
            }
            let start = boundary.as_ref().map(|(_, _, at, _)| at.is_some());
            let mut rows = Vec::new();
            for signed in parts
                .into_iter()
                .skip_while(|part| start.is_some_and(|s| s != *part))
            {
                // Only the part the boundary is in starts beside it.
                let bound = boundary
                    .as_ref()
                    .filter(|_| rows.is_empty() && start == Some(signed));
                let wanted = limit - rows.len() as i64;
                let mut part = match (signed, bound) {
                    (true, Some((_, _, at, id))) => signed_in(at.map(|at| (at, id.clone()))),
                    (true, None) => signed_in(None),
                    (false, bound) => {
                        never(bound.map(|(_, created, _, id)| (*created, id.clone())))
                    }
                }
                .limit(wanted)
                .select(select)
                .load(conn)?;
                rows.append(&mut part);
                if rows.len() as i64 >= limit {
                    break;
                }
            }
            rows
        }
    };
    // Back to the start of the list: a full first page rather than a short one.
    if page.backwards() && rows.len() as i64 <= page.size {
        return list(conn, filter, &Page::first(page.size));
    }
    let users = rows
        .into_iter()
        .map(User::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Listing::from_rows(users, &page, total, |user| {
        user.id.to_string()
    }))
}

/// Notes that the user signed in just now (a login started a session).
pub fn record_login(conn: &mut Conn, id: UserId, at: i64) -> Result<(), DbError> {
    diesel::update(users::table.find(id.to_string()))
        .set(users::last_login_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Writes `changes` to a user's row as they are; returns the user after. The rules a change
/// obeys (and what it ends) are the service's: see `services::account`.
pub fn set(conn: &mut Conn, id: UserId, changes: UserChanges) -> Result<User, DbError> {
    let changeset = UserChangeset {
        email_normalized: changes.email.as_ref().map(Email::normalized),
        email_skeleton: changes.email.as_ref().map(Email::skeleton),
        email: changes.email.map(|email| email.as_str().to_owned()),
        hashed_password: changes.password_hash,
        is_active: changes.is_active,
        is_superuser: changes.is_superuser,
        is_verified: changes.is_verified,
        updated_at: now(),
    };
    diesel::update(users::table.find(id.to_string()))
        .set(&changeset)
        .returning(USER_COLUMNS)
        .get_result::<UserRecord>(conn)
        .map_err(email_taken_or)?
        .try_into()
}

/// Deletes a user; their sessions and tokens go with them.
pub fn delete(conn: &mut Conn, id: UserId) -> Result<(), DbError> {
    let deleted = diesel::delete(users::table.find(id.to_string())).execute(conn)?;
    if deleted == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// How many active superusers there are besides `id`.
pub fn count_other_active_superusers(conn: &mut Conn, id: UserId) -> Result<i64, DbError> {
    Ok(users::table
        .filter(users::is_superuser.eq(true))
        .filter(users::is_active.eq(true))
        .filter(users::id.ne(id.to_string()))
        .count()
        .get_result(conn)?)
}

/// Replaces a password hash with a re-hash of the same password (new parameters), unless the
/// password changed in the meantime.
pub fn upgrade_password_hash(
    conn: &mut Conn,
    id: UserId,
    old_hash: &str,
    new_hash: &str,
) -> Result<(), DbError> {
    diesel::update(
        users::table
            .find(id.to_string())
            .filter(users::hashed_password.eq(old_hash)),
    )
    .set(users::hashed_password.eq(new_hash))
    .execute(conn)?;
    Ok(())
}

/// Gives every account stored without a confusable skeleton (created before skeletons, or by
/// an older instance during an upgrade) its skeleton and its address key in today's form.
/// Runs with the migrations, oldest accounts first. An account whose new key or skeleton
/// another account already holds (a look-alike that slipped in before) keeps its old key and
/// gets a placeholder skeleton of its own, so nothing is lost and it can still be found by id,
/// and is logged for a superuser to resolve. Returns how many rows were updated.
pub fn backfill_email_keys(conn: &mut Conn) -> Result<usize, DbError> {
    let pending: Vec<(String, String, String)> = users::table
        .filter(users::email_skeleton.is_null())
        .order((users::created_at, users::id))
        .select((users::id, users::email, users::email_normalized))
        .load(conn)?;
    for (id, email, old_key) in &pending {
        let key = crate::domain::normalize_email(email);
        let skeleton = crate::domain::email_skeleton(email);
        let holder = |column_matches: bool, conn: &mut Conn| -> Result<Option<String>, DbError> {
            let query = users::table.filter(users::id.ne(id)).select(users::email);
            Ok(if column_matches {
                query
                    .filter(users::email_normalized.eq(&key))
                    .get_result(conn)
                    .optional()?
            } else {
                query
                    .filter(users::email_skeleton.eq(&skeleton))
                    .get_result(conn)
                    .optional()?
            })
        };
        let clash = match holder(true, conn)? {
            Some(other) => Some(other),
            None => holder(false, conn)?,
        };
        let (key, skeleton) = match clash {
            None => (key, skeleton),
            Some(other) => {
                log::warn!(
                    "the address of user {id} ({email}) looks like that of an older account                      ({other}); it keeps its old key and cannot be signed in to by a                      look-alike spelling: a superuser should change or delete one of them"
                );
                (old_key.clone(), format!("unresolved look-alike of {id}"))
            }
        };
        diesel::update(users::table.find(id))
            .set((
                users::email_normalized.eq(key),
                users::email_skeleton.eq(skeleton),
            ))
            .execute(conn)?;
    }
    Ok(pending.len())
}

/// Makes `%`, `_` and the escape character itself match literally in a `LIKE` pattern.
pub(crate) fn escape_like(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn email_taken_or(error: diesel::result::Error) -> DbError {
    if is_unique_violation(&error) {
        DbError::EmailTaken
    } else {
        DbError::Query(error)
    }
}
