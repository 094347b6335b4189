//! Accounts: registration, changes by their owner or a superuser, deletion.

use secrecy::{ExposeSecret, SecretString};

use super::ServiceError;
use crate::auth::password::Verified;
use crate::db::{self, users, Listing, Page};
use crate::domain::{Email, User, UserId};
use crate::startup::AppState;

/// Changes a user may make to their own account.
#[derive(Debug, Default)]
pub struct OwnChanges {
    pub email: Option<Email>,
    pub password: Option<SecretString>,
    /// Required when `password` is set.
    pub current_password: Option<SecretString>,
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
pub async fn register(
    state: &AppState,
    email: Email,
    password: SecretString,
) -> Result<User, ServiceError> {
    create(state, email, password, false).await
}

/// Creates an account with the given privilege; the command line makes superusers this way.
pub async fn create(
    state: &AppState,
    email: Email,
    password: SecretString,
    is_superuser: bool,
) -> Result<User, ServiceError> {
    let password_hash = hash_new_password(state, &password, email.as_str()).await?;
    let user = db::run(&state.pool, move |conn| {
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
    Ok(user)
}

pub async fn get(state: &AppState, id: UserId) -> Result<User, ServiceError> {
    db::run(&state.pool, move |conn| users::find_by_id(conn, id))
        .await?
        .ok_or(ServiceError::NotFound)
}

/// Applies a user's changes to their own account; a new password needs the current one.
pub async fn update_own(
    state: &AppState,
    user: &User,
    changes: OwnChanges,
) -> Result<User, ServiceError> {
    let mut update = users::UserChanges::default();
    if let Some(password) = changes.password {
        let current = changes
            .current_password
            .ok_or(ServiceError::BadCurrentPassword)?;
        let verified = state
            .hasher
            .verify(current, Some(user.password_hash.clone()))
            .await?;
        if verified == Verified::No {
            return Err(ServiceError::BadCurrentPassword);
        }
        let email = changes
            .email
            .as_ref()
            .map_or(user.email.as_str(), Email::as_str);
        update.password_hash = Some(hash_new_password(state, &password, email).await?);
    }
    update.email = changes.email;
    apply(state, user.id, update).await
}

/// Applies a superuser's changes to any account.
pub async fn update_any(
    state: &AppState,
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
        update.password_hash = Some(hash_new_password(state, &password, &email).await?);
    }
    update.email = changes.email;
    apply(state, id, update).await
}

/// One page of the accounts whose address contains `search`.
pub async fn list(
    state: &AppState,
    search: String,
    page: Page,
) -> Result<Listing<User>, ServiceError> {
    Ok(db::run(&state.pool, move |conn| users::list(conn, &search, page)).await?)
}

pub async fn delete(state: &AppState, id: UserId) -> Result<(), ServiceError> {
    db::run(&state.pool, move |conn| users::delete(conn, id)).await?;
    log::info!("deleted user {id}");
    Ok(())
}

async fn apply(
    state: &AppState,
    id: UserId,
    update: users::UserChanges,
) -> Result<User, ServiceError> {
    let password_changed = update.password_hash.is_some();
    let user = db::run(&state.pool, move |conn| users::update(conn, id, update)).await?;
    if password_changed {
        log::info!(
            "password changed for {}; its sessions were ended",
            user.email
        );
    }
    Ok(user)
}

async fn hash_new_password(
    state: &AppState,
    password: &SecretString,
    email: &str,
) -> Result<String, ServiceError> {
    let password = state
        .password_policy
        .parse(password.expose_secret(), email)
        .map_err(ServiceError::WeakPassword)?;
    Ok(state.hasher.hash(&password).await?)
}
