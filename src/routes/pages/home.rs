//! `GET /`: the home page.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::Visitor;
use crate::routes::web::{render, Layout};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
}

pub async fn show(session: Session, Visitor(visitor): Visitor) -> Result<HttpResponse, PageError> {
    let user = visitor.map(|auth| auth.user);
    let layout = Layout::new(&session, user.as_ref())?;
    render(StatusCode::OK, &HomePage { layout })
}
