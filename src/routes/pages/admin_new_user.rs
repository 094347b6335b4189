//! `/admin/users/new`: a superuser adds an account, with a password they choose or with an
//! invitation emailed to the address.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::Email;
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::PageSuperuser;
use crate::routes::web::{email_error, flash, render, see_other, CsrfForm, FieldErrors, Layout};
use crate::services::context::{Context, Origin};
use crate::services::invitations::{self, FirstPassword};
use crate::services::ServiceError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin_new_user.html")]
struct NewUserPage {
    layout: Layout,
    form: NewUserFields,
    errors: FieldErrors,
}

#[derive(Deserialize, Default)]
pub struct NewUserFields {
    #[serde(default)]
    email: String,
    /// `invite` (the default) or `password`.
    #[serde(default)]
    first_password: String,
    #[serde(default)]
    password: String,
    superuser: Option<String>,
}

impl NewUserFields {
    fn invites(&self) -> bool {
        self.first_password != "password"
    }
}

pub async fn form(
    state: web::Data<AppState>,
    session: Session,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let page = NewUserPage {
        layout: Layout::new(&state, &session, Some(&auth))?,
        form: NewUserFields::default(),
        errors: FieldErrors::default(),
    };
    render(StatusCode::OK, &page)
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    CsrfForm(form): CsrfForm<NewUserFields>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    let email = Email::parse(&form.email)
        .map_err(|_| errors.add("email", email_error(&form.email)))
        .ok();
    let first_password = if form.invites() {
        Some(FirstPassword::Invitation)
    } else if form.password.is_empty() {
        errors.add(
            "password",
            "Enter a password, or send an invitation instead",
        );
        None
    } else {
        Some(FirstPassword::Chosen(form.password.clone().into()))
    };
    if let (Some(email), Some(first_password)) = (email, first_password) {
        let ctx = Context::user(&auth.user, origin);
        let superuser = form.superuser.is_some();
        match invitations::create_user(&state, &ctx, email, superuser, first_password).await {
            Ok(user) => {
                flash::success(
                    &session,
                    if form.invites() {
                        format!(
                            "{} has been invited: a link to choose a password is on its way.",
                            user.email
                        )
                    } else {
                        format!(
                            "{} has been created. Pass the password on to them safely.",
                            user.email
                        )
                    },
                );
                return Ok(see_other(&format!("/admin/users/{}", user.id)));
            }
            Err(ServiceError::EmailTaken) => {
                errors.add("email", "An account with this email address already exists")
            }
            Err(ServiceError::WeakPassword(why)) => errors.add("password", why.to_string()),
            Err(other) => return Err(other.into()),
        }
    }
    let page = NewUserPage {
        layout: Layout::new(&state, &session, Some(&auth))?,
        form,
        errors,
    };
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
