//! The OpenID Connect provider ("Log in with Gatehouse"): authorization requests and consent
//! (`authorize`), the tokens applications get and what they may ask about them (`tokens`),
//! and the user's and the logout's view of applications (`apps`).
//!
//! An application's grant is a session of its own (`sessions.client_id`): its refresh tokens
//! rotate with reuse detection and its access tokens end with it, as a user's do. Every
//! request an application's token makes loads that session and the user afresh.

mod apps;
mod authorize;
mod tokens;

pub use apps::*;
pub use authorize::*;
pub use tokens::*;

/// How long an authorization code can be exchanged.
pub const CODE_TTL_SECS: i64 = 60;
/// The scopes applications may ask for.
pub const SUPPORTED_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];
/// The scope that asks for a refresh token.
const OFFLINE_ACCESS: &str = "offline_access";
