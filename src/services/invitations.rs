//! Accounts a superuser makes: with a password chosen for them, or with an invitation, an
//! emailed link that lets the owner of the address choose the first password.
//!
//! An invited account exists from the start (its address is taken, it can be promoted or
//! deleted) but has a password nobody knows, so nothing signs in to it until the link is
//! used. The link works once and for [`INVITATION_TTL`]; after that, "Forgot your password?"
//! reaches the same address and does the same job.

use std::time::Duration;

use secrecy::SecretString;

use super::audit;
use super::context::Context;
use super::{account, account_limits, InternalError, ServiceError};
use crate::auth::refresh;
use crate::auth::throttle::{AccountCounter, Bucket};
use crate::db::email_tokens::{self, NewEmailToken, Purpose};
use crate::db::users::{self, NewUser, UserChanges};
use crate::db::{self, outbox};
use crate::domain::{AuditEvent, Email, Party, User};
use crate::mail;
use crate::state::AppState;

/// How long an invitation link works, in days: long enough for someone back from a week away.
const INVITATION_DAYS: u64 = 7;
pub const INVITATION_TTL: Duration = Duration::from_secs(INVITATION_DAYS * 24 * 3600);

/// How a new account gets its first password.
pub enum FirstPassword {
    /// The superuser types it (and passes it on); the address stays unverified.
    Chosen(SecretString),
    /// The owner of the address chooses it through an emailed link.
    Invitation,
}

/// Makes an account for `email` on a superuser's behalf (`ctx` names them), audited as
/// `user_created` or `user_invited`. An invitation's account, token and message are stored in
/// one transaction: the account exists only if its invitation is in the outbox.
pub async fn create_user(
    state: &AppState,
    ctx: &Context,
    email: Email,
    is_superuser: bool,
    first_password: FirstPassword,
) -> Result<User, ServiceError> {
    let (user, event) = match first_password {
        FirstPassword::Chosen(password) => {
            let hash = account::hash_new_password(state, &password, email.as_str()).await?;
            let user = db::write(&state.pool, move |conn| {
                users::insert(
                    conn,
                    NewUser {
                        email: &email,
                        password_hash: &hash,
                        is_superuser,
                    },
                )
            })
            .await?;
            (user, AuditEvent::UserCreated)
        }
        FirstPassword::Invitation => (
            invite(state, ctx, email, is_superuser).await?,
            AuditEvent::UserInvited,
        ),
    };
    log::info!("{} made by a superuser ({event})", user.email);
    let mut record = ctx.event(event, Some(Party::from(&user)));
    if is_superuser {
        record.detail = Some("as a superuser".to_owned());
    }
    audit::record(state, record).await;
    Ok(user)
}

async fn invite(
    state: &AppState,
    ctx: &Context,
    email: Email,
    is_superuser: bool,
) -> Result<User, ServiceError> {
    account_limits::count(state, AccountCounter::EmailsSent, &email.normalized()).await?;
    // A password nobody is told: the account cannot be signed in to until one is chosen.
    let unusable = SecretString::from(refresh::random_token());
    let password_hash = account::hash_new_password(state, &unusable, email.as_str()).await?;
    let token = refresh::random_token();
    let link = format!("{}/invitation?token={token}", state.public_url);
    let invited_by = ctx.actor.as_ref().map(|actor| actor.label.as_str());
    let message = mail::invitation(
        &state.mailer,
        email.as_str(),
        invited_by.unwrap_or("An administrator"),
        &link,
        &format!("{INVITATION_DAYS} days"),
    )
    .map_err(|e| InternalError::Mail(e.to_string()))?;
    let token_hash = refresh::hash(&token);
    let user = db::write(&state.pool, move |conn| {
        let user = users::insert(
            conn,
            NewUser {
                email: &email,
                password_hash: &password_hash,
                is_superuser,
            },
        )?;
        email_tokens::insert(
            conn,
            NewEmailToken {
                token_hash: &token_hash,
                user: &user,
                purpose: Purpose::Invite,
                ttl_secs: INVITATION_TTL.as_secs() as i64,
                new_email: None,
            },
        )?;
        outbox::insert(conn, message.row())?;
        Ok::<_, db::DbError>(user)
    })
    .await?;
    state.mailer.queued();
    Ok(user)
}

/// Sets the first password of an invited account with its link, once. Opening the link
/// proves the address, so the account is verified too.
pub async fn accept(
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
    let invited = db::run(&state.pool, move |conn| {
        email_tokens::find_good(conn, &lookup, Purpose::Invite)
    })
    .await?
    .ok_or(ServiceError::BadToken)?;
    let password_hash = account::hash_new_password(state, &password, &invited.email).await?;
    let (_, user) = db::write(&state.pool, move |conn| {
        let user = email_tokens::take(conn, &token_hash, Purpose::Invite)?
            .ok_or(ServiceError::BadToken)?;
        let changes = UserChanges {
            password_hash: Some(password_hash),
            is_verified: Some(true),
            ..Default::default()
        };
        let updated = account::apply_changes(conn, user.id, changes, None)?;
        // A reset link sent meanwhile would set the password again: the invitation settles it.
        email_tokens::use_up_all(conn, user.id, Purpose::Reset)?;
        Ok::<_, ServiceError>(updated)
    })
    .await?;
    log::info!("{} accepted their invitation", user.email);
    audit::record(state, ctx.own_event(AuditEvent::InvitationAccepted, &user)).await;
    Ok(user)
}
