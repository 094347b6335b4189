//! Which page of a long list a page shows, and its links to the pages either side.

/// The page of a list being shown, out of how many, and the addresses of its neighbours
/// (`templates/macros.html` writes them as the pagination links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pager {
    /// From 1.
    pub page: i64,
    /// At least 1: an empty list is one empty page.
    pub pages: i64,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// The page a query's `page` parameter asks for: a whole number from 1 up; anything else
    /// (missing, zero, negative, not a number) asks for the first.
    pub fn requested(raw: Option<&str>) -> i64 {
        raw.and_then(|raw| raw.trim().parse::<i64>().ok())
            .map_or(1, |page| page.max(1))
    }

    /// Page `requested` of a list of `total` items, `size` to a page; `url(n)` is the address of
    /// page `n`. Past the end (the list shrank, or a hand-edited link) shows the last page, so
    /// the caller fetches [`Pager::page`] rather than the page it asked for.
    pub fn new(requested: i64, total: i64, size: i64, url: impl Fn(i64) -> String) -> Pager {
        let pages = ((total.max(0) + size - 1) / size).max(1);
        let page = requested.clamp(1, pages);
        Pager {
            page,
            pages,
            previous: (page > 1).then(|| url(page - 1)),
            next: (page < pages).then(|| url(page + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pager(requested: i64, total: i64) -> Pager {
        Pager::new(requested, total, 20, |n| format!("/list?page={n}"))
    }

    fn link(n: i64) -> Option<String> {
        Some(format!("/list?page={n}"))
    }

    #[test]
    fn the_first_page_links_only_forward() {
        let first = pager(1, 45);
        assert_eq!((first.page, first.pages), (1, 3));
        assert_eq!((first.previous, first.next), (None, link(2)));
    }

    #[test]
    fn a_middle_page_links_both_ways() {
        let middle = pager(2, 45);
        assert_eq!((middle.page, middle.pages), (2, 3));
        assert_eq!((middle.previous, middle.next), (link(1), link(3)));
    }

    #[test]
    fn the_last_page_links_only_back() {
        let last = pager(3, 45);
        assert_eq!((last.page, last.pages), (3, 3));
        assert_eq!((last.previous, last.next), (link(2), None));
        assert_eq!(
            pager(2, 40).next,
            None,
            "a full last page is still the last"
        );
    }

    #[test]
    fn past_the_end_shows_the_last_page() {
        assert_eq!(pager(4, 45), pager(3, 45));
        assert_eq!(pager(i64::MAX, 45), pager(3, 45));
    }

    #[test]
    fn an_empty_list_is_one_page_without_links() {
        let empty = pager(1, 0);
        assert_eq!(pager(5, 0), empty);
        assert_eq!((empty.page, empty.pages), (1, 1));
        assert_eq!((empty.previous, empty.next), (None, None));
    }

    #[test]
    fn nonsense_asks_for_the_first_page() {
        for raw in [
            None,
            Some(""),
            Some("0"),
            Some("-1"),
            Some("abc"),
            Some("1.5"),
        ] {
            assert_eq!(Pager::requested(raw), 1, "{raw:?}");
        }
        assert_eq!(
            Pager::requested(Some("99999999999999999999")),
            1,
            "beyond i64"
        );
        assert_eq!(Pager::requested(Some("3")), 3);
        assert_eq!(Pager::requested(Some(" 3 ")), 3);
        assert_eq!(Pager::requested(Some("99999999999")), 99_999_999_999);
    }
}
