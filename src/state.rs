//! The state every handler and service shares: the pool, the hasher, the token machinery, the
//! throttle, the mailer and the metrics. A low floor: everything above may import it, and it
//! knows nothing of HTTP.

use std::sync::Arc;

use crate::auth::csrf::SessionCsrf;
use crate::auth::device::DeviceCookies;
use crate::auth::legacy_tokens::LegacyTokens;
use crate::auth::mfa::MfaKey;
use crate::auth::passkeys::Passkeys;
use crate::auth::password::PasswordHasher;
use crate::auth::pseudonym::Pseudonyms;
use crate::auth::refresh::RefreshTokens;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::AccessTokens;
use crate::config::{EmailSettings, Environment, MfaPolicy, RefreshSettings};
use crate::db::Pool;
use crate::domain::{IdTokenAlgorithm, PasswordPolicy};
use crate::mail::Mailer;
use crate::metrics::Metrics;

/// Everything a request handler may need, shared by all workers.
pub struct AppState {
    /// Production sends HSTS.
    pub environment: Environment,
    pub pool: Pool,
    pub hasher: PasswordHasher,
    pub access_tokens: Arc<AccessTokens>,
    pub refresh_tokens: RefreshTokens,
    /// Keyed references to login identifiers that name no account (never kept as typed).
    pub pseudonyms: Pseudonyms,
    /// The CSRF tokens of signed-in sessions.
    pub session_csrf: SessionCsrf,
    /// The cookies by which devices that signed in before are known.
    pub devices: DeviceCookies,
    pub refresh: RefreshSettings,
    pub password_policy: PasswordPolicy,
    /// Whether the browser's cookies are `Secure` (and `__Host-` prefixed).
    pub cookie_secure: bool,
    pub throttle: Throttle,
    pub mailer: Mailer,
    pub email: EmailSettings,
    /// The base of links in emails, without a trailing slash.
    pub public_url: String,
    pub metrics: Metrics,
    /// Seals TOTP secrets and keys recovery-code hashes.
    pub mfa_key: MfaKey,
    /// Who must use a second factor (`MFA_REQUIRED`).
    pub mfa_policy: MfaPolicy,
    /// The WebAuthn relying party of `PUBLIC_URL`; `None` when its host is not a domain name
    /// (an IP address), where browsers offer no passkeys.
    pub passkeys: Option<Passkeys>,
    /// The old fastapi-users backend's access tokens, accepted while `LEGACY_JWT_SECRET` is
    /// set.
    pub legacy_tokens: Option<LegacyTokens>,
}

impl AppState {
    /// How ID tokens can be signed here; none under HS256, where the OpenID Connect provider
    /// is off (ID tokens must be verifiable with public keys).
    pub fn oidc_algorithms(&self) -> Vec<IdTokenAlgorithm> {
        self.access_tokens.keys().oidc_algorithms()
    }

    /// The OpenID Connect issuer: `PUBLIC_URL`.
    pub fn issuer(&self) -> &str {
        &self.public_url
    }
}
