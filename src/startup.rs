//! Builds the application from settings: database, keys, hasher, routes, server.

use std::net::TcpListener;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{
    from_fn, Condition, ErrorHandlerResponse, ErrorHandlers, Logger, Next,
};
use actix_web::{web, App, HttpMessage, HttpServer, ResponseError};
use futures_util::future::{join, select, Either};

use crate::auth::cookies::CookiePolicy;
use crate::auth::extractors::CookieUpdate;
use crate::auth::keys::{KeyError, SigningKeys};
use crate::auth::password::{HashError, PasswordHasher};
use crate::auth::refresh::RefreshTokens;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::AccessTokens;
use crate::config::{EmailSettings, Environment, RefreshSettings, Settings};
use crate::db::{self, email_tokens, secrets, sessions, throttle, DbError, Pool};
use crate::domain::PasswordPolicy;
use crate::errors::{ApiError, FieldError, PageError};
use crate::mail::{MailError, MailWorker, Mailer};
use crate::metrics::{self, Metrics};
use crate::routes;

mod shutdown;
use shutdown::{close, stop_on_signals, StopSignals};

/// Everything a request handler may need, shared by all workers.
pub struct AppState {
    pub pool: Pool,
    pub hasher: PasswordHasher,
    pub access_tokens: Arc<AccessTokens>,
    pub refresh_tokens: RefreshTokens,
    pub refresh: RefreshSettings,
    pub password_policy: PasswordPolicy,
    pub cookies: CookiePolicy,
    /// Encrypts the page-session cookie (CSRF token, flash messages).
    pub session_key: Key,
    pub throttle: Throttle,
    pub mailer: Mailer,
    pub email: EmailSettings,
    /// The base of links in emails, without a trailing slash.
    pub public_url: String,
    pub metrics: Metrics,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("password hashing: {0}")]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("cannot watch for SIGTERM and SIGINT: {0}")]
    Signals(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl AppState {
    /// Opens and migrates the database, loads the keys and prepares the hasher.
    pub fn build(settings: &Settings) -> Result<(AppState, MailWorker), StartupError> {
        let pool = db::connect(&settings.database_url, settings.pool())?;
        for migration in db::migrate(&pool)? {
            log::info!("applied migration {migration}");
        }
        let keys = SigningKeys::load(&settings.jwt)?;
        if let Some(path) = &keys.generated_at {
            log::warn!(
                "no signing key configured: generated a development ES256 key in {path} \
                 (set JWT_JWKS for production; see `gatehouse keys generate`)"
            );
        }
        // Kept in the database rather than derived from the signing key: a key rotation must
        // not break refresh-token chains or browsers' page sessions.
        let mut conn = pool.get().map_err(DbError::from)?;
        let refresh_tokens =
            RefreshTokens::new(secrets::get_or_create(&mut conn, "refresh-token-chain/v1")?);
        let session_key = Key::derive_from(&secrets::get_or_create(&mut conn, "page-session/v1")?);
        drop(conn);
        let (mailer, mail_worker) = Mailer::new(&settings.email)?;
        let metrics = Metrics::new(pool.clone(), settings.metrics_token.as_ref());
        let state = AppState {
            pool,
            hasher: PasswordHasher::new(settings.hashing)?,
            access_tokens: Arc::new(AccessTokens::new(keys, &settings.jwt)),
            refresh_tokens,
            refresh: settings.refresh.clone(),
            password_policy: settings.password_policy.into(),
            cookies: CookiePolicy::new(settings.cookie_secure, settings.refresh.ttl),
            session_key,
            throttle: Throttle::new(&settings.rate_limit),
            mailer,
            email: settings.email.clone(),
            public_url: settings.public_url.clone(),
            metrics,
        };
        Ok((state, mail_worker))
    }
}

/// How often expired sessions and used refresh tokens are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    mail_worker: MailWorker,
    signals: StopSignals,
    shutdown_timeout: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let (state, mail_worker) = AppState::build(&settings)?;
        log::info!("emails go to {}", mail_worker.describe());
        if !settings.rate_limit.enabled {
            log::warn!("RATE_LIMIT=off: logins, signups and emails are not throttled");
        }
        if settings.metrics_token.is_none() && settings.environment == Environment::Production {
            log::warn!("METRICS_TOKEN is not set: anyone who can reach /metrics can read it");
        }
        let state = web::Data::new(state);
        let bind_error = |source| StartupError::Bind {
            addr: settings.bind_addr.clone(),
            source,
        };
        // Watched before the first connection: until then, SIGTERM would kill the process.
        let signals = StopSignals::watch().map_err(StartupError::Signals)?;
        let listener = TcpListener::bind(&settings.bind_addr).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let app_state = state.clone();
        // The access log costs a few allocations per request; skip it when it would be dropped.
        let log_requests =
            log::log_enabled!(target: "actix_web::middleware::logger", log::Level::Info);
        let api_document = routes::api::openapi::document(state.cookies.access_name());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(web::PayloadConfig::new(routes::api::body::MAX_BODY_BYTES))
                .app_data(web::QueryConfig::default().error_handler(bad_query))
                .wrap(from_fn(apply_cookie_update))
                .wrap(page_session(&app_state))
                .wrap(ErrorHandlers::new().handler(StatusCode::METHOD_NOT_ALLOWED, json_405))
                .wrap(from_fn(response_headers))
                .wrap(Condition::new(log_requests, request_logger()))
                .wrap(from_fn(metrics::record_requests))
                .service(web::resource("/metrics").get(routes::metrics::scrape))
                .configure(routes::api::configure)
                .configure(|cfg| routes::api::openapi::configure(cfg, api_document.clone()))
                .configure(routes::pages::configure)
                .default_service(web::to(not_found))
        })
        .listen(listener)
        .map_err(bind_error)?
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        // `run_until_stopped` watches for the signals: actix would end requests at SIGINT.
        .disable_signals()
        .run();
        Ok(Application {
            port,
            server,
            state,
            mail_worker,
            signals,
            shutdown_timeout: settings.shutdown_timeout,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, delivering email and purging expired rows meanwhile,
    /// then stops gracefully: no new connections; requests in flight get `SHUTDOWN_TIMEOUT` to
    /// finish (a second signal ends them at once), queued emails what is left of it; then the
    /// database pool is closed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            server,
            state,
            mut mail_worker,
            mut signals,
            shutdown_timeout,
            ..
        } = self;
        let signalled = OnceLock::new();
        let served = {
            let stop = pin!(stop_on_signals(
                server.handle(),
                &mut signals,
                shutdown_timeout,
                &signalled,
            ));
            let background = pin!(join(purge_expired(state.clone()), mail_worker.run()));
            // The background work never ends: this returns when the server does, or when a
            // second signal gives up on it (dropping a server ends its requests).
            match select(server, select(stop, background)).await {
                Either::Left((served, _)) => served,
                Either::Right((Either::Left(((), _)), _)) => Ok(()),
                Either::Right((Either::Right(((never, ()), _)), _)) => match never {},
            }
        };
        let deadline = *signalled.get().unwrap_or(&Instant::now()) + shutdown_timeout;
        let unsent = mail_worker
            .finish(deadline.saturating_duration_since(Instant::now()))
            .await;
        close(state).await;
        match unsent {
            0 => log::info!("Gatehouse stopped"),
            n => log::warn!("Gatehouse stopped; {n} email(s) could not be sent (logged above)"),
        }
        served
    }
}

/// Deletes what has expired: sessions and refresh tokens, emailed tokens, throttle counters
/// whose window has passed, and idle per-address buckets.
async fn purge_expired(state: web::Data<AppState>) -> std::convert::Infallible {
    let mut ticks = actix_web::rt::time::interval(PURGE_INTERVAL);
    let window = state
        .throttle
        .account_limits()
        .map_or(0, |l| l.window.as_secs() as i64);
    loop {
        ticks.tick().await;
        state.throttle.forget_idle();
        let purged = db::run(&state.pool, move |conn| {
            let now = db::now();
            Ok((
                sessions::purge_expired(conn, now)?,
                email_tokens::purge(conn, now)?,
                throttle::purge(conn, now - window)?,
            ))
        })
        .await;
        match purged {
            Ok((0, 0, 0)) => {}
            Ok((sessions, tokens, counters)) => log::info!(
                "purged {sessions} expired sessions and refresh tokens, {tokens} emailed tokens, \
                 {counters} throttle counters"
            ),
            Err(e) => log::warn!("could not purge expired rows: {e}"),
        }
    }
}

/// The encrypted cookie that holds a browser's CSRF token and flash messages. It lives as long
/// as the browser session and is only written when it changes.
fn page_session(state: &AppState) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), state.session_key.clone())
        .cookie_name(state.cookies.session_name().to_owned())
        .cookie_secure(state.cookies.secure())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_domain(None)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(BrowserSession::default())
        .build()
}

/// Sets the cookies that authenticating renewed or ended (see `auth::extractors`), unless the
/// handler itself set the access cookie (login, logout).
async fn apply_cookie_update(
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

/// Headers every answer gets: the JSON charset the API promises, and what keeps pages from
/// being framed, sniffed, or leaking where the user came from.
async fn response_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let csp = if routes::api::openapi::is_viewer(req.path()) {
        routes::api::openapi::VIEWER_CSP
    } else {
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; \
         object-src 'none'"
    };
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json")
    {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(response)
}

/// Unknown paths: the 404 page for browsers, the contract's JSON for everyone else.
async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if wants_html(&req) {
        routes::pages::error_page(&PageError::NotFound)
    } else {
        ApiError::NotFound.error_response()
    }
}

/// A query string that does not fit its route: the bad-request page for browsers, FastAPI's
/// 422 for everyone else (instead of actix's plain-text 400).
fn bad_query(
    error: actix_web::error::QueryPayloadError,
    req: &actix_web::HttpRequest,
) -> actix_web::Error {
    log::debug!("malformed query string: {error}");
    if wants_html(req) {
        PageError::BadRequest.into()
    } else {
        ApiError::validation(FieldError {
            loc: vec!["query".to_owned()],
            msg: "The query string is not valid for this route".to_owned(),
            kind: "query_parsing".to_owned(),
        })
        .into()
    }
}

fn wants_html(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// One line per request: client, method, path (never the query string, which could carry a
/// token), status, size, duration.
fn request_logger() -> Logger {
    Logger::new(r#"%a "%{method}xi %U" %s %b %Dms"#)
        .custom_request_replace("method", |req| req.method().to_string())
}

/// Gives actix's bare 405 the contract's JSON body.
fn json_405<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (request, _) = response.into_parts();
    let body = actix_web::HttpResponse::MethodNotAllowed()
        .json(serde_json::json!({"detail": "Method Not Allowed"}));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, body).map_into_right_body(),
    ))
}
