//! Authentication machinery: password hashing, signing keys, access and refresh tokens, the
//! CSRF tokens of signed-in sessions, and throttle buckets. No HTTP here: the web kit
//! (`routes::web`) reads requests.

pub mod csrf;
pub mod keys;
pub mod password;
pub mod refresh;
pub mod throttle;
pub mod tokens;
