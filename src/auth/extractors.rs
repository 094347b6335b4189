//! The one way a handler learns who is asking.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::tokens::AccessGrant;
use crate::domain::User;
use crate::errors::ApiError;
use crate::services::sessions;
use crate::startup::AppState;

/// An authenticated, active user, loaded fresh on every request (so deactivation, deletion,
/// demotion, password changes and logouts take effect at once).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub grant: AccessGrant,
}

/// An [`AuthUser`] who is a superuser; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct Superuser(pub AuthUser);

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or(ApiError::Internal)?;
            let token = token.ok_or(ApiError::Unauthorized {
                invalid_token: false,
            })?;
            let (user, grant) = sessions::authenticate(&state, &token)
                .await
                .map_err(ApiError::from)?;
            Ok(AuthUser { user, grant })
        })
    }
}

impl FromRequest for Superuser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Superuser, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let authenticated = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let auth = authenticated.await?;
            if !auth.user.is_superuser {
                return Err(ApiError::Forbidden);
            }
            Ok(Superuser(auth))
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}
