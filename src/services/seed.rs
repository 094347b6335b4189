//! `gatehouse seed`: fills a new database with many accounts and audit events, to measure
//! Gatehouse at the size of a large service (see `db::seed` for what the rows look like).

use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::{account, ServiceError};
use crate::db::seed::{self, DataSet, CHUNK};
use crate::db::{self, now};
use crate::state::AppState;

/// How long each part took.
#[derive(Debug)]
pub struct Timings {
    pub users: Duration,
    pub events: Duration,
}

/// How many accounts the database holds: seed fills only a database without any.
pub async fn existing_users(state: &AppState) -> Result<i64, ServiceError> {
    Ok(db::run(&state.pool, seed::count_users).await?)
}

/// Adds `users` accounts, all with `password`, and `events` audit events about them;
/// `progress` hears of each chunk written.
pub async fn fill(
    state: &AppState,
    users: i64,
    events: i64,
    password: SecretString,
    progress: impl Fn(&str, i64, i64),
) -> Result<Timings, ServiceError> {
    let hash = account::hash_new_password(state, &password, "user1@example1.com").await?;
    let set = DataSet {
        users,
        events,
        now: now(),
    };
    let started = Instant::now();
    for from in (1..=users).step_by(CHUNK as usize) {
        let to = (from + CHUNK).min(users + 1);
        let hash = hash.clone();
        db::write(&state.pool, move |conn| {
            seed::users(conn, set, from, to, &hash)
        })
        .await?;
        progress("accounts", to - 1, users);
    }
    let users_took = started.elapsed();
    let started = Instant::now();
    if users > 0 {
        for from in (1..=events).step_by(CHUNK as usize) {
            let to = (from + CHUNK).min(events + 1);
            db::write(&state.pool, move |conn| seed::events(conn, set, from, to)).await?;
            progress("events", to - 1, events);
        }
    }
    Ok(Timings {
        users: users_took,
        events: started.elapsed(),
    })
}
