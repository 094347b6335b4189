//! Queries on `passkeys` (WebAuthn credentials) and `webauthn_ceremonies` (the server's half
//! of a ceremony in progress).

use diesel::prelude::*;
use uuid::Uuid;

use super::schema::passkeys;
use super::{Conn, DbError};
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
