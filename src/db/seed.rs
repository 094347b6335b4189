//! A large data set for measuring, made by the database itself (`gatehouse seed`), so that a
//! million rows take seconds rather than an hour of round trips.
//!
//! Account `n` (from 1) is `user{n}@example{n % 50}.com`. Accounts were created a minute
//! apart up to now, a third are unverified and seven in ten have signed in. Events are spread
//! over the same span, oldest first, each about one account: 60 % logins, 20 % logouts,
//! 15 % failed logins and 5 % password changes.

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;

use super::{Conn, DbError};

/// Rows written per statement: large enough to be quick, small enough to show progress.
pub const CHUNK: i64 = 100_000;

/// How many accounts the database holds.
pub fn count_users(conn: &mut Conn) -> Result<i64, DbError> {
    Ok(diesel::select(sql::<BigInt>("(SELECT COUNT(*) FROM users)")).get_result(conn)?)
}

/// The size of a data set, and the moment its newest row is at.
#[derive(Debug, Clone, Copy)]
pub struct DataSet {
    pub users: i64,
    pub events: i64,
    pub now: i64,
}

/// Adds accounts `from..to` of `set`, each with `password_hash`.
pub fn users(
    conn: &mut Conn,
    set: DataSet,
    from: i64,
    to: i64,
    password_hash: &str,
) -> Result<(), DbError> {
    // Written into the statement: a PHC string holds nothing that needs quoting.
    if !password_hash
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "$=,+/.-".contains(c))
    {
        return Err(DbError::Query(diesel::result::Error::QueryBuilderError(
            "not a PHC password hash".into(),
        )));
    }
    let DataSet { users, now, .. } = set;
    let statement = format!(
        "INSERT INTO users (id, email, email_normalized, email_skeleton, hashed_password,
                            is_active, is_superuser, is_verified, created_at, updated_at,
                            last_login_at)
         SELECT {id}, address, address, address, '{password_hash}',
                TRUE, FALSE, n % 3 <> 0, created, created,
                CASE WHEN n % 10 < 7 THEN created + (n * 7919) % ({now} - created + 1) END
         FROM (SELECT n, {address} AS address, {now} - ({users} - n) * 60 AS created
               FROM {numbers}) AS numbered",
        id = uuid_of(conn, "n"),
        address = address_of("n"),
        numbers = numbers(conn, from, to),
    );
    conn.batch_execute(&statement)?;
    Ok(())
}

/// Adds audit events `from..to` of `set`.
pub fn events(conn: &mut Conn, set: DataSet, from: i64, to: i64) -> Result<(), DbError> {
    let DataSet { users, events, now } = set;
    let span = users.max(1) * 60;
    let statement = format!(
        "INSERT INTO audit_events (id, occurred_at, event, actor_id, actor_label, subject_id,
                                   subject_label, ip, user_agent, detail, search_text)
         SELECT {id}, {now} - {span} + ({span} * n) / {events},
                CASE WHEN n % 20 < 12 THEN 'login_succeeded'
                     WHEN n % 20 < 16 THEN 'logout'
                     WHEN n % 20 < 19 THEN 'login_failed'
                     ELSE 'password_changed' END,
                {user_id}, address, {user_id}, address,
                '10.' || (n % 200) || '.' || (n % 250) || '.' || (n % 7 + 1),
                'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
                NULL, address
         FROM (SELECT n, u, {address} AS address
               FROM (SELECT n, (n * 7919) % {users} + 1 AS u FROM {numbers}) AS drawn) AS named",
        id = uuid_of(conn, "n"),
        user_id = uuid_of(conn, "u"),
        address = address_of("u"),
        numbers = numbers(conn, from, to),
    );
    conn.batch_execute(&statement)?;
    Ok(())
}

fn address_of(column: &str) -> String {
    format!("'user' || {column} || '@example' || ({column} % 50) || '.com'")
}

/// The rows `n` = `from..to`, as a table.
fn numbers(conn: &Conn, from: i64, to: i64) -> String {
    match conn {
        Conn::Sqlite(_) => format!(
            "(WITH RECURSIVE numbers(n) AS (SELECT {from} UNION ALL \
              SELECT n + 1 FROM numbers WHERE n + 1 < {to}) SELECT n FROM numbers)"
        ),
        Conn::Postgresql(_) => {
            format!("generate_series(CAST({from} AS BIGINT), {to} - 1) AS series(n)")
        }
    }
}

/// A UUID-shaped id made of the number in `column`: account `n` and event `n` have the same
/// one, in different tables.
fn uuid_of(conn: &Conn, column: &str) -> String {
    match conn {
        Conn::Sqlite(_) => format!("printf('%08x-0000-4000-8000-%012x', {column}, {column})"),
        Conn::Postgresql(_) => format!(
            "lpad(to_hex({column}), 8, '0') || '-0000-4000-8000-' || lpad(to_hex({column}), 12, '0')"
        ),
    }
}
