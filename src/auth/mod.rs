//! Authentication machinery: password hashing, signing keys, access and refresh tokens, and
//! throttle buckets. No HTTP here: the web kit (`routes::web`) reads requests.

pub mod keys;
pub mod password;
pub mod pseudonym;
pub mod refresh;
pub mod throttle;
pub mod tokens;
