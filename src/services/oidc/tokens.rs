//! What applications get from the token endpoint, and what they may ask about it: userinfo,
//! revocation (RFC 7009) and introspection (RFC 7662).

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::OFFLINE_ACCESS;
use crate::auth::oidc::{self as crypto, IdTokenClaims};
use crate::auth::refresh;
use crate::auth::tokens::{AppGrant, TokenError};
use crate::db::oidc::{CodeGrant, StoredCode};
use crate::db::{self, oidc, sessions, users};
use crate::domain::{AuditEvent, AuthMethods, Client, Party, Scopes, User, UserId};
use crate::metrics::TokenKind;
use crate::services::context::Context;
use crate::services::sessions::rotate;
use crate::services::ServiceError;
use crate::services::{audit, clients};
use crate::state::AppState;

/// What an application gets from the token endpoint.
#[derive(Debug)]
pub struct AppTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub id_token: String,
    pub refresh_token: Option<String>,
    pub scopes: Scopes,
}

/// Exchanges an authorization code (`grant_type=authorization_code`) for tokens. A code
/// presented again ends the session its first exchange started.
pub async fn exchange_code(
    state: &AppState,
    ctx: &Context,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<AppTokens, ServiceError> {
    let code_hash = refresh::hash(code);
    let lookup = code_hash.clone();
    let stored = db::run(&state.pool, move |conn| oidc::find_code(conn, &lookup)).await?;
    let grant = match stored {
        StoredCode::Fresh(grant) => grant,
        StoredCode::Invalid => return Err(ServiceError::AuthorizationCodeInvalid),
        StoredCode::Used { grant, session_id } => {
            replayed(state, ctx, &grant, session_id).await?;
            return Err(ServiceError::AuthorizationCodeInvalid);
        }
    };
    let bound = grant.client_id == client.id
        && grant.redirect_uri == redirect_uri
        && crypto::pkce_verifies(verifier, &grant.code_challenge);
    if !bound {
        log::info!("authorization code refused for client {}", client.id);
        return Err(ServiceError::AuthorizationCodeInvalid);
    }
    let offline = grant.scopes.iter().any(|scope| scope == OFFLINE_ACCESS);
    let refresh_token = state.refresh_tokens.generate();
    let ttl = if offline {
        state.refresh.ttl.min(state.refresh.max_lifetime)
    } else {
        state.access_tokens.ttl()
    };
    let new = sessions::NewSession {
        user_id: grant.user_id,
        refresh_token_hash: refresh::hash(&refresh_token),
        ttl_secs: ttl.as_secs() as i64,
        user_agent: ctx.origin.user_agent.clone(),
        ip_address: ctx.origin.ip.map(|ip| ip.to_string()),
        methods: grant.methods,
        app: Some(sessions::AppBinding {
            client_id: grant.client_id.clone(),
            scopes: grant.scopes.clone(),
            auth_time: grant.auth_time,
        }),
    };
    let user_id = grant.user_id;
    let started = db::write(&state.pool, move |conn| {
        let session_id = sessions::create(conn, new)?;
        // Spent with the session in one transaction: two racing exchanges start one session.
        if !oidc::spend_code(conn, &code_hash, session_id)? {
            return Err(ServiceError::AuthorizationCodeInvalid);
        }
        let user = users::find_by_id(conn, user_id)?;
        Ok((session_id, user))
    })
    .await?;
    let (session_id, user) = match started {
        (session_id, Some(user)) if user.is_active => (session_id, user),
        _ => return Err(ServiceError::AuthorizationCodeInvalid),
    };
    let app_grant = AppGrant {
        user_id,
        session_id,
        client_id: client.id.clone(),
        scopes: grant.scopes.clone(),
        refresh_generation: 0,
    };
    let id_token_context = IdTokenContext {
        nonce: grant.nonce.clone(),
        methods: grant.methods,
        auth_time: grant.auth_time,
    };
    let tokens = app_tokens(
        state,
        client,
        &user,
        &app_grant,
        &id_token_context,
        offline.then_some(refresh_token),
    )?;
    log::info!(
        "issued tokens to {} ({}) for user {}",
        client.id,
        client.name,
        user.id
    );
    Ok(tokens)
}

/// A code presented again: whatever it started ends, and the attempt is audited.
async fn replayed(
    state: &AppState,
    ctx: &Context,
    grant: &CodeGrant,
    session_id: Option<Uuid>,
) -> Result<(), ServiceError> {
    if let Some(session_id) = session_id {
        db::write(&state.pool, move |conn| sessions::revoke(conn, session_id)).await?;
    }
    log::warn!(
        "authorization code of client {} presented again; its session has been revoked",
        grant.client_id
    );
    let user_id = grant.user_id;
    let user = db::run(&state.pool, move |conn| users::find_by_id(conn, user_id)).await?;
    let mut event = ctx.event(
        AuditEvent::AuthorizationCodeReplayed,
        user.as_ref().map(Party::from),
    );
    event.detail = Some(format!("client {}", grant.client_id));
    audit::record(state, event).await;
    Ok(())
}

/// Rotates an application's refresh token (`grant_type=refresh_token` with the
/// application's authentication): a new access token, ID token and refresh token.
pub async fn refresh(
    state: &AppState,
    ctx: &Context,
    client: &Client,
    presented: &str,
) -> Result<AppTokens, ServiceError> {
    let rotated = rotate(state, ctx, presented, Some(client.id.clone())).await?;
    let (user, proof) = (rotated.user, rotated.proof);
    let app = proof.app.ok_or(ServiceError::RefreshTokenInvalid)?;
    let grant = AppGrant {
        user_id: user.id,
        session_id: rotated.session_id,
        client_id: client.id.clone(),
        scopes: app.scopes,
        refresh_generation: rotated.generation,
    };
    let context = IdTokenContext {
        nonce: None,
        methods: proof.methods,
        auth_time: proof.auth_time,
    };
    app_tokens(
        state,
        client,
        &user,
        &grant,
        &context,
        Some(rotated.successor),
    )
}

/// What an ID token says about the login besides the user.
struct IdTokenContext {
    nonce: Option<String>,
    methods: AuthMethods,
    auth_time: i64,
}

fn app_tokens(
    state: &AppState,
    client: &Client,
    user: &User,
    grant: &AppGrant,
    login: &IdTokenContext,
    refresh_token: Option<String>,
) -> Result<AppTokens, ServiceError> {
    let access = state.access_tokens.issue_for_app(grant)?;
    let now = jsonwebtoken::get_current_timestamp();
    let email = grant.scopes.iter().any(|scope| scope == "email");
    let claims = IdTokenClaims {
        iss: state.issuer().to_owned(),
        sub: user.id.to_string(),
        aud: client.id.to_string(),
        azp: client.id.to_string(),
        exp: now + access.expires_in,
        iat: now,
        auth_time: login.auth_time,
        nonce: login.nonce.clone(),
        at_hash: Some(crypto::at_hash(&access.token)),
        amr: login
            .methods
            .names()
            .into_iter()
            .map(String::from)
            .collect(),
        email: email.then(|| user.email.to_string()),
        email_verified: email.then_some(user.is_verified),
    };
    let id_token = crypto::sign_id_token(state.access_tokens.keys(), client.id_token_alg, &claims)?;
    state.metrics.token_issued(TokenKind::Access);
    if refresh_token.is_some() {
        state.metrics.token_issued(TokenKind::Refresh);
    }
    Ok(AppTokens {
        access_token: access.token,
        expires_in: access.expires_in,
        id_token,
        refresh_token,
        scopes: grant.scopes.clone(),
    })
}

/// What the userinfo endpoint tells an application about its user.
#[derive(Debug, serde::Serialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// The user an application's access token speaks for, as its scopes allow.
pub async fn userinfo(state: &AppState, token: &str) -> Result<UserInfo, ServiceError> {
    let (user, grant) = app_principal(state, token).await?;
    let email = grant.scopes.iter().any(|scope| scope == "email");
    Ok(UserInfo {
        sub: user.id.to_string(),
        email: email.then(|| user.email.to_string()),
        email_verified: email.then_some(user.is_verified),
    })
}

/// Verifies an application's access token and loads its user, who must be active, in the
/// application's session, which must not have ended.
async fn app_principal(state: &AppState, token: &str) -> Result<(User, AppGrant), ServiceError> {
    let refused = ServiceError::Unauthenticated {
        token_presented: true,
    };
    let grant = match state.access_tokens.verify_app(token) {
        Ok((grant, _)) => grant,
        Err(TokenError::Invalid(why)) => {
            log::debug!("application token refused: {why}");
            return Err(refused);
        }
        Err(other) => return Err(other.into()),
    };
    let (user_id, session_id, client_id) =
        (grant.user_id, grant.session_id, grant.client_id.clone());
    let generation = grant.refresh_generation;
    let user = db::run(&state.pool, move |conn| {
        oidc::find_user_in_app_session(conn, user_id, session_id, &client_id, generation)
    })
    .await?;
    match user {
        Some(user) if user.is_active => Ok((user, grant)),
        _ => Err(refused),
    }
}

/// Authenticates the client of a revocation or introspection request, or of the token
/// endpoint: with its secret, or, for a public client, by its id alone.
pub async fn authenticate_client(
    state: &AppState,
    client_id: &str,
    secret: Option<&SecretString>,
) -> Result<Client, ServiceError> {
    match secret {
        Some(secret) if !secret.expose_secret().is_empty() => {
            clients::authenticate(state, client_id, secret).await
        }
        _ => clients::identify_public(state, client_id).await,
    }
}

/// What a token found at revocation or introspection turned out to be, for its client.
struct FoundToken {
    session_id: Uuid,
    user_id: UserId,
    scopes: Scopes,
    expires_at: u64,
}

/// Finds an access or refresh token issued to `client` that is still live.
async fn find_token(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<Option<FoundToken>, ServiceError> {
    if let Ok((grant, expires_at)) = state.access_tokens.verify_app(token) {
        if grant.client_id != client.id {
            return Ok(None);
        }
        let session_id = grant.session_id;
        let live = db::run(&state.pool, move |conn| {
            oidc::live_session_client(conn, session_id)
        })
        .await?;
        return Ok(live
            .flatten()
            .filter(|owner| owner == client.id.as_str())
            .map(|_| FoundToken {
                session_id,
                user_id: grant.user_id,
                scopes: grant.scopes,
                expires_at,
            }));
    }
    if !refresh::is_well_formed(token) {
        return Ok(None);
    }
    let hash = refresh::hash(token);
    let client_id = client.id.clone();
    let found = db::run(&state.pool, move |conn| {
        sessions::live_refresh_token(conn, &hash, &client_id)
    })
    .await?;
    Ok(found.map(|live| FoundToken {
        session_id: live.session_id,
        user_id: live.user_id,
        scopes: live.app.scopes,
        expires_at: u64::try_from(live.expires_at).unwrap_or_default(),
    }))
}

/// Revokes a token (RFC 7009): an access or refresh token of `client` ends its session at
/// once; anything else is ignored, as the RFC asks.
pub async fn revoke(
    state: &AppState,
    ctx: &Context,
    client: &Client,
    token: &str,
) -> Result<(), ServiceError> {
    let Some(found) = find_token(state, client, token).await? else {
        return Ok(());
    };
    let session_id = found.session_id;
    db::write(&state.pool, move |conn| sessions::revoke(conn, session_id)).await?;
    log::info!("client {} revoked session {session_id}", client.id);
    let mut event = ctx.event(AuditEvent::SessionEnded, None);
    event.detail = Some(format!(
        "revoked by {} ({}), session {session_id}",
        client.name, client.id
    ));
    let user_id = found.user_id;
    event.subject = db::run(&state.pool, move |conn| users::find_by_id(conn, user_id))
        .await?
        .as_ref()
        .map(Party::from);
    audit::record(state, event).await;
    Ok(())
}

/// What introspection (RFC 7662) says of a token.
#[derive(Debug, serde::Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<TokenDetails>,
}

#[derive(Debug, serde::Serialize)]
pub struct TokenDetails {
    pub sub: String,
    pub client_id: String,
    pub exp: u64,
    pub scope: String,
    pub token_type: &'static str,
}

/// Introspects a token for the client it was issued to; for any other client, and for
/// anything not live, `{active: false}`.
pub async fn introspect(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<Introspection, ServiceError> {
    let Some(found) = find_token(state, client, token).await? else {
        return Ok(Introspection {
            active: false,
            details: None,
        });
    };
    let details = TokenDetails {
        sub: found.user_id.to_string(),
        client_id: client.id.to_string(),
        exp: found.expires_at,
        scope: found.scopes.to_space_separated(),
        token_type: "Bearer",
    };
    Ok(Introspection {
        active: true,
        details: Some(details),
    })
}
