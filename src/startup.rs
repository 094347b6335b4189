//! Builds the application from settings: database, keys, hasher, routes, server.

use std::net::TcpListener;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::cookie::Key;
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Condition, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use futures_util::future::{select, Either};

use crate::auth::csrf::SessionCsrf;
use crate::auth::device::DeviceCookies;
use crate::auth::keys::{KeyError, SigningKeys};
use crate::auth::legacy_tokens::{LegacyTokens, SHORT_SECRET_BYTES};
use crate::auth::mfa::{MfaKey, MfaKeyError};
use crate::auth::passkeys::Passkeys;
use crate::auth::password::{HashError, PasswordHasher};
use crate::auth::pseudonym::Pseudonyms;
use crate::auth::refresh::RefreshTokens;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::AccessTokens;
use crate::config::{Environment, JwtAlgorithm, Settings};
use crate::db::{self, secrets, Creation, DbError};
use crate::domain::{IdTokenAlgorithm, PasswordPolicy};
use crate::mail::{MailError, MailWorker, Mailer};
use crate::metrics::Metrics;
use crate::routes;
use crate::routes::web::connections::{self, ConnectionCap};
use crate::routes::web::cookies::CookiePolicy;
use crate::routes::web::middleware::InFlight;
use crate::routes::web::{fallback, middleware, renewal};
use crate::services::maintenance;
use crate::state::AppState;

mod limits;
mod shutdown;
use limits::{raise_open_files_limit, return_large_buffers, ConnectionLimits};
pub use shutdown::Stopper;
use shutdown::{close, stop_on_signals, StopSignals};

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
    #[error(transparent)]
    MfaKey(#[from] MfaKeyError),
    #[error("cannot watch for SIGTERM and SIGINT: {0}")]
    Signals(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// The shared state, the mail worker that delivers what it queues, and the key of the page
/// session cookie.
pub struct Assembled {
    pub state: AppState,
    pub mail_worker: MailWorker,
    pub session_key: Key,
}

/// Opens and migrates the database, loads the keys and prepares the hasher.
pub fn assemble(settings: &Settings) -> Result<Assembled, StartupError> {
    let creation = match settings.environment {
        Environment::Production if !settings.database_create => Creation::Refused,
        _ => Creation::Allowed,
    };
    let pool = db::connect(&settings.database_url, settings.pool(), creation)?;
    for migration in db::migrate(&pool)? {
        log::info!("applied migration {migration}");
    }
    let keys = SigningKeys::load(&settings.jwt)?;
    if let Some(path) = &keys.generated_at {
        log::warn!(
            "no signing key configured: generated a development key set (ES256, and RS256 for \
             ID tokens) in {path} (set JWT_JWKS for production; see `gatehouse keys generate`)"
        );
    }
    if let Some(path) = &keys.rsa_added_to {
        log::info!("added an RSA key (RS256 ID tokens) to the development key set in {path}");
    }
    if settings.jwt.algorithm == JwtAlgorithm::Es256
        && !keys.oidc_algorithms().contains(&IdTokenAlgorithm::Rs256)
    {
        log::warn!(
            "the JWK set has no RSA key with its private part: RS256 ID tokens are unavailable \
             (`gatehouse keys generate` prints a set with one)"
        );
    }
    let mfa_key = MfaKey::load(&settings.mfa.key)?;
    if let Some(path) = &mfa_key.generated_at {
        log::warn!(
            "no MFA_KEY configured: generated a development key in {path} (set MFA_KEY for \
             production; it seals authenticator-app secrets)"
        );
    }
    // Kept in the database rather than derived from the signing key: a key rotation must
    // not break refresh-token chains or browsers' page sessions.
    let mut conn = pool.get()?;
    let refresh_tokens =
        RefreshTokens::new(secrets::get_or_create(&mut conn, "refresh-token-chain/v1")?);
    let session_key = Key::derive_from(&secrets::get_or_create(&mut conn, "page-session/v1")?);
    let pseudonyms = Pseudonyms::new(secrets::get_or_create(&mut conn, "audit-pseudonym/v1")?);
    let session_csrf = SessionCsrf::new(secrets::get_or_create(&mut conn, "session-csrf/v1")?);
    let devices = DeviceCookies::new(secrets::get_or_create(&mut conn, "device-cookie/v1")?);
    drop(conn);
    let passkeys = match Passkeys::new(&settings.public_url) {
        Ok(passkeys) => Some(passkeys),
        Err(e) => {
            log::warn!("passkeys are off: {e} (PUBLIC_URL={})", settings.public_url);
            None
        }
    };
    let legacy_tokens = legacy_tokens(settings);
    let mailer = Mailer::new(&settings.email)?;
    let mail_worker = MailWorker::new(&settings.email, pool.clone(), &mailer)?;
    let metrics = Metrics::new(pool.clone(), settings.metrics_token.as_ref());
    let state = AppState {
        environment: settings.environment,
        pool,
        hasher: PasswordHasher::new(settings.hashing)?,
        access_tokens: Arc::new(AccessTokens::new(keys, &settings.jwt, &settings.public_url)),
        refresh_tokens,
        pseudonyms,
        session_csrf,
        devices,
        refresh: settings.refresh.clone(),
        password_policy: PasswordPolicy::new(
            settings.password_policy.require_composition,
            &settings.public_url,
        ),
        cookie_secure: settings.cookie_secure,
        throttle: Throttle::new(&settings.rate_limit),
        mailer,
        email: settings.email.clone(),
        public_url: settings.public_url.clone(),
        metrics,
        mfa_key,
        mfa_policy: settings.mfa.policy,
        passkeys,
        legacy_tokens,
    };
    Ok(Assembled {
        state,
        mail_worker,
        session_key,
    })
}

/// The verifier of the old fastapi-users backend's tokens, if `LEGACY_JWT_SECRET` is set; says
/// so at every start, loudly in production, where it should not stay for long.
fn legacy_tokens(settings: &Settings) -> Option<LegacyTokens> {
    let legacy = settings.legacy_jwt.as_ref()?;
    let tokens = LegacyTokens::new(legacy, settings.jwt.leeway);
    let note = "LEGACY_JWT_SECRET is set: access tokens of the old fastapi-users backend are \
                accepted until they expire; unset it once gatehouse_legacy_tokens_accepted_total \
                stops growing";
    match settings.environment {
        Environment::Production => log::warn!("{note}"),
        Environment::Development => log::info!("{note}"),
    }
    if tokens.short_secret {
        log::warn!(
            "LEGACY_JWT_SECRET is shorter than {SHORT_SECRET_BYTES} bytes: whoever holds one of \
             the old backend's tokens may guess it offline and forge others; remove the \
             setting as soon as clients have moved"
        );
    }
    Some(tokens)
}

/// Raises the open-files limit and works out the connections it leaves room for; logs both.
fn connection_limits(settings: &Settings, workers: usize) -> ConnectionLimits {
    return_large_buffers();
    let open_files = raise_open_files_limit();
    let limits = ConnectionLimits::new(
        open_files.limit,
        settings.database_pool_size,
        workers,
        settings.max_connections,
    );
    match open_files.raised_from {
        Some(from) => log::info!(
            "open-files limit raised from {from} to {}",
            open_files.limit
        ),
        None => log::info!("open-files limit: {}", open_files.limit),
    }
    if let Some(asked) = limits.lowered_from {
        log::warn!(
            "MAX_CONNECTIONS={asked} is more than the open-files limit ({}) leaves room for; \
             serving at most {} connections",
            open_files.limit,
            limits.served
        );
    }
    log::info!(
        "serving at most {} connections at once; beyond, new ones are refused with 503",
        limits.served
    );
    limits
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    mail_worker: MailWorker,
    signals: StopSignals,
    shutdown_timeout: Duration,
    in_flight: InFlight,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let Assembled {
            state,
            mail_worker,
            session_key,
        } = assemble(&settings)?;
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
        let cookies = CookiePolicy::of(&state);
        let trusted_proxies = state.throttle.trusted_proxies().to_vec();
        let api_document = routes::api::openapi::document(cookies.access_name());
        let in_flight = InFlight::default();
        let app_in_flight = in_flight.clone();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(512));
        let limits = connection_limits(&settings, workers);
        let cap = ConnectionCap::new(limits.served);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(app_in_flight.clone())
                .app_data(web::PayloadConfig::new(routes::api::body::MAX_BODY_BYTES))
                .app_data(web::QueryConfig::default().error_handler(fallback::bad_query))
                .wrap(from_fn(renewal::apply_cookie_update))
                .wrap(middleware::page_session(session_key.clone(), cookies))
                .wrap(
                    ErrorHandlers::new()
                        .handler(StatusCode::METHOD_NOT_ALLOWED, fallback::json_405),
                )
                .wrap(from_fn(middleware::response_headers))
                .wrap(Condition::new(
                    log_requests,
                    middleware::request_logger(trusted_proxies.clone()),
                ))
                .wrap(from_fn(middleware::record_requests))
                .wrap(from_fn(connections::refuse_beyond_cap))
                .wrap(from_fn(middleware::count_in_flight))
                .service(web::resource("/metrics").get(routes::metrics::scrape))
                .configure(routes::api::configure)
                .configure(|cfg| routes::api::openapi::configure(cfg, api_document.clone()))
                .configure(routes::pages::configure)
                .default_service(web::to(fallback::not_found))
        })
        .workers(workers)
        .max_connections(limits.per_worker)
        .on_connect(move |io, data| cap.admit(io, data))
        .listen(listener)
        .map_err(bind_error)?
        // `stop_on_signals` ends the stop at `SHUTDOWN_TIMEOUT`, counting what it cuts; actix's own
        // deadline is only a backstop behind it.
        .shutdown_timeout(settings.shutdown_timeout.as_secs() + 5)
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
            in_flight,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the running application as SIGTERM would (a second stop as a second signal):
    /// for programs that embed it, and tests.
    pub fn stopper(&self) -> Stopper {
        self.signals.stopper()
    }

    /// Serves until SIGTERM or SIGINT, delivering email and purging expired rows meanwhile,
    /// then stops gracefully: no new connections; requests in flight get `SHUTDOWN_TIMEOUT` to
    /// finish (a second signal ends them at once; either way the log says how many were cut),
    /// and the emails being sent what is left of it; then the database pool is closed. Emails
    /// still queued stay in the outbox for the next start.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            server,
            state,
            mail_worker,
            mut signals,
            shutdown_timeout,
            in_flight,
            ..
        } = self;
        let signalled = OnceLock::new();
        let mail = mail_worker.start();
        let served = {
            let stop = pin!(stop_on_signals(
                server.handle(),
                &mut signals,
                shutdown_timeout,
                &signalled,
                &in_flight,
            ));
            let purge = pin!(maintenance::purge_expired(state.clone().into_inner()));
            // The purge never ends: this returns when the server does, or when a second
            // signal gives up on it (dropping a server ends its requests).
            match select(server, select(stop, purge)).await {
                Either::Left((served, _)) => served,
                Either::Right((Either::Left(((), _)), _)) => Ok(()),
                Either::Right((Either::Right((never, _)), _)) => match never {},
            }
        };
        let deadline = *signalled.get().unwrap_or(&Instant::now()) + shutdown_timeout;
        let queued = mail
            .finish(deadline.saturating_duration_since(Instant::now()))
            .await;
        close(state).await;
        // Read once the workers have let go of the state: by then they have dropped what they
        // cut.
        match in_flight.cut() {
            0 => {}
            n => log::warn!(
                "{n} request(s) cut at shutdown: still running when SHUTDOWN_TIMEOUT ({}s) \
                 was up or a second signal came",
                shutdown_timeout.as_secs()
            ),
        }
        match queued {
            Some(n) if n > 0 => log::warn!(
                "Gatehouse stopped; {n} email(s) remain queued and will be sent after restart"
            ),
            _ => log::info!("Gatehouse stopped"),
        }
        served
    }
}
