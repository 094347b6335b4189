//! Spawns the real application on a random port with a fresh database: a SQLite file, or,
//! when `TEST_DATABASE_URL` names a PostgreSQL server, a new database on it.
//!
//! `app` spawns it and talks to it, `mail` reads what it sends, `smtp` is a mail server that
//! receives it, `oauth` speaks to its token endpoint, `oidc` meets it as an OpenID Connect
//! relying party (and its user's browser) would, `passkey` is a software authenticator;
//! everything is re-exported here, so `use crate::helpers::*` brings it all.

mod app;
mod mail;
mod oauth;
mod oidc;
pub mod passkey;
mod smtp;
pub mod totp;

pub use app::*;
pub use mail::*;
pub use oauth::*;
pub use oidc::*;
pub use smtp::*;
