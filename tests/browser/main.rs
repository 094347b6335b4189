//! End-to-end tests in a real browser: headless Chromium driven through chromedriver.
//!
//! Each test starts the application on a random port with a fresh SQLite file,
//! and its own chromedriver and Chromium. Screenshots of each step are saved
//! under `target/browser-screenshots/`. Without Chromium or chromedriver the
//! tests say so and pass, except with `CI=true`, where they fail.

mod app;
mod harness;
/// The tests' own TOTP, shared with the API tests.
#[path = "../api/helpers/totp.rs"]
mod totp;

mod account;
mod admin;
mod clients;
mod docs;
mod every_page;
mod forms;
mod invitation;
mod mfa;
mod oidc;
mod passkeys;
mod recovery;
mod sessions;
mod smoke;
