//! Forms of the pages: the CSRF-checked form extractor, per-field errors, and where to go next.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::csrf;
use super::errors::PageError;
use super::extractors::{identify, Identity};
use crate::domain::LocalPath;
use crate::state::AppState;

/// Per-field error messages of a form, shown beside their inputs.
#[derive(Debug, Default)]
pub struct FieldErrors(HashMap<&'static str, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    pub fn get(&self, field: &str) -> &str {
        self.0.get(field).map_or("", String::as_str)
    }

    /// The first message, for a page that can show only one.
    pub fn first(&self) -> Option<&str> {
        self.0.values().next().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A submitted form whose CSRF token matched and which came from this site; anything else is
/// refused with the 403 page before the handler runs. The token must be the signed-in
/// session's when the cookie signs the browser in, the page session's otherwise (see
/// [`csrf`]).
pub struct CsrfForm<T>(pub T);

/// A form with nothing but its CSRF token (a button).
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<CsrfForm<T>, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = body.await.map_err(|_| PageError::BadRequest)?;
            let presented: CsrfField =
                serde_urlencoded::from_bytes(&body).map_err(|_| PageError::BadRequest)?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .expect("AppState is registered");
            let signed_in = match identify(&req, &state).await? {
                Identity::Known(auth) => auth.csrf_session(),
                Identity::Client(..) | Identity::Anonymous { .. } => None,
            };
            let token = presented.csrf_token.as_deref();
            if !csrf::verify(&req, &state, &req.get_session(), signed_in, token) {
                return Err(PageError::CsrfFailed);
            }
            let form = serde_urlencoded::from_bytes(&body).map_err(|_| PageError::BadRequest)?;
            Ok(CsrfForm(form))
        })
    }
}

/// The `next` a page may send the browser to after a form, with a safe default.
pub fn next_or(raw: Option<&str>, default: &str) -> LocalPath {
    LocalPath::parse_or(raw, default)
}
