//! `/admin/users`: superusers list, search and manage accounts.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::Page;
use crate::domain::{User, UserId};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{Authenticated, PageSuperuser};
use crate::routes::web::{
    display_date, display_time, flash, next_or, render, see_other, CsrfForm, Layout, Pager,
};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::users::AdminChanges;
use crate::services::{mfa, sessions, users, ServiceError};
use crate::state::AppState;

const PAGE_SIZE: i64 = 20;
const LIST: &str = "/admin/users";

/// What a superuser can do to an account from its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Promote,
    Demote,
    Activate,
    Deactivate,
    Verify,
    EndSessions,
    ResetMfa,
    Delete,
}

impl Action {
    fn parse(slug: &str) -> Option<Action> {
        Some(match slug {
            "promote" => Action::Promote,
            "demote" => Action::Demote,
            "activate" => Action::Activate,
            "deactivate" => Action::Deactivate,
            "verify" => Action::Verify,
            "end-sessions" => Action::EndSessions,
            "reset-mfa" => Action::ResetMfa,
            "delete" => Action::Delete,
            _ => return None,
        })
    }

    fn button(self) -> ActionButton {
        let (slug, label) = match self {
            Action::Promote => ("promote", "Promote"),
            Action::Demote => ("demote", "Demote"),
            Action::Activate => ("activate", "Activate"),
            Action::Deactivate => ("deactivate", "Deactivate"),
            Action::Verify => ("verify", "Verify"),
            Action::EndSessions => ("end-sessions", "Sign out"),
            Action::ResetMfa => ("reset-mfa", "Reset two-factor…"),
            Action::Delete => ("delete", "Delete…"),
        };
        ActionButton {
            slug,
            label,
            danger: matches!(self, Action::Deactivate | Action::ResetMfa | Action::Delete),
        }
    }

    /// Actions that ask first, on a page of their own.
    fn asks_first(self) -> bool {
        matches!(self, Action::ResetMfa | Action::Delete)
    }

    /// The actions that would change this account.
    fn applicable(user: &User) -> Vec<Action> {
        let mut actions = vec![if user.is_superuser {
            Action::Demote
        } else {
            Action::Promote
        }];
        actions.push(if user.is_active {
            Action::Deactivate
        } else {
            Action::Activate
        });
        if !user.is_verified {
            actions.push(Action::Verify);
        }
        actions.push(Action::EndSessions);
        // Whether the account has a factor is not known here (one query per row): the
        // confirmation page tells.
        actions.push(Action::ResetMfa);
        actions.push(Action::Delete);
        actions
    }

    fn done(self, email: &str) -> String {
        match self {
            Action::Promote => format!("{email} is now a superuser."),
            Action::Demote => format!("{email} is no longer a superuser."),
            Action::Activate => format!("{email} has been activated."),
            Action::Deactivate => format!("{email} has been deactivated and signed out."),
            Action::Verify => format!("{email} is now verified."),
            Action::EndSessions => format!("{email} has been signed out everywhere."),
            Action::ResetMfa => format!(
                "Every second factor of {email} has been removed, and they have been signed out \
                 everywhere. They can sign in with their password and set up a new one."
            ),
            Action::Delete => format!("{email} has been deleted."),
        }
    }
}

struct ActionButton {
    slug: &'static str,
    label: &'static str,
    danger: bool,
}

struct UserRow {
    id: String,
    email: String,
    created: String,
    created_date: String,
    is_active: bool,
    is_verified: bool,
    is_superuser: bool,
    actions: Vec<ActionButton>,
}

impl From<User> for UserRow {
    fn from(user: User) -> UserRow {
        UserRow {
            actions: Action::applicable(&user)
                .into_iter()
                .map(Action::button)
                .collect(),
            id: user.id.to_string(),
            created: display_time(user.created_at),
            created_date: display_date(user.created_at),
            email: user.email,
            is_active: user.is_active,
            is_verified: user.is_verified,
            is_superuser: user.is_superuser,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    layout: Layout,
    query: String,
    summary: String,
    rows: Vec<UserRow>,
    /// This listing's own address, so actions come back to it.
    current: String,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<ListQuery>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let search = query.q.as_deref().unwrap_or("").trim().to_owned();
    let requested = Pager::requested(query.page.as_deref());
    let page = |number| Page {
        number,
        size: PAGE_SIZE,
    };
    let mut listing = users::list(&state, search.clone(), page(requested)).await?;
    let pager = Pager::new(requested, listing.total, PAGE_SIZE, |n| {
        list_url(&search, n)
    });
    // Past the end (the list shrank, or a hand-edited link): the last page instead.
    if pager.page != requested {
        listing = users::list(&state, search.clone(), page(pager.page)).await?;
    }
    let summary = match (listing.total, search.is_empty()) {
        (1, true) => "1 user".to_owned(),
        (n, true) => format!("{n} users"),
        (1, false) => format!("1 user matches “{search}”"),
        (n, false) => format!("{n} users match “{search}”"),
    };
    let view = UsersPage {
        layout: Layout::new(&state, &session, Some(&auth))?,
        summary,
        rows: listing.items.into_iter().map(UserRow::from).collect(),
        current: list_url(&search, pager.page),
        pager,
        query: search,
    };
    render(StatusCode::OK, &view)
}

fn list_url(search: &str, page: i64) -> String {
    let mut params = Vec::new();
    if !search.is_empty() {
        params.push(("q", search.to_owned()));
    }
    if page > 1 {
        params.push(("page", page.to_string()));
    }
    match serde_urlencoded::to_string(&params) {
        Ok(query) if !query.is_empty() => format!("{LIST}?{query}"),
        _ => LIST.to_owned(),
    }
}

#[derive(Template)]
#[template(path = "admin_confirm_delete.html")]
struct ConfirmDeletePage {
    layout: Layout,
    id: String,
    email: String,
    next: String,
}

#[derive(Template)]
#[template(path = "admin_confirm_reset_mfa.html")]
struct ConfirmResetMfaPage {
    layout: Layout,
    id: String,
    email: String,
    next: String,
    /// What would go, for people: "an authenticator app, 2 passkeys and 7 recovery codes".
    factors: String,
}

/// `GET /admin/users/{id}/delete` and `…/reset-mfa`: asks first. Other actions have no page.
pub async fn confirm(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let (id, action) = path.into_inner();
    let action = Action::parse(&action)
        .filter(|action| action.asks_first())
        .ok_or(PageError::NotFound)?;
    let target = find(&state, &id).await?;
    ask_first(&state, &session, &auth, action, &target, LIST).await
}

async fn ask_first(
    state: &AppState,
    session: &Session,
    admin: &Authenticated,
    action: Action,
    target: &User,
    next: &str,
) -> Result<HttpResponse, PageError> {
    if action == Action::Delete {
        return confirm_delete(state, session, admin, target, next);
    }
    let factors = mfa::factors(state, target.id).await?;
    let page = ConfirmResetMfaPage {
        layout: Layout::new(state, session, Some(admin))?,
        id: target.id.to_string(),
        email: target.email.clone(),
        next: next.to_owned(),
        factors: describe_factors(&factors),
    };
    render(StatusCode::OK, &page)
}

/// The factors an account has, for people; empty when it has none.
fn describe_factors(factors: &mfa::Factors) -> String {
    let mut parts = Vec::new();
    if factors.totp {
        parts.push("an authenticator app".to_owned());
    }
    match factors.passkeys.len() {
        0 => {}
        1 => parts.push("1 passkey".to_owned()),
        n => parts.push(format!("{n} passkeys")),
    }
    if parts.is_empty() {
        return String::new();
    }
    match factors.recovery_codes_left {
        0 => {}
        1 => parts.push("1 recovery code".to_owned()),
        n => parts.push(format!("{n} recovery codes")),
    }
    match parts.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn confirm_delete(
    state: &AppState,
    session: &Session,
    admin: &Authenticated,
    target: &User,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let page = ConfirmDeletePage {
        layout: Layout::new(state, session, Some(admin))?,
        id: target.id.to_string(),
        email: target.email.clone(),
        next: next.to_owned(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct ActionFields {
    next: Option<String>,
    confirm: Option<String>,
}

/// `POST /admin/users/{id}/{action}`; deleting and resetting the second factors need
/// `confirm=yes` (else they ask first).
pub async fn act(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
    origin: Origin,
    CsrfForm(form): CsrfForm<ActionFields>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let (id, action) = path.into_inner();
    let action = Action::parse(&action).ok_or(PageError::NotFound)?;
    let next = next_or(form.next.as_deref(), LIST);
    let next = if next.as_str().starts_with(LIST) {
        next.to_string()
    } else {
        LIST.to_owned()
    };
    let target = find(&state, &id).await?;
    if action.asks_first() && form.confirm.as_deref() != Some("yes") {
        return ask_first(&state, &session, &auth, action, &target, &next).await;
    }
    let ctx = Context::user(&auth.user, origin);
    match apply(&state, &ctx, action, target.id).await {
        Ok(()) => {
            log::info!("{} {:?}d {}", auth.user.email, action, target.email);
            flash::success(&session, action.done(&target.email));
        }
        Err(ServiceError::LastSuperuser) => flash::error(
            &session,
            format!(
                "{} is the last active superuser, so nothing was changed. Promote someone else \
                 first.",
                target.email
            ),
        ),
        Err(ServiceError::NotFound) => flash::error(&session, "That user no longer exists."),
        Err(other) => return Err(other.into()),
    }
    Ok(see_other(&next))
}

async fn apply(
    state: &AppState,
    ctx: &Context,
    action: Action,
    id: UserId,
) -> Result<(), ServiceError> {
    let changes = match action {
        Action::Delete => return users::delete(state, ctx, id).await,
        Action::EndSessions => return sessions::end_all(state, ctx, id).await.map(drop),
        Action::ResetMfa => return mfa::reset(state, ctx, id).await,
        Action::Promote => AdminChanges {
            is_superuser: Some(true),
            ..Default::default()
        },
        Action::Demote => AdminChanges {
            is_superuser: Some(false),
            ..Default::default()
        },
        Action::Activate => AdminChanges {
            is_active: Some(true),
            ..Default::default()
        },
        Action::Deactivate => AdminChanges {
            is_active: Some(false),
            ..Default::default()
        },
        Action::Verify => AdminChanges {
            is_verified: Some(true),
            ..Default::default()
        },
    };
    users::update_any(state, ctx, id, changes).await.map(drop)
}

/// The account an action names; an id that is not a UUID is as unknown as a missing one.
async fn find(state: &AppState, id: &str) -> Result<User, PageError> {
    let id: UserId = id.parse().map_err(|_| PageError::NotFound)?;
    Ok(users::get(state, id).await?)
}
