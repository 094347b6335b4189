//! Rows as stored, and their conversion into domain types.

use diesel::prelude::*;

use super::schema::{refresh_tokens, sessions, users};
use super::DbError;
use crate::domain::{User, UserId};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub hashed_password: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// The columns of [`UserRecord`], in its order, for `RETURNING` clauses (which cannot take a
/// `SelectBy` on a connection that may be either backend).
pub const USER_COLUMNS: (
    users::id,
    users::email,
    users::hashed_password,
    users::is_active,
    users::is_superuser,
    users::is_verified,
    users::created_at,
    users::last_login_at,
) = (
    users::id,
    users::email,
    users::hashed_password,
    users::is_active,
    users::is_superuser,
    users::is_verified,
    users::created_at,
    users::last_login_at,
);

impl TryFrom<UserRecord> for User {
    type Error = DbError;

    fn try_from(row: UserRecord) -> Result<User, DbError> {
        let id: UserId = row
            .id
            .parse()
            .map_err(|_| DbError::Corrupt(format!("user id `{}` is not a UUID", row.id)))?;
        Ok(User {
            id,
            email: row.email,
            password_hash: row.hashed_password,
            is_active: row.is_active,
            is_superuser: row.is_superuser,
            is_verified: row.is_verified,
            created_at: row.created_at,
            last_login_at: row.last_login_at,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUserRecord<'a> {
    pub id: String,
    pub email: &'a str,
    pub email_normalized: String,
    pub email_skeleton: String,
    pub hashed_password: &'a str,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSessionRecord<'a> {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<&'a str>,
    pub amr: String,
    pub auth_time: i64,
    pub client_id: Option<String>,
    pub scopes: Option<String>,
    pub ip_address: Option<&'a str>,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub client_id: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshTokenRecord<'a> {
    pub token_hash: &'a str,
    pub session_id: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
    pub generation: i64,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub generation: i64,
    pub access_used_at: Option<i64>,
}
