//! Queries on `email_outbox`: email waiting to be sent, and what became of it.
//!
//! A message is inserted in the transaction that stores what it carries (an emailed token),
//! so both commit or neither does. Workers on any instance [`claim`] due messages before
//! sending them, so that no message goes out twice; a claim lapses after a while, so the
//! messages of a worker that crashed come back. Sent messages are purged after a while;
//! failed ones stay for inspection.

use diesel::dsl::{count_star, min};
use diesel::prelude::*;

use super::schema::email_outbox;
use super::{now, write_transaction, Conn, DbError};

const PENDING: &str = "pending";
const SENT: &str = "sent";
const FAILED: &str = "failed";

/// A message to queue.
pub struct NewMessage<'a> {
    /// The address it goes to (the envelope's recipient).
    pub recipient: &'a str,
    pub subject: &'a str,
    /// The whole message as it goes on the wire.
    pub message: &'a str,
}

/// A message a worker has claimed, to deliver now.
#[derive(Debug, Clone, Queryable)]
pub struct ClaimedMessage {
    pub id: String,
    pub recipient: String,
    /// `None` only if the row was tampered with: pending rows always have their message.
    pub message: Option<String>,
    /// Attempts so far, counting this one.
    pub attempts: i32,
}

/// The state of the outbox, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStats {
    /// Messages waiting to be sent (including those being sent).
    pub pending: i64,
    /// Messages given up on.
    pub failed: i64,
    /// When the oldest waiting message was queued.
    pub oldest_pending_created_at: Option<i64>,
}

/// Queues a message, due at once.
pub fn insert(conn: &mut Conn, new: NewMessage<'_>) -> Result<(), DbError> {
    let now = now();
    diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::id.eq(uuid::Uuid::now_v7().to_string()),
            email_outbox::recipient.eq(new.recipient),
            email_outbox::subject.eq(new.subject),
            email_outbox::message.eq(new.message),
            email_outbox::status.eq(PENDING),
            email_outbox::attempts.eq(0),
            email_outbox::next_attempt_at.eq(now),
            email_outbox::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Claims up to `limit` due messages for `claimer` during `claim_secs`, counting an attempt
/// for each, oldest due first; returns them.
///
/// Several workers may claim at once and never get the same message: on PostgreSQL the due
/// rows are locked (`FOR UPDATE SKIP LOCKED`, so a worker passes over rows another is
/// claiming) and marked in one transaction; on SQLite the transaction holds the write lock.
pub fn claim(
    conn: &mut Conn,
    claimer: &str,
    limit: i64,
    claim_secs: i64,
) -> Result<Vec<ClaimedMessage>, DbError> {
    let claim = |conn: &mut Conn| claim_due(conn, claimer, limit, claim_secs);
    match conn {
        Conn::Postgresql(_) => conn.transaction(claim),
        Conn::Sqlite(_) => write_transaction(conn, claim),
    }
}

fn claim_due(
    conn: &mut Conn,
    claimer: &str,
    limit: i64,
    claim_secs: i64,
) -> Result<Vec<ClaimedMessage>, DbError> {
    let now = now();
    let due = email_outbox::table
        .filter(email_outbox::status.eq(PENDING))
        .filter(email_outbox::next_attempt_at.le(now))
        .filter(
            email_outbox::claimed_until
                .is_null()
                .or(email_outbox::claimed_until.le(now)),
        )
        .order((email_outbox::next_attempt_at.asc(), email_outbox::id.asc()))
        .limit(limit)
        .select(email_outbox::id);
    let ids: Vec<String> = match conn {
        Conn::Postgresql(pg) => due.for_update().skip_locked().load(pg)?,
        Conn::Sqlite(sqlite) => due.load(sqlite)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(&ids)))
        .set((
            email_outbox::claimed_by.eq(claimer),
            email_outbox::claimed_until.eq(now + claim_secs),
            email_outbox::attempts.eq(email_outbox::attempts + 1),
        ))
        .execute(conn)?;
    Ok(email_outbox::table
        .filter(email_outbox::id.eq_any(&ids))
        .order((email_outbox::next_attempt_at.asc(), email_outbox::id.asc()))
        .select((
            email_outbox::id,
            email_outbox::recipient,
            email_outbox::message,
            email_outbox::attempts,
        ))
        .load(conn)?)
}

/// The row `id` while `claimer` still holds it: a worker whose claim lapsed (and was taken
/// over) must not overwrite the new claimer's outcome.
macro_rules! claimed {
    ($id:expr, $claimer:expr) => {
        email_outbox::table
            .filter(email_outbox::id.eq($id))
            .filter(email_outbox::claimed_by.eq($claimer))
            .filter(email_outbox::status.eq(PENDING))
    };
}

/// Marks a claimed message sent, and erases it: it carried a live link.
pub fn mark_sent(conn: &mut Conn, id: &str, claimer: &str) -> Result<bool, DbError> {
    let updated = diesel::update(claimed!(id, claimer))
        .set((
            email_outbox::status.eq(SENT),
            email_outbox::sent_at.eq(now()),
            email_outbox::message.eq(None::<String>),
            email_outbox::last_error.eq(None::<String>),
            email_outbox::claimed_by.eq(None::<String>),
            email_outbox::claimed_until.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Releases a claimed message whose delivery failed, to be tried again at `next_attempt_at`.
pub fn retry_later(
    conn: &mut Conn,
    id: &str,
    claimer: &str,
    next_attempt_at: i64,
    error: &str,
) -> Result<bool, DbError> {
    let updated = diesel::update(claimed!(id, claimer))
        .set((
            email_outbox::next_attempt_at.eq(next_attempt_at),
            email_outbox::last_error.eq(error),
            email_outbox::claimed_by.eq(None::<String>),
            email_outbox::claimed_until.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Gives up on a claimed message: it stays, marked failed with its last error, for
/// inspection; its body (a live link) is erased.
pub fn mark_failed(conn: &mut Conn, id: &str, claimer: &str, error: &str) -> Result<bool, DbError> {
    let updated = diesel::update(claimed!(id, claimer))
        .set((
            email_outbox::status.eq(FAILED),
            email_outbox::failed_at.eq(now()),
            email_outbox::message.eq(None::<String>),
            email_outbox::last_error.eq(error),
            email_outbox::claimed_by.eq(None::<String>),
            email_outbox::claimed_until.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// When a waiting message is next due (now or earlier when one is due already): its next
/// attempt, or the end of the claim another worker holds on it.
pub fn next_due(conn: &mut Conn) -> Result<Option<i64>, DbError> {
    let now = now();
    let unclaimed: Option<i64> = email_outbox::table
        .filter(email_outbox::status.eq(PENDING))
        .filter(
            email_outbox::claimed_until
                .is_null()
                .or(email_outbox::claimed_until.le(now)),
        )
        .select(min(email_outbox::next_attempt_at))
        .get_result(conn)?;
    let claim_ends: Option<i64> = email_outbox::table
        .filter(email_outbox::status.eq(PENDING))
        .filter(email_outbox::claimed_until.gt(now))
        .select(min(email_outbox::claimed_until))
        .get_result(conn)?;
    Ok(match (unclaimed, claim_ends) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// How many messages wait to be sent.
pub fn count_pending(conn: &mut Conn) -> Result<i64, DbError> {
    Ok(email_outbox::table
        .filter(email_outbox::status.eq(PENDING))
        .select(count_star())
        .get_result(conn)?)
}

pub fn stats(conn: &mut Conn) -> Result<OutboxStats, DbError> {
    let (pending, oldest_pending_created_at): (i64, Option<i64>) = email_outbox::table
        .filter(email_outbox::status.eq(PENDING))
        .select((count_star(), min(email_outbox::created_at)))
        .get_result(conn)?;
    let failed = email_outbox::table
        .filter(email_outbox::status.eq(FAILED))
        .select(count_star())
        .get_result(conn)?;
    Ok(OutboxStats {
        pending,
        failed,
        oldest_pending_created_at,
    })
}

/// Deletes messages sent before `cutoff`; returns how many. Failed messages are kept.
pub fn purge_sent(conn: &mut Conn, cutoff: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(
        email_outbox::table
            .filter(email_outbox::status.eq(SENT))
            .filter(email_outbox::sent_at.lt(cutoff)),
    )
    .execute(conn)?)
}
