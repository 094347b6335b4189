//! The OpenID Connect provider ("Log in with Gatehouse"): authorization requests, consent,
//! codes, the tokens applications get, and what applications may ask about them.
//!
//! An application's grant is a session of its own (`sessions.client_id`): its refresh tokens
//! rotate with reuse detection and its access tokens end with it, as a user's do. Every
//! request an application's token makes loads that session and the user afresh.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::audit;
use super::context::Context;
use super::sessions::rotate;
use super::ServiceError;
use crate::auth::oidc::{self as crypto, IdTokenClaims};
use crate::auth::refresh;
use crate::auth::tokens::{AccessGrant, AppGrant, TokenError};
use crate::db::oidc::{CodeGrant, ConnectedApp, StoredCode};
use crate::db::{self, clients, oidc, sessions, users};
use crate::domain::{AuditEvent, AuthMethods, Client, ClientId, Party, Scopes, User, UserId};
use crate::metrics::TokenKind;
use crate::state::AppState;

/// How long an authorization code can be exchanged.
pub const CODE_TTL_SECS: i64 = 60;
/// The scopes applications may ask for.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];
/// The scope that asks for a refresh token.
const OFFLINE_ACCESS: &str = "offline_access";

/// An authorization request's parameters as sent (query string or form).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct AuthorizationParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
}

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

/// Why an authorization request goes no further.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Unknown client: no redirect can be trusted, so a page says so.
    UnknownClient,
    /// The redirect URI is missing or not registered: a page says so.
    BadRedirectUri,
    /// Sent back to the application (RFC 6749 §4.1.2.1, RFC 9207).
    Redirect(Redirect),
    /// The service could not answer (the database, say).
    Service(ServiceError),
}

impl From<ServiceError> for AuthorizeError {
    fn from(error: ServiceError) -> AuthorizeError {
        AuthorizeError::Service(error)
    }
}

impl From<db::DbError> for AuthorizeError {
    fn from(error: db::DbError) -> AuthorizeError {
        AuthorizeError::Service(error.into())
    }
}

/// Where the visitor's browser goes next: back to the application, with these parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect(pub String);

impl Redirect {
    /// `redirect_uri` with `params` (and `state` and `iss`) added to its query.
    fn to(request: &AuthorizationRequest, issuer: &str, params: &[(&str, &str)]) -> Redirect {
        Redirect::build(
            &request.redirect_uri,
            request.state.as_deref(),
            issuer,
            params,
        )
    }

    fn build(uri: &str, state: Option<&str>, issuer: &str, params: &[(&str, &str)]) -> Redirect {
        let mut url = url::Url::parse(uri).expect("registered redirect URIs are URLs");
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        Redirect(url.into())
    }

    fn error(
        request: &AuthorizationRequest,
        issuer: &str,
        error: &str,
        description: &str,
    ) -> AuthorizeError {
        AuthorizeError::Redirect(Redirect::to(
            request,
            issuer,
            &[("error", error), ("error_description", description)],
        ))
    }
}

/// Checks an authorization request: the client and redirect URI first (whose errors cannot
/// be sent back), then the rest (whose errors are).
pub async fn check_request(
    state: &AppState,
    params: &AuthorizationParams,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let id = params
        .client_id
        .as_deref()
        .and_then(ClientId::parse)
        .ok_or(AuthorizeError::UnknownClient)?;
    let client = db::run(&state.pool, move |conn| clients::find(conn, &id))
        .await?
        .map(|(client, _)| client)
        .filter(Client::is_application)
        .ok_or(AuthorizeError::UnknownClient)?;
    let redirect_uri = params
        .redirect_uri
        .clone()
        .filter(|uri| client.allows_redirect(uri))
        .ok_or(AuthorizeError::BadRedirectUri)?;
    let mut request = AuthorizationRequest {
        client,
        redirect_uri,
        scopes: Scopes::default(),
        state: params.state.clone(),
        nonce: params.nonce.clone(),
        code_challenge: String::new(),
        prompt: Prompt::default(),
        max_age: None,
        login_hint: params.login_hint.clone(),
    };
    let issuer = state.issuer();
    let invalid = |request: &AuthorizationRequest, why| {
        Redirect::error(request, issuer, "invalid_request", why)
    };
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return Err(invalid(&request, "response_type is required")),
        Some(_) => {
            return Err(Redirect::error(
                &request,
                issuer,
                "unsupported_response_type",
                "only the code flow is supported (response_type=code)",
            ))
        }
    }
    request.code_challenge = match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (Some(challenge), Some("S256")) if crypto::is_s256_challenge(challenge) => {
            challenge.to_owned()
        }
        (Some(_), Some("S256")) => {
            return Err(invalid(&request, "code_challenge is not an S256 challenge"))
        }
        (None, _) | (_, None) => {
            return Err(invalid(
                &request,
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ))
        }
        (Some(_), Some(_)) => return Err(invalid(&request, "code_challenge_method must be S256")),
    };
    let scopes =
        Scopes::parse_space_separated(params.scope.as_deref().unwrap_or("")).map_err(|_| {
            Redirect::error(&request, issuer, "invalid_scope", "the scope is malformed")
        })?;
    if !scopes.iter().any(|scope| scope == "openid") {
        return Err(Redirect::error(
            &request,
            issuer,
            "invalid_scope",
            "the scope must include openid",
        ));
    }
    if !scopes.iter().all(|scope| SUPPORTED_SCOPES.contains(&scope)) {
        return Err(Redirect::error(
            &request,
            issuer,
            "invalid_scope",
            "a requested scope is not supported",
        ));
    }
    request.scopes = scopes;
    for value in params.prompt.as_deref().unwrap_or("").split(' ') {
        match value {
            "" | "select_account" => {}
            "none" => request.prompt.none = true,
            "login" => request.prompt.login = true,
            "consent" => request.prompt.consent = true,
            _ => return Err(invalid(&request, "prompt has an unknown value")),
        }
    }
    if request.prompt.none && (request.prompt.login || request.prompt.consent) {
        return Err(invalid(&request, "prompt=none cannot be combined"));
    }
    request.max_age = match params.max_age.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .ok()
                .filter(|age| *age >= 0)
                .ok_or_else(|| invalid(&request, "max_age must be a number of seconds"))?,
        ),
    };
    Ok(request)
}

/// Who is asking at the authorization endpoint: the user signed in to the pages, with their
/// session's grant.
pub struct Visitor<'a> {
    pub user: &'a User,
    pub grant: AccessGrant,
}

/// What the authorization endpoint does next.
#[derive(Debug)]
pub enum Next {
    /// Send the visitor to the login page (again, when `fresh`: the login must be newer).
    Login { fresh: bool },
    /// Ask the visitor whether the application may have what it asks for.
    Consent,
    /// Back to the application.
    Redirect(Redirect),
}

/// Decides what an authorization request needs, given who is signed in. `fresh_since` is
/// when this request last sent the visitor to log in again: a login after it satisfies
/// `prompt=login` and `max_age`.
pub async fn decide(
    state: &AppState,
    ctx: &Context,
    request: &AuthorizationRequest,
    visitor: Option<Visitor<'_>>,
    fresh_since: Option<i64>,
) -> Result<Next, AuthorizeError> {
    let issuer = state.issuer();
    let Some(visitor) = visitor else {
        if request.prompt.none {
            return Err(Redirect::error(
                request,
                issuer,
                "login_required",
                "nobody is signed in",
            ));
        }
        return Ok(Next::Login { fresh: false });
    };
    let auth_time = visitor.grant.auth_time;
    let logged_in_again = fresh_since.is_some_and(|since| auth_time >= since);
    let too_old = request
        .max_age
        .is_some_and(|max_age| db::now() - auth_time > max_age);
    if (request.prompt.login || too_old) && !logged_in_again {
        if request.prompt.none {
            return Err(Redirect::error(
                request,
                issuer,
                "login_required",
                "the login is older than max_age",
            ));
        }
        return Ok(Next::Login { fresh: true });
    }
    let (user_id, client_id) = (visitor.user.id, request.client.id.clone());
    let allowed = db::run(&state.pool, move |conn| {
        oidc::consent(conn, user_id, &client_id)
    })
    .await?;
    let consented = allowed.is_some_and(|allowed| request.scopes.is_subset_of(&allowed));
    if request.client.skip_consent || (consented && !request.prompt.consent) {
        let redirect = issue_code(state, ctx, request, visitor, false).await?;
        return Ok(Next::Redirect(redirect));
    }
    if request.prompt.none {
        return Err(Redirect::error(
            request,
            issuer,
            "consent_required",
            "the user has not allowed this application",
        ));
    }
    Ok(Next::Consent)
}

/// The visitor's answer on the consent page.
pub async fn answer_consent(
    state: &AppState,
    ctx: &Context,
    request: &AuthorizationRequest,
    visitor: Visitor<'_>,
    allowed: bool,
) -> Result<Redirect, AuthorizeError> {
    if !allowed {
        log::info!(
            "user {} denied {} ({})",
            visitor.user.id,
            request.client.id,
            request.client.name
        );
        return Err(Redirect::error(
            request,
            state.issuer(),
            "access_denied",
            "the user denied the request",
        ));
    }
    issue_code(state, ctx, request, visitor, true).await
}

/// Remembers the consent and issues a code for the request.
async fn issue_code(
    state: &AppState,
    ctx: &Context,
    request: &AuthorizationRequest,
    visitor: Visitor<'_>,
    asked: bool,
) -> Result<Redirect, AuthorizeError> {
    let code = refresh::random_token();
    let grant = CodeGrant {
        client_id: request.client.id.clone(),
        user_id: visitor.user.id,
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scopes: request.scopes.clone(),
        methods: visitor.grant.methods,
        auth_time: visitor.grant.auth_time,
    };
    let code_hash = refresh::hash(&code);
    db::write(&state.pool, move |conn| {
        oidc::record_consent(conn, grant.user_id, &grant.client_id, &grant.scopes)?;
        oidc::insert_code(conn, &code_hash, &grant, CODE_TTL_SECS)
    })
    .await
    .map_err(ServiceError::from)?;
    if asked {
        let mut event = ctx.event(AuditEvent::ConsentGiven, Some(Party::from(visitor.user)));
        event.detail = Some(format!(
            "{} ({}): {}",
            request.client.name,
            request.client.id,
            request.scopes.to_space_separated()
        ));
        audit::record(state, event).await;
    }
    Ok(Redirect::to(request, state.issuer(), &[("code", &code)]))
}

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
    let (session_id, user_id) = (rotated.session_id, rotated.user_id);
    let found = db::run(&state.pool, move |conn| {
        let user = sessions::find_user_in_session(conn, user_id, session_id)?;
        let proof = sessions::login_proof(conn, session_id)?;
        Ok::<_, db::DbError>(user.zip(proof))
    })
    .await?;
    let (user, proof) = match found {
        Some((user, proof)) if user.is_active => (user, proof),
        _ => return Err(ServiceError::RefreshTokenInvalid),
    };
    let app = proof.app.ok_or(ServiceError::RefreshTokenInvalid)?;
    let grant = AppGrant {
        user_id,
        session_id,
        client_id: client.id.clone(),
        scopes: app.scopes,
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
    let user = db::run(&state.pool, move |conn| {
        oidc::find_user_in_app_session(conn, user_id, session_id, &client_id)
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
            super::clients::authenticate(state, client_id, secret).await
        }
        _ => super::clients::identify_public(state, client_id).await,
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

/// The client and user an `id_token_hint` names, if this server issued it to a client that
/// still exists.
pub async fn read_logout_hint(
    state: &AppState,
    hint: &str,
) -> Result<Option<(Client, UserId)>, ServiceError> {
    let keys = state.access_tokens.keys();
    let Some(hint) = crypto::read_hint(keys, state.issuer(), hint) else {
        return Ok(None);
    };
    let (Some(client_id), Ok(user_id)) = (ClientId::parse(&hint.audience), hint.subject.parse())
    else {
        return Ok(None);
    };
    let client = db::run(&state.pool, move |conn| clients::find(conn, &client_id)).await?;
    Ok(client.map(|(client, _)| (client, user_id)))
}

/// An application by its id, if it is one.
pub async fn find_application(
    state: &AppState,
    client_id: &str,
) -> Result<Option<Client>, ServiceError> {
    let Some(id) = ClientId::parse(client_id) else {
        return Ok(None);
    };
    let found = db::run(&state.pool, move |conn| clients::find(conn, &id)).await?;
    Ok(found
        .map(|(client, _)| client)
        .filter(Client::is_application))
}

/// Where a logout may send the browser: a registered post-logout URI with `state`.
pub fn post_logout_redirect(client: &Client, uri: &str, state: Option<&str>) -> Option<String> {
    if !client.allows_post_logout_redirect(uri) {
        return None;
    }
    let mut url = url::Url::parse(uri).ok()?;
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    Some(url.into())
}

/// The applications a user has allowed.
pub async fn connected_apps(
    state: &AppState,
    user_id: UserId,
) -> Result<Vec<ConnectedApp>, ServiceError> {
    Ok(db::run(&state.pool, move |conn| oidc::connected_apps(conn, user_id)).await?)
}

/// "Remove access": ends every session the user granted the application and forgets the
/// consent, in one transaction. Not found if the user had not allowed it.
pub async fn remove_access(
    state: &AppState,
    ctx: &Context,
    user: &User,
    client_id: ClientId,
) -> Result<(), ServiceError> {
    let (user_id, removed) = (user.id, client_id.clone());
    let ended = db::write(&state.pool, move |conn| {
        if !oidc::forget_consent(conn, user_id, &removed)? {
            return Err(db::DbError::NotFound);
        }
        oidc::revoke_app_sessions(conn, user_id, &removed)
    })
    .await?;
    log::info!(
        "user {} removed the access of {client_id} ({ended} sessions)",
        user.id
    );
    let mut event = ctx.event(AuditEvent::ConsentRemoved, Some(Party::from(user)));
    event.detail = Some(format!("client {client_id}, {ended} session(s) ended"));
    audit::record(state, event).await;
    Ok(())
}
