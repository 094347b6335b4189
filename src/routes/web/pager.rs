//! Where a page of a long list starts, and its links to the pages either side: each link names
//! the item its page starts beside (`?after=ID` or `?before=ID`), never a page number, so a
//! deep page costs what the first one does.

use serde::Deserialize;

use crate::domain::{Boundary, Listing};

/// The links to the pages either side of the one shown (`templates/macros.html` writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pager {
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// A list's `after` and `before` parameters, as a query string carries them.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    after: Option<String>,
    before: Option<String>,
}

/// Ids are UUIDs: anything longer is not one, and starts from the top.
const MAX_ID: usize = 64;

impl PageQuery {
    pub fn new(after: Option<String>, before: Option<String>) -> PageQuery {
        PageQuery { after, before }
    }

    /// The boundary the page asks for; none (the first page) for anything else.
    pub fn boundary(&self) -> Option<Boundary> {
        let id = |raw: &Option<String>| {
            raw.as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty() && id.len() <= MAX_ID)
                .map(str::to_owned)
        };
        id(&self.after)
            .map(Boundary::After)
            .or_else(|| id(&self.before).map(Boundary::Before))
    }
}

impl Pager {
    /// The links of `listing`'s page; `url(boundary)` is the address of the page beside it.
    pub fn new<T>(listing: &Listing<T>, url: impl Fn(&Boundary) -> String) -> Pager {
        Pager {
            previous: listing
                .previous
                .clone()
                .map(|id| url(&Boundary::Before(id))),
            next: listing.next.clone().map(|id| url(&Boundary::After(id))),
        }
    }
}

/// The query parameter that carries `boundary` in a list's address.
pub fn boundary_param(boundary: &Boundary) -> (&'static str, String) {
    match boundary {
        Boundary::After(id) => ("after", id.clone()),
        Boundary::Before(id) => ("before", id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Total;

    fn query(after: Option<&str>, before: Option<&str>) -> PageQuery {
        PageQuery::new(after.map(str::to_owned), before.map(str::to_owned))
    }

    #[test]
    fn a_page_asks_for_the_items_after_or_before_an_id() {
        assert_eq!(
            query(Some("a1"), None).boundary(),
            Some(Boundary::After("a1".into()))
        );
        assert_eq!(
            query(None, Some(" b2 ")).boundary(),
            Some(Boundary::Before("b2".into()))
        );
        for nonsense in [
            query(None, None),
            query(Some(""), Some("  ")),
            query(Some(&"x".repeat(65)), None),
        ] {
            assert_eq!(nonsense.boundary(), None);
        }
    }

    #[test]
    fn links_start_beside_the_first_and_last_items() {
        let listing = Listing {
            items: vec!["c", "d"],
            total: Total::Exactly(9),
            previous: Some("c".into()),
            next: None,
        };
        let pager = Pager::new(&listing, |boundary| {
            let (name, id) = boundary_param(boundary);
            format!("/list?{name}={id}")
        });
        assert_eq!(pager.previous.as_deref(), Some("/list?before=c"));
        assert_eq!(pager.next, None);
    }
}
