//! Queries on `throttle_counters`: fixed-window counters shared by every instance.

use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};

use super::schema::throttle_counters::dsl::{
    blocked_until, counter_key, hits, throttle_counters, window_started_at,
};
use super::{Conn, DbError};

/// A counter after a hit: how many hits its window holds, and when the window started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct Count {
    pub hits: i32,
    pub window_started_at: i64,
}

/// Counts one hit in one statement: a window that has ended starts again at `now` with this
/// hit, so concurrent requests on any instance never lose a count.
pub fn hit(conn: &mut Conn, key: &str, now: i64, window_secs: i64) -> Result<Count, DbError> {
    let ended = || window_started_at.le(now - window_secs);
    Ok(
        per_backend!(conn, c => diesel::insert_into(throttle_counters)
        .values((counter_key.eq(key), hits.eq(1), window_started_at.eq(now)))
        .on_conflict(counter_key)
        .do_update()
        .set((
            hits.eq(case_when::<_, _, Integer>(ended(), 1).otherwise(hits + 1)),
            window_started_at
                .eq(case_when::<_, _, BigInt>(ended(), now).otherwise(window_started_at)),
        ))
        .returning((hits, window_started_at))
        .get_result(c))?,
    )
}

/// A counter as stored: its hits in the window that started at `window_started_at`, and until
/// when it refuses further attempts (0: it does not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable)]
pub struct Stored {
    pub hits: i32,
    pub window_started_at: i64,
    pub blocked_until: i64,
}

/// Reads counters, for a decision taken inside the caller's write transaction; a counter
/// that does not exist reads as zero hits in a window long over.
pub fn read(conn: &mut Conn, key: &str) -> Result<Stored, DbError> {
    Ok(throttle_counters
        .find(key)
        .select((hits, window_started_at, blocked_until))
        .get_result(conn)
        .optional()?
        .unwrap_or_default())
}

/// Writes a counter, inside the caller's write transaction.
pub fn store(conn: &mut Conn, key: &str, counter: Stored) -> Result<(), DbError> {
    per_backend!(conn, c => diesel::insert_into(throttle_counters)
        .values((
            counter_key.eq(key),
            hits.eq(counter.hits),
            window_started_at.eq(counter.window_started_at),
            blocked_until.eq(counter.blocked_until),
        ))
        .on_conflict(counter_key)
        .do_update()
        .set((
            hits.eq(counter.hits),
            window_started_at.eq(counter.window_started_at),
            blocked_until.eq(counter.blocked_until),
        ))
        .execute(c))?;
    Ok(())
}

/// Forgets a counter (a successful login clears its failures).
pub fn clear(conn: &mut Conn, key: &str) -> Result<(), DbError> {
    diesel::delete(throttle_counters.find(key)).execute(conn)?;
    Ok(())
}

/// Forgets the counter `key` and every counter whose key extends it past `separator`
/// (`login:a@example.com` and `login:a@example.com|…`).
pub fn clear_family(conn: &mut Conn, key: &str, separator: char) -> Result<usize, DbError> {
    let mut pattern = String::with_capacity(key.len() + 2);
    for c in key.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push(separator);
    pattern.push('%');
    Ok(diesel::delete(
        throttle_counters.filter(
            counter_key
                .eq(key)
                .or(counter_key.like(pattern).escape('\\')),
        ),
    )
    .execute(conn)?)
}

/// Deletes counters whose window started before `cutoff`; returns how many.
pub fn purge(conn: &mut Conn, cutoff: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(throttle_counters.filter(window_started_at.lt(cutoff))).execute(conn)?)
}
