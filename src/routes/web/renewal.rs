//! Renewal from the refresh cookie: when a browser's access cookie has expired but its
//! refresh cookie lives, authenticating rotates the refresh token (as `/auth/jwt/refresh`
//! does) and the new cookies go out with the answer, so a browser stays signed in without
//! JavaScript.

use actix_web::body::MessageBody;
use actix_web::cookie::Cookie;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

use super::client::origin_of;
use super::cookies::CookiePolicy;
use crate::auth::tokens::AccessGrant;
use crate::domain::User;
use crate::services::context::Context;
use crate::services::sessions::{self, Refreshed};
use crate::services::ServiceError;
use crate::state::AppState;

/// Cookies to set on the response because authenticating renewed or ended the browser's
/// session; [`apply_cookie_update`] sets them unless the handler set its own.
#[derive(Debug, Clone)]
pub struct CookieUpdate(pub Vec<Cookie<'static>>);

/// Rotates the refresh cookie's token, if the browser has one, and queues the new cookies for
/// the answer; returns whom the renewed session is for. `None` when there is no refresh cookie, or it was refused (the browser is then
/// told to forget both cookies).
pub async fn renew(
    req: &HttpRequest,
    state: &AppState,
    cookies: CookiePolicy,
) -> Result<Option<(User, AccessGrant)>, ServiceError> {
    let Some(refresh_token) = cookies.refresh_token(req) else {
        return Ok(None);
    };
    let ctx = Context::anonymous(origin_of(req, state));
    match sessions::refresh(state, &ctx, &refresh_token).await {
        Ok(Refreshed {
            tokens,
            user,
            grant,
        }) => {
            let renewed = cookies.signed_in(&tokens).into();
            req.extensions_mut().insert(CookieUpdate(renewed));
            Ok(Some((user, grant)))
        }
        Err(ServiceError::RefreshTokenInvalid) => {
            let forgotten = cookies.signed_out().into();
            req.extensions_mut().insert(CookieUpdate(forgotten));
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// Sets the cookies that [`renew`] queued, unless the handler itself set the access cookie
/// (login, logout).
pub async fn apply_cookie_update(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let mut response = next.call(req).await?;
    let update = response.request().extensions_mut().remove::<CookieUpdate>();
    if let Some(CookieUpdate(cookies)) = update {
        let handler_set_its_own = cookies.first().is_some_and(|access| {
            response
                .response()
                .cookies()
                .any(|set| set.name() == access.name())
        });
        if !handler_set_its_own {
            for cookie in cookies {
                response.response_mut().add_cookie(&cookie)?;
            }
        }
    }
    Ok(response)
}
