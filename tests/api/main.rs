//! Black-box tests: each test starts the real application on a random port with a fresh SQLite file.

mod helpers;

mod admin;
mod health;
mod login;
mod refresh;
mod register;
mod robustness;
mod tokens;
mod users_me;
