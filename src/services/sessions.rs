//! Logging in, refreshing, logging out, and authenticating a request.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit;
use super::context::{Context, Origin};
use super::{account_limits, notices, second_step, ServiceError};
use crate::auth::legacy_tokens::is_sessionless;
use crate::auth::password::Verified;
use crate::auth::refresh;
use crate::auth::throttle::{Bucket, LoginJudge};
use crate::auth::tokens::{AccessGrant, ClientGrant, Grant, TokenError};
use crate::db::sessions::Familiarity;
use crate::db::{self, clients, legacy_tokens, sessions, users};
use crate::domain::LiveSession;
use crate::domain::{
    is_plausible_password, mask_email, normalize_email, AuditEvent, AuthMethods, Client, ClientId,
    Party, Scopes, User, UserId,
};
use crate::metrics::{LoginOutcome, TokenKind};
use crate::state::AppState;

/// The token pair of a login or a refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    /// A JWT.
    pub access_token: String,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; single use: each refresh returns a new one.
    pub refresh_token: String,
}

// How the client presents the token: `Authorization: Bearer …`. A plain comment, as the
// OpenAPI document shows this enum by its values alone.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Bearer,
}

/// A successful login: the session's tokens, the grant they carry, and the device cookie
/// by which this client will be known at its next login (`auth::device`).
#[derive(Debug)]
pub struct LoggedIn {
    pub tokens: TokenPair,
    pub grant: AccessGrant,
    pub device_cookie: String,
}

/// Checks an email and password and starts a session. Unknown email, wrong password and
/// inactive account are one error, at one cost.
///
/// Each attempt counts against the account's limits *before* the password is checked, so
/// parallel guesses cannot slip past them: a device that signed in to the account before is
/// judged by its own failures, any other client by its address's and the account's (see
/// `auth::throttle`); a success clears what it answers for. A refused attempt answers the
/// same whether or not the password is right.
pub async fn login(
    state: &AppState,
    ctx: &Context,
    username: &str,
    password: SecretString,
) -> Result<LoggedIn, ServiceError> {
    state
        .throttle
        .check_ip(Bucket::Login, ctx.origin.ip)
        .inspect_err(|_| state.metrics.login(LoginOutcome::Throttled))?;
    let email = normalize_email(username);
    let lookup = email.clone();
    let user = db::run(&state.pool, move |conn| users::find_by_email(conn, &lookup)).await?;
    let judge = judge(state, ctx, user.as_ref());
    account_limits::admit_login(state, &email, &judge)
        .await
        .inspect_err(|_| {
            log::warn!(
                "login refused for {}: too many failed attempts",
                typed_identifier(state, username)
            );
            state.metrics.login(LoginOutcome::Throttled);
        })?;
    // Longer than any password the policy lets in: cannot match, and is not worth hashing.
    let plausible = is_plausible_password(password.expose_secret());
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verified = if plausible {
        state.hasher.verify(password, stored).await?
    } else {
        state.hasher.verify("".into(), None).await?
    };
    let user = match (user, verified) {
        (Some(user), Verified::Yes) if user.is_active => user,
        (Some(user), Verified::YesRehashed(new_hash)) if user.is_active => {
            let (id, old_hash) = (user.id, user.password_hash.clone());
            db::write(&state.pool, move |conn| {
                users::upgrade_password_hash(conn, id, &old_hash, &new_hash)
            })
            .await?;
            user
        }
        (user, _) => {
            let mut event = ctx.event(AuditEvent::LoginFailed, user.as_ref().map(Party::from));
            event.detail = Some(match &user {
                Some(user) => {
                    log::info!("login failed for {}", user.email);
                    "wrong password or inactive account".to_owned()
                }
                None => {
                    let typed = typed_identifier(state, username);
                    log::info!("login failed for {typed}: no such account");
                    format!("unknown email {typed}")
                }
            });
            audit::record(state, event).await;
            state.metrics.login(LoginOutcome::Failed);
            return Err(ServiceError::BadCredentials);
        }
    };
    // A right password clears no failure while a second factor is owed.
    let methods = second_step::second_factors(state, user.id).await?;
    if !methods.is_empty() {
        let step = second_step::open(state, &user, methods).await?;
        return Err(ServiceError::SecondFactorRequired(step));
    }
    account_limits::login_succeeded(state, &email, &judge).await?;
    finish_login(state, ctx, &user, AuthMethods::PASSWORD, None).await
}

/// Starts the session of a login whose every step succeeded, unless the address must be
/// verified first; records the login with `how` it was completed.
pub(super) async fn finish_login(
    state: &AppState,
    ctx: &Context,
    user: &User,
    methods: AuthMethods,
    how: Option<String>,
) -> Result<LoggedIn, ServiceError> {
    if state.email.require_verification && !user.is_verified {
        log::info!("login refused for {}: address not verified", user.email);
        let mut event = ctx.event(AuditEvent::LoginFailed, Some(Party::from(user)));
        event.detail = Some("email not verified".to_owned());
        audit::record(state, event).await;
        state.metrics.login(LoginOutcome::Failed);
        return Err(ServiceError::NotVerified);
    }
    log::info!("login succeeded for {}", user.email);
    state.metrics.login(LoginOutcome::Succeeded);
    let mut event = ctx.own_event(AuditEvent::LoginSucceeded, user);
    event.detail = how;
    audit::record(state, event).await;
    // Asked before the new session exists, which would otherwise answer for itself.
    let unfamiliar = is_unfamiliar(state, ctx, user).await?;
    let (tokens, grant) = open(state, user, &ctx.origin, methods, true).await?;
    if unfamiliar {
        notices::new_sign_in(state, ctx, user).await;
    }
    Ok(LoggedIn {
        tokens,
        grant,
        device_cookie: state.devices.issue(user.id, db::now()),
    })
}

/// Whether a sign-in comes from a device the account has not been seen on: no device cookie
/// of the account, and no earlier session from the same user agent at the same address. An
/// account's first sign-in is familiar by definition (there is nothing to compare it with).
async fn is_unfamiliar(state: &AppState, ctx: &Context, user: &User) -> Result<bool, ServiceError> {
    if matches!(judge(state, ctx, Some(user)), LoginJudge::Device(_)) {
        return Ok(false);
    }
    let (id, agent) = (user.id, ctx.origin.user_agent.clone());
    let ip = ctx.origin.ip.map(|ip| ip.to_string());
    let familiarity = db::run(&state.pool, move |conn| {
        sessions::familiarity(conn, id, agent.as_deref(), ip.as_deref())
    })
    .await?;
    Ok(familiarity == Familiarity::Unseen)
}

/// Checks the current password of a signed-in user before a change that needs it. A check is
/// a password guess like a login, so it counts against the same limits as one, a wrong answer
/// is a failed login for the account, and a right one clears what a login would.
pub(super) async fn check_current_password(
    state: &AppState,
    ctx: &Context,
    user: &User,
    current: Option<SecretString>,
) -> Result<(), ServiceError> {
    let current = current.ok_or(ServiceError::BadCurrentPassword)?;
    let email = normalize_email(&user.email);
    let judge = judge(state, ctx, Some(user));
    account_limits::admit_login(state, &email, &judge)
        .await
        .inspect_err(|_| {
            log::warn!(
                "password check refused for {}: too many failures",
                user.email
            )
        })?;
    let plausible = is_plausible_password(current.expose_secret());
    let verified = if plausible {
        state
            .hasher
            .verify(current, Some(user.password_hash.clone()))
            .await?
    } else {
        Verified::No
    };
    if verified == Verified::No {
        log::info!("wrong current password for {}", user.email);
        let mut event = ctx.event(AuditEvent::LoginFailed, Some(Party::from(user)));
        event.detail = Some("wrong current password".to_owned());
        audit::record(state, event).await;
        return Err(ServiceError::BadCurrentPassword);
    }
    account_limits::login_succeeded(state, &email, &judge).await
}

/// Who a password guess against `user` is judged by: the device, if the client presents a
/// device cookie of that account; otherwise its address.
pub(super) fn judge(state: &AppState, ctx: &Context, user: Option<&User>) -> LoginJudge {
    let device = ctx
        .origin
        .device_cookie
        .as_ref()
        .and_then(|cookie| state.devices.recognise(&cookie.0, db::now()))
        .filter(|device| user.is_some_and(|user| user.id == device.user_id));
    match device {
        Some(device) => LoginJudge::Device(device.id),
        None => LoginJudge::Address(ctx.origin.ip),
    }
}

/// What may be written down of a login identifier that may name no account: never the text
/// as typed (people type their password into the email box), but its masked form and a
/// keyed reference that ties repeated attempts on it together.
fn typed_identifier(state: &AppState, username: &str) -> String {
    format!(
        "{} (ref {})",
        mask_email(username),
        state.pseudonyms.of(&normalize_email(username))
    )
}

/// Starts a session for a user whose identity is already established (just signed up, or
/// just proved it by changing their password).
pub async fn start(
    state: &AppState,
    user: &User,
    origin: &Origin,
) -> Result<TokenPair, ServiceError> {
    Ok(open(state, user, origin, AuthMethods::PASSWORD, false)
        .await?
        .0)
}

/// Starts a session: its first tokens, and the grant they carry. The session keeps the
/// client's user agent and address, for its owner to recognise it by; a session a `login`
/// started is the account's last sign-in, written in the same transaction.
async fn open(
    state: &AppState,
    user: &User,
    origin: &Origin,
    methods: AuthMethods,
    login: bool,
) -> Result<(TokenPair, AccessGrant), ServiceError> {
    let refresh_token = state.refresh_tokens.generate();
    let new = sessions::NewSession {
        user_id: user.id,
        refresh_token_hash: refresh::hash(&refresh_token),
        ttl_secs: state.refresh.ttl.min(state.refresh.max_lifetime).as_secs() as i64,
        user_agent: origin.user_agent.clone(),
        ip_address: origin.ip.map(|ip| ip.to_string()),
        methods,
        app: None,
    };
    let user_id = user.id;
    let session_id = db::write(&state.pool, move |conn| {
        let session_id = sessions::create(conn, new)?;
        if login {
            users::record_login(conn, user_id, db::now())?;
        }
        Ok::<_, db::DbError>(session_id)
    })
    .await?;
    let grant = AccessGrant {
        user_id: user.id,
        session_id,
        refresh_generation: Some(0),
        methods,
        auth_time: db::now(),
    };
    Ok((token_pair(state, grant, refresh_token)?, grant))
}

/// A rotated session: the new tokens, and the user and grant they speak for (loaded while
/// rotating, so whoever renews a browser's cookies needs no second look-up).
#[derive(Debug)]
pub struct Refreshed {
    pub tokens: TokenPair,
    pub user: User,
    pub grant: AccessGrant,
}

/// Exchanges a refresh token for a new access token and the token's successor.
pub async fn refresh(
    state: &AppState,
    ctx: &Context,
    presented: &str,
) -> Result<Refreshed, ServiceError> {
    let rotated = rotate(state, ctx, presented, None).await?;
    // A refreshed token keeps how the session's login was proved.
    let grant = AccessGrant {
        user_id: rotated.user.id,
        session_id: rotated.session_id,
        refresh_generation: Some(rotated.generation),
        methods: rotated.proof.methods,
        auth_time: rotated.proof.auth_time,
    };
    Ok(Refreshed {
        tokens: token_pair(state, grant, rotated.successor)?,
        user: rotated.user,
        grant,
    })
}

/// A refresh token just rotated: its session, the successor to hand out, and the session's
/// active user and login proof.
pub(super) struct Rotated {
    pub session_id: Uuid,
    pub generation: i64,
    pub successor: String,
    pub user: User,
    pub proof: sessions::SessionProof,
}

/// Rotates a refresh token of a session of `client` (an application's), or of the user's own
/// when `None`, and loads the session's user, who must be active; a token presented again
/// after its successor was used ends its session.
pub(super) async fn rotate(
    state: &AppState,
    ctx: &Context,
    presented: &str,
    client: Option<ClientId>,
) -> Result<Rotated, ServiceError> {
    state.throttle.check_ip(Bucket::Refresh, ctx.origin.ip)?;
    if !refresh::is_well_formed(presented) {
        return Err(ServiceError::RefreshTokenInvalid);
    }
    let successor = state.refresh_tokens.successor(presented);
    let request = sessions::RotationRequest {
        presented_hash: refresh::hash(presented),
        child_hash: refresh::hash(&successor),
        ttl_secs: state.refresh.ttl.as_secs() as i64,
        grace_secs: state.refresh.reuse_grace.as_secs() as i64,
        max_lifetime_secs: i64::try_from(state.refresh.max_lifetime.as_secs()).unwrap_or(i64::MAX),
        client,
    };
    let outcome = db::write(&state.pool, move |conn| sessions::rotate(conn, request)).await?;
    match outcome {
        sessions::Rotation::Rotated {
            session_id,
            user_id,
            generation,
        }
        | sessions::Rotation::Replayed {
            session_id,
            user_id,
            generation,
        } => {
            let found = db::run(&state.pool, move |conn| {
                let user = sessions::find_user_in_session(conn, user_id, session_id)?;
                let proof = sessions::login_proof(conn, session_id)?;
                Ok::<_, db::DbError>(user.zip(proof))
            })
            .await?;
            match found {
                Some((user, proof)) if user.is_active => Ok(Rotated {
                    session_id,
                    generation,
                    successor,
                    user,
                    proof,
                }),
                _ => Err(ServiceError::RefreshTokenInvalid),
            }
        }
        sessions::Rotation::ReuseDetected {
            session_id,
            user_id,
        } => {
            log::warn!("refresh token reuse detected; session {session_id} has been revoked");
            state.metrics.refresh_reuse_detected();
            let user = db::run(&state.pool, move |conn| users::find_by_id(conn, user_id)).await?;
            let mut event = ctx.event(
                AuditEvent::RefreshReuseDetected,
                user.as_ref().map(Party::from),
            );
            event.detail = Some(format!("session {session_id} revoked"));
            audit::record(state, event).await;
            Err(ServiceError::RefreshTokenInvalid)
        }
        sessions::Rotation::Invalid => Err(ServiceError::RefreshTokenInvalid),
    }
}

/// Ends the session an access token belongs to.
pub async fn logout(
    state: &AppState,
    ctx: &Context,
    grant: AccessGrant,
) -> Result<(), ServiceError> {
    logout_scoped(state, ctx, grant, LogoutScope::Local).await
}

/// Which sessions a logout ends (as Supabase Auth names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutScope {
    /// This session only.
    Local,
    /// Every session of the user, this one included.
    Global,
    /// Every session of the user but this one.
    Others,
}

impl LogoutScope {
    pub fn parse(raw: &str) -> Option<LogoutScope> {
        match raw {
            "local" => Some(LogoutScope::Local),
            "global" => Some(LogoutScope::Global),
            "others" => Some(LogoutScope::Others),
            _ => None,
        }
    }
}

/// Ends this session, every session, or every other session of the grant's user.
pub async fn logout_scoped(
    state: &AppState,
    ctx: &Context,
    grant: AccessGrant,
    scope: LogoutScope,
) -> Result<(), ServiceError> {
    let AccessGrant {
        user_id,
        session_id,
        ..
    } = grant;
    // An old backend's token (LEGACY_JWT_SECRET) has no session, and cannot be told from the
    // user's others: its logout ends them all.
    let old_tokens = scope == LogoutScope::Local && is_sessionless(&grant);
    let ended = db::write(&state.pool, move |conn| match scope {
        _ if old_tokens => legacy_tokens::cut_off(conn, user_id, db::now()).map(|()| 0),
        LogoutScope::Local => sessions::revoke(conn, session_id).map(|()| 1),
        LogoutScope::Global => sessions::revoke_all_for_user(conn, user_id),
        LogoutScope::Others => sessions::revoke_others(conn, user_id, session_id),
    })
    .await?;
    let what = match old_tokens {
        true => "the old backend's tokens".to_owned(),
        false => format!("{ended} session(s)"),
    };
    log::info!("user {user_id} ended {what} ({scope:?})");
    let mut event = ctx.event(AuditEvent::Logout, ctx.actor.clone());
    event.detail = Some(format!("{} ({what})", format!("{scope:?}").to_lowercase()));
    audit::record(state, event).await;
    Ok(())
}

/// A user's live sessions, most recently used first.
pub async fn list_live(
    state: &AppState,
    user_id: UserId,
) -> Result<Vec<LiveSession>, ServiceError> {
    Ok(db::run(&state.pool, move |conn| sessions::list_live(conn, user_id)).await?)
}

/// Ends one of the user's own sessions (another device, say); not found unless it is theirs
/// and live.
pub async fn end_own(
    state: &AppState,
    ctx: &Context,
    user_id: UserId,
    session_id: Uuid,
) -> Result<(), ServiceError> {
    end_one(state, ctx, user_id, ctx.actor.clone(), session_id).await
}

/// Ends one live session of `user` (a superuser's action), audited as its owner's own
/// sign-out of it is; not found unless it is theirs and live.
pub async fn end_session_of(
    state: &AppState,
    ctx: &Context,
    user: &User,
    session_id: Uuid,
) -> Result<(), ServiceError> {
    end_one(state, ctx, user.id, Some(Party::from(user)), session_id).await
}

async fn end_one(
    state: &AppState,
    ctx: &Context,
    user_id: UserId,
    subject: Option<Party>,
    session_id: Uuid,
) -> Result<(), ServiceError> {
    db::write(&state.pool, move |conn| {
        sessions::revoke_own(conn, user_id, session_id)
    })
    .await?;
    log::info!("user {user_id}'s session {session_id} was ended");
    let mut event = ctx.event(AuditEvent::SessionEnded, subject);
    event.detail = Some(format!("session {session_id}"));
    audit::record(state, event).await;
    Ok(())
}

/// Ends every session of a user (a superuser's action); not found if there is no such user.
pub async fn end_all(
    state: &AppState,
    ctx: &Context,
    user_id: UserId,
) -> Result<usize, ServiceError> {
    let (user, ended) = db::write(&state.pool, move |conn| {
        let user = users::find_by_id(conn, user_id)?.ok_or(db::DbError::NotFound)?;
        Ok::<_, ServiceError>((user, sessions::revoke_all_for_user(conn, user_id)?))
    })
    .await?;
    log::info!("ended all {ended} session(s) of user {user_id}");
    let mut event = ctx.event(AuditEvent::SessionEnded, Some(Party::from(&user)));
    event.detail = Some(format!("all sessions ({ended})"));
    audit::record(state, event).await;
    Ok(ended)
}

/// Who a valid access token speaks for, loaded fresh on every request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An active user in a session that has not ended.
    User(User, AccessGrant),
    /// A machine client that still exists, with the scopes its token carries.
    Client(Client, Scopes),
}

/// Verifies an access token and loads who it speaks for: a user, who must still exist, be
/// active, and be in a session that has not ended; or a machine client that still exists.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ServiceError> {
    let refused = ServiceError::Unauthenticated {
        token_presented: true,
    };
    let grant = match state.access_tokens.verify(token) {
        Ok(grant) => grant,
        Err(TokenError::Invalid(why)) => {
            log::debug!("access token refused: {why}");
            return Err(refused);
        }
        Err(other) => return Err(other.into()),
    };
    match grant {
        Grant::User(grant) => {
            let user = db::run(&state.pool, move |conn| {
                sessions::find_user_for_access(
                    conn,
                    grant.user_id,
                    grant.session_id,
                    grant.refresh_generation,
                )
            })
            .await?;
            match user {
                Some(user) if user.is_active => Ok(Principal::User(user, grant)),
                _ => Err(refused),
            }
        }
        // An application's token speaks for the user only to the OpenID Connect routes
        // (`services::oidc`), never to the user's own API.
        Grant::App(_) => Err(refused),
        Grant::Client(ClientGrant { client_id, scopes }) => {
            let client = db::run(&state.pool, move |conn| clients::find(conn, &client_id)).await?;
            match client {
                Some((client, _)) => Ok(Principal::Client(client, scopes)),
                None => Err(refused),
            }
        }
    }
}

fn token_pair(
    state: &AppState,
    grant: AccessGrant,
    refresh_token: String,
) -> Result<TokenPair, ServiceError> {
    let access = state.access_tokens.issue(grant)?;
    state.metrics.token_issued(TokenKind::Access);
    state.metrics.token_issued(TokenKind::Refresh);
    Ok(TokenPair {
        access_token: access.token,
        token_type: TokenType::Bearer,
        expires_in: access.expires_in,
        refresh_token,
    })
}
