//! Queries on `audit_events`.

use diesel::prelude::*;

use super::schema::{audit_events, users};
use super::{count_up_to_limit, escape_like, one, search, Boundary, Conn, DbError, Listing, Page};
use crate::domain::{AuditEvent, AuditFilter, AuditRecord, Party};

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub event: AuditEvent,
    pub occurred_at: i64,
    pub actor: Option<Party>,
    pub subject: Option<Party>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events)]
struct AuditRow {
    id: String,
    occurred_at: i64,
    event: String,
    actor_id: Option<String>,
    actor_label: Option<String>,
    subject_id: Option<String>,
    subject_label: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
}

fn party(id: Option<String>, label: Option<String>) -> Option<Party> {
    id.map(|id| Party {
        id,
        label: label.unwrap_or_default(),
    })
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> AuditRecord {
        AuditRecord {
            id: row.id,
            occurred_at: row.occurred_at,
            event: row.event,
            actor: party(row.actor_id, row.actor_label),
            subject: party(row.subject_id, row.subject_label),
            ip: row.ip,
            user_agent: row.user_agent,
            detail: row.detail,
        }
    }
}

pub fn insert(conn: &mut Conn, new: NewAuditEvent) -> Result<(), DbError> {
    let search_text = [&new.actor, &new.subject]
        .into_iter()
        .flatten()
        .map(|party| party.label.as_str())
        .chain(new.detail.as_deref())
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    let (actor_id, actor_label) = new.actor.map(|p| (p.id, p.label)).unzip();
    let (subject_id, subject_label) = new.subject.map(|p| (p.id, p.label)).unzip();
    diesel::insert_into(audit_events::table)
        .values((
            // Version 7 UUIDs sort by time, so the newest events come first by id alone.
            audit_events::id.eq(uuid::Uuid::now_v7().to_string()),
            audit_events::occurred_at.eq(new.occurred_at),
            audit_events::event.eq(new.event.as_str()),
            audit_events::actor_id.eq(actor_id),
            audit_events::actor_label.eq(actor_label),
            audit_events::subject_id.eq(subject_id),
            audit_events::subject_label.eq(subject_label),
            audit_events::ip.eq(new.ip),
            audit_events::user_agent.eq(new.user_agent),
            audit_events::detail.eq(new.detail),
            audit_events::search_text.eq(search_text),
        ))
        .execute(conn)?;
    Ok(())
}

/// One page of matching events, newest first, read from an index whatever its depth. The
/// party filter matches an id, or an account's whole address, as actor or subject; or else
/// part of a label or the detail (see [`search`]).
pub fn list(
    conn: &mut Conn,
    filter: &AuditFilter,
    page: &Page,
) -> Result<Listing<AuditRecord>, DbError> {
    let sqlite = matches!(conn, Conn::Sqlite(_));
    let needle = filter.party.as_deref().map(str::to_lowercase);
    // A user's or client's id is matched whole, from the indexes on actor and subject; any
    // other text as part of a label or the detail, from the trigram index. Asked as one
    // condition with OR, the planner would read the whole log in time order instead.
    // An account's whole address is that account: its id finds its events from the indexes,
    // under whatever address each was recorded.
    let party = match &filter.party {
        Some(party) => Some(
            users::table
                .filter(users::email_normalized.eq(crate::domain::normalize_email(party)))
                .select(users::id)
                .get_result::<String>(conn)
                .optional()?
                .unwrap_or_else(|| party.clone()),
        ),
        None => None,
    };
    let by_id = match &party {
        Some(party) => diesel::select(diesel::dsl::exists(
            audit_events::table.filter(
                audit_events::actor_id
                    .eq(party)
                    .or(audit_events::subject_id.eq(party)),
            ),
        ))
        .get_result::<bool>(conn)?,
        None => false,
    };
    let query = || {
        let mut query = audit_events::table.into_boxed();
        if let Some(event) = filter.event {
            query = query.filter(audit_events::event.eq(event.as_str()));
        }
        match (&party, &needle) {
            (Some(party), _) if by_id => {
                query = query.filter(
                    audit_events::actor_id
                        .eq(party.clone())
                        .or(audit_events::subject_id.eq(party.clone())),
                );
            }
            (_, Some(needle)) => {
                let pattern = format!("%{}%", escape_like(needle));
                query = query.filter(audit_events::search_text.like(pattern).escape('\\'));
                if needle.chars().count() >= search::TRIGRAM {
                    if let Some(indexed) = search::trigram_condition(sqlite, "audit_events", needle)
                    {
                        query = query.filter(indexed);
                    }
                }
            }
            _ => {}
        }
        if let Some(ip) = &filter.ip {
            query = query.filter(audit_events::ip.eq(ip.clone()));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit_events::occurred_at.ge(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_events::occurred_at.le(until));
        }
        query
    };
    let total = count_up_to_limit(conn, query().select(one()))?;
    let boundary = match &page.from {
        Some(Boundary::After(id) | Boundary::Before(id)) => audit_events::table
            .filter(audit_events::id.eq(id))
            .select((audit_events::occurred_at, audit_events::id))
            .get_result::<(i64, String)>(conn)
            .optional()?,
        None => None,
    };
    let page = match boundary {
        Some(_) => page.clone(),
        None => Page::first(page.size),
    };
    let rows = keyset!(
        query(),
        audit_events::occurred_at,
        audit_events::id,
        boundary,
        !page.backwards()
    )
    .limit(page.size + 1)
    .select(AuditRow::as_select())
    .load(conn)?;
    // Back to the newest events: a full first page rather than a short one.
    if page.backwards() && rows.len() as i64 <= page.size {
        return list(conn, filter, &Page::first(page.size));
    }
    let events = rows.into_iter().map(AuditRecord::from).collect();
    Ok(Listing::from_rows(events, &page, total, |event| {
        event.id.clone()
    }))
}
