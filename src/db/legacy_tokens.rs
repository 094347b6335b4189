//! Queries on `legacy_token_cutoffs`: for each user, the instant before which the old
//! fastapi-users backend's access tokens no longer count (see `auth::legacy_tokens`).

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::legacy_token_cutoffs;
use super::{Conn, DbError};
use crate::domain::UserId;

/// Ends every old-backend token of a user issued up to `at` (seconds since the Unix epoch).
pub fn cut_off(conn: &mut Conn, user_id: UserId, at: i64) -> Result<(), DbError> {
    per_backend!(conn, c => diesel::insert_into(legacy_token_cutoffs::table)
        .values((
            legacy_token_cutoffs::user_id.eq(user_id.to_string()),
            legacy_token_cutoffs::cutoff_at.eq(at),
        ))
        .on_conflict(legacy_token_cutoffs::user_id)
        .do_update()
        .set(legacy_token_cutoffs::cutoff_at.eq(excluded(legacy_token_cutoffs::cutoff_at)))
        .execute(c))?;
    Ok(())
}

/// The user's cutoff, if their old-backend tokens were ever ended.
pub fn cutoff(conn: &mut Conn, user_id: UserId) -> Result<Option<i64>, DbError> {
    Ok(legacy_token_cutoffs::table
        .find(user_id.to_string())
        .select(legacy_token_cutoffs::cutoff_at)
        .get_result(conn)
        .optional()?)
}
