//! `/clients`: superusers register, list and delete machine clients.

use crate::auth::origin::Origin;
use crate::services::audit::Context;
use actix_web::{web, HttpResponse};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use crate::auth::Superuser;
use crate::domain::{Client, ClientId, ClientName, Scopes};
use crate::errors::{ApiError, FieldError};
use crate::services::clients;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct CreateClientBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// A client as the API shows it: never its secret.
#[derive(Serialize)]
struct ClientRead {
    client_id: ClientId,
    name: String,
    scopes: Scopes,
    created_at: i64,
}

impl From<Client> for ClientRead {
    fn from(client: Client) -> ClientRead {
        ClientRead {
            client_id: client.id,
            name: client.name,
            scopes: client.scopes,
            created_at: client.created_at,
        }
    }
}

/// A client just created, with its secret.
#[derive(Serialize)]
struct CreatedClient<'a> {
    #[serde(flatten)]
    client: ClientRead,
    client_secret: &'a str,
}

/// `POST /clients`: 201 with the secret, which is shown this once.
pub async fn create(
    state: web::Data<AppState>,
    Superuser(admin): Superuser,
    origin: Origin,
    JsonBody(body): JsonBody<CreateClientBody>,
) -> Result<HttpResponse, ApiError> {
    let invalid = |field: &str, e: crate::domain::InvalidClient| {
        ApiError::validation(FieldError::body(&[field], e.to_string(), "value_error"))
    };
    let name = ClientName::parse(&body.name).map_err(|e| invalid("name", e))?;
    let scopes = Scopes::parse_each(body.scopes.iter().map(String::as_str))
        .map_err(|e| invalid("scopes", e))?;
    let ctx = Context::user(&admin.user, origin);
    let registered = clients::register(&state, &ctx, name, scopes).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(CreatedClient {
            client_secret: registered.secret.expose_secret(),
            client: registered.client.into(),
        }))
}

/// `GET /clients`.
pub async fn list(state: web::Data<AppState>, _: Superuser) -> Result<HttpResponse, ApiError> {
    let clients: Vec<ClientRead> = clients::list(&state)
        .await?
        .into_iter()
        .map(ClientRead::from)
        .collect();
    Ok(HttpResponse::Ok().json(clients))
}

/// `DELETE /clients/{client_id}`: the client's tokens stop working at once.
pub async fn delete(
    state: web::Data<AppState>,
    Superuser(admin): Superuser,
    origin: Origin,
    client_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ClientId::parse(&client_id).ok_or(ApiError::NotFound)?;
    clients::delete(&state, &Context::user(&admin.user, origin), id).await?;
    Ok(HttpResponse::NoContent().finish())
}
