//! Typed settings read from the environment (and `.env` in development).
//!
//! Every variable is listed with its default in `.env.example`. Secrets are held in
//! [`SecretString`] so they never reach a log line through `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// Where the service runs; production refuses unsafe settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// The JWT signing algorithm. Verification accepts this algorithm only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Es256,
    Hs256,
}

/// Where the signing keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// A JWK set document (JSON), from `JWT_JWKS` (base64) or `JWT_JWKS_FILE`.
    Jwks(SecretString),
    /// No key configured: a development run generates one and keeps it in this file.
    GeneratedFile(PathBuf),
    /// The HS256 shared secret.
    SharedSecret(SecretString),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Jwks(_) => f.write_str("Jwks([REDACTED])"),
            KeySource::GeneratedFile(path) => write!(f, "GeneratedFile({})", path.display()),
            KeySource::SharedSecret(_) => f.write_str("SharedSecret([REDACTED])"),
        }
    }
}

/// Who must have a second factor (`MFA_REQUIRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaPolicy {
    Off,
    Superusers,
    All,
}

impl MfaPolicy {
    /// Whether a user with these rights must use a second factor.
    pub fn applies_to(self, is_superuser: bool) -> bool {
        match self {
            MfaPolicy::Off => false,
            MfaPolicy::Superusers => is_superuser,
            MfaPolicy::All => true,
        }
    }
}

/// Where the key that seals TOTP secrets comes from.
#[derive(Clone)]
pub enum MfaKeySource {
    /// `MFA_KEY` (or the contents of `MFA_KEY_FILE`): base64 or hex of at least 32 bytes.
    Configured(SecretString),
    /// No key configured: a development run generates one and keeps it in this file.
    GeneratedFile(PathBuf),
}

impl fmt::Debug for MfaKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MfaKeySource::Configured(_) => f.write_str("Configured([REDACTED])"),
            MfaKeySource::GeneratedFile(path) => write!(f, "GeneratedFile({})", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MfaSettings {
    pub policy: MfaPolicy,
    pub key: MfaKeySource,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub algorithm: JwtAlgorithm,
    pub keys: KeySource,
    /// `JWT_SIGNING_KID`: the kid of the EC key of the JWK set that signs (default: the first
    /// EC key). Checked against the set where the keys are loaded (`auth::keys`).
    pub signing_kid: Option<String>,
    pub issuer: String,
    pub audience: Vec<String>,
    pub access_token_ttl: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

/// The old fastapi-users backend's access tokens, accepted during a move to Gatehouse (see
/// `auth::legacy_tokens`).
#[derive(Debug, Clone)]
pub struct LegacyJwtSettings {
    /// `LEGACY_JWT_SECRET`: the old backend's HS256 secret, an arbitrary string there.
    pub secret: SecretString,
    /// `LEGACY_JWT_AUDIENCE`: the audiences its tokens carry (`fastapi-users:auth`).
    pub audience: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshSettings {
    pub ttl: Duration,
    /// How long after a rotation presenting the old token again still yields its child although
    /// the child's access token has been used (two refreshes racing). A child never used is
    /// given again at any time.
    pub reuse_grace: Duration,
    /// How long a session may last from its login, however often it is refreshed (`ttl` is
    /// only the idle timeout).
    pub max_lifetime: Duration,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// How many hashes may run at once (bounds memory: this × `memory_kib`).
    pub concurrency: usize,
    /// How many hashes may wait for a turn; more are refused with 503.
    pub queue: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicySettings {
    /// Require upper case, lower case, a digit and a special character.
    pub require_composition: bool,
}

/// Which database `DATABASE_URL` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `postgres://` or `postgresql://` URLs are PostgreSQL; anything else is a SQLite path.
    pub fn of(database_url: &str) -> Backend {
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub size: u32,
    /// How long a request may wait for a free connection.
    pub timeout: Duration,
}

/// Email delivery and the flows that depend on it.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// `smtp://` (STARTTLS with `?tls=required`) or `smtps://` with credentials in the URL;
    /// without it, messages are written as `.eml` files into `outbox_dir`.
    pub smtp_url: Option<SecretString>,
    pub outbox_dir: PathBuf,
    /// The `From` address of every message.
    pub from: String,
    /// Unverified users cannot log in; signup sends the verification email.
    pub require_verification: bool,
    pub reset_token_ttl: Duration,
    pub verify_token_ttl: Duration,
    /// How long a failed delivery waits before each further attempt; after the last, the
    /// message is given up (kept in the outbox, marked failed).
    pub retry_delays: Vec<Duration>,
}

/// A token bucket: `count` requests at once, refilled evenly over `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: std::num::NonZeroU32,
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `N` (per minute) or `N/S` (per S seconds).
    fn from_str(raw: &str) -> Result<Rate, String> {
        let (count, seconds) = raw.split_once('/').unwrap_or((raw, "60"));
        let count = count
            .trim()
            .parse()
            .map_err(|_| format!("expected N or N/SECONDS with N >= 1, got `{raw}`"))?;
        let seconds: u64 = seconds
            .trim()
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("expected a period of at least 1 second in `{raw}`"))?;
        Ok(Rate {
            count,
            per: Duration::from_secs(seconds),
        })
    }
}

/// Throttling: token buckets per client address (in memory) and counters per account (in the
/// database, so every instance sees them).
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub login_per_ip: Rate,
    pub signup_per_ip: Rate,
    pub email_per_ip: Rate,
    pub refresh_per_ip: Rate,
    /// Failed logins from one client address (or one known device) after which that client
    /// is refused the account for the rest of `account_window`; past as many from all the
    /// clients an account does not know, each further attempt waits a growing delay.
    pub login_failures: u32,
    /// The longest that delay grows.
    pub login_delay_max: Duration,
    /// Recovery and verification emails one address may be sent per `account_window`.
    pub emails_per_address: u32,
    /// Attempts a user may make to change their address per `account_window`.
    pub email_changes: u32,
    pub account_window: Duration,
    /// Proxies whose `X-Forwarded-For` names the client; nobody else's is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub bind_addr: String,
    pub database_url: String,
    pub database_pool_size: u32,
    /// How long a request may wait for a pooled connection.
    pub database_pool_timeout: Duration,
    /// Whether `serve` may create a database that does not exist yet. Development always
    /// may; production only with `DATABASE_CREATE=true` (or through `gatehouse migrate`).
    pub database_create: bool,
    pub jwt: JwtSettings,
    pub refresh: RefreshSettings,
    pub hashing: HashSettings,
    pub password_policy: PasswordPolicySettings,
    /// Mark the browser cookies `Secure` (and give them the `__Host-` prefix).
    pub cookie_secure: bool,
    /// The address users reach the pages at: the base of links in emails.
    pub public_url: String,
    pub email: EmailSettings,
    pub rate_limit: RateLimitSettings,
    /// The bearer token `GET /metrics` requires; unset, the metrics are open.
    pub metrics_token: Option<SecretString>,
    /// How long a stop (SIGTERM, SIGINT) may take: requests in flight get this long to
    /// finish, and queued emails what is left of it.
    pub shutdown_timeout: Duration,
    /// Connections served at once; beyond, new ones are refused with 503. Unset: as many as
    /// the open-files limit allows (worked out at start).
    pub max_connections: Option<usize>,
    pub mfa: MfaSettings,
    /// Set while clients move from a fastapi-users backend: its access tokens are accepted.
    pub legacy_jwt: Option<LegacyJwtSettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("refusing to start in production: {0}")]
    UnsafeForProduction(String),
    #[error("could not read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
}

/// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
pub const DEFAULT_ARGON2_MEMORY_KIB: u32 = 19_456;
pub const DEFAULT_ARGON2_ITERATIONS: u32 = 2;
pub const DEFAULT_ARGON2_PARALLELISM: u32 = 1;
/// Hashes waiting beyond the running ones; a login costs a hash, so this is how many logins
/// may queue before the service sheds load.
pub const DEFAULT_ARGON2_QUEUE: usize = 64;
pub const DEFAULT_DATABASE_URL: &str = "data/gatehouse.db";
const MIN_SHARED_SECRET_BYTES: usize = 32;
/// The least a production HS256 secret's bytes may carry by their empirical (Shannon)
/// entropy: 32 random bytes give about 150 bits; a repeated or patterned string far less.
const MIN_SHARED_SECRET_ENTROPY_BITS: f64 = 128.0;
const MIN_METRICS_TOKEN_BYTES: usize = 16;
/// Clock skew tolerated on access tokens by default, and at most: beyond a minute, the fix is
/// synchronised clocks, not a token that outlives its expiry.
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 5;
pub const MAX_JWT_LEEWAY_SECS: u64 = 60;

impl Settings {
    /// Reads `.env` (if present) and then the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        let _ = dotenvy::dotenv();
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from a map of variables; unset variables take their defaults.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let vars = Vars(&lookup);
        let environment = match vars.get("GATEHOUSE_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(invalid(
                    "GATEHOUSE_ENV",
                    format!("expected `development` or `production`, got `{other}`"),
                ))
            }
        };
        let database_url = vars
            .get("DATABASE_URL")
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let algorithm = match vars.get("JWT_ALGORITHM").as_deref() {
            None | Some("ES256") => JwtAlgorithm::Es256,
            Some("HS256") => JwtAlgorithm::Hs256,
            Some(other) => {
                return Err(invalid(
                    "JWT_ALGORITHM",
                    format!("expected ES256 or HS256, got `{other}`"),
                ))
            }
        };
        let data_dir = vars
            .get("DATA_DIR")
            .map_or_else(|| default_data_dir(&database_url), PathBuf::from);
        let keys = key_source(&vars, algorithm, &data_dir)?;
        let signing_kid = vars.get("JWT_SIGNING_KID").map(|kid| kid.trim().to_owned());
        if signing_kid.is_some() && algorithm == JwtAlgorithm::Hs256 {
            return Err(invalid(
                "JWT_SIGNING_KID",
                "names a key of JWT_JWKS, so it applies only to JWT_ALGORITHM=ES256",
            ));
        }
        let outbox_dir = vars
            .get("EMAIL_OUTBOX_DIR")
            .map_or_else(|| data_dir.join("outbox"), PathBuf::from);
        let audience: Vec<String> = vars
            .get("JWT_AUDIENCE")
            .unwrap_or_else(|| "fastapi-users:auth".into())
            .split(',')
            .map(|aud| aud.trim().to_owned())
            .filter(|aud| !aud.is_empty())
            .collect();
        if audience.is_empty() {
            return Err(invalid("JWT_AUDIENCE", "at least one audience is required"));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let bind_addr = vars
            .get("BIND_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let public_url = match vars.get("PUBLIC_URL") {
            Some(url) => url.trim().trim_end_matches('/').to_owned(),
            None => default_public_url(&bind_addr),
        };
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(invalid("PUBLIC_URL", "must start with http:// or https://"));
        }

        let settings = Settings {
            environment,
            bind_addr,
            database_pool_size: vars.parse("DATABASE_POOL_SIZE", 8)?,
            database_pool_timeout: vars.seconds("DATABASE_POOL_TIMEOUT", 10)?,
            database_create: vars.flag("DATABASE_CREATE", false)?,
            database_url,
            jwt: JwtSettings {
                algorithm,
                keys,
                signing_kid,
                issuer: vars.get("JWT_ISSUER").unwrap_or_else(|| "gatehouse".into()),
                audience,
                access_token_ttl: vars.seconds("ACCESS_TOKEN_TTL", 30 * 60)?,
                leeway: vars.seconds("JWT_LEEWAY", DEFAULT_JWT_LEEWAY_SECS)?,
            },
            refresh: RefreshSettings {
                ttl: vars.seconds("REFRESH_TOKEN_TTL", 10 * 60 * 60)?,
                reuse_grace: vars.seconds("REFRESH_REUSE_GRACE", 10)?,
                max_lifetime: vars.seconds("SESSION_MAX_LIFETIME", 30 * 24 * 60 * 60)?,
            },
            hashing: HashSettings {
                memory_kib: vars.parse("ARGON2_MEMORY_KIB", DEFAULT_ARGON2_MEMORY_KIB)?,
                iterations: vars.parse("ARGON2_ITERATIONS", DEFAULT_ARGON2_ITERATIONS)?,
                parallelism: vars.parse("ARGON2_PARALLELISM", DEFAULT_ARGON2_PARALLELISM)?,
                concurrency: vars.parse("ARGON2_CONCURRENCY", cores)?,
                queue: vars.parse("ARGON2_QUEUE", DEFAULT_ARGON2_QUEUE)?,
            },
            password_policy: PasswordPolicySettings {
                require_composition: vars.flag("PASSWORD_REQUIRE_COMPOSITION", false)?,
            },
            cookie_secure: vars.flag("COOKIE_SECURE", true)?,
            email: EmailSettings {
                smtp_url: vars.get("SMTP_URL").map(SecretString::from),
                outbox_dir,
                from: vars
                    .get("EMAIL_FROM")
                    .unwrap_or_else(|| "Gatehouse <gatehouse@localhost>".into()),
                require_verification: vars.flag("REQUIRE_VERIFICATION", false)?,
                reset_token_ttl: vars.seconds("RESET_TOKEN_TTL", 60 * 60)?,
                verify_token_ttl: vars.seconds("VERIFY_TOKEN_TTL", 24 * 60 * 60)?,
                retry_delays: retry_delays(&vars)?,
            },
            rate_limit: RateLimitSettings {
                enabled: vars.flag("RATE_LIMIT", true)?,
                login_per_ip: vars.parse("RATE_LIMIT_LOGIN_PER_IP", rate(20, 60))?,
                signup_per_ip: vars.parse("RATE_LIMIT_SIGNUP_PER_IP", rate(5, 60))?,
                email_per_ip: vars.parse("RATE_LIMIT_EMAIL_PER_IP", rate(5, 60))?,
                refresh_per_ip: vars.parse("RATE_LIMIT_REFRESH_PER_IP", rate(60, 60))?,
                login_failures: vars.parse("RATE_LIMIT_LOGIN_FAILURES", 10)?,
                login_delay_max: vars.seconds("RATE_LIMIT_LOGIN_DELAY_MAX", 60)?,
                emails_per_address: vars.parse("RATE_LIMIT_EMAILS_PER_ADDRESS", 3)?,
                email_changes: vars.parse("RATE_LIMIT_EMAIL_CHANGES", 5)?,
                account_window: vars.seconds("RATE_LIMIT_ACCOUNT_WINDOW", 15 * 60)?,
                trusted_proxies: trusted_proxies(&vars)?,
            },
            metrics_token: vars
                .get("METRICS_TOKEN")
                .map(|token| SecretString::from(token.trim().to_owned())),
            shutdown_timeout: vars.seconds("SHUTDOWN_TIMEOUT", 10)?,
            max_connections: vars.optional("MAX_CONNECTIONS")?,
            mfa: MfaSettings {
                policy: match vars.get("MFA_REQUIRED").as_deref() {
                    None | Some("off") => MfaPolicy::Off,
                    Some("superusers") => MfaPolicy::Superusers,
                    Some("all") => MfaPolicy::All,
                    Some(other) => {
                        return Err(invalid(
                            "MFA_REQUIRED",
                            format!("expected `off`, `superusers` or `all`, got `{other}`"),
                        ))
                    }
                },
                key: mfa_key_source(&vars, &data_dir)?,
            },
            legacy_jwt: legacy_jwt(&vars)?,
            public_url,
        };
        settings.check()?;
        Ok(settings)
    }

    /// The connection pool's size and timeout.
    pub fn pool(&self) -> PoolSettings {
        PoolSettings {
            size: self.database_pool_size,
            timeout: self.database_pool_timeout,
        }
    }

    /// Rejects settings that cannot work, and in production those that are unsafe.
    fn check(&self) -> Result<(), ConfigError> {
        if self.jwt.access_token_ttl.is_zero() {
            return Err(invalid("ACCESS_TOKEN_TTL", "must be at least 1 second"));
        }
        if self.jwt.leeway > Duration::from_secs(MAX_JWT_LEEWAY_SECS) {
            return Err(invalid(
                "JWT_LEEWAY",
                format!(
                    "must be at most {MAX_JWT_LEEWAY_SECS} seconds (got {}); synchronise the \
                     clocks instead",
                    self.jwt.leeway.as_secs()
                ),
            ));
        }
        if self.refresh.ttl.is_zero() {
            return Err(invalid("REFRESH_TOKEN_TTL", "must be at least 1 second"));
        }
        if self.refresh.max_lifetime.is_zero() {
            return Err(invalid("SESSION_MAX_LIFETIME", "must be at least 1 second"));
        }
        if self.database_pool_timeout.is_zero() {
            return Err(invalid(
                "DATABASE_POOL_TIMEOUT",
                "must be at least 1 second",
            ));
        }
        if self.database_pool_size == 0 {
            return Err(invalid("DATABASE_POOL_SIZE", "must be at least 1"));
        }
        let limits = &self.rate_limit;
        if limits.login_failures == 0 || limits.emails_per_address == 0 {
            return Err(invalid(
                "RATE_LIMIT_LOGIN_FAILURES",
                "RATE_LIMIT_LOGIN_FAILURES and RATE_LIMIT_EMAILS_PER_ADDRESS must be at least 1",
            ));
        }
        if limits.email_changes == 0 {
            return Err(invalid("RATE_LIMIT_EMAIL_CHANGES", "must be at least 1"));
        }
        if limits.login_delay_max.is_zero() {
            return Err(invalid(
                "RATE_LIMIT_LOGIN_DELAY_MAX",
                "must be at least 1 second",
            ));
        }
        if limits.account_window.is_zero() {
            return Err(invalid(
                "RATE_LIMIT_ACCOUNT_WINDOW",
                "must be at least 1 second",
            ));
        }
        if self.email.reset_token_ttl.is_zero() || self.email.verify_token_ttl.is_zero() {
            return Err(invalid(
                "RESET_TOKEN_TTL",
                "RESET_TOKEN_TTL and VERIFY_TOKEN_TTL must be at least 1 second",
            ));
        }
        if self.max_connections == Some(0) {
            return Err(invalid("MAX_CONNECTIONS", "must be at least 1"));
        }
        if self.hashing.queue == 0 {
            return Err(invalid("ARGON2_QUEUE", "must be at least 1"));
        }
        if self.hashing.concurrency == 0 {
            return Err(invalid("ARGON2_CONCURRENCY", "must be at least 1"));
        }
        if let KeySource::SharedSecret(secret) = &self.jwt.keys {
            if secret.expose_secret().len() < MIN_SHARED_SECRET_BYTES {
                return Err(invalid(
                    "JWT_SECRET",
                    format!("must be at least {MIN_SHARED_SECRET_BYTES} bytes of random data"),
                ));
            }
            if self.environment == Environment::Development {
                if let Err(why) = check_random_secret(secret.expose_secret()) {
                    log::warn!(
                        "JWT_SECRET {why}: production would refuse it (see `gatehouse keys \
                         generate --hs256`)"
                    );
                }
            }
        }
        if let (Some(legacy), KeySource::SharedSecret(ours)) = (&self.legacy_jwt, &self.jwt.keys) {
            if legacy.secret.expose_secret() == ours.expose_secret() {
                return Err(invalid(
                    "LEGACY_JWT_SECRET",
                    "must differ from JWT_SECRET: tokens Gatehouse issues never use the old \
                     backend's secret",
                ));
            }
        }
        if let Some(token) = &self.metrics_token {
            if token.expose_secret().len() < MIN_METRICS_TOKEN_BYTES {
                return Err(invalid(
                    "METRICS_TOKEN",
                    format!("must be at least {MIN_METRICS_TOKEN_BYTES} random characters"),
                ));
            }
        }
        if self.environment == Environment::Production {
            if let KeySource::SharedSecret(secret) = &self.jwt.keys {
                check_random_secret(secret.expose_secret()).map_err(|why| {
                    ConfigError::UnsafeForProduction(format!(
                        "JWT_SECRET {why}; it must be the base64 or hex of at least \
                         {MIN_SHARED_SECRET_BYTES} random bytes, as `gatehouse keys generate \
                         --hs256` prints"
                    ))
                })?;
            }
            if let KeySource::GeneratedFile(_) = self.jwt.keys {
                return Err(ConfigError::UnsafeForProduction(
                    "no signing key is configured; set JWT_JWKS (or JWT_JWKS_FILE) to the output of \
                     `gatehouse keys generate`, or JWT_ALGORITHM=HS256 with JWT_SECRET"
                        .into(),
                ));
            }
            if !self.cookie_secure {
                return Err(ConfigError::UnsafeForProduction(
                    "COOKIE_SECURE=false would send the session cookies over plain HTTP".into(),
                ));
            }
            let h = self.hashing;
            if h.memory_kib < DEFAULT_ARGON2_MEMORY_KIB || h.iterations < DEFAULT_ARGON2_ITERATIONS
            {
                return Err(ConfigError::UnsafeForProduction(format!(
                    "argon2 parameters below the OWASP baseline; set ARGON2_MEMORY_KIB >= \
                     {DEFAULT_ARGON2_MEMORY_KIB} and ARGON2_ITERATIONS >= {DEFAULT_ARGON2_ITERATIONS}"
                )));
            }
            if !self.public_url.starts_with("https://") {
                return Err(ConfigError::UnsafeForProduction(
                    "PUBLIC_URL must be the https:// address users reach the pages at; links in \
                     emails are built from it"
                        .into(),
                ));
            }
            if let Some(url) = &self.email.smtp_url {
                let url = url.expose_secret();
                if !(url.starts_with("smtps://") || url.contains("tls=required")) {
                    return Err(ConfigError::UnsafeForProduction(
                        "SMTP_URL would send mail without TLS; use smtps://… or smtp://…?tls=required"
                            .into(),
                    ));
                }
            }
            match &self.mfa.key {
                MfaKeySource::GeneratedFile(_) => {
                    return Err(ConfigError::UnsafeForProduction(
                        "no MFA_KEY is configured; set MFA_KEY (or MFA_KEY_FILE) to 32 random \
                         bytes, base64 (`gatehouse keys generate --hs256` prints one), the same \
                         on every instance"
                            .into(),
                    ))
                }
                MfaKeySource::Configured(key) => {
                    check_random_secret(key.expose_secret()).map_err(|why| {
                        ConfigError::UnsafeForProduction(format!(
                            "MFA_KEY {why}; it must be the base64 or hex of at least \
                             {MIN_SHARED_SECRET_BYTES} random bytes"
                        ))
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Checks that an HS256 secret is encoded random bytes: hex or base64 (standard or URL-safe,
/// padded or not) of at least 32 bytes whose spread of values looks random. A passphrase, a
/// repeated character or a short pattern is refused; the words say why, never the secret.
pub fn check_random_secret(secret: &str) -> Result<(), &'static str> {
    let bytes = decode_secret(secret);
    let bytes = bytes.ok_or("is neither hex nor base64")?;
    if bytes.len() < MIN_SHARED_SECRET_BYTES {
        return Err("decodes to fewer than 32 bytes");
    }
    if entropy_bits(&bytes) < MIN_SHARED_SECRET_ENTROPY_BITS {
        return Err("does not look random (too few distinct byte values)");
    }
    Ok(())
}

/// The bytes a secret setting encodes: hex, or base64 (standard or URL-safe, padded or not).
pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let secret = secret.trim();
    let is_hex = secret.len().is_multiple_of(2) && secret.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        (0..secret.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&secret[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .ok()
    } else {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(secret).ok())
    }
}

/// The empirical Shannon entropy of `bytes` (bits per byte, times their number).
fn entropy_bits(bytes: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    per_byte * n
}

fn key_source(
    vars: &Vars<'_>,
    algorithm: JwtAlgorithm,
    data_dir: &Path,
) -> Result<KeySource, ConfigError> {
    use base64::Engine as _;
    match algorithm {
        JwtAlgorithm::Hs256 => match vars.get("JWT_SECRET") {
            Some(secret) => Ok(KeySource::SharedSecret(secret.into())),
            None => Err(invalid(
                "JWT_SECRET",
                "JWT_ALGORITHM=HS256 needs JWT_SECRET (at least 32 random bytes)",
            )),
        },
        JwtAlgorithm::Es256 => {
            if let Some(encoded) = vars.get("JWT_JWKS") {
                let compact: String = encoded.split_whitespace().collect();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|_| invalid("JWT_JWKS", "is not base64"))?;
                let json = String::from_utf8(decoded)
                    .map_err(|_| invalid("JWT_JWKS", "does not decode to UTF-8 JSON"))?;
                Ok(KeySource::Jwks(json.into()))
            } else if let Some(path) = vars.get("JWT_JWKS_FILE") {
                let json = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::Unreadable { path, source })?;
                Ok(KeySource::Jwks(json.into()))
            } else {
                Ok(KeySource::GeneratedFile(
                    data_dir.join("gatehouse-dev-jwks.json"),
                ))
            }
        }
    }
}

/// `LEGACY_JWT_SECRET` and `LEGACY_JWT_AUDIENCE` (default `fastapi-users:auth`, comma-separated).
fn legacy_jwt(vars: &Vars<'_>) -> Result<Option<LegacyJwtSettings>, ConfigError> {
    let Some(secret) = vars.get("LEGACY_JWT_SECRET") else {
        return Ok(None);
    };
    let audience: Vec<String> = vars
        .get("LEGACY_JWT_AUDIENCE")
        .unwrap_or_else(|| "fastapi-users:auth".into())
        .split(',')
        .map(|aud| aud.trim().to_owned())
        .filter(|aud| !aud.is_empty())
        .collect();
    if audience.is_empty() {
        return Err(invalid(
            "LEGACY_JWT_AUDIENCE",
            "at least one audience is required",
        ));
    }
    Ok(Some(LegacyJwtSettings {
        secret: secret.into(),
        audience,
    }))
}

fn mfa_key_source(vars: &Vars<'_>, data_dir: &Path) -> Result<MfaKeySource, ConfigError> {
    let configured = match (vars.get("MFA_KEY"), vars.get("MFA_KEY_FILE")) {
        (Some(key), _) => Some(key),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .map_err(|source| ConfigError::Unreadable { path, source })?,
        ),
        (None, None) => None,
    };
    // Its form is checked where it is loaded (`auth::mfa`), which refuses to start on a bad one.
    Ok(match configured {
        Some(key) => MfaKeySource::Configured(key.into()),
        None => MfaKeySource::GeneratedFile(data_dir.join("gatehouse-dev-mfa.key")),
    })
}

/// Where a development run keeps what it generates (the signing key, the outbox): the SQLite
/// database's directory, or `data/` for a server database.
fn default_data_dir(database_url: &str) -> PathBuf {
    if Backend::of(database_url) == Backend::Postgres {
        return PathBuf::from("data");
    }
    Path::new(database_url)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Where a development run is reached: the bound port on `localhost` (browsers treat it as
/// secure, so the `__Host-` cookies work over plain HTTP).
fn default_public_url(bind_addr: &str) -> String {
    let port = bind_addr.rsplit(':').next().unwrap_or("8080");
    format!("http://localhost:{port}")
}

fn rate(count: u32, seconds: u64) -> Rate {
    Rate {
        count: std::num::NonZeroU32::new(count).unwrap_or(std::num::NonZeroU32::MIN),
        per: Duration::from_secs(seconds),
    }
}

fn trusted_proxies(vars: &Vars<'_>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let Some(raw) = vars.get("TRUSTED_PROXIES") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    invalid(
                        "TRUSTED_PROXIES",
                        format!("`{entry}` is not an IP address or CIDR range"),
                    )
                })
        })
        .collect()
}

/// `EMAIL_RETRY_DELAYS`: seconds, comma-separated; 5 s, 30 s, 2 min and 10 min by default.
fn retry_delays(vars: &Vars<'_>) -> Result<Vec<Duration>, ConfigError> {
    let Some(raw) = vars.get("EMAIL_RETRY_DELAYS") else {
        return Ok([5, 30, 120, 600].map(Duration::from_secs).to_vec());
    };
    raw.split(',')
        .map(|delay| {
            delay.trim().parse().map(Duration::from_secs).map_err(|_| {
                invalid(
                    "EMAIL_RETRY_DELAYS",
                    format!("expected seconds separated by commas, got `{raw}`"),
                )
            })
        })
        .collect()
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    /// A variable's value; empty counts as unset, as in most `.env` tooling.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| invalid(name, format!("{e}"))),
        }
    }

    /// A variable with no default: `None` when unset.
    fn optional<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.get(name)
            .map(|raw| {
                raw.trim()
                    .parse()
                    .map_err(|e| invalid(name, format!("{e}")))
            })
            .transpose()
    }

    fn seconds(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.parse(name, default).map(Duration::from_secs)
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(invalid(
                name,
                format!("expected true or false, got `{other}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 32 random bytes, base64url: a secret production accepts.
    const RANDOM_SECRET: &str = "q3Pz0dXv8C2k1yJmS0nV4cYtR7bWfLhE9uAiKgQpZxM";

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_map(&vars)
    }

    #[test]
    fn defaults_are_usable_in_development() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.jwt.algorithm, JwtAlgorithm::Es256);
        assert_eq!(s.jwt.audience, vec!["fastapi-users:auth"]);
        assert_eq!(s.jwt.access_token_ttl, Duration::from_secs(1800));
        assert_eq!(s.refresh.ttl, Duration::from_secs(36_000));
        assert_eq!(s.refresh.reuse_grace, Duration::from_secs(10));
        assert_eq!(s.refresh.max_lifetime, Duration::from_secs(30 * 24 * 3600));
        assert!(
            matches!(s.jwt.keys, KeySource::GeneratedFile(ref p) if p == Path::new("data/gatehouse-dev-jwks.json"))
        );
    }

    #[test]
    fn production_refuses_a_generated_key() {
        let err = settings(&[("GATEHOUSE_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("JWT_JWKS"), "{err}");
    }

    #[test]
    fn production_refuses_weak_hashing() {
        let err = settings(&[
            ("GATEHOUSE_ENV", "production"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", RANDOM_SECRET),
            ("ARGON2_MEMORY_KIB", "1024"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("ARGON2_MEMORY_KIB"), "{err}");
    }

    #[test]
    fn production_refuses_insecure_cookies() {
        let err = settings(&[
            ("GATEHOUSE_ENV", "production"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", RANDOM_SECRET),
            ("COOKIE_SECURE", "false"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("COOKIE_SECURE"), "{err}");
    }

    #[test]
    fn short_shared_secrets_are_refused() {
        let err = settings(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", "short")]).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        let err = settings(&[("JWT_ALGORITHM", "HS256")]).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn production_refuses_shared_secrets_that_are_not_random() {
        let production = |secret: &str| {
            settings(&[
                ("GATEHOUSE_ENV", "production"),
                ("JWT_ALGORITHM", "HS256"),
                ("JWT_SECRET", secret),
                ("PUBLIC_URL", "https://auth.example.com"),
                ("MFA_KEY", RANDOM_SECRET),
            ])
        };
        let forty_a = "a".repeat(40);
        let many_a = "a".repeat(88);
        let pattern = "0123456789abcdef".repeat(4);
        for weak in [
            forty_a.as_str(),
            many_a.as_str(),
            pattern.as_str(),
            "correct horse battery staple, correct horse battery staple",
            "an-hs256-test-secret-of-well-over-32-bytes",
            "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
        ] {
            let err = production(weak).map(|_| ()).unwrap_err();
            assert!(err.to_string().contains("JWT_SECRET"), "{weak}: {err}");
            assert!(
                !err.to_string().contains(weak),
                "the secret is echoed: {err}"
            );
        }
        for random in [
            RANDOM_SECRET,
            "q3Pz0dXv8C2k1yJmS0nV4cYtR7bWfLhE9uAiKgQpZxM=",
            "ab54e0c1f9d38a7726b0c4e1d5f39a8b6c7d2e1f0a9b8c7d6e5f4a3b2c1d0e9f",
        ] {
            assert!(production(random).is_ok(), "{random}");
        }
        // Development keeps to the length rule, so tests may use readable secrets.
        assert!(settings(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", forty_a.as_str())]).is_ok());
    }

    #[test]
    fn production_needs_a_random_mfa_key_and_development_generates_one() {
        let production = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![
                ("GATEHOUSE_ENV", "production"),
                ("JWT_ALGORITHM", "HS256"),
                ("JWT_SECRET", RANDOM_SECRET),
                ("PUBLIC_URL", "https://auth.example.com"),
            ];
            vars.extend_from_slice(extra);
            settings(&vars)
        };
        let err = production(&[]).unwrap_err();
        assert!(err.to_string().contains("MFA_KEY"), "{err}");
        let err = production(&[("MFA_KEY", "not-random-at-all-not-random-at-all!")]).unwrap_err();
        assert!(err.to_string().contains("MFA_KEY"), "{err}");
        assert!(!err.to_string().contains("not-random"), "{err}");
        assert!(production(&[("MFA_KEY", RANDOM_SECRET)]).is_ok());
        let s = settings(&[("DATABASE_URL", "/srv/gatehouse/gatehouse.db")]).unwrap();
        assert!(matches!(&s.mfa.key, MfaKeySource::GeneratedFile(path)
            if path.ends_with("gatehouse-dev-mfa.key")));
        assert_eq!(s.mfa.policy, MfaPolicy::Off);
        let err = settings(&[("MFA_REQUIRED", "sometimes")]).unwrap_err();
        assert!(err.to_string().contains("MFA_REQUIRED"), "{err}");
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let s = settings(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", "a-very-secret-value-of-32-bytes!!"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("a-very-secret"));
    }

    #[test]
    fn rates_read_as_count_per_seconds() {
        let s = settings(&[
            ("RATE_LIMIT_LOGIN_PER_IP", "3/2"),
            ("RATE_LIMIT_SIGNUP_PER_IP", "7"),
        ])
        .unwrap();
        assert_eq!(s.rate_limit.login_per_ip.count.get(), 3);
        assert_eq!(s.rate_limit.login_per_ip.per, Duration::from_secs(2));
        assert_eq!(s.rate_limit.signup_per_ip.per, Duration::from_secs(60));
        for bad in ["0", "0/5", "5/0", "x", "5/x"] {
            let err = settings(&[("RATE_LIMIT_EMAIL_PER_IP", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("RATE_LIMIT_EMAIL_PER_IP"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 ,::1")]).unwrap();
        let nets: Vec<String> = s
            .rate_limit
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]);
        let err = settings(&[("TRUSTED_PROXIES", "proxy.local")]).unwrap_err();
        assert!(err.to_string().contains("TRUSTED_PROXIES"), "{err}");
    }

    #[test]
    fn email_defaults_sit_beside_the_database() {
        let s = settings(&[
            ("DATABASE_URL", "/srv/gh/gatehouse.db"),
            ("BIND_ADDR", "0.0.0.0:9000"),
        ])
        .unwrap();
        assert_eq!(s.email.outbox_dir, Path::new("/srv/gh/outbox"));
        assert_eq!(s.public_url, "http://localhost:9000");
        assert_eq!(s.email.reset_token_ttl, Duration::from_secs(3600));
        assert!(!s.email.require_verification);
        assert_eq!(
            s.email.retry_delays,
            [5, 30, 120, 600].map(Duration::from_secs)
        );
        assert!(s.rate_limit.enabled);
    }

    #[test]
    fn production_needs_an_https_public_url_and_tls_for_smtp() {
        let base = [
            ("GATEHOUSE_ENV", "production"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", RANDOM_SECRET),
        ];
        let err = settings(&base).unwrap_err();
        assert!(err.to_string().contains("PUBLIC_URL"), "{err}");
        let mut vars = base.to_vec();
        vars.push(("PUBLIC_URL", "https://auth.example.com/"));
        let err = settings(&vars).unwrap_err();
        assert!(err.to_string().contains("MFA_KEY"), "{err}");
        vars.push(("MFA_KEY", RANDOM_SECRET));
        assert_eq!(
            settings(&vars).unwrap().public_url,
            "https://auth.example.com"
        );
        vars.push(("SMTP_URL", "smtp://user:pw@mail.example.com:587"));
        let err = settings(&vars).unwrap_err();
        assert!(err.to_string().contains("SMTP_URL"), "{err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }

    #[test]
    fn email_retry_delays_are_seconds_separated_by_commas() {
        let s = settings(&[("EMAIL_RETRY_DELAYS", "1, 2,0")]).unwrap();
        assert_eq!(s.email.retry_delays, [1, 2, 0].map(Duration::from_secs));
        for bad in ["soon", "5,,30", "5,-1", "1.5"] {
            let err = settings(&[("EMAIL_RETRY_DELAYS", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("EMAIL_RETRY_DELAYS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn metrics_token_and_shutdown_timeout() {
        let s = settings(&[]).unwrap();
        assert!(s.metrics_token.is_none());
        assert_eq!(s.shutdown_timeout, Duration::from_secs(10));
        let s = settings(&[
            ("METRICS_TOKEN", "a-scrape-token-nobody-guesses"),
            ("SHUTDOWN_TIMEOUT", "3"),
        ])
        .unwrap();
        assert_eq!(s.shutdown_timeout, Duration::from_secs(3));
        assert!(!format!("{s:?}").contains("nobody-guesses"));
        let err = settings(&[("METRICS_TOKEN", "short")]).unwrap_err();
        assert!(err.to_string().contains("METRICS_TOKEN"), "{err}");
        assert!(!err.to_string().contains("short"), "{err}");
    }

    #[test]
    fn jwt_leeway_defaults_to_five_seconds_and_is_at_most_a_minute() {
        assert_eq!(settings(&[]).unwrap().jwt.leeway, Duration::from_secs(5));
        for (raw, secs) in [("0", 0), ("30", 30), (" 60 ", 60)] {
            let s = settings(&[("JWT_LEEWAY", raw)]).unwrap();
            assert_eq!(s.jwt.leeway, Duration::from_secs(secs), "{raw}");
        }
        for bad in ["61", "3600", "-1", "5s", "soon"] {
            let err = settings(&[("JWT_LEEWAY", bad)]).unwrap_err();
            assert!(err.to_string().contains("JWT_LEEWAY"), "{bad}: {err}");
        }
        let err = settings(&[("JWT_LEEWAY", "61")]).unwrap_err();
        assert!(err.to_string().contains("at most 60"), "{err}");
    }

    #[test]
    fn jwt_signing_kid_is_read_and_only_for_es256() {
        assert_eq!(settings(&[]).unwrap().jwt.signing_kid, None);
        let s = settings(&[("JWT_SIGNING_KID", " key-2024 ")]).unwrap();
        assert_eq!(s.jwt.signing_kid.as_deref(), Some("key-2024"));
        let err = settings(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", RANDOM_SECRET),
            ("JWT_SIGNING_KID", "key-2024"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("JWT_SIGNING_KID"), "{err}");
    }

    #[test]
    fn max_connections_is_derived_unless_set() {
        assert_eq!(settings(&[]).unwrap().max_connections, None);
        let s = settings(&[("MAX_CONNECTIONS", "500")]).unwrap();
        assert_eq!(s.max_connections, Some(500));
        for bad in ["0", "-3", "many"] {
            let err = settings(&[("MAX_CONNECTIONS", bad)]).unwrap_err();
            assert!(err.to_string().contains("MAX_CONNECTIONS"), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        for zero in ["RATE_LIMIT_EMAIL_CHANGES", "RATE_LIMIT_LOGIN_DELAY_MAX"] {
            let err = settings(&[(zero, "0")]).unwrap_err();
            assert!(err.to_string().contains(zero), "{err}");
        }
        let err = settings(&[("SESSION_MAX_LIFETIME", "0")]).unwrap_err();
        assert!(err.to_string().contains("SESSION_MAX_LIFETIME"), "{err}");
        let err = settings(&[("ACCESS_TOKEN_TTL", "soon")]).unwrap_err();
        assert!(err.to_string().contains("ACCESS_TOKEN_TTL"), "{err}");
        let err = settings(&[("PASSWORD_REQUIRE_COMPOSITION", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("PASSWORD_REQUIRE_COMPOSITION"));
    }

    #[test]
    fn the_legacy_secret_is_any_string_with_fastapi_users_audience_by_default() {
        assert!(settings(&[]).unwrap().legacy_jwt.is_none());
        let legacy = settings(&[("LEGACY_JWT_SECRET", "SECRET")])
            .unwrap()
            .legacy_jwt
            .unwrap();
        assert_eq!(legacy.secret.expose_secret(), "SECRET");
        assert_eq!(legacy.audience, ["fastapi-users:auth"]);
        let legacy = settings(&[
            ("LEGACY_JWT_SECRET", "SECRET"),
            ("LEGACY_JWT_AUDIENCE", "app:auth, fastapi-users:auth"),
        ])
        .unwrap()
        .legacy_jwt
        .unwrap();
        assert_eq!(legacy.audience, ["app:auth", "fastapi-users:auth"]);
        // Short and patterned, as fastapi-users' examples are: production still starts.
        let production = settings(&[
            ("GATEHOUSE_ENV", "production"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", RANDOM_SECRET),
            ("MFA_KEY", RANDOM_SECRET),
            ("PUBLIC_URL", "https://auth.example.com"),
            ("LEGACY_JWT_SECRET", "SECRET"),
        ]);
        assert!(production.unwrap().legacy_jwt.is_some());
    }

    #[test]
    fn the_legacy_secret_is_never_gatehouses_own() {
        let err = settings(&[
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", RANDOM_SECRET),
            ("LEGACY_JWT_SECRET", RANDOM_SECRET),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("LEGACY_JWT_SECRET"), "{err}");
    }
}
