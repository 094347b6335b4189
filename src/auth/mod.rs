//! Authentication machinery: password hashing (and recognising hashes made elsewhere), signing keys, access and refresh tokens (and the old
//! fastapi-users backend's, during a move), the
//! CSRF tokens of signed-in sessions, device cookies, passkeys (WebAuthn), and throttling. No
//! HTTP here: the web kit (`routes::web`) reads requests.

pub mod csrf;
pub mod device;
pub mod hash_formats;
pub mod keys;
pub mod legacy_tokens;
pub mod mfa;
pub mod oidc;
pub mod passkeys;
pub mod password;
pub mod pseudonym;
pub mod refresh;
pub mod throttle;
pub mod tokens;
pub mod verified_tokens;
