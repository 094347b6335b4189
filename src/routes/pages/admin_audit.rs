//! `/admin/audit`: superusers read the audit log, filtered by event, party and address.

use std::net::IpAddr;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::{AuditEvent, AuditFilter, AuditRecord, Boundary, Page, Party, Total};
use crate::routes::web::errors::PageError;
use crate::routes::web::extractors::PageSuperuser;
use crate::routes::web::{
    boundary_param, display_time, format_time, render, Layout, PageQuery, Pager,
};
use crate::services::audit;
use crate::state::AppState;

const PAGE_SIZE: i64 = 50;
const LIST: &str = "/admin/audit";

/// The filters of the listing, as the form submits them and its links carry them.
#[derive(Debug, Default, Deserialize)]
struct Filters {
    #[serde(default)]
    event: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    ip: String,
}

impl Filters {
    fn trimmed(self) -> Filters {
        Filters {
            event: self.event.trim().to_owned(),
            q: self.q.trim().to_owned(),
            ip: self.ip.trim().to_owned(),
        }
    }

    fn is_empty(&self) -> bool {
        self.event.is_empty() && self.q.is_empty() && self.ip.is_empty()
    }

    /// The service's filter; an event name that is not one of ours is a bad request.
    fn to_filter(&self) -> Result<AuditFilter, PageError> {
        let event = match self.event.as_str() {
            "" => None,
            name => Some(AuditEvent::parse(name).ok_or(PageError::BadRequest)?),
        };
        let given = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        // Addresses are stored as `IpAddr` writes them; anything else matches nothing.
        let ip = given(&self.ip).map(|ip| ip.parse::<IpAddr>().map_or(ip, |ip| ip.to_string()));
        Ok(AuditFilter {
            event,
            party: given(&self.q),
            ip,
            ..AuditFilter::default()
        })
    }

    /// The address of this listing, from its newest events or beside `boundary`.
    fn url(&self, boundary: Option<&Boundary>) -> String {
        let mut params = Vec::new();
        for (name, value) in [("event", &self.event), ("q", &self.q), ("ip", &self.ip)] {
            if !value.is_empty() {
                params.push((name, value.clone()));
            }
        }
        params.extend(boundary.map(boundary_param));
        match serde_urlencoded::to_string(&params) {
            Ok(query) if !query.is_empty() => format!("{LIST}?{query}"),
            _ => LIST.to_owned(),
        }
    }
}

struct EventOption {
    name: &'static str,
    label: &'static str,
    selected: bool,
}

/// An actor or subject as a cell: its name, and a link to everything it was part of.
struct PartyCell {
    id: String,
    label: String,
    href: String,
}

impl From<Party> for PartyCell {
    fn from(party: Party) -> PartyCell {
        PartyCell {
            href: Filters {
                q: party.id.clone(),
                ..Filters::default()
            }
            .url(None),
            label: if party.label.is_empty() {
                party.id.clone()
            } else {
                party.label
            },
            id: party.id,
        }
    }
}

struct EventRow {
    id: String,
    time: String,
    /// To the second, for the cell's tooltip.
    exact_time: String,
    event: String,
    label: String,
    actor: Option<PartyCell>,
    subject: Option<PartyCell>,
    ip: String,
    user_agent: String,
    detail: String,
}

impl From<AuditRecord> for EventRow {
    fn from(record: AuditRecord) -> EventRow {
        EventRow {
            id: record.id,
            time: display_time(record.occurred_at),
            exact_time: format_time(
                record.occurred_at,
                time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
                ),
            ),
            // A name this version does not know (written by a newer one) is shown as stored.
            label: AuditEvent::parse(&record.event)
                .map_or_else(|| record.event.clone(), |event| event.label().to_owned()),
            event: record.event,
            actor: record.actor.map(PartyCell::from),
            subject: record.subject.map(PartyCell::from),
            ip: record.ip.unwrap_or_default(),
            user_agent: record.user_agent.unwrap_or_default(),
            detail: record.detail.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    layout: Layout,
    events: Vec<EventOption>,
    q: String,
    ip: String,
    filtered: bool,
    summary: String,
    rows: Vec<EventRow>,
    pager: Pager,
}

/// `GET /admin/audit?event=&q=&ip=&after=|before=`. The query is read only once the caller is known to
/// be a superuser, so nobody else learns anything from how it is answered.
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    PageSuperuser(auth): PageSuperuser,
) -> Result<HttpResponse, PageError> {
    let query = req.query_string();
    let filters = serde_urlencoded::from_str::<Filters>(query)
        .map_err(|_| PageError::BadRequest)?
        .trimmed();
    let from = serde_urlencoded::from_str::<PageQuery>(query)
        .unwrap_or_default()
        .boundary();
    let filter = filters.to_filter()?;
    let page = Page {
        from,
        size: PAGE_SIZE,
    };
    let listing = audit::list(&state, filter, page).await?;
    let pager = Pager::new(&listing, |boundary| filters.url(Some(boundary)));
    let filtered = !filters.is_empty();
    let count = listing.total.display();
    let summary = match (listing.total, filtered) {
        (Total::Exactly(0), true) => "No events match".to_owned(),
        (Total::Exactly(0), false) => "No events recorded yet".to_owned(),
        (total, true) if total.is_one() => "1 event matches".to_owned(),
        (total, false) if total.is_one() => "1 event".to_owned(),
        (_, true) => format!("{count} events match"),
        (_, false) => format!("{count} events"),
    };
    let view = AuditPage {
        layout: Layout::new(&state, &session, Some(&auth))?,
        events: AuditEvent::ALL
            .into_iter()
            .map(|event| EventOption {
                name: event.as_str(),
                label: event.label(),
                selected: event.as_str() == filters.event,
            })
            .collect(),
        filtered,
        summary,
        rows: listing.items.into_iter().map(EventRow::from).collect(),
        pager,
        q: filters.q,
        ip: filters.ip,
    };
    render(StatusCode::OK, &view)
}
