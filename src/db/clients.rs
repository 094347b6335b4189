//! Queries on the `clients` table.

use diesel::prelude::*;

use super::schema::clients;
use super::{is_unique_violation, Conn, DbError};
use crate::domain::{Client, ClientId, IdTokenAlgorithm, RedirectUri, Scopes};

#[derive(Debug, Insertable, Queryable, Selectable)]
#[diesel(table_name = clients)]
struct ClientRecord {
    id: String,
    name: String,
    secret_hash: String,
    scopes: String,
    created_at: i64,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    is_public: bool,
    skip_consent: bool,
    id_token_alg: String,
}

/// What an application's settings are stored as (the admin page edits them).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = clients)]
struct AppSettingsRecord {
    redirect_uris: String,
    post_logout_redirect_uris: String,
    skip_consent: bool,
    id_token_alg: String,
}

fn joined(uris: &[RedirectUri]) -> String {
    uris.iter()
        .map(RedirectUri::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn split(id: &str, stored: &str) -> Result<Vec<RedirectUri>, DbError> {
    RedirectUri::parse_each(stored.split(' ').filter(|uri| !uri.is_empty()))
        .map_err(|e| DbError::Corrupt(format!("redirect URIs of client {id}: {e}")))
}

impl ClientRecord {
    fn into_client(self) -> Result<(Client, String), DbError> {
        let id = ClientId::parse(&self.id)
            .ok_or_else(|| DbError::Corrupt(format!("client id `{}` is malformed", self.id)))?;
        let scopes = Scopes::parse_space_separated(&self.scopes)
            .map_err(|e| DbError::Corrupt(format!("scopes of client {}: {e}", self.id)))?;
        let client = Client {
            redirect_uris: split(&self.id, &self.redirect_uris)?,
            post_logout_redirect_uris: split(&self.id, &self.post_logout_redirect_uris)?,
            public: self.is_public,
            skip_consent: self.skip_consent,
            id_token_alg: IdTokenAlgorithm::parse(&self.id_token_alg).ok_or_else(|| {
                DbError::Corrupt(format!("ID token algorithm of client {}", self.id))
            })?,
            id,
            name: self.name,
            scopes,
            created_at: self.created_at,
        };
        Ok((client, self.secret_hash))
    }
}

/// Stores a new client with the hash of its secret (empty for a public client). Names are
/// unique in any letter case (an index: [`DbError::ClientNameTaken`]).
pub fn insert(conn: &mut Conn, client: &Client, secret_hash: &str) -> Result<(), DbError> {
    diesel::insert_into(clients::table)
        .values(ClientRecord {
            id: client.id.to_string(),
            name: client.name.clone(),
            secret_hash: secret_hash.to_owned(),
            scopes: client.scopes.to_space_separated(),
            created_at: client.created_at,
            redirect_uris: joined(&client.redirect_uris),
            post_logout_redirect_uris: joined(&client.post_logout_redirect_uris),
            is_public: client.public,
            skip_consent: client.skip_consent,
            id_token_alg: client.id_token_alg.as_str().to_owned(),
        })
        .execute(conn)
        .map_err(|error| match is_unique_violation(&error) {
            true => DbError::ClientNameTaken,
            false => DbError::from(error),
        })?;
    Ok(())
}

/// Changes an application's redirect URIs, consent and ID-token settings.
pub fn update_app_settings(conn: &mut Conn, client: &Client) -> Result<(), DbError> {
    let updated = diesel::update(clients::table.find(client.id.as_str()))
        .set(AppSettingsRecord {
            redirect_uris: joined(&client.redirect_uris),
            post_logout_redirect_uris: joined(&client.post_logout_redirect_uris),
            skip_consent: client.skip_consent,
            id_token_alg: client.id_token_alg.as_str().to_owned(),
        })
        .execute(conn)?;
    if updated == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// A client and the hash of its secret.
pub fn find(conn: &mut Conn, id: &ClientId) -> Result<Option<(Client, String)>, DbError> {
    clients::table
        .find(id.as_str())
        .select(ClientRecord::as_select())
        .get_result(conn)
        .optional()?
        .map(ClientRecord::into_client)
        .transpose()
}

/// Every client, oldest first.
pub fn list(conn: &mut Conn) -> Result<Vec<Client>, DbError> {
    clients::table
        .order((clients::created_at, clients::id))
        .select(ClientRecord::as_select())
        .load(conn)?
        .into_iter()
        .map(|record| record.into_client().map(|(client, _)| client))
        .collect()
}

pub fn delete(conn: &mut Conn, id: &ClientId) -> Result<(), DbError> {
    let deleted = diesel::delete(clients::table.find(id.as_str())).execute(conn)?;
    if deleted == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
