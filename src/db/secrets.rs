//! Queries on `server_secrets`: keys the service generates once and every instance shares.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use diesel::prelude::*;
use rand_core::{OsRng, RngCore};

use super::schema::server_secrets;
use super::{now, write_transaction, Conn, DbError};

/// The secret called `name`: made of 32 random bytes by whichever instance asks first, then
/// read by all (the insert does nothing when it already exists, so racing instances agree).
pub fn get_or_create(conn: &mut Conn, name: &str) -> Result<[u8; 32], DbError> {
    write_transaction(conn, |conn| insert_if_missing_and_read(conn, name))
}

fn insert_if_missing_and_read(conn: &mut Conn, name: &str) -> Result<[u8; 32], DbError> {
    let mut fresh = [0u8; 32];
    OsRng.fill_bytes(&mut fresh);
    let secret = URL_SAFE_NO_PAD.encode(fresh);
    per_backend!(conn, c => diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::secret.eq(&secret),
            server_secrets::created_at.eq(now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    let stored: String = server_secrets::table
        .find(name)
        .select(server_secrets::secret)
        .get_result(conn)?;
    URL_SAFE_NO_PAD
        .decode(stored)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| DbError::Corrupt(format!("server secret `{name}` is malformed")))
}
