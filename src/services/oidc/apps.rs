//! Applications as users and logouts see them: connected apps, "Remove access", and the
//! client and user a logout's `id_token_hint` names.

use crate::auth::oidc as crypto;
use crate::db::oidc::ConnectedApp;
use crate::db::{self, clients, oidc};
use crate::domain::{AuditEvent, Client, ClientId, Party, User, UserId};
use crate::services::audit;
use crate::services::context::Context;
use crate::services::ServiceError;
use crate::state::AppState;

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
