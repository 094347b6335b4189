//! The browser's side of the OpenID Connect provider: `/oauth/authorize` (with the login
//! detour and the consent page), `/oauth/consent`, and `/oauth/logout`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::Authenticated;
use crate::routes::web::{
    flash, render, see_other, signed_out_redirect, CsrfForm, Layout, SignedIn, Visitor,
};
use crate::services::context::{Context, Origin};
use crate::services::oidc::{
    self, AuthorizationParams, AuthorizationRequest, AuthorizeError, Next,
};
use crate::services::sessions;
use crate::state::AppState;

/// The page session's note of the request (by its PKCE challenge, unique to it) that sent
/// the visitor to log in again (`prompt=login`, `max_age`), and of the session it found: a
/// login into any other session satisfies that request, and no other.
const STALE_SESSION: &str = "oidc_stale_session";

#[derive(Template)]
#[template(path = "oauth_consent.html")]
struct ConsentPage {
    layout: Layout,
    app_name: String,
    email: String,
    /// What the application asks for, in plain words.
    asks: Vec<&'static str>,
    /// The authorization request, carried to the answer.
    fields: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "oauth_error.html")]
struct ErrorPage {
    layout: Layout,
    message: &'static str,
}

#[derive(Template)]
#[template(path = "oauth_logout.html")]
struct LogoutPage {
    layout: Layout,
    fields: Vec<(&'static str, String)>,
}

/// `GET /oauth/authorize`.
pub async fn authorize_get(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    Visitor(visitor): Visitor,
    params: web::Query<AuthorizationParams>,
) -> Result<HttpResponse, PageError> {
    authorize(&state, &session, origin, visitor, params.into_inner()).await
}

/// `POST /oauth/authorize`: the same request as a form (OpenID Connect Core §3.1.2.1).
pub async fn authorize_post(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    Visitor(visitor): Visitor,
    params: web::Form<AuthorizationParams>,
) -> Result<HttpResponse, PageError> {
    authorize(&state, &session, origin, visitor, params.into_inner()).await
}

async fn authorize(
    state: &AppState,
    session: &Session,
    origin: Origin,
    visitor: Option<Authenticated>,
    params: AuthorizationParams,
) -> Result<HttpResponse, PageError> {
    let request = match oidc::check_request(state, &params).await {
        Ok(request) => request,
        Err(error) => return refused(state, session, visitor.as_ref(), error),
    };
    let stale_session = session
        .get::<(String, Uuid)>(STALE_SESSION)
        .unwrap_or(None)
        .filter(|(challenge, _)| *challenge == request.code_challenge)
        .map(|(_, stale)| stale);
    let ctx = context(visitor.as_ref(), origin);
    let asking = visitor.as_ref().map(|auth| oidc::Visitor {
        user: &auth.user,
        grant: auth.grant,
    });
    match oidc::decide(state, &ctx, &request, asking, stale_session).await {
        Ok(Next::Login { fresh }) => {
            if let (true, Some(auth)) = (fresh, &visitor) {
                let note = (&request.code_challenge, auth.grant.session_id);
                session
                    .insert(STALE_SESSION, note)
                    .map_err(PageError::internal)?;
            }
            Ok(see_other(&login_url(&params, &request)))
        }
        Ok(Next::Consent) => {
            let auth = visitor
                .as_ref()
                .expect("consent is asked of a signed-in visitor");
            let page = ConsentPage {
                layout: Layout::new(state, session, Some(auth))?,
                app_name: request.client.name.clone(),
                email: auth.user.email.clone(),
                asks: plain_words(&request),
                fields: hidden_fields(&params),
            };
            render(StatusCode::OK, &page)
        }
        Ok(Next::Redirect(redirect)) => {
            session.remove(STALE_SESSION);
            Ok(see_other(&redirect.0))
        }
        Err(error) => refused(state, session, visitor.as_ref(), error),
    }
}

/// The consent form: the authorization request again, and the visitor's answer.
#[derive(Deserialize)]
pub struct ConsentFields {
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    params: AuthorizationParams,
}

/// `POST /oauth/consent`: "Allow" or "Deny".
pub async fn consent(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    CsrfForm(form): CsrfForm<ConsentFields>,
    SignedIn(auth): SignedIn,
) -> Result<HttpResponse, PageError> {
    let allowed = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return Err(PageError::BadRequest),
    };
    let request = match oidc::check_request(&state, &form.params).await {
        Ok(request) => request,
        Err(error) => return refused(&state, &session, Some(&auth), error),
    };
    let ctx = Context::user(&auth.user, origin);
    let visitor = oidc::Visitor {
        user: &auth.user,
        grant: auth.grant,
    };
    match oidc::answer_consent(&state, &ctx, &request, visitor, allowed).await {
        Ok(redirect) => {
            session.remove(STALE_SESSION);
            Ok(see_other(&redirect.0))
        }
        Err(error) => refused(&state, &session, Some(&auth), error),
    }
}

/// The parameters of an RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
#[derive(Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

/// `GET /oauth/logout`: with a valid `id_token_hint`, signs out at once and goes back to the
/// application; otherwise asks first.
pub async fn logout_get(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    Visitor(visitor): Visitor,
    params: web::Query<LogoutParams>,
) -> Result<HttpResponse, PageError> {
    let hinted = match params.id_token_hint.as_deref() {
        Some(hint) => oidc::read_logout_hint(&state, hint).await?,
        None => None,
    };
    let Some((client, _)) = hinted else {
        let page = LogoutPage {
            layout: Layout::new(&state, &session, visitor.as_ref())?,
            fields: [
                ("post_logout_redirect_uri", &params.post_logout_redirect_uri),
                ("state", &params.state),
                ("client_id", &params.client_id),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.clone().map(|value| (name, value)))
            .collect(),
        };
        return render(StatusCode::OK, &page);
    };
    let back = match params.post_logout_redirect_uri.as_deref() {
        None => None,
        Some(uri) => match oidc::post_logout_redirect(&client, uri, params.state.as_deref()) {
            Some(back) => Some(back),
            None => {
                return error_page(
                    &state,
                    &session,
                    visitor.as_ref(),
                    "That sign-out address is not registered for the application.",
                )
            }
        },
    };
    sign_out(&state, &session, origin, visitor, back.as_deref()).await
}

/// The confirmation form of a logout without a valid hint.
#[derive(Deserialize)]
pub struct LogoutFields {
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

/// `POST /oauth/logout`: the visitor confirmed. Goes back to the application only to a URI
/// it registered.
pub async fn logout_post(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    CsrfForm(form): CsrfForm<LogoutFields>,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let mut back = None;
    if let (Some(client_id), Some(uri)) = (&form.client_id, &form.post_logout_redirect_uri) {
        if let Some(client) = oidc::find_application(&state, client_id).await? {
            back = oidc::post_logout_redirect(&client, uri, form.state.as_deref());
        }
    }
    sign_out(&state, &session, origin, visitor, back.as_deref()).await
}

/// Ends the browser's Gatehouse session and goes `back`, or home.
async fn sign_out(
    state: &AppState,
    session: &Session,
    origin: Origin,
    visitor: Option<Authenticated>,
    back: Option<&str>,
) -> Result<HttpResponse, PageError> {
    if let Some(auth) = visitor {
        let ctx = Context::user(&auth.user, origin);
        sessions::logout(state, &ctx, auth.grant).await?;
    }
    if back.is_none() {
        flash::success(session, "You have been logged out.");
    }
    signed_out_redirect(state, session, back.unwrap_or("/"))
}

/// An authorization request that goes no further: back to the application when its
/// redirect URI can be trusted, else a page.
fn refused(
    state: &AppState,
    session: &Session,
    visitor: Option<&Authenticated>,
    error: AuthorizeError,
) -> Result<HttpResponse, PageError> {
    match error {
        AuthorizeError::Redirect(redirect) => Ok(see_other(&redirect.0)),
        AuthorizeError::UnknownClient => error_page(
            state,
            session,
            visitor,
            "The application that sent you here is not registered with this server.",
        ),
        AuthorizeError::Off => error_page(
            state,
            session,
            visitor,
            "This server cannot sign you in to other applications at the moment (it has no \
             key to sign their tokens with).",
        ),
        AuthorizeError::BadRedirectUri => error_page(
            state,
            session,
            visitor,
            "The application that sent you here asked to send you back to an address it has \
             not registered, so you have not been sent anywhere.",
        ),
        AuthorizeError::Service(error) => Err(error.into()),
    }
}

fn error_page(
    state: &AppState,
    session: &Session,
    visitor: Option<&Authenticated>,
    message: &'static str,
) -> Result<HttpResponse, PageError> {
    let page = ErrorPage {
        layout: Layout::new(state, session, visitor)?,
        message,
    };
    render(StatusCode::BAD_REQUEST, &page)
}

fn context(visitor: Option<&Authenticated>, origin: Origin) -> Context {
    match visitor {
        Some(auth) => Context::user(&auth.user, origin),
        None => Context::anonymous(origin),
    }
}

/// The login page, coming back to this request afterwards (as a GET).
fn login_url(params: &AuthorizationParams, request: &AuthorizationRequest) -> String {
    let back = format!(
        "/oauth/authorize?{}",
        serde_urlencoded::to_string(params).unwrap_or_default()
    );
    let mut query = vec![("next", back.as_str())];
    if let Some(hint) = request.login_hint.as_deref() {
        query.push(("email", hint));
    }
    format!(
        "/login?{}",
        serde_urlencoded::to_string(query).unwrap_or_default()
    )
}

/// The request's parameters, as hidden fields of the consent form.
fn hidden_fields(params: &AuthorizationParams) -> Vec<(&'static str, String)> {
    let AuthorizationParams {
        response_type,
        client_id,
        redirect_uri,
        scope,
        state,
        nonce,
        code_challenge,
        code_challenge_method,
        // The visitor is answering now: whatever `prompt` asked for has been done.
        prompt: _,
        max_age,
        login_hint,
    } = params.clone();
    [
        ("response_type", response_type),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", code_challenge),
        ("code_challenge_method", code_challenge_method),
        ("max_age", max_age),
        ("login_hint", login_hint),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|value| (name, value)))
    .collect()
}

/// What the application asks for, as people would say it (who you are first).
fn plain_words(request: &AuthorizationRequest) -> Vec<&'static str> {
    oidc::SUPPORTED_SCOPES
        .into_iter()
        .filter(|scope| request.scopes.iter().any(|asked| asked == *scope))
        .filter_map(|scope| match scope {
            "openid" => Some("know who you are (your account’s ID)"),
            "email" => Some("see your email address"),
            "profile" => Some("see your basic profile"),
            "offline_access" => Some("stay signed in, even when you are not using it"),
            _ => None,
        })
        .collect()
}
