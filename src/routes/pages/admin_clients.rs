//! `/admin/clients`: superusers register, list and delete machine clients.
//!
//! Registering answers with the page itself rather than a redirect: the secret is shown
//! once, and must not travel through the session cookie to a later page.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::domain::{Client, ClientId, ClientName, Scopes};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{Authenticated, PageSuperuser};
use crate::routes::web::{
    display_date, flash, render, see_other, CsrfForm, FieldErrors, Layout, NoFields,
};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::{clients, ServiceError};
use crate::state::AppState;

const PAGE: &str = "/admin/clients";

#[derive(Template)]
#[template(path = "admin_clients.html")]
struct ClientsPage {
    layout: Layout,
    clients: Vec<ClientRow>,
    /// The client just registered, with its secret: shown on this page only.
    created: Option<CreatedClient>,
    /// The form's values, when it is shown again with errors.
    client_name: String,
    scopes: String,
    errors: FieldErrors,
}

struct ClientRow {
    client_id: String,
    name: String,
    scopes: String,
    created: String,
}

impl From<Client> for ClientRow {
    fn from(client: Client) -> ClientRow {
        ClientRow {
            client_id: client.id.to_string(),
            scopes: client.scopes.to_space_separated(),
            created: display_date(client.created_at),
            name: client.name,
        }
    }
}

struct CreatedClient {
    client_id: String,
    client_secret: String,
    name: String,
    scopes: String,
}

async fn page(
    state: &AppState,
    session: &Session,
    admin: &Authenticated,
    form: (String, String, FieldErrors),
    created: Option<CreatedClient>,
) -> Result<ClientsPage, PageError> {
    let (client_name, scopes, errors) = form;
    Ok(ClientsPage {
        layout: Layout::new(state, session, Some(admin))?,
        clients: clients::list(state)
            .await?
            .into_iter()
            .map(ClientRow::from)
            .collect(),
        created,
        client_name,
        scopes,
        errors,
    })
}

pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let empty_form = (String::new(), String::new(), FieldErrors::default());
    let view = page(&state, &session, &auth, empty_form, None).await?;
    render(StatusCode::OK, &view)
}

#[derive(Deserialize)]
pub struct ClientFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: String,
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    CsrfForm(form): CsrfForm<ClientFields>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    let name = ClientName::parse(&form.name)
        .map_err(|e| errors.add("name", capitalize(&e.to_string())))
        .ok();
    let scopes = Scopes::parse_space_separated(&form.scopes)
        .map_err(|e| errors.add("scopes", capitalize(&e.to_string())))
        .ok();
    let (Some(name), Some(scopes)) = (name, scopes) else {
        let view = page(
            &state,
            &session,
            &auth,
            (form.name, form.scopes, errors),
            None,
        );
        return render(StatusCode::UNPROCESSABLE_ENTITY, &view.await?);
    };
    let ctx = Context::user(&auth.user, origin);
    let registered = clients::register(&state, &ctx, name, scopes).await?;
    log::info!(
        "{} registered client {}",
        auth.user.email,
        registered.client.id
    );
    let created = CreatedClient {
        client_id: registered.client.id.to_string(),
        client_secret: registered.secret.expose_secret().to_owned(),
        name: registered.client.name.clone(),
        scopes: registered.client.scopes.to_space_separated(),
    };
    let empty_form = (String::new(), String::new(), FieldErrors::default());
    let view = page(&state, &session, &auth, empty_form, Some(created)).await?;
    render(StatusCode::CREATED, &view)
}

pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    origin: Origin,
    CsrfForm(_): CsrfForm<NoFields>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let id = ClientId::parse(&id).ok_or(PageError::NotFound)?;
    let ctx = Context::user(&auth.user, origin);
    match clients::delete(&state, &ctx, id.clone()).await {
        Ok(()) => {
            log::info!("{} deleted client {id}", auth.user.email);
            flash::success(
                &session,
                "The client has been deleted; its tokens no longer work.",
            );
        }
        Err(ServiceError::NotFound) => flash::error(&session, "That client no longer exists."),
        Err(other) => return Err(other.into()),
    }
    Ok(see_other(PAGE))
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
