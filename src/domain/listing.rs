//! Long lists, a page at a time. A page starts beside an item of the page before it (keyset
//! pagination), so a deep page costs what the first one does.

/// Which page of a list to load: the first, or the one beside a boundary item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub from: Option<Boundary>,
    pub size: i64,
}

/// The item, by id, that a page starts beside: the page holds the items after it, or the
/// items before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boundary {
    After(String),
    Before(String),
}

impl Page {
    pub fn first(size: i64) -> Page {
        Page { from: None, size }
    }

    /// Whether the page is read backwards from its boundary (and turned round afterwards).
    pub fn backwards(&self) -> bool {
        matches!(self.from, Some(Boundary::Before(_)))
    }
}

/// Lists are counted up to this many items: counting further would read every one of them.
pub const COUNT_LIMIT: i64 = 10_000;

/// How many items a list holds, or that it holds more than [`COUNT_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    Exactly(i64),
    MoreThan(i64),
}

impl Total {
    /// The total of a count that stopped after `counted` items of at most `COUNT_LIMIT + 1`.
    pub fn of(counted: i64) -> Total {
        if counted > COUNT_LIMIT {
            Total::MoreThan(COUNT_LIMIT)
        } else {
            Total::Exactly(counted)
        }
    }

    /// The number, for a reader: "1,234", or "10,000+".
    pub fn display(self) -> String {
        match self {
            Total::Exactly(n) => thousands(n),
            Total::MoreThan(n) => format!("{}+", thousands(n)),
        }
    }

    pub fn is_one(self) -> bool {
        self == Total::Exactly(1)
    }
}

fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One page of a list, how many items the list holds, and the boundaries of the pages either
/// side of it (`None` where there is none).
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub total: Total,
    /// The id of this page's first item, when items come before it.
    pub previous: Option<String>,
    /// The id of this page's last item, when items come after it.
    pub next: Option<String>,
}

impl<T> Listing<T> {
    /// The page `page` asked for, from the rows a keyset query read for it: at most
    /// `page.size + 1`, in the order it read them (backwards for a page before its boundary).
    pub fn from_rows(
        mut rows: Vec<T>,
        page: &Page,
        total: Total,
        id: impl Fn(&T) -> String,
    ) -> Listing<T> {
        let beyond = rows.len() as i64 > page.size;
        rows.truncate(page.size.max(0) as usize);
        if page.backwards() {
            rows.reverse();
        }
        let (before, after) = match page.from {
            None => (false, beyond),
            Some(Boundary::After(_)) => (true, beyond),
            Some(Boundary::Before(_)) => (beyond, true),
        };
        Listing {
            previous: rows.first().filter(|_| before).map(&id),
            next: rows.last().filter(|_| after).map(&id),
            items: rows,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(from: Option<Boundary>) -> Page {
        Page { from, size: 2 }
    }

    fn listing(
        rows: &[&str],
        from: Option<Boundary>,
    ) -> (Vec<String>, Option<String>, Option<String>) {
        let rows = rows.iter().map(|r| r.to_string()).collect();
        let listing = Listing::from_rows(rows, &page(from), Total::Exactly(9), Clone::clone);
        (listing.items, listing.previous, listing.next)
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn the_first_page_links_forward_only_when_more_follow() {
        assert_eq!(
            listing(&["a", "b", "c"], None),
            (ids(&["a", "b"]), None, Some("b".into()))
        );
        assert_eq!(listing(&["a", "b"], None), (ids(&["a", "b"]), None, None));
        assert_eq!(listing(&[], None), (ids(&[]), None, None));
    }

    #[test]
    fn a_page_after_a_boundary_links_back_to_its_first_item() {
        let after = Some(Boundary::After("b".into()));
        assert_eq!(
            listing(&["c", "d", "e"], after.clone()),
            (ids(&["c", "d"]), Some("c".into()), Some("d".into()))
        );
        assert_eq!(
            listing(&["c"], after),
            (ids(&["c"]), Some("c".into()), None)
        );
    }

    #[test]
    fn a_page_before_a_boundary_is_read_backwards_and_turned_round() {
        let before = Some(Boundary::Before("e".into()));
        assert_eq!(
            listing(&["d", "c", "b"], before.clone()),
            (ids(&["c", "d"]), Some("c".into()), Some("d".into()))
        );
        assert_eq!(
            listing(&["b", "a"], before),
            (ids(&["a", "b"]), None, Some("b".into()))
        );
    }

    #[test]
    fn totals_beyond_the_limit_are_shown_as_a_floor() {
        assert_eq!(Total::of(0).display(), "0");
        assert_eq!(Total::of(1234).display(), "1,234");
        assert_eq!(Total::of(COUNT_LIMIT).display(), "10,000");
        assert_eq!(Total::of(COUNT_LIMIT + 1).display(), "10,000+");
        assert!(Total::of(1).is_one());
    }
}
