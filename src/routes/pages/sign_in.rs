//! What every completed page login does, whichever way it was proved (a password, or a
//! password and a second factor): the cookies, the end of the browser's previous session, and
//! the detour `MFA_REQUIRED` asks of a user without a second factor.

use actix_session::Session;
use actix_web::HttpResponse;

use crate::auth::tokens::AccessGrant;
use crate::routes::web::cookies::CookiePolicy;
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::Authenticated;
use crate::routes::web::{flash, signed_in_redirect};
use crate::services::context::Context;
use crate::services::sessions::{self, LoggedIn};
use crate::services::users;
use crate::state::AppState;

/// Where a login goes when it names no `next`.
pub(super) const AFTER_LOGIN: &str = "/account";
/// Where `MFA_REQUIRED` sends a user without a second factor after signing in.
pub(super) const SET_UP_A_FACTOR: &str = "/account/security";
pub(super) const FACTOR_NEEDED: &str =
    "Your account needs a second factor. Set up an authenticator app to finish signing in safely.";

/// Signs the browser in to the session of a completed login (its cookies, as every page login
/// sets them) and sends it on to `next`, or to set up a second factor when `MFA_REQUIRED` asks
/// this user for one and the login used none.
pub(super) async fn after_login(
    state: &AppState,
    session: &Session,
    logged_in: LoggedIn,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let next = if lacks_required_factor(state, &logged_in.grant).await? {
        flash::info(session, FACTOR_NEEDED);
        SET_UP_A_FACTOR
    } else {
        next
    };
    let mut response = signed_in_redirect(state, session, &logged_in.tokens, next)?;
    let device = CookiePolicy::of(state).device(logged_in.device_cookie);
    response.add_cookie(&device).map_err(PageError::internal)?;
    Ok(response)
}

/// A login that used one factor belongs to an account without a second one (else it would
/// have been asked for).
async fn lacks_required_factor(state: &AppState, grant: &AccessGrant) -> Result<bool, PageError> {
    if grant.methods.is_multi_factor() || !state.mfa_policy.applies_to(true) {
        return Ok(false);
    }
    let user = users::get(state, grant.user_id).await?;
    Ok(state.mfa_policy.applies_to(user.is_superuser))
}

/// A browser that signs in again (as anyone) leaves its previous session: end it, rather
/// than leave it live with no cookie pointing at it.
pub(super) async fn end_previous_session(
    state: &AppState,
    ctx: &Context,
    previous: Option<Authenticated>,
) -> Result<(), PageError> {
    if let Some(previous) = previous {
        let ctx = Context::user(&previous.user, ctx.origin.clone());
        sessions::logout(state, &ctx, previous.grant).await?;
    }
    Ok(())
}
