//! `/admin/users/{id}`: one account, for superusers: its status, its sign-in factors, where it
//! is signed in (each session can be signed out), its recent events, and the actions on it,
//! each in a place of its own. The actions post to `admin_users::act` and come back here.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use uuid::Uuid;

use super::admin_users::{find, user_page, Action, ActionButton};
use crate::domain::{device_name, AuditEvent, AuditFilter, Page, User};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::PageSuperuser;
use crate::routes::web::{flash, render, see_other, CsrfForm, Layout, NoFields, When};
use crate::services::context::{Context, Origin};
use crate::services::{audit, mfa, sessions, ServiceError};
use crate::state::AppState;

/// How many of the account's events the page shows; the audit log has the rest.
const RECENT_EVENTS: i64 = 10;

/// One place of the actions: what it is about, how things stand, and its button (none when
/// there is nothing to do, such as verifying a verified address).
struct ActionSlot {
    heading: &'static str,
    status: String,
    button: Option<ActionButton>,
}

/// A live session of the account, ready to display.
struct SessionView {
    id: String,
    device: String,
    user_agent: String,
    address: String,
    started: When,
    last_active: When,
}

/// A passkey, by its name.
struct PasskeyView {
    name: String,
    added: When,
}

/// One of the account's recent events.
struct EventView {
    when: When,
    label: String,
    actor: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    layout: Layout,
    id: String,
    email: String,
    is_active: bool,
    is_verified: bool,
    is_superuser: bool,
    /// The superuser looking at the page.
    is_you: bool,
    created: When,
    last_sign_in: Option<When>,
    /// Where the actions come back to.
    here: String,
    actions: Vec<ActionSlot>,
    totp: bool,
    passkeys: Vec<PasskeyView>,
    recovery_codes_left: i64,
    sessions: Vec<SessionView>,
    events: Vec<EventView>,
    /// "1,234", or "10,000+".
    events_total: String,
    /// Whether the user has more events than the page shows.
    more_events: bool,
    /// The audit log, filtered to this account.
    audit_href: String,
}

/// The actions on `user`, each always in its place, whatever the account's state.
fn action_slots(user: &User, admin: &User) -> Vec<ActionSlot> {
    let button = |action: Action| Some(action.button(user, admin.id));
    vec![
        ActionSlot {
            heading: "Role",
            status: if user.is_superuser {
                "Superuser".to_owned()
            } else {
                "Member".to_owned()
            },
            button: button(if user.is_superuser {
                Action::Demote
            } else {
                Action::Promote
            }),
        },
        ActionSlot {
            heading: "Access",
            status: if user.is_active {
                "Active: can sign in".to_owned()
            } else {
                "Inactive: cannot sign in".to_owned()
            },
            button: button(if user.is_active {
                Action::Deactivate
            } else {
                Action::Activate
            }),
        },
        ActionSlot {
            heading: "Email address",
            status: if user.is_verified {
                "Verified".to_owned()
            } else {
                "Not verified".to_owned()
            },
            button: if user.is_verified {
                None
            } else {
                button(Action::Verify)
            },
        },
        ActionSlot {
            heading: "Sessions",
            status: "Ends every session of the account, on every device".to_owned(),
            button: button(Action::EndSessions).map(|button| ActionButton {
                label: "Sign out everywhere",
                ..button
            }),
        },
        ActionSlot {
            heading: "Two-factor authentication",
            status: "Removes every second factor, for someone who lost theirs".to_owned(),
            button: button(Action::ResetMfa),
        },
        ActionSlot {
            heading: "Delete",
            status: "Removes the account for good".to_owned(),
            button: button(Action::Delete),
        },
    ]
}

/// `GET /admin/users/{id}`; an unknown or malformed id is the 404 page.
pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let user = find(&state, &id).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let live = sessions::list_live(&state, user.id).await?;
    let factors = mfa::factors(&state, user.id).await?;
    let filter = AuditFilter {
        party: Some(user.id.to_string()),
        ..AuditFilter::default()
    };
    let recent = audit::list(&state, filter, Page::first(RECENT_EVENTS)).await?;
    let audit_href = match serde_urlencoded::to_string([("q", user.id.to_string())]) {
        Ok(query) => format!("/admin/audit?{query}"),
        Err(_) => "/admin/audit".to_owned(),
    };
    let view = UserPage {
        layout: Layout::new(&state, &session, Some(&auth))?,
        id: user.id.to_string(),
        email: user.email.clone(),
        is_active: user.is_active,
        is_verified: user.is_verified,
        is_superuser: user.is_superuser,
        is_you: user.id == auth.user.id,
        created: When::of(user.created_at, now),
        last_sign_in: user.last_login_at.map(|at| When::of(at, now)),
        here: user_page(user.id),
        actions: action_slots(&user, &auth.user),
        totp: factors.totp,
        passkeys: factors
            .passkeys
            .into_iter()
            .map(|passkey| PasskeyView {
                name: passkey.name,
                added: When::of(passkey.created_at, now),
            })
            .collect(),
        recovery_codes_left: factors.recovery_codes_left,
        sessions: live
            .into_iter()
            .map(|live| SessionView {
                device: device_name(live.user_agent.as_deref()),
                user_agent: live.user_agent.unwrap_or_default(),
                address: live.ip_address.unwrap_or_default(),
                started: When::of(live.created_at, now),
                last_active: When::of(live.last_used_at, now),
                id: live.id,
            })
            .collect(),
        events_total: recent.total.display(),
        more_events: recent.next.is_some(),
        events: recent
            .items
            .into_iter()
            .map(|record| EventView {
                when: When::of(record.occurred_at, now),
                // A name this version does not know (written by a newer one) is shown as stored.
                label: AuditEvent::parse(&record.event)
                    .map_or_else(|| record.event.clone(), |event| event.label().to_owned()),
                actor: record.actor.map(|actor| actor.label).unwrap_or_default(),
                detail: record.detail.unwrap_or_default(),
            })
            .collect(),
        audit_href,
    };
    render(StatusCode::OK, &view)
}

/// `POST /admin/users/{id}/sessions/{session}/end`: ends that one session of the account,
/// audited as its owner's own sign-out of it.
pub async fn end_session(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
    origin: Origin,
    CsrfForm(_): CsrfForm<NoFields>,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let (id, session_id) = path.into_inner();
    let user = find(&state, &id).await?;
    let session_id = Uuid::parse_str(&session_id).map_err(|_| PageError::NotFound)?;
    let ctx = Context::user(&auth.user, origin);
    match sessions::end_session_of(&state, &ctx, &user, session_id).await {
        Ok(()) => flash::success(
            &session,
            format!("That session of {} has been signed out.", user.email),
        ),
        Err(ServiceError::NotFound) => flash::error(&session, "That session had already ended."),
        Err(other) => return Err(other.into()),
    }
    Ok(see_other(&user_page(user.id)))
}
