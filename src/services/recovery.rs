//! Account recovery and address verification by email, in the fastapi-users dialect:
//! forgot/reset password and request-verify/verify.
//!
//! Requests for an email answer the same whatever the address: the lookup, the token and the
//! message happen in the background, after the answer, so neither the answer nor its timing
//! tells whether an account exists.

use std::sync::Arc;

use secrecy::SecretString;
use uuid::Uuid;

use super::audit;
use super::context::Context;
use super::{account, account_limits, notices, sessions, InternalError, ServiceError};
use crate::auth::refresh;
use crate::auth::throttle::{AccountCounter, Bucket};
use crate::db::email_tokens::{self, NewEmailToken, Purpose};
use crate::db::users::UserChanges;
use crate::db::{self, outbox, users};
use crate::domain::{normalize_email, AuditEvent, Email, Party, User, UserId};
use crate::mail;
use crate::state::AppState;

/// `POST /auth/forgot-password`: emails a reset link if an active account has this address.
pub async fn forgot_password(
    state: &Arc<AppState>,
    ctx: &Context,
    email: Email,
) -> Result<(), ServiceError> {
    request_email(state, ctx, email, Requested::Reset).await
}

/// `POST /auth/request-verify-token`: emails a verification link if an active, unverified
/// account has this address.
pub async fn request_verification(
    state: &Arc<AppState>,
    ctx: &Context,
    email: Email,
) -> Result<(), ServiceError> {
    request_email(state, ctx, email, Requested::Verify).await
}

/// The links anyone may ask for by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requested {
    Reset,
    Verify,
}

async fn request_email(
    state: &Arc<AppState>,
    ctx: &Context,
    email: Email,
    purpose: Requested,
) -> Result<(), ServiceError> {
    state.throttle.check_ip(Bucket::Email, ctx.origin.ip)?;
    count_email_to(state, &email).await?;
    let state = state.clone();
    tokio::spawn(async move {
        let found = db::run(&state.pool, move |conn| {
            users::find_by_email(conn, &email.normalized())
        })
        .await;
        let outcome = match found {
            Ok(Some(user)) if wants(&user, purpose) => send(&state, &user, purpose).await,
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = outcome {
            log::error!("could not send a {purpose:?} email: {e}");
        }
    });
    Ok(())
}

/// Whether an account gets this kind of email at all.
fn wants(user: &User, purpose: Requested) -> bool {
    user.is_active && (purpose == Requested::Reset || !user.is_verified)
}

/// Emails a signed-in (or just registered) user a verification link, unless verified already.
pub async fn send_verification(state: &AppState, user: &User) -> Result<(), ServiceError> {
    let email = Email::parse(&user.email).map_err(|_| ServiceError::NotFound)?;
    count_email_to(state, &email).await?;
    if wants(user, Requested::Verify) {
        send(state, user, Requested::Verify).await?;
    }
    Ok(())
}

/// Counts one email to this address against its budget, whether or not an account has it.
async fn count_email_to(state: &AppState, email: &Email) -> Result<(), ServiceError> {
    account_limits::count(state, AccountCounter::EmailsSent, &email.normalized()).await
}

/// Stores a fresh token for `user` and queues the email that carries it, in one transaction:
/// the token exists only if its message is in the outbox, and the message only if its token
/// is stored. The message survives a restart; the worker delivers it.
async fn send(state: &AppState, user: &User, purpose: Requested) -> Result<(), ServiceError> {
    let token = refresh::random_token();
    let (ttl, path, stored_as) = match purpose {
        Requested::Reset => (
            state.email.reset_token_ttl,
            "reset-password",
            Purpose::Reset,
        ),
        Requested::Verify => (state.email.verify_token_ttl, "verify", Purpose::Verify),
    };
    let link = format!("{}/{path}?token={token}", state.public_url);
    let valid_for = humanize(ttl);
    let message = match purpose {
        Requested::Reset => mail::password_reset(&state.mailer, &user.email, &link, &valid_for),
        Requested::Verify => mail::verification(&state.mailer, &user.email, &link, &valid_for),
    }
    .map_err(|e| InternalError::Mail(e.to_string()))?;
    store_and_queue(state, user, stored_as, &token, ttl, None, message).await
}

/// Stores a token and queues its message in one transaction, then wakes the worker.
async fn store_and_queue(
    state: &AppState,
    user: &User,
    purpose: Purpose,
    token: &str,
    ttl: std::time::Duration,
    new_email: Option<String>,
    message: mail::Composed,
) -> Result<(), ServiceError> {
    let stored = (user.clone(), refresh::hash(token));
    db::write(&state.pool, move |conn| {
        email_tokens::insert(
            conn,
            NewEmailToken {
                token_hash: &stored.1,
                user: &stored.0,
                purpose,
                ttl_secs: ttl.as_secs() as i64,
                new_email: new_email.as_deref(),
            },
        )?;
        outbox::insert(conn, message.row())
    })
    .await?;
    state.mailer.queued();
    Ok(())
}

/// `POST /auth/reset-password`: sets a new password with an emailed token and ends every
/// session of the user.
pub async fn reset_password(
    state: &AppState,
    ctx: &Context,
    token: &str,
    password: SecretString,
) -> Result<User, ServiceError> {
    state.throttle.check_ip(Bucket::Login, ctx.origin.ip)?;
    if !refresh::is_well_formed(token) {
        return Err(ServiceError::BadToken);
    }
    let token_hash = refresh::hash(token);
    let lookup = token_hash.clone();
    let user = db::run(&state.pool, move |conn| {
        email_tokens::find_good(conn, &lookup, Purpose::Reset)
    })
    .await?
    .ok_or(ServiceError::BadToken)?;
    let password_hash = account::hash_new_password(state, &password, &user.email).await?;
    // The token, the user's other reset links and every session go in one transaction.
    let (_, user) = db::write(&state.pool, move |conn| {
        let user =
            email_tokens::take(conn, &token_hash, Purpose::Reset)?.ok_or(ServiceError::BadToken)?;
        let changes = UserChanges {
            password_hash: Some(password_hash),
            ..Default::default()
        };
        let updated = account::apply_changes(conn, user.id, changes, None)?;
        email_tokens::use_up_all(conn, user.id, Purpose::Reset)?;
        Ok::<_, ServiceError>(updated)
    })
    .await?;
    log::info!("password reset for {}; its sessions were ended", user.email);
    // Whoever reset the password holds the mailbox: the account's lock no longer protects it.
    let email = normalize_email(&user.email);
    account_limits::forget_logins(state, &email).await?;
    audit::record(state, ctx.own_event(AuditEvent::PasswordReset, &user)).await;
    Ok(user)
}

/// `POST /auth/verify`: marks the address of the token's account verified.
pub async fn verify(state: &AppState, ctx: &Context, token: &str) -> Result<User, ServiceError> {
    state.throttle.check_ip(Bucket::Login, ctx.origin.ip)?;
    if !refresh::is_well_formed(token) {
        return Err(ServiceError::BadToken);
    }
    let token_hash = refresh::hash(token);
    // A token that would be good but for having been used, on an account that is verified,
    // says so (as a stateless fastapi-users token would) rather than calling itself bad.
    let (_, user) = db::write(&state.pool, move |conn| {
        let (user, used) = email_tokens::find(conn, &token_hash, Purpose::Verify)?
            .ok_or(ServiceError::BadToken)?;
        if user.is_verified {
            return Err(ServiceError::AlreadyVerified);
        }
        if used {
            return Err(ServiceError::BadToken);
        }
        email_tokens::take(conn, &token_hash, Purpose::Verify)?;
        let changes = UserChanges {
            is_verified: Some(true),
            ..Default::default()
        };
        let verified = account::apply_changes(conn, user.id, changes, None)?;
        email_tokens::use_up_all(conn, user.id, Purpose::Verify)?;
        Ok(verified)
    })
    .await?;
    log::info!("verified the address of {}", user.email);
    audit::record(state, ctx.own_event(AuditEvent::EmailVerified, &user)).await;
    Ok(user)
}

/// Asks to move `user`'s account to `new_email`: after the current password, a link goes to
/// the new address, and nothing changes until it is opened there ([`confirm_email_change`]).
/// Attempts count per account, as each tells whether the address is taken.
pub async fn request_email_change(
    state: &AppState,
    ctx: &Context,
    user: &User,
    new_email: Email,
    current_password: SecretString,
) -> Result<(), ServiceError> {
    account_limits::count(state, AccountCounter::EmailChanges, &user.id.to_string()).await?;
    sessions::check_current_password(state, ctx, user, Some(current_password)).await?;
    let normalized = new_email.normalized();
    let taken = db::run(&state.pool, move |conn| {
        users::find_by_email(conn, &normalized)
    })
    .await?;
    if taken.is_some_and(|other| other.id != user.id) {
        return Err(ServiceError::EmailTaken);
    }
    count_email_to(state, &new_email).await?;
    let token = refresh::random_token();
    let ttl = state.email.verify_token_ttl;
    let link = format!("{}/account/email/confirm?token={token}", state.public_url);
    let message = mail::email_change_confirmation(
        &state.mailer,
        new_email.as_str(),
        &user.email,
        &link,
        &humanize(ttl),
    )
    .map_err(|e| InternalError::Mail(e.to_string()))?;
    let address = new_email.as_str().to_owned();
    store_and_queue(
        state,
        user,
        Purpose::ChangeEmail,
        &token,
        ttl,
        Some(address),
        message,
    )
    .await?;
    log::info!(
        "{} asked to move to {}; a link went there",
        user.email,
        new_email
    );
    let mut event = ctx.own_event(AuditEvent::EmailChangeRequested, user);
    event.detail = Some(format!("to {new_email}"));
    audit::record(state, event).await;
    Ok(())
}

/// Opens a "confirm your new address" link: moves its account to the address it was sent
/// to, with the rules of every change of address (unverified, the old links void, every
/// other session ended: `keep` is the session of the browser that opened it, if it is the
/// account's), and tells the old address.
pub async fn confirm_email_change(
    state: &AppState,
    ctx: &Context,
    token: &str,
    keep: Option<(UserId, Uuid)>,
) -> Result<User, ServiceError> {
    state.throttle.check_ip(Bucket::Login, ctx.origin.ip)?;
    if !refresh::is_well_formed(token) {
        return Err(ServiceError::BadToken);
    }
    let token_hash = refresh::hash(token);
    let (before, user) = db::write(&state.pool, move |conn| {
        let (user, address) =
            email_tokens::find_email_change(conn, &token_hash)?.ok_or(ServiceError::BadToken)?;
        let email = Email::parse(&address).map_err(|_| ServiceError::BadToken)?;
        email_tokens::take(conn, &token_hash, Purpose::ChangeEmail)?;
        let changes = UserChanges {
            email: Some(email),
            ..Default::default()
        };
        let acting = keep
            .filter(|(owner, _)| *owner == user.id)
            .map(|(_, id)| id);
        account::apply_changes(conn, user.id, changes, acting)
    })
    .await?;
    log::info!(
        "address of user {} changed from {} to {} by its link",
        user.id,
        before.email,
        user.email
    );
    notices::email_changed(state, ctx, &before, &user).await;
    let mut event = ctx.event(AuditEvent::EmailChanged, Some(Party::from(&user)));
    event.actor = event.actor.or(Some(Party::from(&user)));
    event.detail = Some(format!("from {} to {}", before.email, user.email));
    audit::record(state, event).await;
    Ok(user)
}

/// What an emailed link is for, as the page it opens names it.
pub use crate::db::email_tokens::Purpose as LinkPurpose;

/// Whether an emailed link still works, for the page it opens, which spends nothing: unused,
/// unexpired, its account active and still at the address it was sent to. A verification
/// link of an account already verified opens too: its form says so.
pub async fn link_works(
    state: &AppState,
    token: &str,
    purpose: Purpose,
) -> Result<bool, ServiceError> {
    if !refresh::is_well_formed(token) {
        return Ok(false);
    }
    let token_hash = refresh::hash(token);
    let found = db::run(&state.pool, move |conn| {
        email_tokens::find(conn, &token_hash, purpose)
    })
    .await?;
    Ok(match found {
        Some((_, false)) => true,
        Some((user, true)) => purpose == Purpose::Verify && user.is_verified,
        None => false,
    })
}

/// How long a reset link works, in words: "1 hour".
pub fn reset_link_lifetime(state: &AppState) -> String {
    humanize(state.email.reset_token_ttl)
}

/// "1 hour", "24 hours", "30 minutes": how long a link works, for the message.
fn humanize(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    let (n, unit) = if secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::humanize;
    use std::time::Duration;

    #[test]
    fn lifetimes_read_naturally() {
        assert_eq!(humanize(Duration::from_secs(3600)), "1 hour");
        assert_eq!(humanize(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(humanize(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(humanize(Duration::from_secs(90)), "90 seconds");
    }
}
