//! Gatehouse: an authentication service speaking the fastapi-users HTTP dialect.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod mail;
pub mod metrics;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
