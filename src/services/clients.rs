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
use crate::db::{self, clients, oidc};
use crate::domain::{
    AuditEvent, Client, ClientId, ClientName, IdTokenAlgorithm, Party, RedirectUri, Scopes,
};
use crate::metrics::TokenKind;
use crate::state::AppState;

/// A client just registered, with the secret it will never be shown again (none for a
/// public client).
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub secret: Option<SecretString>,
}

/// What a client is registered with: a name and scopes for a machine client, and for an
/// application (OpenID Connect) its redirect URIs and how it signs users in.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: ClientName,
    pub scopes: Scopes,
    pub app: AppSettings,
}

/// An application's settings, which the admin page can change later.
#[derive(Debug, Clone, Default)]
pub struct AppSettings {
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Only at registration: a client is born public or confidential.
    pub public: bool,
    pub skip_consent: bool,
    pub id_token_alg: IdTokenAlgorithm,
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
    new: NewClient,
) -> Result<Registered, ServiceError> {
    check_app_settings(&state.oidc_algorithms(), &new.app)?;
    // RFC 6749 allows commas in a scope, but `read,write` is a list typed the wrong way far
    // more often than one scope.
    if new.scopes.iter().any(|scope| scope.contains(',')) {
        return Err(ServiceError::ClientSettings(
            "scopes are separated by spaces, not commas",
        ));
    }
    let client = Client {
        id: ClientId::generate(),
        name: new.name.as_str().to_owned(),
        scopes: new.scopes,
        created_at: db::now(),
        redirect_uris: new.app.redirect_uris,
        post_logout_redirect_uris: new.app.post_logout_redirect_uris,
        public: new.app.public,
        skip_consent: new.app.skip_consent,
        id_token_alg: new.app.id_token_alg,
    };
    // A public client's stored hash is empty, which no secret's hash ever equals.
    let secret = (!client.public).then(refresh::random_token);
    let hash = secret.as_deref().map(refresh::hash).unwrap_or_default();
    let stored = client.clone();
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
        secret: secret.map(SecretString::from),
    })
}

/// Changes an application's redirect URIs, consent and ID-token settings (not whether it is
/// public: that decides whether it has a secret).
pub async fn update_app(
    state: &AppState,
    ctx: &Context,
    id: ClientId,
    settings: AppSettings,
) -> Result<Client, ServiceError> {
    let algorithms = state.oidc_algorithms();
    let client = db::write(&state.pool, move |conn| {
        let (mut client, _) = clients::find(conn, &id)?.ok_or(db::DbError::NotFound)?;
        let settings = AppSettings {
            public: client.public,
            ..settings
        };
        check_app_settings(&algorithms, &settings)?;
        client.redirect_uris = settings.redirect_uris;
        client.post_logout_redirect_uris = settings.post_logout_redirect_uris;
        client.skip_consent = settings.skip_consent;
        client.id_token_alg = settings.id_token_alg;
        clients::update_app_settings(conn, &client)?;
        Ok::<_, ServiceError>(client)
    })
    .await?;
    log::info!("changed the application settings of client {}", client.id);
    let mut event = ctx.event(AuditEvent::ClientUpdated, Some(Party::from(&client)));
    event.detail = Some(format!(
        "redirect URIs: {}",
        client
            .redirect_uris
            .iter()
            .map(RedirectUri::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    ));
    audit::record(state, event).await;
    Ok(client)
}

/// A public client must have somewhere to send users back to (it can do nothing else), and
/// RS256 ID tokens need an RSA key in the key set.
fn check_app_settings(
    algorithms: &[IdTokenAlgorithm],
    app: &AppSettings,
) -> Result<(), ServiceError> {
    if app.public && app.redirect_uris.is_empty() {
        return Err(ServiceError::ClientSettings(
            "a public client needs at least one redirect URI",
        ));
    }
    if !app.post_logout_redirect_uris.is_empty() && app.redirect_uris.is_empty() {
        return Err(ServiceError::ClientSettings(
            "post-logout redirect URIs are for applications, which have redirect URIs",
        ));
    }
    if !algorithms.contains(&app.id_token_alg) {
        return Err(ServiceError::ClientSettings(
            "this server has no key for that ID token algorithm",
        ));
    }
    Ok(())
}

/// One client; not found if there is none.
pub async fn find(state: &AppState, id: ClientId) -> Result<Client, ServiceError> {
    db::run(&state.pool, move |conn| clients::find(conn, &id))
        .await?
        .map(|(client, _)| client)
        .ok_or(ServiceError::NotFound)
}

pub async fn list(state: &AppState) -> Result<Vec<Client>, ServiceError> {
    Ok(db::run(&state.pool, clients::list).await?)
}

/// Deletes a client; its tokens stop working at once.
pub async fn delete(state: &AppState, ctx: &Context, id: ClientId) -> Result<(), ServiceError> {
    let deleted = id.clone();
    let client = db::write(&state.pool, move |conn| {
        let (client, _) = clients::find(conn, &deleted)?.ok_or(db::DbError::NotFound)?;
        oidc::revoke_client_sessions(conn, &deleted)?;
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

/// Identifies a public client by its id alone (it has no secret; PKCE proves it at the
/// token endpoint). A confidential client must authenticate.
pub async fn identify_public(state: &AppState, client_id: &str) -> Result<Client, ServiceError> {
    let Some(id) = ClientId::parse(client_id) else {
        return Err(ServiceError::BadClientCredentials);
    };
    match db::run(&state.pool, move |conn| clients::find(conn, &id)).await? {
        Some((client, _)) if client.public => Ok(client),
        _ => {
            log::info!("client {client_id} gave no secret and is not public");
            Err(ServiceError::BadClientCredentials)
        }
    }
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
