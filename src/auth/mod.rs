//! Authentication machinery: password hashing, signing keys, access and refresh tokens, the
//! CSRF tokens of signed-in sessions, device cookies, passkeys (WebAuthn), and throttling. No
//! HTTP here: the web kit (`routes::web`) reads requests.

pub mod csrf;
pub mod device;
pub mod keys;
pub mod mfa;
pub mod oidc;
pub mod passkeys;
pub mod password;
pub mod pseudonym;
pub mod refresh;
pub mod throttle;
pub mod tokens;
