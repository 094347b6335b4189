//! `GET /audit`: the security events, for superusers, newest first.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::schemas::{Forbidden, Unauthorized, ValidationFailed};
use crate::domain::{AuditEvent, AuditFilter, AuditRecord, Page, Party, Total};
use crate::routes::web::errors::{ApiError, FieldError};
use crate::routes::web::{PageQuery, Superuser};
use crate::services::audit;
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 200;

// Numbers arrive as text so that a malformed one gets FastAPI's 422 naming the parameter;
// the document says what they must be.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An event name, e.g. `login_failed`.
    #[param(schema_with = event_names, nullable = false)]
    event: Option<String>,
    /// A user or client id, or part of an email or client name, as actor or subject.
    #[param(nullable = false)]
    q: Option<String>,
    /// The client address, exactly.
    #[param(nullable = false)]
    ip: Option<String>,
    /// Seconds since the Unix epoch, inclusive.
    #[param(value_type = Option<i64>, nullable = false)]
    since: Option<String>,
    /// Seconds since the Unix epoch, inclusive.
    #[param(value_type = Option<i64>, nullable = false)]
    until: Option<String>,
    /// An event id from an earlier page's `next`: the events older than it.
    #[param(nullable = false)]
    after: Option<String>,
    /// An event id from an earlier page's `previous`: the events newer than it.
    #[param(nullable = false)]
    before: Option<String>,
    /// No longer taken: pages follow `next` and `previous` (a page number would make a deep
    /// page read every event before it).
    #[deprecated]
    #[param(value_type = Option<i64>, nullable = false)]
    page: Option<String>,
    /// From 1 to 200; 50 by default.
    #[param(value_type = Option<i64>, nullable = false, minimum = 1, maximum = 200)]
    page_size: Option<String>,
}

/// The `event` parameter: one of the names events are recorded under.
fn event_names() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(AuditEvent::ALL.map(AuditEvent::as_str)))
}

/// An optional integer query parameter; empty counts as absent.
fn integer(name: &str, raw: Option<String>) -> Result<Option<i64>, ApiError> {
    raw.filter(|raw| !raw.is_empty())
        .map(|raw| {
            raw.trim().parse().map_err(|_| {
                ApiError::validation(FieldError::query(
                    name,
                    "Input should be a valid integer, unable to parse string as an integer",
                    "int_parsing",
                ))
            })
        })
        .transpose()
}

#[derive(Serialize, ToSchema)]
pub struct PartyRead {
    id: String,
    label: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventRead {
    id: String,
    /// Seconds since the Unix epoch.
    occurred_at: i64,
    #[schema(schema_with = event_names)]
    event: String,
    actor: Option<PartyRead>,
    subject: Option<PartyRead>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEventRead>,
    /// How many events match, counted up to 10,000.
    total: i64,
    /// False when more than `total` events match.
    total_is_exact: bool,
    page_size: i64,
    /// Pass as `after` for the next, older page; null on the last page.
    next: Option<String>,
    /// Pass as `before` for the previous, newer page; null on the first page.
    previous: Option<String>,
}

fn party(party: Option<Party>) -> Option<PartyRead> {
    party.map(|p| PartyRead {
        id: p.id,
        label: p.label,
    })
}

impl From<AuditRecord> for AuditEventRead {
    fn from(record: AuditRecord) -> AuditEventRead {
        AuditEventRead {
            id: record.id,
            occurred_at: record.occurred_at,
            event: record.event,
            actor: party(record.actor),
            subject: party(record.subject),
            ip: record.ip,
            user_agent: record.user_agent,
            detail: record.detail,
        }
    }
}

/// Security events, newest first (superusers).
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    operation_id = "list_audit_events",
    params(AuditQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "A page of events", body = AuditPage,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    _: Superuser,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let event = query
        .event
        .filter(|e| !e.is_empty())
        .map(|name| {
            AuditEvent::parse(&name).ok_or_else(|| {
                ApiError::validation(FieldError::query(
                    "event",
                    "Input should be one of the audit event names",
                    "enum",
                ))
            })
        })
        .transpose()?;
    // Read only to refuse it.
    #[allow(deprecated)]
    let page_number = query.page.is_some();
    if page_number {
        return Err(ApiError::validation(FieldError::query(
            "page",
            "Page numbers are not taken: follow the `next` and `previous` of a page",
            "extra_forbidden",
        )));
    }
    let size = integer("page_size", query.page_size)?.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(ApiError::validation(FieldError::query(
            "page_size",
            format!("Input should be between 1 and {MAX_PAGE_SIZE}"),
            "less_than_equal",
        )));
    }
    let filter = AuditFilter {
        event,
        party: query.q.filter(|q| !q.trim().is_empty()),
        ip: query.ip.filter(|ip| !ip.is_empty()),
        since: integer("since", query.since)?,
        until: integer("until", query.until)?,
    };
    let from = PageQuery::new(query.after, query.before).boundary();
    let listing = audit::list(&state, filter, Page { from, size }).await?;
    let (total, total_is_exact) = match listing.total {
        Total::Exactly(n) => (n, true),
        Total::MoreThan(n) => (n, false),
    };
    Ok(HttpResponse::Ok().json(AuditPage {
        items: listing.items.into_iter().map(Into::into).collect(),
        total,
        total_is_exact,
        page_size: size,
        next: listing.next,
        previous: listing.previous,
    }))
}
