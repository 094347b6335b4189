//! Queries on `throttle_counters`: fixed-window counters shared by every instance.

use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};

use super::schema::throttle_counters::dsl::{
    counter_key, hits, throttle_counters, window_started_at,
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

/// Forgets a counter (a successful login clears its failures).
pub fn clear(conn: &mut Conn, key: &str) -> Result<(), DbError> {
    diesel::delete(throttle_counters.find(key)).execute(conn)?;
    Ok(())
}

/// Deletes counters whose window started before `cutoff`; returns how many.
pub fn purge(conn: &mut Conn, cutoff: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(throttle_counters.filter(window_started_at.lt(cutoff))).execute(conn)?)
}
