//! Queries on `sessions` (one per login) and their `refresh_tokens`.

use diesel::prelude::*;
use uuid::Uuid;

use super::models::{
    NewRefreshTokenRecord, NewSessionRecord, RefreshTokenRecord, SessionRecord, UserRecord,
};
use super::schema::{refresh_tokens, sessions, users};
use super::{now, write_transaction, Conn, DbError};
use crate::domain::{LiveSession, User, UserId};

/// A new session and the hash of its first refresh token.
pub struct NewSession {
    pub user_id: UserId,
    pub refresh_token_hash: String,
    pub ttl_secs: i64,
    pub user_agent: Option<String>,
}

/// What presenting a refresh token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now rotated and its child stored.
    Rotated { session_id: Uuid, user_id: UserId },
    /// The token was rotated moments ago (within the grace window) and its child is still
    /// current: the client lost the response, so it gets the same child again.
    Replayed { session_id: Uuid, user_id: UserId },
    /// The token was rotated before: someone replayed it, so its session is now revoked.
    ReuseDetected { session_id: Uuid, user_id: UserId },
    /// Unknown, expired, or its session has ended.
    Invalid,
}

/// Parameters of one rotation.
pub struct RotationRequest {
    pub presented_hash: String,
    pub child_hash: String,
    pub ttl_secs: i64,
    pub grace_secs: i64,
    /// How long the session may last from its creation, whatever `ttl_secs` says.
    pub max_lifetime_secs: i64,
}

/// Starts a session; returns its id.
pub fn create(conn: &mut Conn, new: NewSession) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    let now = now();
    let expires_at = now + new.ttl_secs;
    write_transaction(conn, |conn| {
        diesel::insert_into(sessions::table)
            .values(NewSessionRecord {
                id: id.to_string(),
                user_id: new.user_id.to_string(),
                created_at: now,
                last_used_at: now,
                expires_at,
                user_agent: new.user_agent.as_deref(),
            })
            .execute(conn)?;
        diesel::insert_into(refresh_tokens::table)
            .values(NewRefreshTokenRecord {
                token_hash: &new.refresh_token_hash,
                session_id: &id.to_string(),
                issued_at: now,
                expires_at,
            })
            .execute(conn)?;
        Ok(id)
    })
}

/// Loads the user behind an access token, provided its session has not been revoked.
pub fn find_user_in_session(
    conn: &mut Conn,
    user_id: UserId,
    session_id: Uuid,
) -> Result<Option<User>, DbError> {
    users::table
        .inner_join(sessions::table)
        .filter(users::id.eq(user_id.to_string()))
        .filter(sessions::id.eq(session_id.to_string()))
        .filter(sessions::revoked_at.is_null())
        .select(UserRecord::as_select())
        .first(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

/// Exchanges a refresh token for its child, detecting replays (see [`Rotation`]).
pub fn rotate(conn: &mut Conn, request: RotationRequest) -> Result<Rotation, DbError> {
    write_transaction(conn, |conn| {
        let now = now();
        let found: Option<(RefreshTokenRecord, SessionRecord)> = refresh_tokens::table
            .inner_join(sessions::table)
            .filter(refresh_tokens::token_hash.eq(&request.presented_hash))
            .select((RefreshTokenRecord::as_select(), SessionRecord::as_select()))
            .first(conn)
            .optional()?;
        let Some((token, session)) = found else {
            return Ok(Rotation::Invalid);
        };
        if session.revoked_at.is_some() || token.expires_at <= now || session.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        // No rotation extends a session past its absolute lifetime.
        let ends_by = session.created_at.saturating_add(request.max_lifetime_secs);
        if ends_by <= now {
            return Ok(Rotation::Invalid);
        }
        let expires_at = (now + request.ttl_secs).min(ends_by);
        let session_id = parse_uuid(&session.id)?;
        let user_id: UserId = session
            .user_id
            .parse()
            .map_err(|_| DbError::Corrupt(format!("user id `{}`", session.user_id)))?;

        match token.rotated_at {
            None => {
                diesel::update(refresh_tokens::table.find(&token.token_hash))
                    .set(refresh_tokens::rotated_at.eq(now))
                    .execute(conn)?;
                diesel::insert_into(refresh_tokens::table)
                    .values(NewRefreshTokenRecord {
                        token_hash: &request.child_hash,
                        session_id: &session.id,
                        issued_at: now,
                        expires_at,
                    })
                    .execute(conn)?;
                diesel::update(sessions::table.find(&session.id))
                    .set((
                        sessions::last_used_at.eq(now),
                        sessions::expires_at.eq(expires_at),
                    ))
                    .execute(conn)?;
                Ok(Rotation::Rotated {
                    session_id,
                    user_id,
                })
            }
            Some(rotated_at) if now - rotated_at <= request.grace_secs => {
                let child_is_current = refresh_tokens::table
                    .find(&request.child_hash)
                    .filter(refresh_tokens::session_id.eq(&session.id))
                    .filter(refresh_tokens::rotated_at.is_null())
                    .count()
                    .get_result::<i64>(conn)?
                    == 1;
                if child_is_current {
                    Ok(Rotation::Replayed {
                        session_id,
                        user_id,
                    })
                } else {
                    revoke_at(conn, &session.id, now)?;
                    Ok(Rotation::ReuseDetected {
                        session_id,
                        user_id,
                    })
                }
            }
            Some(_) => {
                revoke_at(conn, &session.id, now)?;
                Ok(Rotation::ReuseDetected {
                    session_id,
                    user_id,
                })
            }
        }
    })
}

/// Ends one session: its access and refresh tokens stop working.
pub fn revoke(conn: &mut Conn, session_id: Uuid) -> Result<(), DbError> {
    revoke_at(conn, &session_id.to_string(), now())
}

/// Ends every session of a user.
pub fn revoke_all_for_user(conn: &mut Conn, user_id: UserId) -> Result<usize, DbError> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id.to_string()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now()))
    .execute(conn)?)
}

/// A user's live sessions, most recently used first.
pub fn list_live(conn: &mut Conn, user_id: UserId) -> Result<Vec<LiveSession>, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id.to_string()))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now()))
        .order((sessions::last_used_at.desc(), sessions::id))
        .select((
            sessions::id,
            sessions::created_at,
            sessions::last_used_at,
            sessions::user_agent,
        ))
        .load::<(String, i64, i64, Option<String>)>(conn)?
        .into_iter()
        .map(|(id, created_at, last_used_at, user_agent)| LiveSession {
            id,
            created_at,
            last_used_at,
            user_agent,
        })
        .collect())
}

/// Ends one of a user's live sessions; [`DbError::NotFound`] when it is not theirs, has ended
/// or has expired.
pub fn revoke_own(conn: &mut Conn, user_id: UserId, session_id: Uuid) -> Result<(), DbError> {
    let ended = diesel::update(
        sessions::table
            .find(session_id.to_string())
            .filter(sessions::user_id.eq(user_id.to_string()))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now())),
    )
    .set(sessions::revoked_at.eq(now()))
    .execute(conn)?;
    if ended == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Ends every session of a user but `keep`.
pub fn revoke_others(conn: &mut Conn, user_id: UserId, keep: Uuid) -> Result<usize, DbError> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id.to_string()))
            .filter(sessions::id.ne(keep.to_string()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now()))
    .execute(conn)?)
}

/// Deletes what can no longer be used: sessions past their expiry (with their tokens) and
/// rotated refresh tokens past theirs. Returns how many rows went.
pub fn purge_expired(conn: &mut Conn, now: i64) -> Result<usize, DbError> {
    write_transaction(conn, |conn| {
        let tokens = diesel::delete(
            refresh_tokens::table
                .filter(refresh_tokens::expires_at.le(now))
                .filter(refresh_tokens::rotated_at.is_not_null()),
        )
        .execute(conn)?;
        let sessions =
            diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?;
        Ok(tokens + sessions)
    })
}

fn revoke_at(conn: &mut Conn, session_id: &str, now: i64) -> Result<(), DbError> {
    diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

fn parse_uuid(raw: &str) -> Result<Uuid, DbError> {
    Uuid::parse_str(raw).map_err(|_| DbError::Corrupt(format!("session id `{raw}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{connect, migrate, users};
    use crate::domain::Email;

    #[test]
    fn purging_removes_expired_sessions_and_used_tokens_only() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::db::PoolSettings {
            size: 1,
            timeout: std::time::Duration::from_secs(5),
        };
        let pool = connect(
            dir.path().join("t.db").to_str().unwrap(),
            settings,
            crate::db::Creation::Allowed,
        )
        .unwrap();
        migrate(&pool).unwrap();
        let conn = &mut pool.get().unwrap();
        let email = Email::parse("purge@example.com").unwrap();
        let user = users::insert(
            conn,
            users::NewUser {
                email: &email,
                password_hash: "x",
                is_superuser: false,
            },
        )
        .unwrap();
        let session = |conn: &mut Conn, hash: &str, ttl_secs| {
            create(
                conn,
                NewSession {
                    user_id: user.id,
                    refresh_token_hash: hash.into(),
                    ttl_secs,
                    user_agent: None,
                },
            )
            .unwrap()
        };
        let live = session(conn, "live", 100);
        session(conn, "expired", 1);
        let rotation = rotate(
            conn,
            RotationRequest {
                presented_hash: "live".into(),
                child_hash: "live-child".into(),
                ttl_secs: 7200,
                grace_secs: 10,
                max_lifetime_secs: 86_400,
            },
        )
        .unwrap();
        assert!(matches!(rotation, Rotation::Rotated { session_id, .. } if session_id == live));

        // Later, the short session and the rotated token have expired; the successor lives on.
        let removed = purge_expired(conn, now() + 200).unwrap();
        assert_eq!(removed, 2, "the rotated token and the expired session");
        let left: Vec<String> = refresh_tokens::table
            .select(refresh_tokens::token_hash)
            .load(conn)
            .unwrap();
        assert_eq!(left, ["live-child"]);
        let sessions_left: i64 = sessions::table.count().get_result(conn).unwrap();
        assert_eq!(sessions_left, 1);
    }
}
