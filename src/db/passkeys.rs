//! Queries on `passkeys` (WebAuthn credentials) and `webauthn_ceremonies` (the server's half
//! of a ceremony in progress).

use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{passkeys, webauthn_ceremonies};
use super::{now, Conn, DbError};
use crate::domain::UserId;

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: Uuid,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A user's passkeys, oldest first.
pub fn list(conn: &mut Conn, user_id: UserId) -> Result<Vec<StoredPasskey>, DbError> {
    let rows: Vec<(String, String, i64, Option<i64>)> = passkeys::table
        .filter(passkeys::user_id.eq(user_id.to_string()))
        .order((passkeys::created_at.asc(), passkeys::id.asc()))
        .select((
            passkeys::id,
            passkeys::name,
            passkeys::created_at,
            passkeys::last_used_at,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, name, created_at, last_used_at)| {
            Ok(StoredPasskey {
                id: Uuid::parse_str(&id)
                    .map_err(|_| DbError::Corrupt(format!("passkey id {id}")))?,
                name,
                created_at,
                last_used_at,
            })
        })
        .collect()
}

/// A passkey with its credential, as the ceremonies need it.
#[derive(Debug, Clone)]
pub struct PasskeyCredential {
    pub id: Uuid,
    pub user_id: UserId,
    /// webauthn-rs's `Passkey`, as JSON.
    pub credential: String,
}

/// What a ceremony is for: a ceremony is finished only for what it was begun for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyPurpose {
    /// Registering a passkey for a signed-in user.
    Register,
    /// A passwordless sign-in: no user until the answer names one.
    SignIn,
    /// A login's second step, for the user who gave the right password.
    SecondFactor,
}

impl CeremonyPurpose {
    fn stored(self) -> &'static str {
        match self {
            CeremonyPurpose::Register => "register",
            CeremonyPurpose::SignIn => "sign_in",
            CeremonyPurpose::SecondFactor => "second_factor",
        }
    }
}

/// Stores a new passkey; `credential_id` is unique across every user.
pub fn insert(
    conn: &mut Conn,
    user_id: UserId,
    name: &str,
    credential_id: &str,
    credential: &str,
) -> Result<StoredPasskey, DbError> {
    // Time-ordered, so passkeys added in one second still list in the order they were added.
    let id = Uuid::now_v7();
    let created_at = now();
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::id.eq(id.to_string()),
            passkeys::user_id.eq(user_id.to_string()),
            passkeys::name.eq(name),
            passkeys::credential_id.eq(credential_id),
            passkeys::credential.eq(credential),
            passkeys::created_at.eq(created_at),
        ))
        .execute(conn)?;
    Ok(StoredPasskey {
        id,
        name: name.to_owned(),
        created_at,
        last_used_at: None,
    })
}

/// The stored credentials of a user's passkeys.
pub fn credentials(conn: &mut Conn, user_id: UserId) -> Result<Vec<String>, DbError> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user_id.to_string()))
        .order((passkeys::created_at.asc(), passkeys::id.asc()))
        .select(passkeys::credential)
        .load(conn)?)
}

/// The passkey whose credential id (base64url) this is, whoever's it is.
pub fn find_by_credential_id(
    conn: &mut Conn,
    credential_id: &str,
) -> Result<Option<PasskeyCredential>, DbError> {
    let found: Option<(String, String, String)> = passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select((passkeys::id, passkeys::user_id, passkeys::credential))
        .get_result(conn)
        .optional()?;
    found
        .map(|(id, user_id, credential)| {
            Ok(PasskeyCredential {
                id: Uuid::parse_str(&id)
                    .map_err(|_| DbError::Corrupt(format!("passkey id {id}")))?,
                user_id: user_id
                    .parse()
                    .map_err(|_| DbError::Corrupt(format!("user id {user_id}")))?,
                credential,
            })
        })
        .transpose()
}

/// Renames a passkey of this user; `None` if the user has no such passkey.
pub fn rename(
    conn: &mut Conn,
    user_id: UserId,
    id: Uuid,
    name: &str,
) -> Result<Option<StoredPasskey>, DbError> {
    let updated = diesel::update(
        passkeys::table
            .find(id.to_string())
            .filter(passkeys::user_id.eq(user_id.to_string())),
    )
    .set(passkeys::name.eq(name))
    .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    Ok(list(conn, user_id)?.into_iter().find(|p| p.id == id))
}

/// Deletes a passkey of this user; the deleted passkey, `None` if the user has no such one.
pub fn delete(
    conn: &mut Conn,
    user_id: UserId,
    id: Uuid,
) -> Result<Option<StoredPasskey>, DbError> {
    let Some(found) = list(conn, user_id)?.into_iter().find(|p| p.id == id) else {
        return Ok(None);
    };
    let deleted = diesel::delete(
        passkeys::table
            .find(id.to_string())
            .filter(passkeys::user_id.eq(user_id.to_string())),
    )
    .execute(conn)?;
    Ok((deleted == 1).then_some(found))
}

/// Records a verified use of a user's passkey: its credential as brought up to date (counter,
/// backup state) and when. False if the user no longer has it.
pub fn record_use(
    conn: &mut Conn,
    user_id: UserId,
    credential_id: &str,
    credential: &str,
) -> Result<bool, DbError> {
    let updated = diesel::update(
        passkeys::table
            .filter(passkeys::credential_id.eq(credential_id))
            .filter(passkeys::user_id.eq(user_id.to_string())),
    )
    .set((
        passkeys::credential.eq(credential),
        passkeys::last_used_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Keeps a ceremony's state until it is finished or `ttl_secs` pass; its id.
pub fn insert_ceremony(
    conn: &mut Conn,
    purpose: CeremonyPurpose,
    user_id: Option<UserId>,
    state: &str,
    ttl_secs: i64,
) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    diesel::insert_into(webauthn_ceremonies::table)
        .values((
            webauthn_ceremonies::id.eq(id.to_string()),
            webauthn_ceremonies::user_id.eq(user_id.map(|u| u.to_string())),
            webauthn_ceremonies::purpose.eq(purpose.stored()),
            webauthn_ceremonies::state.eq(state),
            webauthn_ceremonies::expires_at.eq(now() + ttl_secs),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Takes a ceremony's state, once: deleted as it is returned, and only if it is unexpired,
/// was begun for `purpose` and for `user_id` (`None` for a sign-in, whose user is not known).
pub fn take_ceremony(
    conn: &mut Conn,
    id: Uuid,
    purpose: CeremonyPurpose,
    user_id: Option<UserId>,
) -> Result<Option<String>, DbError> {
    let id = id.to_string();
    let live = webauthn_ceremonies::table
        .find(&id)
        .filter(webauthn_ceremonies::purpose.eq(purpose.stored()))
        .filter(webauthn_ceremonies::expires_at.gt(now()));
    let found: Option<(Option<String>, String)> = live
        .select((webauthn_ceremonies::user_id, webauthn_ceremonies::state))
        .get_result(conn)
        .optional()?;
    let Some((owner, state)) = found else {
        return Ok(None);
    };
    if owner != user_id.map(|u| u.to_string()) {
        return Ok(None);
    }
    // Whoever deletes it finishes it; a racing request finds nothing.
    let deleted = diesel::delete(webauthn_ceremonies::table.find(&id)).execute(conn)?;
    Ok((deleted == 1).then_some(state))
}

/// Forgets ceremonies that expired before `before`.
pub fn purge_ceremonies(conn: &mut Conn, before: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(
        webauthn_ceremonies::table.filter(webauthn_ceremonies::expires_at.lt(before)),
    )
    .execute(conn)?)
}
