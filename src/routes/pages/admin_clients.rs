//! `/admin/clients`: superusers register, list, change and delete clients (machine clients
//! and applications).
//!
//! Registering is POST → 303 → GET, so reloading never registers a second client: the new
//! client's secret rides to the next page in the page session, which is encrypted, and is
//! taken from it there, so it shows once.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::domain::{Client, ClientId, ClientName, IdTokenAlgorithm, RedirectUri, Scopes};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{Authenticated, PageSuperuser};
use crate::routes::web::{
    display_date, flash, render, see_other, CsrfForm, FieldErrors, Layout, NoFields,
};
use crate::services::clients::{self, AppSettings, NewClient};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::ServiceError;
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
    form: ClientFields,
    errors: FieldErrors,
}

struct ClientRow {
    client_id: String,
    name: String,
    scopes: String,
    created: String,
    is_application: bool,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    public: bool,
    skip_consent: bool,
    id_token_alg: &'static str,
}

impl From<Client> for ClientRow {
    fn from(client: Client) -> ClientRow {
        let lines = |uris: &[RedirectUri]| {
            uris.iter()
                .map(RedirectUri::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        };
        ClientRow {
            client_id: client.id.to_string(),
            scopes: client.scopes.to_space_separated(),
            created: display_date(client.created_at),
            is_application: client.is_application(),
            redirect_uris: lines(&client.redirect_uris),
            post_logout_redirect_uris: lines(&client.post_logout_redirect_uris),
            public: client.public,
            skip_consent: client.skip_consent,
            id_token_alg: client.id_token_alg.as_str(),
            name: client.name,
        }
    }
}

/// The page session's one-time note of the client just registered, with its secret.
const CREATED: &str = "created_client";

#[derive(Serialize, Deserialize)]
struct CreatedClient {
    client_id: String,
    /// None for a public client.
    client_secret: Option<String>,
    name: String,
    scopes: String,
}

async fn page(
    state: &AppState,
    session: &Session,
    admin: &Authenticated,
    form: ClientFields,
    errors: FieldErrors,
    created: Option<CreatedClient>,
) -> Result<ClientsPage, PageError> {
    Ok(ClientsPage {
        layout: Layout::new(state, session, Some(admin))?,
        clients: clients::list(state)
            .await?
            .into_iter()
            .map(ClientRow::from)
            .collect(),
        created,
        form,
        errors,
    })
}

pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    // Shown once: taken from the session as it is shown.
    let created = session
        .remove_as::<CreatedClient>(CREATED)
        .and_then(Result::ok);
    let view = page(
        &state,
        &session,
        &auth,
        ClientFields::default(),
        FieldErrors::default(),
        created,
    )
    .await?;
    render(StatusCode::OK, &view)
}

#[derive(Deserialize, Default)]
pub struct ClientFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: String,
    /// One per line (or separated by spaces).
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    public: Option<String>,
    #[serde(default)]
    skip_consent: Option<String>,
    #[serde(default)]
    id_token_alg: String,
}

impl ClientFields {
    /// The application settings in the form, with each problem noted against its field.
    fn app_settings(&self, errors: &mut FieldErrors) -> Option<AppSettings> {
        let uris = |raw: &str| RedirectUri::parse_each(raw.split_whitespace());
        let redirect_uris = uris(&self.redirect_uris)
            .map_err(|e| errors.add("redirect_uris", capitalize(&e.to_string())))
            .ok();
        let post_logout_redirect_uris = uris(&self.post_logout_redirect_uris)
            .map_err(|e| errors.add("post_logout_redirect_uris", capitalize(&e.to_string())))
            .ok();
        let id_token_alg = match self.id_token_alg.as_str() {
            "" => Some(IdTokenAlgorithm::default()),
            raw => IdTokenAlgorithm::parse(raw).or_else(|| {
                errors.add("id_token_alg", "Choose ES256 or RS256");
                None
            }),
        };
        Some(AppSettings {
            redirect_uris: redirect_uris?,
            post_logout_redirect_uris: post_logout_redirect_uris?,
            public: self.public.is_some(),
            skip_consent: self.skip_consent.is_some(),
            id_token_alg: id_token_alg?,
        })
    }
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
    let app = form.app_settings(&mut errors);
    let (Some(name), Some(scopes), Some(app)) = (name, scopes, app) else {
        let view = page(&state, &session, &auth, form, errors, None).await?;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &view);
    };
    let ctx = Context::user(&auth.user, origin);
    let new = NewClient { name, scopes, app };
    let registered = match clients::register(&state, &ctx, new).await {
        Ok(registered) => registered,
        Err(refused @ (ServiceError::ClientSettings(_) | ServiceError::ClientNameTaken)) => {
            match refused {
                ServiceError::ClientNameTaken => {
                    errors.add("name", "Another client has that name. Choose another.")
                }
                ServiceError::ClientSettings(why) if why.contains("scopes") => {
                    errors.add("scopes", capitalize(why))
                }
                ServiceError::ClientSettings(why) => errors.add("redirect_uris", capitalize(why)),
                _ => {}
            }
            let view = page(&state, &session, &auth, form, errors, None).await?;
            return render(StatusCode::UNPROCESSABLE_ENTITY, &view);
        }
        Err(other) => return Err(other.into()),
    };
    log::info!(
        "{} registered client {}",
        auth.user.email,
        registered.client.id
    );
    let created = CreatedClient {
        client_id: registered.client.id.to_string(),
        client_secret: registered
            .secret
            .as_ref()
            .map(|secret| secret.expose_secret().to_owned()),
        name: registered.client.name.clone(),
        scopes: registered.client.scopes.to_space_separated(),
    };
    session
        .insert(CREATED, created)
        .map_err(PageError::internal)?;
    Ok(see_other(PAGE))
}

/// Changes an application's redirect URIs, consent and ID-token settings.
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    origin: Origin,
    CsrfForm(form): CsrfForm<ClientFields>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let id = ClientId::parse(&id).ok_or(PageError::NotFound)?;
    let mut errors = FieldErrors::default();
    let Some(settings) = form.app_settings(&mut errors) else {
        let first = errors
            .first()
            .unwrap_or("The settings are not valid.")
            .to_owned();
        flash::error(&session, first);
        return Ok(see_other(PAGE));
    };
    let ctx = Context::user(&auth.user, origin);
    match clients::update_app(&state, &ctx, id, settings).await {
        Ok(client) => flash::success(&session, format!("“{}” has been changed.", client.name)),
        Err(ServiceError::ClientSettings(why)) => flash::error(&session, why),
        Err(ServiceError::NotFound) => flash::error(&session, "That client no longer exists."),
        Err(other) => return Err(other.into()),
    }
    Ok(see_other(PAGE))
}

#[derive(Template)]
#[template(path = "admin_confirm_delete_client.html")]
struct ConfirmDeletePage {
    layout: Layout,
    client_id: String,
    name: String,
    is_application: bool,
}

/// `GET /admin/clients/{id}/delete`: asks first.
pub async fn confirm_delete(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let id = ClientId::parse(&id).ok_or(PageError::NotFound)?;
    let client = clients::find(&state, id).await?;
    let page = ConfirmDeletePage {
        layout: Layout::new(&state, &session, Some(&auth))?,
        client_id: client.id.to_string(),
        is_application: client.is_application(),
        name: client.name,
    };
    render(StatusCode::OK, &page)
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
