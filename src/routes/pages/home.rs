//! `GET /`: the home page.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::Visitor;
use crate::routes::web::{render, Layout};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    Visitor(visitor): Visitor,
) -> Result<HttpResponse, PageError> {
    let layout = Layout::new(&state, &session, visitor.as_ref())?;
    render(StatusCode::OK, &HomePage { layout })
}
