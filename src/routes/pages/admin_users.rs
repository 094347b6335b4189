//! `/admin/users`: superusers list, search and manage accounts.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::{Boundary, Page, User, UserFilter, UserId, UserSort};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::{Authenticated, PageSuperuser};
use crate::routes::web::{
    boundary_param, display_date, display_time, flash, next_or, render, see_other, CsrfForm,
    Layout, PageQuery, Pager,
};
use crate::services::context::Context;
use crate::services::context::Origin;
use crate::services::users::AdminChanges;
use crate::services::{mfa, sessions, users, ServiceError};
use crate::state::AppState;

const PAGE_SIZE: i64 = 20;
const LIST: &str = "/admin/users";

/// What a superuser can do to an account from its row or its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
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

    fn slug(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Demote => "demote",
            Action::Activate => "activate",
            Action::Deactivate => "deactivate",
            Action::Verify => "verify",
            Action::EndSessions => "end-sessions",
            Action::ResetMfa => "reset-mfa",
            Action::Delete => "delete",
        }
    }

    /// Its button for `target`, seen by `admin`: disabled (with the reason) when it would be
    /// the superuser's own undoing.
    pub(super) fn button(self, target: &User, admin: UserId) -> ActionButton {
        let label = match self {
            Action::Promote => "Promote…",
            Action::Demote => "Demote",
            Action::Activate => "Activate",
            Action::Deactivate => "Deactivate…",
            Action::Verify => "Verify",
            Action::EndSessions => "Sign out",
            Action::ResetMfa => "Reset two-factor…",
            Action::Delete => "Delete…",
        };
        ActionButton {
            slug: self.slug(),
            label,
            danger: matches!(self, Action::Deactivate | Action::ResetMfa | Action::Delete),
            refused: (target.id == admin)
                .then(|| self.refused_on_self())
                .flatten()
                .unwrap_or_default(),
        }
    }

    /// Actions that ask first, on a page of their own.
    fn asks_first(self) -> bool {
        matches!(
            self,
            Action::Promote | Action::Deactivate | Action::ResetMfa | Action::Delete
        )
    }

    /// Why a superuser may not do this to their own account from the admin pages: it would
    /// lock them out, or skip what the account's own pages ask for.
    pub(super) fn refused_on_self(self) -> Option<&'static str> {
        match self {
            Action::Demote => Some("You can’t demote yourself: another superuser has to."),
            Action::Deactivate => {
                Some("You can’t deactivate your own account: another superuser has to.")
            }
            Action::Delete => {
                Some("You can’t delete your own account here: use your account page.")
            }
            Action::ResetMfa => Some(
                "You can’t reset your own two-factor authentication here: use your sign-in \
                 security page.",
            ),
            _ => None,
        }
    }

    /// The actions that would change this account, in the list's order.
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

/// An action's button, ready to display.
pub(super) struct ActionButton {
    pub slug: &'static str,
    pub label: &'static str,
    pub danger: bool,
    /// Why it is disabled, or "" when it is not.
    pub refused: &'static str,
}

struct UserRow {
    id: String,
    email: String,
    created: String,
    created_date: String,
    /// "Never" when the account has not signed in since sign-ins were recorded.
    last_sign_in: String,
    last_sign_in_date: String,
    is_active: bool,
    is_verified: bool,
    is_superuser: bool,
    /// The superuser looking at the list.
    is_you: bool,
    actions: Vec<ActionButton>,
}

impl UserRow {
    fn new(user: User, admin: UserId) -> UserRow {
        let (last_sign_in, last_sign_in_date) = match user.last_login_at {
            Some(at) => (display_time(at), display_date(at)),
            None => ("Never".to_owned(), "Never".to_owned()),
        };
        UserRow {
            actions: Action::applicable(&user)
                .into_iter()
                .map(|action| action.button(&user, admin))
                .collect(),
            id: user.id.to_string(),
            created: display_time(user.created_at),
            created_date: display_date(user.created_at),
            last_sign_in,
            last_sign_in_date,
            is_you: user.id == admin,
            email: user.email,
            is_active: user.is_active,
            is_verified: user.is_verified,
            is_superuser: user.is_superuser,
        }
    }
}

/// A sortable column's header: where its link goes, and how the list is sorted by it now.
struct SortHeader {
    href: String,
    /// `aria-sort`: "ascending", "descending", or "" when the list is sorted by another.
    aria_sort: &'static str,
}

/// One choice of a filter's select.
struct FilterOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// A yes/no filter of the list, as its select shows it.
struct FilterSelect {
    name: &'static str,
    label: &'static str,
    options: Vec<FilterOption>,
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
    sort_email: SortHeader,
    sort_created: SortHeader,
    sort_last_sign_in: SortHeader,
    /// The current sort, for the search form to keep ("" when it is the default).
    sort: String,
    dir: String,
    filters: Vec<FilterSelect>,
    filtered: bool,
    /// The list without its filters (search and sort kept).
    clear_href: String,
    bulk_actions: Vec<BulkOption>,
}

/// The list's query string: search, filters, sort and page. Anything it does not know is
/// ignored, and a value it does not know is the default.
#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
    sort: Option<String>,
    dir: Option<String>,
    active: Option<String>,
    verified: Option<String>,
    superuser: Option<String>,
}

fn yes_no(raw: Option<&str>) -> Option<bool> {
    match raw {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

fn yes_no_str(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
    }
}

/// The direction a column sorts in when first chosen: names A to Z, moments newest first.
fn default_descending(sort: UserSort) -> bool {
    sort != UserSort::Email
}

impl ListQuery {
    fn filter(&self) -> UserFilter {
        let sort = self
            .sort
            .as_deref()
            .and_then(UserSort::parse)
            .unwrap_or_default();
        let descending = match self.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => default_descending(sort),
        };
        UserFilter {
            search: self.q.as_deref().unwrap_or("").trim().to_owned(),
            is_active: yes_no(self.active.as_deref()),
            is_verified: yes_no(self.verified.as_deref()),
            is_superuser: yes_no(self.superuser.as_deref()),
            sort,
            descending,
        }
    }
}

/// The address of the list `filter` describes, from its top or beside `boundary`; defaults are
/// left out.
fn list_url(filter: &UserFilter, boundary: Option<&Boundary>) -> String {
    let mut params: Vec<(&str, String)> = Vec::new();
    if !filter.search.is_empty() {
        params.push(("q", filter.search.clone()));
    }
    for (name, value) in [
        ("active", filter.is_active),
        ("verified", filter.is_verified),
        ("superuser", filter.is_superuser),
    ] {
        if value.is_some() {
            params.push((name, yes_no_str(value).to_owned()));
        }
    }
    let (sort, dir) = sort_params(filter);
    if !sort.is_empty() {
        params.push(("sort", sort.to_owned()));
    }
    if !dir.is_empty() {
        params.push(("dir", dir.to_owned()));
    }
    params.extend(boundary.map(boundary_param));
    match serde_urlencoded::to_string(&params) {
        Ok(query) if !query.is_empty() => format!("{LIST}?{query}"),
        _ => LIST.to_owned(),
    }
}

/// `sort` and `dir` of a list's address, each "" when it is the default.
fn sort_params(filter: &UserFilter) -> (&'static str, &'static str) {
    let sort = match filter.sort {
        UserSort::Created => "",
        other => other.as_str(),
    };
    let dir = match (filter.descending, default_descending(filter.sort)) {
        (same, default) if same == default => "",
        (true, _) => "desc",
        (false, _) => "asc",
    };
    (sort, dir)
}

/// The header of the column sorted by `sort`: its link sorts by it (the other way round if
/// the list is sorted by it already), from the first page.
fn sort_header(filter: &UserFilter, sort: UserSort) -> SortHeader {
    let current = filter.sort == sort;
    let descending = if current {
        !filter.descending
    } else {
        default_descending(sort)
    };
    let target = UserFilter {
        sort,
        descending,
        ..filter.clone()
    };
    SortHeader {
        href: list_url(&target, None),
        aria_sort: match (current, filter.descending) {
            (false, _) => "",
            (true, true) => "descending",
            (true, false) => "ascending",
        },
    }
}

fn filter_select(
    name: &'static str,
    label: &'static str,
    value: Option<bool>,
    yes: &'static str,
    no: &'static str,
) -> FilterSelect {
    FilterSelect {
        name,
        label,
        options: [("", "Any"), ("yes", yes), ("no", no)]
            .into_iter()
            .map(|(option, text)| FilterOption {
                value: option,
                label: text,
                selected: option == yes_no_str(value),
            })
            .collect(),
    }
}

pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<ListQuery>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let filter = query.filter();
    let from = query.page.boundary();
    let page = Page {
        from: from.clone(),
        size: PAGE_SIZE,
    };
    let listing = users::list(&state, filter.clone(), page).await?;
    let pager = Pager::new(&listing, |boundary| list_url(&filter, Some(boundary)));
    let filtered =
        filter.is_active.is_some() || filter.is_verified.is_some() || filter.is_superuser.is_some();
    let search = &filter.search;
    let count = match listing.total {
        total if total.is_one() => "1 user".to_owned(),
        total => format!("{} users", total.display()),
    };
    let verb = if listing.total.is_one() {
        "matches"
    } else {
        "match"
    };
    let summary = match (search.is_empty(), filtered) {
        (true, false) => count,
        (false, false) => format!("{count} {verb} “{search}”"),
        (true, true) => format!("{count} {verb} the filters"),
        (false, true) => format!("{count} {verb} “{search}” and the filters"),
    };
    let unfiltered = UserFilter {
        is_active: None,
        is_verified: None,
        is_superuser: None,
        ..filter.clone()
    };
    let (sort, dir) = sort_params(&filter);
    let admin = auth.user.id;
    let view = UsersPage {
        layout: Layout::new(&state, &session, Some(&auth))?,
        summary,
        rows: listing
            .items
            .into_iter()
            .map(|user| UserRow::new(user, admin))
            .collect(),
        current: list_url(&filter, from.as_ref()),
        pager,
        sort_email: sort_header(&filter, UserSort::Email),
        sort_created: sort_header(&filter, UserSort::Created),
        sort_last_sign_in: sort_header(&filter, UserSort::LastSignIn),
        sort: sort.to_owned(),
        dir: dir.to_owned(),
        filters: vec![
            filter_select("active", "Status", filter.is_active, "Active", "Inactive"),
            filter_select(
                "verified",
                "Email address",
                filter.is_verified,
                "Verified",
                "Not verified",
            ),
            filter_select(
                "superuser",
                "Role",
                filter.is_superuser,
                "Superuser",
                "Member",
            ),
        ],
        filtered,
        clear_href: list_url(&unfiltered, None),
        bulk_actions: BulkAction::ALL
            .into_iter()
            .map(BulkAction::option)
            .collect(),
        query: filter.search,
    };
    render(StatusCode::OK, &view)
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

#[derive(Template)]
#[template(path = "admin_confirm_action.html")]
struct ConfirmActionPage {
    layout: Layout,
    id: String,
    next: String,
    slug: &'static str,
    title: String,
    explanation: String,
    button: &'static str,
    danger: bool,
}

/// `GET /admin/users/{id}/{action}` of an action that asks first: its confirmation. Other
/// actions have no page.
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
    if target.id == auth.user.id {
        if let Some(reason) = action.refused_on_self() {
            flash::error(&session, reason);
            return Ok(see_other(&user_page(target.id)));
        }
    }
    ask_first(&state, &session, &auth, action, &target, LIST).await
}

/// The page of one account.
pub(super) fn user_page(id: UserId) -> String {
    format!("{LIST}/{id}")
}

async fn ask_first(
    state: &AppState,
    session: &Session,
    admin: &Authenticated,
    action: Action,
    target: &User,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let (title, explanation, button, danger) = match action {
        Action::Delete => return confirm_delete(state, session, admin, target, next),
        Action::Promote => (
            format!("Make {} a superuser?", target.email),
            "A superuser can see and change every account, client and audit event, \
             including yours."
                .to_owned(),
            "Make them a superuser",
            false,
        ),
        Action::Deactivate => (
            format!("Deactivate {}?", target.email),
            "They are signed out everywhere and cannot sign in until a superuser activates \
             the account again. Nothing is deleted."
                .to_owned(),
            "Deactivate the account",
            true,
        ),
        _ => {
            let factors = mfa::factors(state, target.id).await?;
            let page = ConfirmResetMfaPage {
                layout: Layout::new(state, session, Some(admin))?,
                id: target.id.to_string(),
                email: target.email.clone(),
                next: next.to_owned(),
                factors: describe_factors(&factors),
            };
            return render(StatusCode::OK, &page);
        }
    };
    let page = ConfirmActionPage {
        layout: Layout::new(state, session, Some(admin))?,
        id: target.id.to_string(),
        next: next.to_owned(),
        slug: action.slug(),
        title,
        explanation,
        button,
        danger,
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

/// Where an action on `target` goes back to: the `next` it names if that is one of the admin's
/// user pages (never the page of an account just deleted), else the list.
fn back_to(next: Option<&str>, action: Action, target: UserId) -> String {
    let next = next_or(next, LIST);
    let next = next.as_str();
    if !next.starts_with(LIST) || (action == Action::Delete && next == user_page(target)) {
        return LIST.to_owned();
    }
    next.to_owned()
}

/// `POST /admin/users/{id}/{action}`; promoting, deactivating, deleting and resetting the
/// second factors need `confirm=yes` (else they ask first). A superuser cannot demote,
/// deactivate, delete or reset themselves here.
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
    let target = find(&state, &id).await?;
    let next = back_to(form.next.as_deref(), action, target.id);
    if target.id == auth.user.id {
        if let Some(reason) = action.refused_on_self() {
            flash::error(&session, reason);
            return Ok(see_other(&next));
        }
    }
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
pub(super) async fn find(state: &AppState, id: &str) -> Result<User, PageError> {
    let id: UserId = id.parse().map_err(|_| PageError::NotFound)?;
    Ok(users::get(state, id).await?)
}

// ---------------------------------------------------------------------------------------------
// Several accounts at once

/// What can be done to the accounts selected in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BulkAction {
    Deactivate,
    EndSessions,
    Delete,
}

/// A choice of the list's bulk form.
struct BulkOption {
    value: &'static str,
    label: &'static str,
}

/// At most this many accounts at once: a page of the list and then some.
const BULK_LIMIT: usize = 100;

impl BulkAction {
    const ALL: [BulkAction; 3] = [
        BulkAction::Deactivate,
        BulkAction::EndSessions,
        BulkAction::Delete,
    ];

    fn action(self) -> Action {
        match self {
            BulkAction::Deactivate => Action::Deactivate,
            BulkAction::EndSessions => Action::EndSessions,
            BulkAction::Delete => Action::Delete,
        }
    }

    fn parse(raw: &str) -> Option<BulkAction> {
        BulkAction::ALL
            .into_iter()
            .find(|bulk| bulk.action().slug() == raw)
    }

    fn option(self) -> BulkOption {
        BulkOption {
            value: self.action().slug(),
            label: match self {
                BulkAction::Deactivate => "Deactivate",
                BulkAction::EndSessions => "Sign out everywhere",
                BulkAction::Delete => "Delete",
            },
        }
    }

    /// The confirmation's title, its explanation and its button, for `n` accounts.
    fn asking(self, n: usize) -> (String, &'static str, String) {
        let users = if n == 1 {
            "1 user".to_owned()
        } else {
            format!("{n} users")
        };
        match self {
            BulkAction::Deactivate => (
                format!("Deactivate {users}?"),
                "They are signed out everywhere and cannot sign in until a superuser activates \
                 their accounts again. Nothing is deleted.",
                format!("Deactivate {users}"),
            ),
            BulkAction::EndSessions => (
                format!("Sign out {users} everywhere?"),
                "Every session of these accounts ends; they can sign in again at once.",
                format!("Sign out {users}"),
            ),
            BulkAction::Delete => (
                format!("Delete {users}?"),
                "This removes the accounts and ends all of their sessions. It cannot be undone.",
                format!("Delete {users}"),
            ),
        }
    }

    /// What was done, for the accounts listed.
    fn done(self, emails: &str) -> String {
        match self {
            BulkAction::Deactivate => format!("Deactivated and signed out: {emails}."),
            BulkAction::EndSessions => format!("Signed out everywhere: {emails}."),
            BulkAction::Delete => format!("Deleted: {emails}."),
        }
    }
}

/// An account on the bulk confirmation.
struct BulkAccount {
    id: String,
    email: String,
}

#[derive(Template)]
#[template(path = "admin_confirm_bulk.html")]
struct ConfirmBulkPage {
    layout: Layout,
    action: &'static str,
    title: String,
    explanation: &'static str,
    button: String,
    accounts: Vec<BulkAccount>,
    /// The superuser's own account was among those selected, and is left out.
    skipped_self: bool,
    next: String,
}

/// The bulk form: `action`, a `user` field per selected account, `next`, and `confirm`.
#[derive(Default)]
struct BulkFields {
    action: Option<String>,
    users: Vec<UserId>,
    next: Option<String>,
    confirm: bool,
}

impl BulkFields {
    fn from_pairs(pairs: Vec<(String, String)>) -> BulkFields {
        let mut fields = BulkFields::default();
        for (name, value) in pairs {
            match name.as_str() {
                "action" => fields.action = Some(value),
                "next" => fields.next = Some(value),
                "confirm" => fields.confirm = value == "yes",
                // An id that is not a UUID names no account.
                "user" => {
                    if let Ok(id) = value.parse::<UserId>() {
                        if !fields.users.contains(&id) {
                            fields.users.push(id);
                        }
                    }
                }
                _ => {}
            }
        }
        fields
    }
}

/// `POST /admin/users/bulk`: deactivates, signs out or deletes the selected accounts, each as
/// its single action does (and audited as it is), after one confirmation that lists them.
/// The superuser's own account is skipped; one message reports what was done and refused.
pub async fn bulk(
    state: web::Data<AppState>,
    session: Session,
    origin: Origin,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let fields = BulkFields::from_pairs(pairs);
    let next = next_or(fields.next.as_deref(), LIST);
    let next = if next.as_str().starts_with(LIST) {
        next.to_string()
    } else {
        LIST.to_owned()
    };
    let Some(bulk) = fields.action.as_deref().and_then(BulkAction::parse) else {
        flash::error(&session, "Choose what to do with the selected users.");
        return Ok(see_other(&next));
    };
    if fields.users.len() > BULK_LIMIT {
        flash::error(
            &session,
            format!("Select at most {BULK_LIMIT} users at a time."),
        );
        return Ok(see_other(&next));
    }
    // Accounts deleted since the list was shown drop out.
    let mut targets = Vec::new();
    for id in fields.users {
        match users::get(&state, id).await {
            Ok(user) => targets.push(user),
            Err(ServiceError::NotFound) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let admin = auth.user.id;
    let skipped_self = targets.iter().any(|user| user.id == admin);
    targets.retain(|user| user.id != admin);
    if targets.is_empty() {
        flash::error(
            &session,
            if skipped_self {
                "Nothing was changed: your own account is left out of actions on several \
                 users. Select others."
            } else {
                "Select the users to apply it to first."
            },
        );
        return Ok(see_other(&next));
    }
    if !fields.confirm {
        let (title, explanation, button) = bulk.asking(targets.len());
        let page = ConfirmBulkPage {
            layout: Layout::new(&state, &session, Some(&auth))?,
            action: bulk.action().slug(),
            title,
            explanation,
            button,
            accounts: targets
                .into_iter()
                .map(|user| BulkAccount {
                    id: user.id.to_string(),
                    email: user.email,
                })
                .collect(),
            skipped_self,
            next,
        };
        return render(StatusCode::OK, &page);
    }
    let ctx = Context::user(&auth.user, origin);
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    for target in targets {
        match apply(&state, &ctx, bulk.action(), target.id).await {
            Ok(()) => {
                log::info!("{} {:?}d {}", auth.user.email, bulk, target.email);
                done.push(target.email);
            }
            Err(ServiceError::LastSuperuser) => {
                refused.push(format!("{} (the last active superuser)", target.email))
            }
            Err(ServiceError::NotFound) => {
                refused.push(format!("{} (no longer exists)", target.email))
            }
            Err(other) => return Err(other.into()),
        }
    }
    let mut report = Vec::new();
    if !done.is_empty() {
        report.push(bulk.done(&done.join(", ")));
    }
    if !refused.is_empty() {
        report.push(format!("Not changed: {}.", refused.join(", ")));
    }
    if skipped_self {
        report.push("Your own account was left out.".to_owned());
    }
    let report = report.join(" ");
    if refused.is_empty() {
        flash::success(&session, report);
    } else {
        flash::error(&session, report);
    }
    Ok(see_other(&next))
}
