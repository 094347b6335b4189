//! Machine clients: registration, credentials, and their access tokens.
//!
//! A client secret is 256 random bits, shown once and stored as its SHA-256. A slow password
//! hash buys nothing here: it protects guessable secrets, and these cannot be guessed. An
//! unkeyed hash also survives signing-key rotation, which a key-derived MAC would not.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::audit;
use super::context::Context;
use super::ServiceError;
use crate::auth::refresh;
use crate::auth::tokens::ClientGrant;
use crate::db::{self, clients};
use crate::domain::{AuditEvent, Client, ClientId, ClientName, Party, Scopes};
use crate::metrics::TokenKind;
use crate::state::AppState;

/// A client just registered, with the secret it will never be shown again.
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub secret: SecretString,
}

/// A client's access token (client credentials never get a refresh token: RFC 6749 §4.4.3).
#[derive(Debug)]
pub struct ClientToken {
    pub access_token: String,
    pub expires_in: u64,
    pub scopes: Scopes,
}

pub async fn register(
    state: &AppState,
    ctx: &Context,
    name: ClientName,
    scopes: Scopes,
) -> Result<Registered, ServiceError> {
    let secret = refresh::random_token();
    let client = Client {
        id: ClientId::generate(),
        name: name.as_str().to_owned(),
        scopes,
        created_at: db::now(),
    };
    let (stored, hash) = (client.clone(), refresh::hash(&secret));
    db::write(&state.pool, move |conn| {
        clients::insert(conn, &stored, &hash)
    })
    .await?;
    log::info!("registered client {} ({})", client.id, client.name);
    audit::record(
        state,
        ctx.event(AuditEvent::ClientCreated, Some(Party::from(&client))),
    )
    .await;
    Ok(Registered {
        client,
        secret: secret.into(),
    })
}

pub async fn list(state: &AppState) -> Result<Vec<Client>, ServiceError> {
    Ok(db::run(&state.pool, clients::list).await?)
}

/// Deletes a client; its tokens stop working at once.
pub async fn delete(state: &AppState, ctx: &Context, id: ClientId) -> Result<(), ServiceError> {
    let deleted = id.clone();
    let client = db::write(&state.pool, move |conn| {
        let (client, _) = clients::find(conn, &deleted)?.ok_or(db::DbError::NotFound)?;
        clients::delete(conn, &deleted)?;
        Ok::<_, ServiceError>(client)
    })
    .await?;
    log::info!("deleted client {id}");
    audit::record(
        state,
        ctx.event(AuditEvent::ClientDeleted, Some(Party::from(&client))),
    )
    .await;
    Ok(())
}

/// Checks a client's credentials; unknown id and wrong secret are one error.
pub async fn authenticate(
    state: &AppState,
    client_id: &str,
    secret: &SecretString,
) -> Result<Client, ServiceError> {
    let Some(id) = ClientId::parse(client_id) else {
        return Err(ServiceError::BadClientCredentials);
    };
    let found = db::run(&state.pool, move |conn| clients::find(conn, &id)).await?;
    let presented = refresh::hash(secret.expose_secret());
    match found {
        Some((client, stored)) if bool::from(stored.as_bytes().ct_eq(presented.as_bytes())) => {
            Ok(client)
        }
        _ => {
            log::info!("client authentication failed for {client_id}");
            Err(ServiceError::BadClientCredentials)
        }
    }
}

/// Issues an access token with the requested scopes (all the client's, when none are asked
/// for); asking for one the client does not have is refused.
pub fn issue_token(
    state: &AppState,
    client: &Client,
    requested: Option<Scopes>,
) -> Result<ClientToken, ServiceError> {
    let scopes = match requested {
        Some(requested) if !requested.is_subset_of(&client.scopes) => {
            return Err(ServiceError::ScopeNotAllowed)
        }
        Some(requested) => requested,
        None => client.scopes.clone(),
    };
    let grant = ClientGrant {
        client_id: client.id.clone(),
        scopes,
    };
    let token = state.access_tokens.issue_for_client(&grant)?;
    state.metrics.token_issued(TokenKind::Client);
    Ok(ClientToken {
        access_token: token.token,
        expires_in: token.expires_in,
        scopes: grant.scopes,
    })
}
