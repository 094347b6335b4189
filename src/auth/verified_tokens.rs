//! A bounded cache of access tokens whose signature and fixed claims have been verified, so
//! each distinct token is verified once while it lives, as Envoy's `jwt_authn` does with its
//! `jwt_cache_config`.
//!
//! It answers only what verification answers (the token is genuine, and what it grants). Who
//! the token speaks for is still loaded on every request, so a logout, a deactivation, a
//! demotion or a new password takes effect at once. It is keyed by the token's exact bytes,
//! holds only tokens that verified, forgets each when it expires, and belongs to one set of
//! keys (`AccessTokens`): new keys come with a new, empty cache.

use quick_cache::sync::Cache;

/// At most this many tokens are kept (each about a kilobyte, with its grant): beyond it, the
/// least used go first.
pub const CAPACITY: usize = 10_000;

pub struct VerifiedTokens<V> {
    cache: Cache<Box<str>, Verified<V>>,
}

#[derive(Clone)]
struct Verified<V> {
    value: V,
    /// Unix seconds after which the token is refused: its `exp` plus the tolerated skew.
    usable_until: u64,
}

impl<V: Clone> VerifiedTokens<V> {
    pub fn new(capacity: usize) -> VerifiedTokens<V> {
        VerifiedTokens {
            cache: Cache::new(capacity),
        }
    }

    /// What `token` was found to grant, if it verified before and is still usable at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<V> {
        let hit = self.cache.get(token)?;
        if now <= hit.usable_until {
            return Some(hit.value);
        }
        self.cache.remove(token);
        None
    }

    /// Remembers that `token` verified, granting `value`, until `usable_until`.
    pub fn insert(&self, token: &str, value: V, usable_until: u64) {
        let verified = Verified {
            value,
            usable_until,
        };
        self.cache.insert(token.into(), verified);
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_answered_until_it_expires_and_then_forgotten() {
        let cache = VerifiedTokens::new(8);
        cache.insert("a.b.c", 7, 100);

        assert_eq!(cache.get("a.b.c", 99), Some(7));
        assert_eq!(cache.get("a.b.c", 100), Some(7));
        assert_eq!(cache.get("a.b.c", 101), None);
        assert!(cache.is_empty(), "an expired token is dropped when met");
    }

    #[test]
    fn only_the_exact_bytes_hit() {
        let cache = VerifiedTokens::new(8);
        cache.insert("a.b.c", 1, 100);

        assert_eq!(cache.get("a.b.C", 1), None);
        assert_eq!(cache.get("a.b.c ", 1), None);
        assert_eq!(cache.get("a.b", 1), None);
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let cache = VerifiedTokens::new(100);
        for n in 0..10_000 {
            cache.insert(&format!("token-{n}"), n, u64::MAX);
        }
        assert!(cache.len() <= 100, "{} kept", cache.len());
        assert_eq!(cache.get("token-9999", 0), Some(9999), "the newest stays");
    }
}
