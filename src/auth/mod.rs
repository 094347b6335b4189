//! Authentication machinery: password hashing, signing keys, access and refresh tokens, and
//! the extractors handlers use.

pub mod cookies;
pub mod csrf;
pub mod extractors;
pub mod keys;
pub mod origin;
pub mod password;
pub mod refresh;
pub mod throttle;
pub mod tokens;

pub use extractors::{AuthUser, Superuser};
