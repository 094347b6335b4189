//! Security notices: messages that tell the owner of an address that something happened to
//! their account. They are sent after the change is stored, and a failure to send one is
//! logged, never undoes the change.

use time::macros::format_description;

use super::context::Context;
use crate::db::{self, outbox};
use crate::domain::{device_name, User};
use crate::mail::{self, Composed, EmailChange, FactorsChange, NewSignIn};
use crate::state::AppState;

/// Tells the address an account had (`before`) that it now has another (`after`), with when,
/// from where, and how to get the account back.
pub(super) async fn email_changed(state: &AppState, ctx: &Context, before: &User, after: &User) {
    let when = now_for_people();
    let from = ctx.origin.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let forgot_password_link = format!("{}/forgot-password", state.public_url);
    let by_owner = ctx
        .actor
        .as_ref()
        .is_some_and(|actor| actor.id == after.id.to_string());
    let change = EmailChange {
        new_address: &after.email,
        when: &when,
        from: &from,
        by_administrator: !by_owner,
        forgot_password_link: &forgot_password_link,
    };
    match mail::email_changed(&state.mailer, &before.email, &change) {
        Ok(message) => queue(state, message).await,
        Err(e) => log::error!(
            "could not compose the address-change notice to {}: {e}",
            before.email
        ),
    }
}

/// Tells a user that how they sign in changed (`what`, a sentence's start), with when, from
/// where, and what to do if it was not them.
pub(super) async fn factors_changed(state: &AppState, ctx: &Context, user: &User, what: &str) {
    let when = now_for_people();
    let from = ctx.origin.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let security_link = format!("{}/account/security", state.public_url);
    let forgot_password_link = format!("{}/forgot-password", state.public_url);
    let by_owner = ctx
        .actor
        .as_ref()
        .is_some_and(|actor| actor.id == user.id.to_string());
    let change = FactorsChange {
        what,
        when: &when,
        from: &from,
        by_administrator: !by_owner,
        security_link: &security_link,
        forgot_password_link: &forgot_password_link,
    };
    match mail::factors_changed(&state.mailer, &user.email, &change) {
        Ok(message) => queue(state, message).await,
        Err(e) => log::error!("could not compose the notice to {}: {e}", user.email),
    }
}

/// Tells a user that their account was signed in to from a device it has not been seen on,
/// and what to do if it was not them.
pub(super) async fn new_sign_in(state: &AppState, ctx: &Context, user: &User) {
    let when = now_for_people();
    let from = ctx.origin.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let device = device_name(ctx.origin.user_agent.as_deref());
    let account_link = format!("{}/account", state.public_url);
    let forgot_password_link = format!("{}/forgot-password", state.public_url);
    let sign_in = NewSignIn {
        device: &device,
        when: &when,
        from: &from,
        account_link: &account_link,
        forgot_password_link: &forgot_password_link,
    };
    match mail::new_sign_in(&state.mailer, &user.email, &sign_in) {
        Ok(message) => queue(state, message).await,
        Err(e) => log::error!(
            "could not compose the sign-in notice to {}: {e}",
            user.email
        ),
    }
}

fn now_for_people() -> String {
    time::OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// Puts a composed notice in the outbox: the one place notices leave this module.
async fn queue(state: &AppState, message: Composed) {
    let to = message.recipient.clone();
    let stored = db::write(&state.pool, move |conn| outbox::insert(conn, message.row())).await;
    match stored {
        Ok(()) => state.mailer.queued(),
        Err(e) => log::error!("could not queue the notice to {to}: {e}"),
    }
}
