//! Queries on `sessions` (one per login) and their `refresh_tokens`.

use diesel::dsl;
use diesel::prelude::*;
use uuid::Uuid;

use super::models::{
    NewRefreshTokenRecord, NewSessionRecord, RefreshTokenRecord, SessionRecord, UserRecord,
};
use super::schema::{refresh_tokens, sessions, users};
use super::{now, write_transaction, Conn, DbError};
use crate::domain::{AuthMethods, ClientId, LiveSession, Scopes, User, UserId};

/// A new session and the hash of its first refresh token.
pub struct NewSession {
    pub user_id: UserId,
    pub refresh_token_hash: String,
    pub ttl_secs: i64,
    pub user_agent: Option<String>,
    /// The client address the session starts from.
    pub ip_address: Option<String>,
    /// How the login was proved.
    pub methods: AuthMethods,
    /// An application's grant: the application, what it may see, and when the user's login
    /// happened. `None` for the user's own session, whose login is now.
    pub app: Option<AppBinding>,
}

/// What binds a session to an application (OpenID Connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppBinding {
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub auth_time: i64,
}

/// How a session's login was proved and when, and the application it was granted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionProof {
    pub methods: AuthMethods,
    pub auth_time: i64,
    pub app: Option<AppBinding>,
}

/// What presenting a refresh token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now rotated, and its child (of `generation` in the
    /// session's chain) stored.
    Rotated {
        session_id: Uuid,
        user_id: UserId,
        generation: i64,
    },
    /// The token was rotated before, but its child has not reached a client yet: the answer
    /// was lost (a dropped connection, a crash), so the same child is given again, however long
    /// ago that was. Within the grace window a child already used by an access token counts as
    /// not having reached its client either (two racing refreshes of one token).
    Replayed {
        session_id: Uuid,
        user_id: UserId,
        generation: i64,
    },
    /// The token was rotated and its child has been used since: someone replayed the token, so
    /// its session is now revoked.
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
    /// The application presenting the token, or `None` for a user's own client: a token of
    /// another session kind is unknown here.
    pub client: Option<ClientId>,
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
                amr: new.methods.to_stored(),
                auth_time: new.app.as_ref().map_or(now, |app| app.auth_time),
                client_id: new.app.as_ref().map(|app| app.client_id.to_string()),
                scopes: new.app.as_ref().map(|app| app.scopes.to_space_separated()),
                ip_address: new.ip_address.as_deref(),
            })
            .execute(conn)?;
        diesel::insert_into(refresh_tokens::table)
            .values(NewRefreshTokenRecord {
                token_hash: &new.refresh_token_hash,
                session_id: &id.to_string(),
                issued_at: now,
                expires_at,
                generation: 0,
            })
            .execute(conn)?;
        Ok(id)
    })
}

/// How a session's login was proved, when (Unix seconds), and for which application.
pub fn login_proof(conn: &mut Conn, session_id: Uuid) -> Result<Option<SessionProof>, DbError> {
    let found: Option<(String, i64, Option<String>, Option<String>)> = sessions::table
        .find(session_id.to_string())
        .select((
            sessions::amr,
            sessions::auth_time,
            sessions::client_id,
            sessions::scopes,
        ))
        .get_result(conn)
        .optional()?;
    let Some((amr, auth_time, client_id, scopes)) = found else {
        return Ok(None);
    };
    let app = match client_id {
        None => None,
        Some(client_id) => Some(AppBinding {
            client_id: ClientId::parse(&client_id)
                .ok_or_else(|| DbError::Corrupt(format!("client of session {session_id}")))?,
            scopes: Scopes::parse_space_separated(scopes.as_deref().unwrap_or(""))
                .map_err(|e| DbError::Corrupt(format!("scopes of session {session_id}: {e}")))?,
            auth_time,
        }),
    };
    Ok(Some(SessionProof {
        methods: AuthMethods::from_stored(&amr),
        auth_time,
        app,
    }))
}

/// Loads the user behind an access token, provided its session has not been revoked.
pub fn find_user_in_session(
    conn: &mut Conn,
    user_id: UserId,
    session_id: Uuid,
) -> Result<Option<User>, DbError> {
    let (user, session) = (user_id.to_string(), session_id.to_string());
    // Per backend: a query of one backend's connection is cached by its type, where the
    // connection of either backend writes its SQL out again at each run (see `per_backend!`).
    let found: Option<UserRecord> = per_backend!(conn, c => users::table
        .inner_join(sessions::table)
        .filter(users::id.eq(&user))
        .filter(sessions::id.eq(&session))
        .filter(sessions::revoked_at.is_null())
        .select(UserRecord::as_select())
        .get_result(c)
        .optional())?;
    found.map(User::try_from).transpose()
}

/// Loads the user behind an access token, as [`find_user_in_session`] does, and records the
/// first request that an access token issued with the session's refresh token of `generation`
/// authenticates: from then on that refresh token counts as having reached its client (see
/// [`rotate`]). One indexed query, and a write once per generation.
pub fn find_user_for_access(
    conn: &mut Conn,
    user_id: UserId,
    session_id: Uuid,
    generation: Option<i64>,
) -> Result<Option<User>, DbError> {
    let Some(generation) = generation else {
        return find_user_in_session(conn, user_id, session_id);
    };
    let session = session_id.to_string();
    let user = user_id.to_string();
    // Per backend, as in `find_user_in_session`: the hot path of every request.
    let found: Option<(UserRecord, bool)> = per_backend!(conn, c => users::table
        .inner_join(sessions::table)
        .filter(users::id.eq(&user))
        .filter(sessions::id.eq(&session))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::client_id.is_null())
        .select((
            UserRecord::as_select(),
            diesel::dsl::exists(unmarked(&session, generation)),
        ))
        .get_result(c)
        .optional())?;
    let Some((user, first_use)) = found else {
        return Ok(None);
    };
    if first_use {
        mark_used(conn, &session, generation)?;
    }
    User::try_from(user).map(Some)
}

/// The query of [`unmarked`].
pub(super) type Unmarked = dsl::Filter<
    dsl::Filter<
        dsl::Filter<refresh_tokens::table, dsl::Eq<refresh_tokens::session_id, String>>,
        dsl::Eq<refresh_tokens::generation, i64>,
    >,
    dsl::IsNull<refresh_tokens::access_used_at>,
>;

/// The refresh token of `generation` in a session, while no access token issued with it has
/// authenticated a request.
pub(super) fn unmarked(session: &str, generation: i64) -> Unmarked {
    refresh_tokens::table
        .filter(refresh_tokens::session_id.eq(session.to_owned()))
        .filter(refresh_tokens::generation.eq(generation))
        .filter(refresh_tokens::access_used_at.is_null())
}

/// Records that an access token issued with the refresh token of `generation` has
/// authenticated a request: from then on that refresh token counts as having reached its
/// client (see [`rotate`]).
pub(super) fn mark_used(conn: &mut Conn, session: &str, generation: i64) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        diesel::update(unmarked(session, generation))
            .set(refresh_tokens::access_used_at.eq(now()))
            .execute(conn)
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// Exchanges a refresh token for its child, detecting replays (see [`Rotation`]).
pub fn rotate(conn: &mut Conn, request: RotationRequest) -> Result<Rotation, DbError> {
    write_transaction(conn, |conn| {
        let now = now();
        let found: Option<(RefreshTokenRecord, SessionRecord)> = refresh_tokens::table
            .inner_join(sessions::table)
            .filter(refresh_tokens::token_hash.eq(&request.presented_hash))
            .select((RefreshTokenRecord::as_select(), SessionRecord::as_select()))
            .get_result(conn)
            .optional()?;
        let Some((token, session)) = found else {
            return Ok(Rotation::Invalid);
        };
        if session.client_id.as_deref() != request.client.as_ref().map(ClientId::as_str) {
            return Ok(Rotation::Invalid);
        }
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
                let generation = token.generation + 1;
                diesel::update(refresh_tokens::table.find(&token.token_hash))
                    .set(refresh_tokens::rotated_at.eq(now))
                    .execute(conn)?;
                diesel::insert_into(refresh_tokens::table)
                    .values(NewRefreshTokenRecord {
                        token_hash: &request.child_hash,
                        session_id: &session.id,
                        issued_at: now,
                        expires_at,
                        generation,
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
                    generation,
                })
            }
            // Rotated before: what matters is whether its child has reached a client since. A
            // rotated child has; so has one whose access token has authenticated a request,
            // unless the two presentations of this token raced (within the grace window).
            Some(rotated_at) => {
                let child: Option<RefreshTokenRecord> = refresh_tokens::table
                    .find(&request.child_hash)
                    .filter(refresh_tokens::session_id.eq(&session.id))
                    .select(RefreshTokenRecord::as_select())
                    .get_result(conn)
                    .optional()?;
                let racing = now - rotated_at <= request.grace_secs;
                match child {
                    Some(child)
                        if child.rotated_at.is_none()
                            && (racing || child.access_used_at.is_none()) =>
                    {
                        Ok(Rotation::Replayed {
                            session_id,
                            user_id,
                            generation: child.generation,
                        })
                    }
                    _ => {
                        revoke_at(conn, &session.id, now)?;
                        Ok(Rotation::ReuseDetected {
                            session_id,
                            user_id,
                        })
                    }
                }
            }
        }
    })
}

/// A refresh token of an application's live session, as revocation and introspection see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRefreshToken {
    pub session_id: Uuid,
    pub user_id: UserId,
    pub app: AppBinding,
    pub expires_at: i64,
}

/// The current (unrotated, unexpired) refresh token of `client` with this hash, if its
/// session is live.
pub fn live_refresh_token(
    conn: &mut Conn,
    token_hash: &str,
    client: &ClientId,
) -> Result<Option<LiveRefreshToken>, DbError> {
    let now = now();
    let found: Option<(String, String, i64)> = refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .filter(refresh_tokens::rotated_at.is_null())
        .filter(refresh_tokens::expires_at.gt(now))
        .filter(sessions::client_id.eq(client.as_str()))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select((sessions::id, sessions::user_id, refresh_tokens::expires_at))
        .get_result(conn)
        .optional()?;
    let Some((session_id, user_id, expires_at)) = found else {
        return Ok(None);
    };
    let session_id = parse_uuid(&session_id)?;
    let Some(SessionProof { app: Some(app), .. }) = login_proof(conn, session_id)? else {
        return Ok(None);
    };
    Ok(Some(LiveRefreshToken {
        session_id,
        user_id: user_id
            .parse()
            .map_err(|_| DbError::Corrupt(format!("user id `{user_id}`")))?,
        app,
        expires_at,
    }))
}

/// Ends one session: its access and refresh tokens stop working.
pub fn revoke(conn: &mut Conn, session_id: Uuid) -> Result<(), DbError> {
    revoke_at(conn, &session_id.to_string(), now())
}

/// Ends every session of a user, and with them the old backend's tokens that have none
/// (`LEGACY_JWT_SECRET`), so whatever ends every session ends those too.
pub fn revoke_all_for_user(conn: &mut Conn, user_id: UserId) -> Result<usize, DbError> {
    let now = now();
    super::legacy_tokens::cut_off(conn, user_id, now)?;
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id.to_string()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?)
}

/// A user's live sessions, most recently used first.
pub fn list_live(conn: &mut Conn, user_id: UserId) -> Result<Vec<LiveSession>, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id.to_string()))
        .filter(sessions::client_id.is_null())
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now()))
        .order((sessions::last_used_at.desc(), sessions::id))
        .select((
            sessions::id,
            sessions::created_at,
            sessions::last_used_at,
            sessions::user_agent,
            sessions::ip_address,
        ))
        .load::<(String, i64, i64, Option<String>, Option<String>)>(conn)?
        .into_iter()
        .map(
            |(id, created_at, last_used_at, user_agent, ip_address)| LiveSession {
                id,
                created_at,
                last_used_at,
                user_agent,
                ip_address,
            },
        )
        .collect())
}

/// What a user's earlier sessions (those not yet purged) say of a sign-in from this user
/// agent and network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Familiarity {
    /// The account has never had a session of its own: its first sign-in.
    FirstSignIn,
    /// An earlier session came from the same user agent at the same address.
    Seen,
    Unseen,
}

pub fn familiarity(
    conn: &mut Conn,
    user_id: UserId,
    user_agent: Option<&str>,
    ip_address: Option<&str>,
) -> Result<Familiarity, DbError> {
    // The most recent are enough to recognise a device; a bound keeps the answer cheap.
    let earlier: Vec<(Option<String>, Option<String>)> = sessions::table
        .filter(sessions::user_id.eq(user_id.to_string()))
        .filter(sessions::client_id.is_null())
        .order(sessions::created_at.desc())
        .limit(200)
        .select((sessions::user_agent, sessions::ip_address))
        .load(conn)?;
    let seen = |(agent, ip): &(Option<String>, Option<String>)| {
        agent.as_deref() == user_agent && ip.as_deref() == ip_address
    };
    Ok(if earlier.is_empty() {
        Familiarity::FirstSignIn
    } else if earlier.iter().any(seen) {
        Familiarity::Seen
    } else {
        Familiarity::Unseen
    })
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

    /// A migrated SQLite database in a temporary directory, with one user.
    fn database() -> (tempfile::TempDir, crate::db::Pool, UserId) {
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
        let email = Email::parse("someone@example.com").unwrap();
        let user = users::insert(
            &mut pool.get().unwrap(),
            users::NewUser {
                email: &email,
                password_hash: "x",
                is_superuser: false,
            },
        )
        .unwrap();
        (dir, pool, user.id)
    }

    fn rotation(presented: &str, child: &str) -> RotationRequest {
        RotationRequest {
            presented_hash: presented.into(),
            child_hash: child.into(),
            ttl_secs: 3600,
            grace_secs: 10,
            max_lifetime_secs: 30 * 86_400,
            client: None,
        }
    }

    /// Moves every rotation `secs` into the past.
    fn age_rotations(conn: &mut Conn, secs: i64) {
        diesel::sql_query(format!(
            "UPDATE refresh_tokens SET rotated_at = rotated_at - {secs} WHERE rotated_at IS NOT NULL"
        ))
        .execute(conn)
        .unwrap();
    }

    #[test]
    fn a_rotated_token_whose_child_is_unused_yields_it_again_at_any_age() {
        let (_dir, pool, user_id) = database();
        let conn: &mut Conn = &mut pool.get().unwrap();
        let session_id = create(
            conn,
            NewSession {
                user_id,
                refresh_token_hash: "a".into(),
                ttl_secs: 3600,
                user_agent: None,
                ip_address: None,
                methods: AuthMethods::PASSWORD,
                app: None,
            },
        )
        .unwrap();
        let rotated = rotate(conn, rotation("a", "b")).unwrap();
        let expected = |generation| (session_id, user_id, generation);
        let Rotation::Rotated {
            session_id: s,
            user_id: u,
            generation: g,
        } = rotated
        else {
            panic!("{rotated:?}")
        };
        assert_eq!((s, u, g), expected(1));

        age_rotations(conn, 3000);
        let again = rotate(conn, rotation("a", "b")).unwrap();
        assert_eq!(
            again,
            Rotation::Replayed {
                session_id,
                user_id,
                generation: 1
            }
        );
        // An access token of the login's generation says nothing about the child.
        find_user_for_access(conn, user_id, session_id, Some(0))
            .unwrap()
            .unwrap();
        assert!(matches!(
            rotate(conn, rotation("a", "b")).unwrap(),
            Rotation::Replayed { generation: 1, .. }
        ));
        assert!(matches!(
            rotate(conn, rotation("b", "c")).unwrap(),
            Rotation::Rotated { generation: 2, .. }
        ));
    }

    #[test]
    fn a_rotated_token_whose_child_was_used_is_reuse() {
        let (_dir, pool, user_id) = database();
        let conn: &mut Conn = &mut pool.get().unwrap();
        let new = |hash: &str| NewSession {
            user_id,
            refresh_token_hash: hash.into(),
            ttl_secs: 3600,
            user_agent: None,
            ip_address: None,
            methods: AuthMethods::PASSWORD,
            app: None,
        };

        // Used by rotation: reuse, even within the grace window.
        let rotated_child = create(conn, new("a")).unwrap();
        rotate(conn, rotation("a", "b")).unwrap();
        rotate(conn, rotation("b", "c")).unwrap();
        assert!(matches!(
            rotate(conn, rotation("a", "b")).unwrap(),
            Rotation::ReuseDetected { session_id, .. } if session_id == rotated_child
        ));
        assert_eq!(rotate(conn, rotation("c", "d")).unwrap(), Rotation::Invalid);

        // Used by its access token: not reuse within the grace window (a racing refresh), reuse
        // after it.
        let authenticated_child = create(conn, new("p")).unwrap();
        rotate(conn, rotation("p", "q")).unwrap();
        let user = find_user_for_access(conn, user_id, authenticated_child, Some(1)).unwrap();
        assert_eq!(user.map(|u| u.id), Some(user_id));
        assert!(matches!(
            rotate(conn, rotation("p", "q")).unwrap(),
            Rotation::Replayed { generation: 1, .. }
        ));
        age_rotations(conn, 11);
        assert!(matches!(
            rotate(conn, rotation("p", "q")).unwrap(),
            Rotation::ReuseDetected { session_id, .. } if session_id == authenticated_child
        ));
        let ended = find_user_for_access(conn, user_id, authenticated_child, Some(1)).unwrap();
        assert!(ended.is_none(), "the session has ended");
    }

    #[test]
    fn purging_removes_expired_sessions_and_used_tokens_only() {
        let (_dir, pool, user_id) = database();
        let conn: &mut Conn = &mut pool.get().unwrap();
        let user = users::find_by_id(conn, user_id).unwrap().unwrap();
        let session = |conn: &mut Conn, hash: &str, ttl_secs| {
            create(
                conn,
                NewSession {
                    user_id: user.id,
                    refresh_token_hash: hash.into(),
                    ttl_secs,
                    user_agent: None,
                    ip_address: None,
                    methods: AuthMethods::PASSWORD,
                    app: None,
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
                client: None,
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
