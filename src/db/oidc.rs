//! Queries of the OpenID Connect provider: what users allowed applications to see
//! (`oauth_consents`), authorization codes, and the sessions applications hold.

use diesel::prelude::*;
use uuid::Uuid;

use super::models::UserRecord;
use super::schema::{authorization_codes, clients, oauth_consents, sessions, users};
use super::{now, sessions as session_queries, write_transaction, Conn, DbError};
use crate::domain::{AuthMethods, ClientId, Scopes, User, UserId};

/// What an authorization code stands for, as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    pub client_id: ClientId,
    pub user_id: UserId,
    pub redirect_uri: String,
    /// The PKCE challenge (S256).
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scopes: Scopes,
    pub methods: AuthMethods,
    pub auth_time: i64,
}

/// What presenting a code found.
#[derive(Debug, PartialEq, Eq)]
pub enum StoredCode {
    /// Unused and unexpired.
    Fresh(CodeGrant),
    /// Used before: the session it started (if the exchange finished) is to be ended.
    Used {
        grant: CodeGrant,
        session_id: Option<Uuid>,
    },
    /// Unknown or expired.
    Invalid,
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = authorization_codes)]
struct CodeRecord {
    code_hash: String,
    client_id: String,
    user_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scopes: String,
    amr: String,
    auth_time: i64,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    session_id: Option<String>,
}

impl CodeRecord {
    fn grant(&self) -> Result<CodeGrant, DbError> {
        let corrupt = |what: &str| DbError::Corrupt(format!("authorization code: {what}"));
        Ok(CodeGrant {
            client_id: ClientId::parse(&self.client_id).ok_or_else(|| corrupt("client id"))?,
            user_id: self.user_id.parse().map_err(|_| corrupt("user id"))?,
            redirect_uri: self.redirect_uri.clone(),
            code_challenge: self.code_challenge.clone(),
            nonce: self.nonce.clone(),
            scopes: Scopes::parse_space_separated(&self.scopes).map_err(|_| corrupt("scopes"))?,
            methods: AuthMethods::from_stored(&self.amr),
            auth_time: self.auth_time,
        })
    }
}

/// Stores a new code (by its hash) for `ttl_secs`.
pub fn insert_code(
    conn: &mut Conn,
    code_hash: &str,
    grant: &CodeGrant,
    ttl_secs: i64,
) -> Result<(), DbError> {
    let now = now();
    diesel::insert_into(authorization_codes::table)
        .values(CodeRecord {
            code_hash: code_hash.to_owned(),
            client_id: grant.client_id.to_string(),
            user_id: grant.user_id.to_string(),
            redirect_uri: grant.redirect_uri.clone(),
            code_challenge: grant.code_challenge.clone(),
            nonce: grant.nonce.clone(),
            scopes: grant.scopes.to_space_separated(),
            amr: grant.methods.to_stored(),
            auth_time: grant.auth_time,
            created_at: now,
            expires_at: now + ttl_secs,
            used_at: None,
            session_id: None,
        })
        .execute(conn)?;
    Ok(())
}

/// Looks a code up by its hash.
pub fn find_code(conn: &mut Conn, code_hash: &str) -> Result<StoredCode, DbError> {
    let record: Option<CodeRecord> = authorization_codes::table
        .find(code_hash)
        .select(CodeRecord::as_select())
        .get_result(conn)
        .optional()?;
    let Some(record) = record else {
        return Ok(StoredCode::Invalid);
    };
    let grant = record.grant()?;
    if record.used_at.is_some() {
        let session_id = match &record.session_id {
            Some(id) => Some(
                Uuid::parse_str(id)
                    .map_err(|_| DbError::Corrupt("authorization code: session id".into()))?,
            ),
            None => None,
        };
        return Ok(StoredCode::Used { grant, session_id });
    }
    if record.expires_at <= now() {
        return Ok(StoredCode::Invalid);
    }
    Ok(StoredCode::Fresh(grant))
}

/// Marks a code used by the session it started; `false` if another request spent it first.
pub fn spend_code(conn: &mut Conn, code_hash: &str, session_id: Uuid) -> Result<bool, DbError> {
    let spent = diesel::update(
        authorization_codes::table
            .find(code_hash)
            .filter(authorization_codes::used_at.is_null()),
    )
    .set((
        authorization_codes::used_at.eq(now()),
        authorization_codes::session_id.eq(session_id.to_string()),
    ))
    .execute(conn)?;
    Ok(spent == 1)
}

/// Deletes codes that expired before `before` (a used code is kept until then, so that its
/// replay is still recognised).
pub fn purge_codes(conn: &mut Conn, before: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(
        authorization_codes::table.filter(authorization_codes::expires_at.lt(before)),
    )
    .execute(conn)?)
}

/// The scopes a user has allowed an application, if any.
pub fn consent(
    conn: &mut Conn,
    user_id: UserId,
    client_id: &ClientId,
) -> Result<Option<Scopes>, DbError> {
    let stored: Option<String> = oauth_consents::table
        .find((user_id.to_string(), client_id.as_str()))
        .select(oauth_consents::scopes)
        .get_result(conn)
        .optional()?;
    stored
        .map(|scopes| {
            Scopes::parse_space_separated(&scopes)
                .map_err(|e| DbError::Corrupt(format!("consent scopes: {e}")))
        })
        .transpose()
}

/// Records that a user allowed an application `scopes`, adding to what they allowed before.
pub fn record_consent(
    conn: &mut Conn,
    user_id: UserId,
    client_id: &ClientId,
    scopes: &Scopes,
) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        let before = consent(conn, user_id, client_id)?.unwrap_or_default();
        let all = Scopes::parse_each(before.iter().chain(scopes.iter()))
            .map_err(|e| DbError::Corrupt(format!("consent scopes: {e}")))?;
        forget_consent(conn, user_id, client_id)?;
        diesel::insert_into(oauth_consents::table)
            .values((
                oauth_consents::user_id.eq(user_id.to_string()),
                oauth_consents::client_id.eq(client_id.as_str()),
                oauth_consents::scopes.eq(all.to_space_separated()),
                oauth_consents::granted_at.eq(now()),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Forgets what a user allowed an application; returns whether there was anything.
pub fn forget_consent(
    conn: &mut Conn,
    user_id: UserId,
    client_id: &ClientId,
) -> Result<bool, DbError> {
    let deleted =
        diesel::delete(oauth_consents::table.find((user_id.to_string(), client_id.as_str())))
            .execute(conn)?;
    Ok(deleted > 0)
}

/// An application a user has allowed: its id and name, the scopes, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedApp {
    pub client_id: ClientId,
    pub name: String,
    pub scopes: Scopes,
    pub granted_at: i64,
}

/// The applications a user has allowed, most recent first.
pub fn connected_apps(conn: &mut Conn, user_id: UserId) -> Result<Vec<ConnectedApp>, DbError> {
    oauth_consents::table
        .inner_join(clients::table)
        .filter(oauth_consents::user_id.eq(user_id.to_string()))
        .order((oauth_consents::granted_at.desc(), clients::name))
        .select((
            clients::id,
            clients::name,
            oauth_consents::scopes,
            oauth_consents::granted_at,
        ))
        .load::<(String, String, String, i64)>(conn)?
        .into_iter()
        .map(|(id, name, scopes, granted_at)| {
            Ok(ConnectedApp {
                client_id: ClientId::parse(&id)
                    .ok_or_else(|| DbError::Corrupt(format!("client id `{id}`")))?,
                name,
                scopes: Scopes::parse_space_separated(&scopes)
                    .map_err(|e| DbError::Corrupt(format!("consent scopes: {e}")))?,
                granted_at,
            })
        })
        .collect()
}

/// Ends every session a user granted an application; returns how many.
pub fn revoke_app_sessions(
    conn: &mut Conn,
    user_id: UserId,
    client_id: &ClientId,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id.to_string()))
            .filter(sessions::client_id.eq(client_id.as_str()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now()))
    .execute(conn)?)
}

/// Ends every session of an application (it is being deleted).
pub fn revoke_client_sessions(conn: &mut Conn, client_id: &ClientId) -> Result<usize, DbError> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::client_id.eq(client_id.as_str()))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now()))
    .execute(conn)?)
}

/// Loads the user behind an application's access token, provided the session is that
/// application's and has not ended, and records the first request an access token of the
/// refresh token's `generation` makes (as `sessions::find_user_for_access` does for users).
pub fn find_user_in_app_session(
    conn: &mut Conn,
    user_id: UserId,
    session_id: Uuid,
    client_id: &ClientId,
    generation: i64,
) -> Result<Option<User>, DbError> {
    let session = session_id.to_string();
    let found: Option<(UserRecord, bool)> = users::table
        .inner_join(sessions::table)
        .filter(users::id.eq(user_id.to_string()))
        .filter(sessions::id.eq(&session))
        .filter(sessions::client_id.eq(client_id.as_str()))
        .filter(sessions::revoked_at.is_null())
        .select((
            UserRecord::as_select(),
            diesel::dsl::exists(session_queries::unmarked(&session, generation)),
        ))
        .get_result(conn)
        .optional()?;
    let Some((user, first_use)) = found else {
        return Ok(None);
    };
    if first_use {
        session_queries::mark_used(conn, &session, generation)?;
    }
    User::try_from(user).map(Some)
}

/// Whether a session is live (not ended, not expired) and, for an application's, whose.
pub fn live_session_client(
    conn: &mut Conn,
    session_id: Uuid,
) -> Result<Option<Option<String>>, DbError> {
    Ok(sessions::table
        .find(session_id.to_string())
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now()))
        .select(sessions::client_id)
        .get_result(conn)
        .optional()?)
}
