//! HTTP handlers: thin functions that extract, call a service, and answer.

pub mod api;
pub mod metrics;
pub mod pages;
pub mod web;
