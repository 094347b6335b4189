//! Queries on the second factors: `totp_factors`, `recovery_codes`, and the second steps of
//! logins (`mfa_challenges`). Every check that spends something (a code's step, a recovery
//! code, a step token) is one conditional `UPDATE`, so two racing requests cannot both spend it.

use diesel::prelude::*;

use super::schema::{mfa_challenges, passkeys, recovery_codes, totp_factors};
use super::{now, Conn, DbError};
use crate::domain::UserId;

/// A user's authenticator app, as stored.
#[derive(Debug, Clone, Queryable)]
pub struct StoredTotp {
    pub sealed_secret: String,
    pub confirmed: bool,
    pub last_used_step: i64,
}

/// What factors a user has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorCounts {
    /// A confirmed authenticator app.
    pub totp: bool,
    pub passkeys: i64,
    pub recovery_codes_left: i64,
}

impl FactorCounts {
    /// Whether a login must be completed with a second factor.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

pub fn totp(conn: &mut Conn, user_id: UserId) -> Result<Option<StoredTotp>, DbError> {
    let found: Option<(String, Option<i64>, i64)> = totp_factors::table
        .find(user_id.to_string())
        .select((
            totp_factors::sealed_secret,
            totp_factors::confirmed_at,
            totp_factors::last_used_step,
        ))
        .get_result(conn)
        .optional()?;
    Ok(
        found.map(|(sealed_secret, confirmed_at, last_used_step)| StoredTotp {
            sealed_secret,
            confirmed: confirmed_at.is_some(),
            last_used_step,
        }),
    )
}

/// Stores a pending (unconfirmed) authenticator app, replacing a pending one.
pub fn put_pending_totp(conn: &mut Conn, user_id: UserId, sealed: &str) -> Result<(), DbError> {
    diesel::delete(
        totp_factors::table
            .find(user_id.to_string())
            .filter(totp_factors::confirmed_at.is_null()),
    )
    .execute(conn)?;
    diesel::insert_into(totp_factors::table)
        .values((
            totp_factors::user_id.eq(user_id.to_string()),
            totp_factors::sealed_secret.eq(sealed),
            totp_factors::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Spends the code of `step`: succeeds once per step, and never for a step at or before the
/// last one spent. `confirm` also turns a pending app on.
pub fn spend_totp_step(
    conn: &mut Conn,
    user_id: UserId,
    step: i64,
    confirm: bool,
) -> Result<bool, DbError> {
    let target = totp_factors::table
        .find(user_id.to_string())
        .filter(totp_factors::last_used_step.lt(step));
    let updated = if confirm {
        diesel::update(target.filter(totp_factors::confirmed_at.is_null()))
            .set((
                totp_factors::last_used_step.eq(step),
                totp_factors::confirmed_at.eq(now()),
            ))
            .execute(conn)?
    } else {
        diesel::update(target.filter(totp_factors::confirmed_at.is_not_null()))
            .set(totp_factors::last_used_step.eq(step))
            .execute(conn)?
    };
    Ok(updated == 1)
}

/// Removes the authenticator app, pending or not; whether there was one.
pub fn delete_totp(conn: &mut Conn, user_id: UserId) -> Result<bool, DbError> {
    Ok(diesel::delete(totp_factors::table.find(user_id.to_string())).execute(conn)? > 0)
}

/// Replaces a user's recovery codes with a new set (given as their hashes).
pub fn replace_recovery_codes(
    conn: &mut Conn,
    user_id: UserId,
    hashes: &[String],
) -> Result<(), DbError> {
    delete_recovery_codes(conn, user_id)?;
    let now = now();
    for hash in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::code_hash.eq(hash),
                recovery_codes::user_id.eq(user_id.to_string()),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_recovery_codes(conn: &mut Conn, user_id: UserId) -> Result<usize, DbError> {
    Ok(diesel::delete(
        recovery_codes::table.filter(recovery_codes::user_id.eq(user_id.to_string())),
    )
    .execute(conn)?)
}

/// Spends a recovery code: succeeds once, for an unused code of this user's current set.
pub fn spend_recovery_code(conn: &mut Conn, user_id: UserId, hash: &str) -> Result<bool, DbError> {
    let updated = diesel::update(
        recovery_codes::table
            .find(hash)
            .filter(recovery_codes::user_id.eq(user_id.to_string()))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now()))
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn counts(conn: &mut Conn, user_id: UserId) -> Result<FactorCounts, DbError> {
    let id = user_id.to_string();
    let totp = totp_factors::table
        .find(&id)
        .filter(totp_factors::confirmed_at.is_not_null())
        .count()
        .get_result::<i64>(conn)?
        > 0;
    let passkeys = passkeys::table
        .filter(passkeys::user_id.eq(&id))
        .count()
        .get_result(conn)?;
    let recovery_codes_left = recovery_codes::table
        .filter(recovery_codes::user_id.eq(&id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(FactorCounts {
        totp,
        passkeys,
        recovery_codes_left,
    })
}

/// Removes every factor of a user (an administrator's reset); how many were removed.
pub fn delete_all(conn: &mut Conn, user_id: UserId) -> Result<usize, DbError> {
    let id = user_id.to_string();
    let totp = usize::from(delete_totp(conn, user_id)?);
    let keys = diesel::delete(passkeys::table.filter(passkeys::user_id.eq(&id))).execute(conn)?;
    delete_recovery_codes(conn, user_id)?;
    Ok(totp + keys)
}

pub fn create_challenge(
    conn: &mut Conn,
    token_hash: &str,
    user_id: UserId,
    ttl_secs: i64,
) -> Result<(), DbError> {
    let now = now();
    diesel::insert_into(mfa_challenges::table)
        .values((
            mfa_challenges::token_hash.eq(token_hash),
            mfa_challenges::user_id.eq(user_id.to_string()),
            mfa_challenges::created_at.eq(now),
            mfa_challenges::expires_at.eq(now + ttl_secs),
        ))
        .execute(conn)?;
    Ok(())
}

/// The user of a second step that may still be completed: unused, unexpired, and not worn
/// out by wrong codes.
pub fn live_challenge(
    conn: &mut Conn,
    token_hash: &str,
    max_failures: i32,
) -> Result<Option<UserId>, DbError> {
    let found: Option<String> = mfa_challenges::table
        .find(token_hash)
        .filter(mfa_challenges::used_at.is_null())
        .filter(mfa_challenges::expires_at.gt(now()))
        .filter(mfa_challenges::failures.lt(max_failures))
        .select(mfa_challenges::user_id)
        .get_result(conn)
        .optional()?;
    found
        .map(|id| {
            id.parse()
                .map_err(|_| DbError::Corrupt(format!("user id {id}")))
        })
        .transpose()
}

/// Marks a second step used; false if it was used already.
pub fn spend_challenge(conn: &mut Conn, token_hash: &str) -> Result<bool, DbError> {
    let updated = diesel::update(
        mfa_challenges::table
            .find(token_hash)
            .filter(mfa_challenges::used_at.is_null()),
    )
    .set(mfa_challenges::used_at.eq(now()))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Counts a wrong code against a second step.
pub fn fail_challenge(conn: &mut Conn, token_hash: &str) -> Result<(), DbError> {
    diesel::update(mfa_challenges::table.find(token_hash))
        .set(mfa_challenges::failures.eq(mfa_challenges::failures + 1))
        .execute(conn)?;
    Ok(())
}

/// Wrong codes sent for a user's second steps begun since `since`: the user's budget of
/// guesses, whatever the number of passwords logins it took.
pub fn recent_failures(conn: &mut Conn, user_id: UserId, since: i64) -> Result<i64, DbError> {
    let sum: Option<i64> = mfa_challenges::table
        .filter(mfa_challenges::user_id.eq(user_id.to_string()))
        .filter(mfa_challenges::created_at.ge(since))
        .select(diesel::dsl::sum(mfa_challenges::failures))
        .get_result(conn)?;
    Ok(sum.unwrap_or(0))
}

/// Forgets second steps that ended before `before`.
pub fn purge_challenges(conn: &mut Conn, before: i64) -> Result<usize, DbError> {
    Ok(
        diesel::delete(mfa_challenges::table.filter(mfa_challenges::expires_at.lt(before)))
            .execute(conn)?,
    )
}
