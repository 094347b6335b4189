//! Accounts: registration, changes by their owner or a superuser, deletion.

use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use super::audit;
use super::context::Context;
use super::{account, account_limits, mfa, notices, recovery, sessions, ServiceError};
use crate::auth::throttle::{AccountCounter, Bucket};
use crate::db::{self, users};
use crate::domain::{
    normalize_email, AuditEvent, AuditFilter, Email, Party, User, UserFilter, UserId, UserRead,
};
use crate::domain::{Listing, Page};
use crate::state::AppState;

/// Changes a user may make to their own account.
#[derive(Debug, Default)]
pub struct OwnChanges {
    pub email: Option<Email>,
    pub password: Option<SecretString>,
    /// Required when `password` is set or `email` differs from the current address.
    pub current_password: Option<SecretString>,
    /// The session making the change: a new address ends every other session but this one.
    pub session: Option<Uuid>,
}

/// Changes a superuser may make to any account.
#[derive(Debug, Default)]
pub struct AdminChanges {
    pub email: Option<Email>,
    pub password: Option<SecretString>,
    pub is_active: Option<bool>,
    pub is_superuser: Option<bool>,
    pub is_verified: Option<bool>,
}

/// Creates an ordinary account (never a superuser: privileges are granted, not asked for).
/// When addresses must be verified, the verification email goes out at once.
pub async fn register(
    state: &AppState,
    ctx: &Context,
    email: Email,
    password: SecretString,
) -> Result<User, ServiceError> {
    state.throttle.check_ip(Bucket::Signup, ctx.origin.ip)?;
    let user = create(state, ctx, email, password, false).await?;
    if state.email.require_verification {
        if let Err(e) = recovery::send_verification(state, &user).await {
            log::error!(
                "could not send the verification email to {}: {e}",
                user.email
            );
        }
    }
    Ok(user)
}

/// Creates an account with the given privilege; the command line makes superusers this way.
pub async fn create(
    state: &AppState,
    ctx: &Context,
    email: Email,
    password: SecretString,
    is_superuser: bool,
) -> Result<User, ServiceError> {
    let password_hash = account::hash_new_password(state, &password, email.as_str()).await?;
    let user = db::write(&state.pool, move |conn| {
        users::insert(
            conn,
            users::NewUser {
                email: &email,
                password_hash: &password_hash,
                is_superuser,
            },
        )
    })
    .await?;
    log::info!("registered {} ({})", user.email, user.id);
    let subject = Party::from(&user);
    let mut event = ctx.event(AuditEvent::Signup, Some(subject.clone()));
    event.actor = event.actor.or(Some(subject));
    if is_superuser {
        event.detail = Some("as a superuser".to_owned());
    }
    audit::record(state, event).await;
    Ok(user)
}

pub async fn get(state: &AppState, id: UserId) -> Result<User, ServiceError> {
    db::run(&state.pool, move |conn| users::find_by_id(conn, id))
        .await?
        .ok_or(ServiceError::NotFound)
}

/// Applies a user's changes to their own account. A new password or a new address needs the
/// current password: whoever holds only a session (a stolen token, a browser left signed
/// in) must not be able to move the account to an address they read, and reset the
/// password from there. Checking it counts as a login attempt on the account; attempts to
/// change the address are counted per user, as each tells whether the address asked for is
/// taken.
pub async fn update_own(
    state: &AppState,
    ctx: &Context,
    user: &User,
    changes: OwnChanges,
) -> Result<User, ServiceError> {
    let new_address = changes
        .email
        .as_ref()
        .is_some_and(|email| email.as_str() != user.email);
    let moves = changes
        .email
        .as_ref()
        .is_some_and(|email| email.normalized() != normalize_email(&user.email));
    if moves {
        account_limits::count(state, AccountCounter::EmailChanges, &user.id.to_string()).await?;
    }
    if changes.password.is_some() || new_address {
        sessions::check_current_password(state, ctx, user, changes.current_password).await?;
    }
    let mut update = users::UserChanges::default();
    if let Some(password) = changes.password {
        let email = changes
            .email
            .as_ref()
            .map_or(user.email.as_str(), Email::as_str);
        update.password_hash = Some(account::hash_new_password(state, &password, email).await?);
    }
    update.email = changes.email;
    apply(state, ctx, user.id, update, changes.session).await
}

/// Applies a superuser's changes to any account.
pub async fn update_any(
    state: &AppState,
    ctx: &Context,
    id: UserId,
    changes: AdminChanges,
) -> Result<User, ServiceError> {
    let mut update = users::UserChanges {
        is_active: changes.is_active,
        is_superuser: changes.is_superuser,
        is_verified: changes.is_verified,
        ..Default::default()
    };
    if let Some(password) = changes.password {
        let email = match &changes.email {
            Some(email) => email.as_str().to_owned(),
            None => get(state, id).await?.email,
        };
        update.password_hash = Some(account::hash_new_password(state, &password, &email).await?);
    }
    update.email = changes.email;
    apply(state, ctx, id, update, None).await
}

/// One page of the accounts `filter` matches, in its order.
pub async fn list(
    state: &AppState,
    filter: UserFilter,
    page: Page,
) -> Result<Listing<User>, ServiceError> {
    Ok(db::run(&state.pool, move |conn| users::list(conn, &filter, &page)).await?)
}

pub async fn delete(state: &AppState, ctx: &Context, id: UserId) -> Result<(), ServiceError> {
    let user = db::write(&state.pool, move |conn| account::delete(conn, id)).await?;
    log::info!("deleted user {id}");
    audit::record(
        state,
        ctx.event(AuditEvent::UserDeleted, Some(Party::from(&user))),
    )
    .await;
    Ok(())
}

/// Deletes one's own account, after the current password; the last active superuser cannot.
pub async fn delete_own(
    state: &AppState,
    ctx: &Context,
    user: &User,
    current_password: SecretString,
) -> Result<(), ServiceError> {
    sessions::check_current_password(state, ctx, user, Some(current_password)).await?;
    delete(state, ctx, user.id).await
}

/// Everything Gatehouse keeps about an account, for its owner to download: no secret
/// (password hash, token or factor secret) among it.
#[derive(Debug, Serialize)]
pub struct AccountData {
    pub exported_at: i64,
    pub account: UserRead,
    pub created_at: i64,
    pub sessions: Vec<SessionData>,
    pub factors: FactorsData,
    /// The newest events first, at most [`EXPORTED_EVENTS`].
    pub audit_events: Vec<EventData>,
}

#[derive(Debug, Serialize)]
pub struct SessionData {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FactorsData {
    pub authenticator_app: bool,
    pub recovery_codes_left: i64,
    pub passkeys: Vec<PasskeyData>,
}

#[derive(Debug, Serialize)]
pub struct PasskeyData {
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct EventData {
    pub occurred_at: i64,
    pub event: String,
    pub actor: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// How many of the account's audit events an export carries.
pub const EXPORTED_EVENTS: i64 = 1000;

/// [`AccountData`] of `user`.
pub async fn export_own(state: &AppState, user: &User) -> Result<AccountData, ServiceError> {
    let user_id = user.id;
    let sessions = sessions::list_live(state, user_id).await?;
    let factors = mfa::factors(state, user_id).await?;
    let filter = AuditFilter {
        party: Some(user_id.to_string()),
        ..AuditFilter::default()
    };
    let page = Page::first(EXPORTED_EVENTS);
    let events = db::run(&state.pool, move |conn| {
        db::audit::list(conn, &filter, &page)
    })
    .await?;
    Ok(AccountData {
        exported_at: db::now(),
        account: UserRead::from(user),
        created_at: user.created_at,
        sessions: sessions
            .into_iter()
            .map(|live| SessionData {
                id: live.id,
                created_at: live.created_at,
                last_used_at: live.last_used_at,
                user_agent: live.user_agent,
                ip_address: live.ip_address,
            })
            .collect(),
        factors: FactorsData {
            authenticator_app: factors.totp,
            recovery_codes_left: factors.recovery_codes_left,
            passkeys: factors
                .passkeys
                .into_iter()
                .map(|passkey| PasskeyData {
                    name: passkey.name,
                    created_at: passkey.created_at,
                    last_used_at: passkey.last_used_at,
                })
                .collect(),
        },
        audit_events: events
            .items
            .into_iter()
            .map(|record| EventData {
                occurred_at: record.occurred_at,
                event: record.event,
                actor: record.actor.map(|actor| actor.label),
                ip: record.ip,
                user_agent: record.user_agent,
                detail: record.detail,
            })
            .collect(),
    })
}

async fn apply(
    state: &AppState,
    ctx: &Context,
    id: UserId,
    update: users::UserChanges,
    acting_session: Option<Uuid>,
) -> Result<User, ServiceError> {
    let password_changed = update.password_hash.is_some();
    let (before, user) = db::write(&state.pool, move |conn| {
        account::apply_changes(conn, id, update, acting_session)
    })
    .await?;
    if password_changed {
        log::info!(
            "password changed for {}; its sessions were ended",
            user.email
        );
        // A password is a way to sign in: its change is told like a factor's.
        notices::factors_changed(state, ctx, &user, "Your password was changed").await;
    }
    if before.email != user.email {
        log::info!(
            "address of user {} changed from {} to {}; its other sessions were ended",
            user.id,
            before.email,
            user.email
        );
        notices::email_changed(state, ctx, &before, &user).await;
    }
    let subject = Party::from(&user);
    for event in changes_made(&before, &user, password_changed) {
        let mut event = ctx.event(event, Some(subject.clone()));
        if event.event == AuditEvent::EmailChanged {
            event.detail = Some(format!("from {} to {}", before.email, user.email));
        }
        audit::record(state, event).await;
    }
    Ok(user)
}

/// The audited events a change amounts to: only what actually changed.
fn changes_made(before: &User, after: &User, password_changed: bool) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    if password_changed {
        events.push(AuditEvent::PasswordChanged);
    }
    if before.email != after.email {
        events.push(AuditEvent::EmailChanged);
    }
    match (before.is_superuser, after.is_superuser) {
        (false, true) => events.push(AuditEvent::UserPromoted),
        (true, false) => events.push(AuditEvent::UserDemoted),
        _ => {}
    }
    match (before.is_active, after.is_active) {
        (false, true) => events.push(AuditEvent::UserActivated),
        (true, false) => events.push(AuditEvent::UserDeactivated),
        _ => {}
    }
    if !before.is_verified && after.is_verified {
        events.push(AuditEvent::EmailVerified);
    }
    events
}
