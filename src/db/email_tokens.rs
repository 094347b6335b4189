//! Queries on `email_tokens`: single-use tokens sent by email to reset a password, verify an
//! address, confirm a new one, or accept an invitation. A token is good while it is unused, unexpired, and its user's address is still
//! the one it was sent to.

use diesel::prelude::*;

use super::models::UserRecord;
use super::schema::{email_tokens, users};
use super::{now, Conn, DbError};
use crate::domain::{User, UserId};

/// What a token may be redeemed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Reset,
    Verify,
    /// Sent to a new address: opening it moves the account there.
    ChangeEmail,
    /// Sent to an account a superuser made: opening it sets the first password.
    Invite,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Reset => "reset",
            Purpose::Verify => "verify",
            Purpose::ChangeEmail => "change_email",
            Purpose::Invite => "invite",
        }
    }
}

/// A token to store, already hashed.
pub struct NewEmailToken<'a> {
    pub token_hash: &'a str,
    pub user: &'a User,
    pub purpose: Purpose,
    pub ttl_secs: i64,
    /// The address a [`Purpose::ChangeEmail`] token moves the account to.
    pub new_email: Option<&'a str>,
}

pub fn insert(conn: &mut Conn, new: NewEmailToken<'_>) -> Result<(), DbError> {
    let now = now();
    diesel::insert_into(email_tokens::table)
        .values((
            email_tokens::token_hash.eq(new.token_hash),
            email_tokens::user_id.eq(new.user.id.to_string()),
            email_tokens::purpose.eq(new.purpose.as_str()),
            email_tokens::email_normalized.eq(crate::domain::normalize_email(&new.user.email)),
            email_tokens::created_at.eq(now),
            email_tokens::expires_at.eq(now + new.ttl_secs),
            email_tokens::new_email.eq(new.new_email),
        ))
        .execute(conn)?;
    Ok(())
}

/// The active user a good token of this purpose belongs to, if it is good.
pub fn find_good(
    conn: &mut Conn,
    token_hash: &str,
    purpose: Purpose,
) -> Result<Option<User>, DbError> {
    Ok(find(conn, token_hash, purpose)?.and_then(|(user, used)| (!used).then_some(user)))
}

/// The active user an unexpired token of this purpose belongs to, provided the account still
/// has the address it was sent to, and whether the token has been used.
pub fn find(
    conn: &mut Conn,
    token_hash: &str,
    purpose: Purpose,
) -> Result<Option<(User, bool)>, DbError> {
    let found: Option<(UserRecord, Option<i64>)> = email_tokens::table
        .inner_join(users::table)
        .filter(email_tokens::token_hash.eq(token_hash))
        .filter(email_tokens::purpose.eq(purpose.as_str()))
        .filter(email_tokens::expires_at.gt(now()))
        .filter(email_tokens::email_normalized.eq(users::email_normalized))
        .filter(users::is_active.eq(true))
        .select((UserRecord::as_select(), email_tokens::used_at))
        .get_result(conn)
        .optional()?;
    found
        .map(|(record, used_at)| Ok((User::try_from(record)?, used_at.is_some())))
        .transpose()
}

/// The user of a good [`Purpose::ChangeEmail`] token and the address it moves them to.
pub fn find_email_change(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<(User, String)>, DbError> {
    let Some(user) = find_good(conn, token_hash, Purpose::ChangeEmail)? else {
        return Ok(None);
    };
    let new_email: Option<String> = email_tokens::table
        .find(token_hash)
        .select(email_tokens::new_email)
        .get_result(conn)?;
    Ok(new_email.map(|address| (user, address)))
}

/// Uses up a good token; returns its user.
pub fn take(conn: &mut Conn, token_hash: &str, purpose: Purpose) -> Result<Option<User>, DbError> {
    let Some(user) = find_good(conn, token_hash, purpose)? else {
        return Ok(None);
    };
    diesel::update(email_tokens::table.find(token_hash))
        .set(email_tokens::used_at.eq(now()))
        .execute(conn)?;
    Ok(Some(user))
}

/// Uses up every outstanding token of the user, whatever its purpose.
pub fn use_up_all_of_user(conn: &mut Conn, user_id: UserId) -> Result<(), DbError> {
    diesel::update(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user_id.to_string()))
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(now()))
    .execute(conn)?;
    Ok(())
}

/// Uses up every outstanding token of the user for this purpose.
pub fn use_up_all(conn: &mut Conn, user_id: UserId, purpose: Purpose) -> Result<(), DbError> {
    diesel::update(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user_id.to_string()))
            .filter(email_tokens::purpose.eq(purpose.as_str()))
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(now()))
    .execute(conn)?;
    Ok(())
}

/// Deletes tokens that expired before `cutoff`; returns how many.
pub fn purge(conn: &mut Conn, cutoff: i64) -> Result<usize, DbError> {
    Ok(
        diesel::delete(email_tokens::table.filter(email_tokens::expires_at.lt(cutoff)))
            .execute(conn)?,
    )
}
