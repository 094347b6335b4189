//! The old fastapi-users backend's access tokens, during a move to Gatehouse
//! (`LEGACY_JWT_SECRET`): accepted as bearer tokens on the routes a user's token opens, until
//! they expire, for users who exist here, are active (and verified, when that is required).
//!
//! Such a token has no Gatehouse session, so the rules that end sessions reach it another way:
//! whatever ends every session of a user (a password change or reset, a deactivation, "log out
//! everywhere", a superuser's "end all sessions") also ends every old-backend token of theirs
//! issued before (`db::legacy_tokens`; fastapi-users' tokens carry no `iat`, so for them that
//! is every token, whenever it was made). Logging out with one ends every old-backend token of
//! its user, as they cannot be told apart (`sessions::logout_scoped`). Refresh tokens were never part of fastapi-users'
//! JWT backend: when one expires, the client logs in to Gatehouse.

use super::sessions::{self, Principal};
use super::ServiceError;
use crate::auth::legacy_tokens::NO_SESSION;
use crate::auth::tokens::AccessGrant;
use crate::db::{self, legacy_tokens, users, DbError};
use crate::domain::AuthMethods;
use crate::state::AppState;

/// Authenticates a bearer token: as Gatehouse's own first, then, when `LEGACY_JWT_SECRET` is
/// set and Gatehouse refused it, as the old backend's. Counts each request an old token makes.
pub async fn authenticate_bearer(state: &AppState, token: &str) -> Result<Principal, ServiceError> {
    let native = sessions::authenticate(state, token).await;
    let (Err(ServiceError::Unauthenticated { .. }), Some(legacy)) = (&native, &state.legacy_tokens)
    else {
        return native;
    };
    let grant = match legacy.verify(token) {
        Ok(grant) => grant,
        Err(_) => return native,
    };
    let user_id = grant.user_id;
    let (user, cutoff) = db::run(&state.pool, move |conn| {
        Ok::<_, DbError>((
            users::find_by_id(conn, user_id)?,
            legacy_tokens::cutoff(conn, user_id)?,
        ))
    })
    .await?;
    let Some(user) = user else {
        return native;
    };
    let unverified = state.email.require_verification && !user.is_verified;
    if !user.is_active || unverified {
        return native;
    }
    // A token issued before its user's tokens were ended, or of unknown age after that.
    if let Some(cutoff) = cutoff {
        if grant.issued_at.is_none_or(|issued| issued <= cutoff) {
            log::debug!("an old backend's token of user {user_id} was ended");
            return native;
        }
    }
    state.metrics.legacy_token_accepted();
    let grant = AccessGrant {
        user_id,
        session_id: NO_SESSION,
        refresh_generation: None,
        methods: AuthMethods::PASSWORD,
        auth_time: grant.issued_at.unwrap_or(0),
    };
    Ok(Principal::User(user, grant))
}
