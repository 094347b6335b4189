//! Queries on the `clients` table.

use diesel::prelude::*;

use super::schema::clients;
use super::{Conn, DbError};
use crate::domain::{Client, ClientId, Scopes};

#[derive(Debug, Insertable, Queryable, Selectable)]
#[diesel(table_name = clients)]
struct ClientRecord {
    id: String,
    name: String,
    secret_hash: String,
    scopes: String,
    created_at: i64,
}

impl ClientRecord {
    fn into_client(self) -> Result<(Client, String), DbError> {
        let id = ClientId::parse(&self.id)
            .ok_or_else(|| DbError::Corrupt(format!("client id `{}` is malformed", self.id)))?;
        let scopes = Scopes::parse_space_separated(&self.scopes)
            .map_err(|e| DbError::Corrupt(format!("scopes of client {}: {e}", self.id)))?;
        let client = Client {
            id,
            name: self.name,
            scopes,
            created_at: self.created_at,
        };
        Ok((client, self.secret_hash))
    }
}

/// Stores a new client with the hash of its secret.
pub fn insert(conn: &mut Conn, client: &Client, secret_hash: &str) -> Result<(), DbError> {
    diesel::insert_into(clients::table)
        .values(ClientRecord {
            id: client.id.to_string(),
            name: client.name.clone(),
            secret_hash: secret_hash.to_owned(),
            scopes: client.scopes.to_space_separated(),
            created_at: client.created_at,
        })
        .execute(conn)?;
    Ok(())
}

/// A client and the hash of its secret.
pub fn find(conn: &mut Conn, id: &ClientId) -> Result<Option<(Client, String)>, DbError> {
    clients::table
        .find(id.as_str())
        .select(ClientRecord::as_select())
        .first(conn)
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
