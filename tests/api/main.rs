//! Black-box tests: each test starts the real application on a random port with a fresh SQLite file.

mod cookie_auth;
mod helpers;
mod page_client;

mod admin;
mod audit;
mod clients;
mod csrf;
mod faults;
mod headers;
mod health;
mod key_rotation;
mod login;
mod metrics;
mod oauth;
mod openapi;
mod outbox;
mod pages_access;
mod pages_admin;
mod pages_audit;
mod pages_auth;
mod pages_clients;
mod pages_common;
mod pages_recovery;
mod pages_sessions;
mod recovery;
mod refresh;
mod register;
mod robustness;
mod scale_out;
mod sessions;
mod throttling;
mod token_confusion;
mod tokens;
mod users_me;
mod verification;
