//! What the service does, independent of HTTP: handlers call these and map the result.

mod account;
mod account_limits;
pub mod audit;
pub mod clients;
pub mod context;
pub mod import;
pub mod invitations;
pub mod legacy_tokens;
pub mod maintenance;
pub mod mfa;
mod notices;
pub mod oidc;
pub mod passkeys;
pub mod recovery;
pub mod second_step;
pub mod seed;
pub mod sessions;
pub mod users;

use crate::auth::password::HashError;
use crate::auth::throttle::Throttled;
use crate::auth::tokens::TokenError;
use crate::db::DbError;
use crate::domain::PolicyViolation;

/// Why an operation failed, in domain terms.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the email address is already in use")]
    EmailTaken,
    #[error("the password does not meet the policy: {0}")]
    WeakPassword(PolicyViolation),
    #[error("unknown email, wrong password or inactive account")]
    BadCredentials,
    /// The password was right, but the address must be verified first.
    #[error("the email address is not verified")]
    NotVerified,
    /// An emailed token that is unknown, expired, used, or no longer matches its account.
    #[error("the token is not valid")]
    BadToken,
    #[error("the email address is verified already")]
    AlreadyVerified,
    /// Too many attempts from this client or on this account; retry later.
    #[error("too many attempts")]
    Throttled(Throttled),
    #[error("the current password does not match")]
    BadCurrentPassword,
    #[error("the refresh token is not valid")]
    RefreshTokenInvalid,
    #[error("not authenticated")]
    Unauthenticated { token_presented: bool },
    #[error("no such user")]
    NotFound,
    #[error("the change would leave no active superuser")]
    LastSuperuser,
    #[error("unknown client or wrong client secret")]
    BadClientCredentials,
    #[error("a requested scope is not granted to the client")]
    ScopeNotAllowed,
    #[error("another client has that name")]
    ClientNameTaken,
    /// A client's settings that cannot work together (or with this server's keys).
    #[error("{0}")]
    ClientSettings(&'static str),
    /// An authorization code that is unknown, expired, used, or presented with another
    /// client, redirect URI or PKCE verifier.
    #[error("the authorization code is not valid")]
    AuthorizationCodeInvalid,
    /// Too much work is waiting (password hashing); the client should retry shortly.
    #[error("the service is busy")]
    Busy,
    /// The database cannot do its job (down, full, read-only, its file gone); nothing was
    /// stored, and the client should retry later.
    #[error("the database is unavailable")]
    Unavailable,
    /// The password was right; the login's second step is owed.
    #[error("a second factor is required")]
    SecondFactorRequired(second_step::SecondStep),
    #[error("the code is not valid")]
    MfaCodeInvalid,
    /// The second step's token is unknown, used, expired or worn out by wrong codes.
    #[error("the second-step token is not valid")]
    MfaTokenInvalid,
    #[error("an authenticator app is on already")]
    MfaAlreadyEnabled,
    #[error("no authenticator app is waiting for confirmation")]
    MfaNotPending,
    #[error("the account has no second factor")]
    MfaNotEnabled,
    /// A passkey ceremony that cannot be finished: unknown, used or expired, an unknown
    /// credential, an answer that does not verify, or an inactive account.
    #[error("the passkey is not valid")]
    PasskeyInvalid,
    /// `PUBLIC_URL` names no domain, so passkeys are not offered.
    #[error("passkeys are off")]
    PasskeysOff,
    /// The policy asks for a second factor this session did not use.
    #[error("a second factor is required for this")]
    MfaRequired,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Failures no client can cause: they are logged and answered with a 500.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error(transparent)]
    Database(DbError),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Signing(#[from] crate::auth::keys::SignError),
    #[error("email: {0}")]
    Mail(String),
    #[error(transparent)]
    Sealed(#[from] crate::auth::mfa::Unsealable),
    #[error(transparent)]
    Passkey(#[from] crate::auth::passkeys::PasskeyError),
}

impl From<DbError> for ServiceError {
    fn from(error: DbError) -> ServiceError {
        match error {
            DbError::EmailTaken => ServiceError::EmailTaken,
            DbError::ClientNameTaken => ServiceError::ClientNameTaken,
            DbError::NotFound => ServiceError::NotFound,
            // The pool's breaker logs an outage once, as it begins.
            DbError::Down(cause) => {
                log::debug!("database unavailable: {cause}");
                ServiceError::Unavailable
            }
            DbError::Storage(cause) => {
                log::error!("storage failure, nothing was stored: {cause}");
                ServiceError::Unavailable
            }
            other => ServiceError::Internal(InternalError::Database(other)),
        }
    }
}

impl From<Throttled> for ServiceError {
    fn from(throttled: Throttled) -> ServiceError {
        ServiceError::Throttled(throttled)
    }
}

impl From<HashError> for ServiceError {
    fn from(error: HashError) -> ServiceError {
        match error {
            HashError::Overloaded => ServiceError::Busy,
            other => ServiceError::Internal(other.into()),
        }
    }
}

impl From<crate::auth::keys::SignError> for ServiceError {
    fn from(error: crate::auth::keys::SignError) -> ServiceError {
        ServiceError::Internal(error.into())
    }
}

impl From<TokenError> for ServiceError {
    fn from(error: TokenError) -> ServiceError {
        ServiceError::Internal(error.into())
    }
}
