//! Long lists, a page at a time.

/// Which slice of a long list to load: page numbers start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: i64,
    pub size: i64,
}

impl Page {
    /// How many items come before this page.
    pub fn offset(&self) -> i64 {
        (self.number.max(1) - 1).saturating_mul(self.size)
    }
}

/// One page of a list, and how many items the whole list holds.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub total: i64,
}
