//! HTTP handlers: thin functions that extract, call a service, and answer.

pub mod api;
pub mod pages;

use actix_web::http::header;
use actix_web::HttpRequest;

/// The client's User-Agent, shortened, to tell sessions apart.
fn user_agent(req: &HttpRequest) -> Option<String> {
    let agent = req.headers().get(header::USER_AGENT)?.to_str().ok()?;
    Some(agent.chars().take(256).collect())
}
