//! The one way a handler learns who is asking: a bearer token, or the browser's cookies.
//!
//! [`identify`] does the work for every extractor: it reads `Authorization: Bearer` first and
//! the access cookie otherwise, verifies the token and loads the user and their session. When
//! the access cookie has expired (or is gone) but the refresh cookie still lives, it renews
//! the browser's session (see [`super::renewal`]).
//!
//! The JSON extractors ([`AuthUser`], [`Superuser`]) answer with the API's errors and demand
//! the CSRF header on cookie-authenticated state changes; the page extractors ([`Visitor`],
//! [`SignedIn`], [`PageSuperuser`]) redirect to the login page or render the 403 page (page
//! forms prove CSRF through [`super::CsrfForm`]).

use std::future::Future;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use uuid::Uuid;

use super::cookies::CookiePolicy;
use super::csrf;
use super::errors::{ApiError, PageError, SignedInHeader};
use super::renewal;
use crate::auth::tokens::AccessGrant;
use crate::domain::{Client, Scopes, User};
use crate::services::sessions::Principal;
use crate::services::{legacy_tokens, sessions, ServiceError};
use crate::state::AppState;

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Bearer,
    Cookie,
}

/// A verified caller: an active user in a live session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub grant: AccessGrant,
    pub transport: Transport,
}

impl Authenticated {
    /// The session whose CSRF token this request must present for a state change: the one
    /// the cookie authenticated. A bearer token is no ambient credential, so it has none.
    pub fn csrf_session(&self) -> Option<Uuid> {
        (self.transport == Transport::Cookie).then_some(self.grant.session_id)
    }
}

/// The session a visitor's forms are bound to, if the cookie signed them in.
pub fn csrf_session(visitor: Option<&Authenticated>) -> Option<Uuid> {
    visitor.and_then(Authenticated::csrf_session)
}

/// Who is asking, if anyone.
#[derive(Debug, Clone)]
pub enum Identity {
    Known(Authenticated),
    /// A machine client, with the scopes its token carries.
    Client(Client, Scopes),
    /// `token_presented`: a token or cookie came with the request but was refused.
    Anonymous {
        token_presented: bool,
    },
}

/// Authenticates a request by bearer token or cookie (see the module documentation). The
/// cookie's verdict is kept for the rest of the request, so that the extractors of one
/// handler (a CSRF-checked form and the signed-in user, say) agree, and a renewal happens once.
pub async fn identify(req: &HttpRequest, state: &AppState) -> Result<Identity, ServiceError> {
    if let Some(token) = bearer_token(req) {
        // Only a bearer token may be the old fastapi-users backend's (LEGACY_JWT_SECRET).
        return known_or_refused(
            legacy_tokens::authenticate_bearer(state, &token).await,
            Transport::Bearer,
        );
    }
    if let Some(known) = req.extensions().get::<Identity>() {
        return Ok(known.clone());
    }
    let identity = identify_by_cookie(req, state).await?;
    req.extensions_mut().insert(identity.clone());
    Ok(identity)
}

async fn identify_by_cookie(req: &HttpRequest, state: &AppState) -> Result<Identity, ServiceError> {
    let cookies = CookiePolicy::of(state);
    let access = cookies.access_token(req);
    if let Some(token) = &access {
        match sessions::authenticate(state, token).await {
            Err(ServiceError::Unauthenticated { .. }) => {} // expired or revoked: try to renew
            outcome => return known_or_refused(outcome, Transport::Cookie),
        }
    }
    match renewal::renew(req, state, cookies).await? {
        Some((user, grant)) => Ok(Identity::Known(Authenticated {
            user,
            grant,
            transport: Transport::Cookie,
        })),
        // No refresh cookie, or a refused one.
        None => Ok(Identity::Anonymous {
            token_presented: access.is_some() || cookies.refresh_token(req).is_some(),
        }),
    }
}

fn known_or_refused(
    outcome: Result<Principal, ServiceError>,
    transport: Transport,
) -> Result<Identity, ServiceError> {
    match outcome {
        Ok(Principal::User(user, grant)) => Ok(Identity::Known(Authenticated {
            user,
            grant,
            transport,
        })),
        Ok(Principal::Client(client, scopes)) => Ok(Identity::Client(client, scopes)),
        Err(ServiceError::Unauthenticated { token_presented }) => {
            Ok(Identity::Anonymous { token_presented })
        }
        Err(other) => Err(other),
    }
}

type Extracted<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

/// Runs [`identify`] for an extractor, with the app state the request carries.
fn identify_request<E: From<ServiceError> + 'static>(
    req: &HttpRequest,
) -> Extracted<(HttpRequest, Identity), E> {
    let req = req.clone();
    Box::pin(async move {
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .expect("AppState is registered");
        let identity = identify(&req, &state).await?;
        Ok((req, identity))
    })
}

/// An authenticated, active user, for the JSON API. A state-changing request authenticated by
/// the cookie must carry the CSRF header (403 `CSRF_FAILED` otherwise).
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
    type Future = Extracted<AuthUser, ApiError>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let identified = identify_request::<ApiError>(req);
        Box::pin(async move {
            match identified.await? {
                (req, Identity::Known(auth)) => AuthUser::checked(&req, auth),
                // A client's token is valid, but not for routes about a user.
                (_, Identity::Client(..)) => Err(ApiError::Unauthorized {
                    invalid_token: true,
                }),
                (_, Identity::Anonymous { token_presented }) => Err(ApiError::Unauthorized {
                    invalid_token: token_presented,
                }),
            }
        })
    }
}

impl AuthUser {
    /// A state change authenticated by the cookie must carry the CSRF header.
    fn checked(req: &HttpRequest, auth: Authenticated) -> Result<AuthUser, ApiError> {
        let needs_csrf = auth.transport == Transport::Cookie && !req.method().is_safe();
        if needs_csrf {
            let state = req
                .app_data::<web::Data<AppState>>()
                .expect("AppState is registered");
            let (session, token) = (req.get_session(), csrf::header_token(req));
            if !csrf::verify(req, state, &session, auth.csrf_session(), token) {
                return Err(ApiError::CsrfFailed);
            }
        }
        Ok(AuthUser {
            user: auth.user,
            grant: auth.grant,
        })
    }
}

/// Anyone with a valid access token, user or machine client: for resources both may use.
#[derive(Debug, Clone)]
pub enum Caller {
    User(AuthUser),
    Client { client: Client, scopes: Scopes },
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Extracted<Caller, ApiError>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let identified = identify_request::<ApiError>(req);
        Box::pin(async move {
            match identified.await? {
                (req, Identity::Known(auth)) => AuthUser::checked(&req, auth).map(Caller::User),
                (_, Identity::Client(client, scopes)) => Ok(Caller::Client { client, scopes }),
                (_, Identity::Anonymous { token_presented }) => Err(ApiError::Unauthorized {
                    invalid_token: token_presented,
                }),
            }
        })
    }
}

impl FromRequest for Superuser {
    type Error = ApiError;
    type Future = Extracted<Superuser, ApiError>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let authenticated = AuthUser::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let auth = authenticated.await?;
            if !auth.user.is_superuser {
                return Err(ApiError::Forbidden);
            }
            if !second_factor_policy_met(&req, &auth.grant) {
                return Err(ServiceError::MfaRequired.into());
            }
            Ok(Superuser(auth))
        })
    }
}

/// Whoever visits a page: signed in or not. Never refuses.
#[derive(Debug, Clone)]
pub struct Visitor(pub Option<Authenticated>);

impl FromRequest for Visitor {
    type Error = PageError;
    type Future = Extracted<Visitor, PageError>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let identified = identify_request::<PageError>(req);
        Box::pin(async move {
            match identified.await?.1 {
                Identity::Known(auth) => Ok(Visitor(Some(auth))),
                Identity::Client(..) | Identity::Anonymous { .. } => Ok(Visitor(None)),
            }
        })
    }
}

/// A signed-in user on a page; anyone else is sent to `/login?next=<this page>`.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Authenticated);

impl FromRequest for SignedIn {
    type Error = PageError;
    type Future = Extracted<SignedIn, PageError>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let identified = identify_request::<PageError>(req);
        Box::pin(async move {
            match identified.await? {
                (_, Identity::Known(auth)) => Ok(SignedIn(auth)),
                (req, Identity::Client(..) | Identity::Anonymous { .. }) => {
                    Err(PageError::login_required(&req))
                }
            }
        })
    }
}

/// A signed-in superuser on a page; other signed-in users get the 403 page.
#[derive(Debug, Clone)]
pub struct PageSuperuser(pub Authenticated);

impl FromRequest for PageSuperuser {
    type Error = PageError;
    type Future = Extracted<PageSuperuser, PageError>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let SignedIn(auth) = signed_in.await?;
            if !auth.user.is_superuser {
                return Err(PageError::Forbidden(signed_in_header(&req, &auth)));
            }
            if !second_factor_policy_met(&req, &auth.grant) {
                return Err(PageError::MfaRequired(signed_in_header(&req, &auth)));
            }
            Ok(PageSuperuser(auth))
        })
    }
}

/// The header of the 403 page for someone signed in.
fn signed_in_header(req: &HttpRequest, auth: &Authenticated) -> Option<Box<SignedInHeader>> {
    let state = req.app_data::<web::Data<AppState>>()?;
    let csrf_token = csrf::token(state, &req.get_session(), auth.csrf_session()).ok()?;
    Some(Box::new(SignedInHeader {
        email: auth.user.email.clone(),
        is_superuser: auth.user.is_superuser,
        csrf_token,
    }))
}

/// Whether a superuser's session used a second factor, when `MFA_REQUIRED` asks for one.
fn second_factor_policy_met(req: &HttpRequest, grant: &AccessGrant) -> bool {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered");
    !state.mfa_policy.applies_to(true) || grant.methods.is_multi_factor()
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub(crate) fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}
