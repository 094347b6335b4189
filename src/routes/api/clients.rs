//! `/clients`: superusers register, list and delete clients: machine clients and
//! applications that sign their users in with Gatehouse (OpenID Connect).

use crate::services::context::Context;
use crate::services::context::Origin;
use actix_web::{web, HttpResponse};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::JsonBody;
use super::schemas::{Forbidden, NotFound, PayloadTooLarge, Unauthorized, ValidationFailed};
use crate::domain::{Client, ClientId, ClientName, IdTokenAlgorithm, RedirectUri, Scopes};
use crate::routes::web::errors::{ApiError, ErrorDetail, FieldError};
use crate::routes::web::Superuser;
use crate::services::clients::{self, AppSettings, NewClient};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct CreateClientBody {
    /// For people: shown in lists and the audit log.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// The scopes the client may ask for with its own credentials (OAuth scope tokens); none
    /// by default.
    #[serde(default)]
    scopes: Vec<String>,
    /// An application's redirect URIs, matched exactly: `https`, or `http` on a loopback host.
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// Where `/oauth/logout` may send users after signing out.
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// A browser or native app: no secret, PKCE alone.
    #[serde(default)]
    public: bool,
    /// A first-party application: its users are not asked for consent.
    #[serde(default)]
    skip_consent: bool,
    /// `ES256` (the default) or `RS256`.
    #[schema(value_type = Option<String>)]
    id_token_signed_response_alg: Option<String>,
}

/// A client as the API shows it: never its secret.
#[derive(Serialize, ToSchema)]
pub struct ClientRead {
    #[schema(value_type = String)]
    client_id: ClientId,
    name: String,
    #[schema(value_type = Vec<String>)]
    scopes: Scopes,
    /// Seconds since the Unix epoch.
    created_at: i64,
    #[schema(value_type = Vec<String>)]
    redirect_uris: Vec<RedirectUri>,
    #[schema(value_type = Vec<String>)]
    post_logout_redirect_uris: Vec<RedirectUri>,
    public: bool,
    skip_consent: bool,
    #[schema(value_type = String)]
    id_token_signed_response_alg: IdTokenAlgorithm,
}

impl From<Client> for ClientRead {
    fn from(client: Client) -> ClientRead {
        ClientRead {
            client_id: client.id,
            name: client.name,
            scopes: client.scopes,
            created_at: client.created_at,
            redirect_uris: client.redirect_uris,
            post_logout_redirect_uris: client.post_logout_redirect_uris,
            public: client.public,
            skip_consent: client.skip_consent,
            id_token_signed_response_alg: client.id_token_alg,
        }
    }
}

/// A client just created, with its secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedClient<'a> {
    #[serde(flatten)]
    client: ClientRead,
    /// Shown this once: only its hash is kept. Absent for a public client.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

/// Registers a machine client (superusers).
///
/// `POST /clients`: 201 with the secret, which is shown this once.
#[utoipa::path(
    post,
    path = "/clients",
    tag = "clients",
    operation_id = "create_client",
    request_body = CreateClientBody,
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 201, description = "Registered", body = CreatedClient,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`CLIENT_NAME_ALREADY_EXISTS`: another client has that \
            name, in any letter case", body = ErrorDetail),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    Superuser(admin): Superuser,
    origin: Origin,
    JsonBody(body): JsonBody<CreateClientBody>,
) -> Result<HttpResponse, ApiError> {
    let invalid = |field: &str, e: &dyn std::fmt::Display| {
        ApiError::validation(FieldError::body(&[field], e.to_string(), "value_error"))
    };
    let uris = |field: &str, list: &[String]| {
        RedirectUri::parse_each(list.iter().map(String::as_str)).map_err(|e| invalid(field, &e))
    };
    let new = NewClient {
        name: ClientName::parse(&body.name).map_err(|e| invalid("name", &e))?,
        scopes: Scopes::parse_each(body.scopes.iter().map(String::as_str))
            .map_err(|e| invalid("scopes", &e))?,
        app: AppSettings {
            redirect_uris: uris("redirect_uris", &body.redirect_uris)?,
            post_logout_redirect_uris: uris(
                "post_logout_redirect_uris",
                &body.post_logout_redirect_uris,
            )?,
            public: body.public,
            skip_consent: body.skip_consent,
            id_token_alg: match body.id_token_signed_response_alg.as_deref() {
                None => IdTokenAlgorithm::default(),
                Some(raw) => IdTokenAlgorithm::parse(raw).ok_or_else(|| {
                    invalid("id_token_signed_response_alg", &"must be ES256 or RS256")
                })?,
            },
        },
    };
    let ctx = Context::user(&admin.user, origin);
    let registered = clients::register(&state, &ctx, new).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(CreatedClient {
            client_secret: registered.secret.as_ref().map(|s| s.expose_secret()),
            client: registered.client.into(),
        }))
}

/// Every machine client (superusers).
#[utoipa::path(
    get,
    path = "/clients",
    tag = "clients",
    operation_id = "list_clients",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Every client (without secrets)", body = Vec<ClientRead>,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
pub async fn list(state: web::Data<AppState>, _: Superuser) -> Result<HttpResponse, ApiError> {
    let clients: Vec<ClientRead> = clients::list(&state)
        .await?
        .into_iter()
        .map(ClientRead::from)
        .collect();
    Ok(HttpResponse::Ok().json(clients))
}

/// Deletes a machine client (superusers).
///
/// `DELETE /clients/{client_id}`: the client's tokens stop working at once.
#[utoipa::path(
    delete,
    path = "/clients/{client_id}",
    tag = "clients",
    operation_id = "delete_client",
    params(("client_id" = String, Path, description = "The client's id")),
    security(("bearer" = []), ("cookie" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
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
