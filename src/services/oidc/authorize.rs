//! Authorization requests: checking them, sending the visitor to log in or to the consent
//! page, and issuing codes.

use uuid::Uuid;

use super::{CODE_TTL_SECS, SUPPORTED_SCOPES};
use crate::auth::oidc as crypto;
use crate::auth::refresh;
use crate::auth::tokens::AccessGrant;
use crate::db::oidc::CodeGrant;
use crate::db::{self, clients, oidc};
use crate::domain::{AuditEvent, Client, ClientId, Party, Scopes, User};
use crate::services::audit;
use crate::services::context::Context;
use crate::services::ServiceError;
use crate::state::AppState;

/// An authorization request's parameters as sent (query string or form).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct AuthorizationParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
}

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

/// Why an authorization request goes no further.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Unknown client: no redirect can be trusted, so a page says so.
    UnknownClient,
    /// The provider is off (HS256), or has no key for the application's ID tokens.
    Off,
    /// The redirect URI is missing or not registered: a page says so.
    BadRedirectUri,
    /// Sent back to the application (RFC 6749 §4.1.2.1, RFC 9207).
    Redirect(Redirect),
    /// The service could not answer (the database, say).
    Service(ServiceError),
}

impl From<ServiceError> for AuthorizeError {
    fn from(error: ServiceError) -> AuthorizeError {
        AuthorizeError::Service(error)
    }
}

impl From<db::DbError> for AuthorizeError {
    fn from(error: db::DbError) -> AuthorizeError {
        AuthorizeError::Service(error.into())
    }
}

/// Where the visitor's browser goes next: back to the application, with these parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect(pub String);

impl Redirect {
    /// `redirect_uri` with `params` (and `state` and `iss`) added to its query.
    fn to(request: &AuthorizationRequest, issuer: &str, params: &[(&str, &str)]) -> Redirect {
        Redirect::build(
            &request.redirect_uri,
            request.state.as_deref(),
            issuer,
            params,
        )
    }

    fn build(uri: &str, state: Option<&str>, issuer: &str, params: &[(&str, &str)]) -> Redirect {
        let mut url = url::Url::parse(uri).expect("registered redirect URIs are URLs");
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        Redirect(url.into())
    }

    fn error(
        request: &AuthorizationRequest,
        issuer: &str,
        error: &str,
        description: &str,
    ) -> AuthorizeError {
        AuthorizeError::Redirect(Redirect::to(
            request,
            issuer,
            &[("error", error), ("error_description", description)],
        ))
    }
}

/// Checks an authorization request: the client and redirect URI first (whose errors cannot
/// be sent back), then the rest (whose errors are).
pub async fn check_request(
    state: &AppState,
    params: &AuthorizationParams,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let id = params
        .client_id
        .as_deref()
        .and_then(ClientId::parse)
        .ok_or(AuthorizeError::UnknownClient)?;
    let client = db::run(&state.pool, move |conn| clients::find(conn, &id))
        .await?
        .map(|(client, _)| client)
        .filter(Client::is_application)
        .ok_or(AuthorizeError::UnknownClient)?;
    if !state.oidc_algorithms().contains(&client.id_token_alg) {
        return Err(AuthorizeError::Off);
    }
    let redirect_uri = params
        .redirect_uri
        .clone()
        .filter(|uri| client.allows_redirect(uri))
        .ok_or(AuthorizeError::BadRedirectUri)?;
    let mut request = AuthorizationRequest {
        client,
        redirect_uri,
        scopes: Scopes::default(),
        state: params.state.clone(),
        nonce: params.nonce.clone(),
        code_challenge: String::new(),
        prompt: Prompt::default(),
        max_age: None,
        login_hint: params.login_hint.clone(),
    };
    let issuer = state.issuer();
    let invalid = |request: &AuthorizationRequest, why| {
        Redirect::error(request, issuer, "invalid_request", why)
    };
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return Err(invalid(&request, "response_type is required")),
        Some(_) => {
            return Err(Redirect::error(
                &request,
                issuer,
                "unsupported_response_type",
                "only the code flow is supported (response_type=code)",
            ))
        }
    }
    request.code_challenge = match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (Some(challenge), Some("S256")) if crypto::is_s256_challenge(challenge) => {
            challenge.to_owned()
        }
        (Some(_), Some("S256")) => {
            return Err(invalid(&request, "code_challenge is not an S256 challenge"))
        }
        (None, _) | (_, None) => {
            return Err(invalid(
                &request,
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ))
        }
        (Some(_), Some(_)) => return Err(invalid(&request, "code_challenge_method must be S256")),
    };
    let scopes =
        Scopes::parse_space_separated(params.scope.as_deref().unwrap_or("")).map_err(|_| {
            Redirect::error(&request, issuer, "invalid_scope", "the scope is malformed")
        })?;
    if !scopes.iter().any(|scope| scope == "openid") {
        return Err(Redirect::error(
            &request,
            issuer,
            "invalid_scope",
            "the scope must include openid",
        ));
    }
    if !scopes.iter().all(|scope| SUPPORTED_SCOPES.contains(&scope)) {
        return Err(Redirect::error(
            &request,
            issuer,
            "invalid_scope",
            "a requested scope is not supported",
        ));
    }
    request.scopes = scopes;
    for value in params.prompt.as_deref().unwrap_or("").split(' ') {
        match value {
            "" | "select_account" => {}
            "none" => request.prompt.none = true,
            "login" => request.prompt.login = true,
            "consent" => request.prompt.consent = true,
            _ => return Err(invalid(&request, "prompt has an unknown value")),
        }
    }
    if request.prompt.none && (request.prompt.login || request.prompt.consent) {
        return Err(invalid(&request, "prompt=none cannot be combined"));
    }
    request.max_age = match params.max_age.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .ok()
                .filter(|age| *age >= 0)
                .ok_or_else(|| invalid(&request, "max_age must be a number of seconds"))?,
        ),
    };
    // `max_age=0` asks for a login now, as `prompt=login` does (OpenID Connect Core §3.1.2.1).
    if request.max_age == Some(0) {
        request.prompt.login = true;
    }
    Ok(request)
}

/// Who is asking at the authorization endpoint: the user signed in to the pages, with their
/// session's grant.
pub struct Visitor<'a> {
    pub user: &'a User,
    pub grant: AccessGrant,
}

/// What the authorization endpoint does next.
#[derive(Debug)]
pub enum Next {
    /// Send the visitor to the login page (again, when `fresh`: the login must be newer).
    Login { fresh: bool },
    /// Ask the visitor whether the application may have what it asks for.
    Consent,
    /// Back to the application.
    Redirect(Redirect),
}

/// Decides what an authorization request needs, given who is signed in. `stale_session` is
/// the session this request found when it last sent the visitor to log in again: any other
/// session is a newer login, which satisfies `prompt=login` and `max_age`.
pub async fn decide(
    state: &AppState,
    ctx: &Context,
    request: &AuthorizationRequest,
    visitor: Option<Visitor<'_>>,
    stale_session: Option<Uuid>,
) -> Result<Next, AuthorizeError> {
    let issuer = state.issuer();
    let Some(visitor) = visitor else {
        if request.prompt.none {
            return Err(Redirect::error(
                request,
                issuer,
                "login_required",
                "nobody is signed in",
            ));
        }
        return Ok(Next::Login { fresh: false });
    };
    let auth_time = visitor.grant.auth_time;
    let logged_in_again = stale_session.is_some_and(|stale| stale != visitor.grant.session_id);
    let too_old = request
        .max_age
        .is_some_and(|max_age| db::now() - auth_time > max_age);
    if (request.prompt.login || too_old) && !logged_in_again {
        if request.prompt.none {
            return Err(Redirect::error(
                request,
                issuer,
                "login_required",
                "the login is older than max_age",
            ));
        }
        return Ok(Next::Login { fresh: true });
    }
    let (user_id, client_id) = (visitor.user.id, request.client.id.clone());
    let allowed = db::run(&state.pool, move |conn| {
        oidc::consent(conn, user_id, &client_id)
    })
    .await?;
    let consented = allowed.is_some_and(|allowed| request.scopes.is_subset_of(&allowed));
    if request.client.skip_consent || (consented && !request.prompt.consent) {
        let redirect = issue_code(state, ctx, request, visitor, false).await?;
        return Ok(Next::Redirect(redirect));
    }
    if request.prompt.none {
        return Err(Redirect::error(
            request,
            issuer,
            "consent_required",
            "the user has not allowed this application",
        ));
    }
    Ok(Next::Consent)
}

/// The visitor's answer on the consent page.
pub async fn answer_consent(
    state: &AppState,
    ctx: &Context,
    request: &AuthorizationRequest,
    visitor: Visitor<'_>,
    allowed: bool,
) -> Result<Redirect, AuthorizeError> {
    if !allowed {
        log::info!(
            "user {} denied {} ({})",
            visitor.user.id,
            request.client.id,
            request.client.name
        );
        return Err(Redirect::error(
            request,
            state.issuer(),
            "access_denied",
            "the user denied the request",
        ));
    }
    issue_code(state, ctx, request, visitor, true).await
}

/// Remembers the consent and issues a code for the request.
async fn issue_code(
    state: &AppState,
    ctx: &Context,
    request: &AuthorizationRequest,
    visitor: Visitor<'_>,
    asked: bool,
) -> Result<Redirect, AuthorizeError> {
    let code = refresh::random_token();
    let grant = CodeGrant {
        client_id: request.client.id.clone(),
        user_id: visitor.user.id,
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scopes: request.scopes.clone(),
        methods: visitor.grant.methods,
        auth_time: visitor.grant.auth_time,
    };
    let code_hash = refresh::hash(&code);
    db::write(&state.pool, move |conn| {
        oidc::record_consent(conn, grant.user_id, &grant.client_id, &grant.scopes)?;
        oidc::insert_code(conn, &code_hash, &grant, CODE_TTL_SECS)
    })
    .await
    .map_err(ServiceError::from)?;
    if asked {
        let mut event = ctx.event(AuditEvent::ConsentGiven, Some(Party::from(visitor.user)));
        event.detail = Some(format!(
            "{} ({}): {}",
            request.client.name,
            request.client.id,
            request.scopes.to_space_separated()
        ));
        audit::record(state, event).await;
    }
    Ok(Redirect::to(request, state.issuer(), &[("code", &code)]))
}
