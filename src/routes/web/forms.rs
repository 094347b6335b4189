//! Forms of the pages: the CSRF-checked form extractor, per-field errors, and where to go next.

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

/// The error messages of a submitted form, in the order of its fields: each beside its input
/// and all of them in the summary at the top of the page (`error_summary` in `macros.html`).
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FormError>);

/// One message of a form. `field` is the id of the input it is about (the summary links to
/// it); `beside` says whether it shows beside that input too.
#[derive(Debug)]
pub struct FormError {
    pub field: &'static str,
    pub message: String,
    /// A way out, shown after the message: ("/login", "Log in instead").
    pub link: Option<(&'static str, &'static str)>,
    beside: bool,
}

impl FieldErrors {
    /// The message for `field`; a field keeps its first message.
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.push(field, message.into(), None, true);
    }

    /// A message with a link after it, such as "Log in instead".
    pub fn add_with_link(
        &mut self,
        field: &'static str,
        message: impl Into<String>,
        link: (&'static str, &'static str),
    ) {
        self.push(field, message.into(), Some(link), true);
    }

    /// A message about the whole form (one for every cause of a failed login), shown only
    /// in the summary, which links to `field`.
    pub fn add_to_form(&mut self, field: &'static str, message: impl Into<String>) {
        self.push(field, message.into(), None, false);
    }

    fn push(
        &mut self,
        field: &'static str,
        message: String,
        link: Option<(&'static str, &'static str)>,
        beside: bool,
    ) {
        if !self.0.iter().any(|error| error.field == field) {
            self.0.push(FormError {
                field,
                message,
                link,
                beside,
            });
        }
    }

    /// The message shown beside `field`, or "".
    pub fn get(&self, field: &str) -> &str {
        self.beside(field)
            .map_or("", |error| error.message.as_str())
    }

    /// The message shown beside `field`, with its link.
    pub fn beside(&self, field: &str) -> Option<&FormError> {
        self.0
            .iter()
            .find(|error| error.beside && error.field == field)
    }

    /// Every message, in the order of the form's fields, for the summary.
    pub fn all(&self) -> &[FormError] {
        &self.0
    }

    /// The first message, for a page that can show only one.
    pub fn first(&self) -> Option<&str> {
        self.0.first().map(|error| error.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The messages for an email field that did not parse, in words people use.
pub fn email_error(raw: &str) -> &'static str {
    if raw.trim().is_empty() {
        "Enter an email address"
    } else {
        "Enter a valid email address, like name@example.com"
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
