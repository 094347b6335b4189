//! The rules every change to an account obeys, whoever makes it (the owner, a superuser, a
//! reset link): an active superuser always remains; a new address is unverified, voids the
//! links sent to the old one and ends every session but the one making the change; a new
//! password or a deactivation ends every session; a new password meets the policy.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::ServiceError;
use crate::db::email_tokens;
use crate::db::users::{self, UserChanges};
use crate::db::{sessions, Conn};
use crate::domain::{normalize_email, User, UserId};
use crate::state::AppState;

/// Applies `changes` inside the caller's write transaction, with the rules above; returns
/// the user before and after. A change that leaves the address as it is but for letter case
/// keeps it verified. `acting_session` is the session making the change, if it is one of
/// the user's own: a new address leaves it alive.
pub(super) fn apply_changes(
    conn: &mut Conn,
    id: UserId,
    mut changes: UserChanges,
    acting_session: Option<Uuid>,
) -> Result<(User, User), ServiceError> {
    let current = users::find_by_id(conn, id)?.ok_or(ServiceError::NotFound)?;
    let loses_power = changes.is_superuser == Some(false) || changes.is_active == Some(false);
    if current.is_superuser && current.is_active && loses_power {
        ensure_another_superuser(conn, id)?;
    }
    let email_changes = changes
        .email
        .as_ref()
        .is_some_and(|email| email.normalized() != normalize_email(&current.email));
    if email_changes && changes.is_verified.is_none() {
        changes.is_verified = Some(false);
    }
    let new_address = changes
        .email
        .as_ref()
        .is_some_and(|email| email.as_str() != current.email);
    let ends_sessions =
        changes.password_hash.is_some() || (changes.is_active == Some(false) && current.is_active);
    let user = users::set(conn, id, changes)?;
    match (ends_sessions, new_address, acting_session) {
        (true, _, _) | (false, true, None) => {
            sessions::revoke_all_for_user(conn, id)?;
        }
        // Whoever holds the old address's other sessions may be the one the change locks out.
        (false, true, Some(keep)) => {
            sessions::revoke_others(conn, id, keep)?;
        }
        (false, false, _) => {}
    }
    if email_changes {
        // Links sent to the old address must not work, even if the address comes back.
        email_tokens::use_up_all_of_user(conn, id)?;
    }
    Ok((current, user))
}

/// Deletes a user inside the caller's write transaction, unless they are the last active
/// superuser; returns who was deleted.
pub(super) fn delete(conn: &mut Conn, id: UserId) -> Result<User, ServiceError> {
    let current = users::find_by_id(conn, id)?.ok_or(ServiceError::NotFound)?;
    if current.is_superuser && current.is_active {
        ensure_another_superuser(conn, id)?;
    }
    users::delete(conn, id)?;
    Ok(current)
}

fn ensure_another_superuser(conn: &mut Conn, id: UserId) -> Result<(), ServiceError> {
    if users::count_other_active_superusers(conn, id)? == 0 {
        return Err(ServiceError::LastSuperuser);
    }
    Ok(())
}

/// Checks a new password against the policy and hashes it (off the request threads).
pub(super) async fn hash_new_password(
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
