//! Request bodies: JSON and login forms, refused with FastAPI's 422 shape when malformed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::routes::web::errors::{ApiError, FieldError};

/// The largest body the API reads; anything longer is refused before it is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body deserialized into `T`; unknown fields are ignored.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<JsonBody<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = content_type(req).is_none_or(|mime| {
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
        let body = read_body(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            if !is_json {
                return Err(ApiError::validation(FieldError::body(
                    &[],
                    "Input should be a JSON object (send Content-Type: application/json)",
                    "model_attributes_type",
                )));
            }
            parse_json(&bytes).map(JsonBody)
        })
    }
}

/// A JSON body or an urlencoded form (whose fields are strings), deserialized into `T`.
#[derive(Debug)]
pub struct FormOrJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for FormOrJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<FormOrJson<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_form = content_type(req).is_some_and(|m| m == "application/x-www-form-urlencoded");
        if !is_form {
            let json = JsonBody::<T>::from_request(req, payload);
            return Box::pin(async move { json.await.map(|JsonBody(body)| FormOrJson(body)) });
        }
        let body = read_body(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            let fields: HashMap<String, String> =
                serde_urlencoded::from_bytes(&bytes).map_err(|e| {
                    ApiError::validation(FieldError::body(
                        &[],
                        format!("form decode error: {e}"),
                        "value_error",
                    ))
                })?;
            let object = serde_json::to_vec(&fields).map_err(ApiError::internal)?;
            parse_json(&object).map(FormOrJson)
        })
    }
}

/// Parses a JSON object into `T`, naming the offending field in the error like FastAPI does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::validation(FieldError::body(
            &[],
            format!("JSON decode error: {e}"),
            "json_invalid",
        ))
    })?;
    if !value.is_object() {
        return Err(ApiError::validation(FieldError::body(
            &[],
            "Input should be a valid dictionary or object",
            "model_attributes_type",
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut path: Vec<String> = error
            .path()
            .iter()
            .map(|segment| segment.to_string())
            .filter(|segment| segment != "?")
            .collect();
        let message = error.inner().to_string();
        let (msg, kind) = match missing_field(&message) {
            Some(field) => {
                path.push(field.to_owned());
                ("Field required".to_owned(), "missing")
            }
            None => (message, "type_error"),
        };
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        ApiError::validation(FieldError::body(&path, msg, kind))
    })
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// The OAuth2 password form of `/auth/jwt/login`, urlencoded or multipart.
#[derive(Debug)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
}

impl FromRequest for LoginForm {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<LoginForm, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mime = content_type(req).unwrap_or_default();
        if mime == "multipart/form-data" {
            let fields = read_multipart(actix_multipart::Multipart::new(
                req.headers(),
                payload.take(),
            ));
            return Box::pin(async move { LoginForm::from_fields(fields.await?) });
        }
        let body = read_body(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            if mime != "application/x-www-form-urlencoded" {
                return Err(ApiError::validation(FieldError::body(
                    &[],
                    "Input should be a form (application/x-www-form-urlencoded or multipart/form-data)",
                    "model_attributes_type",
                )));
            }
            let fields: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).map_err(|e| {
                    ApiError::validation(FieldError::body(
                        &[],
                        format!("form decode error: {e}"),
                        "value_error",
                    ))
                })?;
            LoginForm::from_fields(fields.into_iter().collect())
        })
    }
}

impl LoginForm {
    fn from_fields(mut fields: HashMap<String, String>) -> Result<LoginForm, ApiError> {
        let mut errors = Vec::new();
        let mut take = |name: &str| {
            let value = fields.remove(name);
            if value.is_none() {
                errors.push(FieldError::body(&[name], "Field required", "missing"));
            }
            value.unwrap_or_default()
        };
        let (username, password) = (take("username"), take("password"));
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(LoginForm { username, password })
    }
}

fn content_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = value.split(';').next().unwrap_or_default();
    Some(mime.trim().to_ascii_lowercase())
}

/// Reads the body, up to the limit of the `PayloadConfig` registered at startup.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, ApiError>> {
    let bytes = web::Bytes::from_request(req, payload);
    async move {
        bytes.await.map_err(|error| {
            if error.as_response_error().status_code()
                == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
            {
                ApiError::PayloadTooLarge
            } else {
                ApiError::validation(FieldError::body(
                    &[],
                    "the request body could not be read",
                    "value_error",
                ))
            }
        })
    }
}

/// Collects the text fields of a multipart form, within [`MAX_BODY_BYTES`] in all.
async fn read_multipart(
    mut multipart: actix_multipart::Multipart,
) -> Result<HashMap<String, String>, ApiError> {
    let malformed = || {
        ApiError::validation(FieldError::body(
            &[],
            "malformed multipart body",
            "value_error",
        ))
    };
    let mut fields = HashMap::new();
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|_| malformed())?;
        let name = field.name().unwrap_or_default().to_owned();
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| malformed())?;
            total += chunk.len();
            if total > MAX_BODY_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| malformed())?;
        fields.entry(name).or_insert(value);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        password: String,
        age: Option<u8>,
    }

    fn field_errors(bytes: &[u8]) -> Vec<FieldError> {
        match parse_json::<Body>(bytes).unwrap_err() {
            ApiError::Validation(errors) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_missing_field() {
        let errors = field_errors(br#"{"email": "a@example.com"}"#);
        assert_eq!(errors[0].loc, ["body", "password"]);
        assert_eq!(errors[0].kind, "missing");
    }

    #[test]
    fn names_the_field_of_the_wrong_type() {
        let errors = field_errors(br#"{"email": 5, "password": "x"}"#);
        assert_eq!(errors[0].loc, ["body", "email"]);
        let errors = field_errors(br#"{"email": "a", "password": "x", "age": 900}"#);
        assert_eq!(errors[0].loc, ["body", "age"]);
    }

    #[test]
    fn refuses_what_is_not_json_or_not_an_object() {
        assert_eq!(field_errors(b"{not json")[0].kind, "json_invalid");
        assert_eq!(field_errors(b"")[0].loc, ["body"]);
        assert_eq!(field_errors(b"[1, 2]")[0].loc, ["body"]);
        assert_eq!(field_errors(b"null")[0].loc, ["body"]);
    }

    #[test]
    fn ignores_unknown_fields() {
        let body: Body =
            parse_json(br#"{"email": "a", "password": "b", "is_superuser": true}"#).unwrap();
        assert_eq!(body.email, "a");
    }
}
