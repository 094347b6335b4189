//! Throttling (NIST SP 800-63B §5.2.2, RFC 6749 §10.10): token buckets per client address, kept
//! in memory by `governor`, and fixed-window counters per account, kept in the database so
//! every instance on it counts together.
//!
//! The account counters are keyed by the normalized address as typed, whether or not an
//! account has it, so a lockout says nothing about which addresses are registered.

use std::net::IpAddr;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::config::{Rate, RateLimitSettings};

/// The endpoints that share a per-address budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Every way to log in (the JSON and cookie logins, the token endpoint, the login page),
    /// and redeeming an emailed token.
    Login,
    /// Registration and the signup page.
    Signup,
    /// Asking for a recovery or verification email.
    Email,
    /// Refresh-token exchanges.
    Refresh,
}

/// A request refused for going too fast; it may be retried after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds for `Retry-After`, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// The per-account limits, checked against the database's counters.
#[derive(Debug, Clone, Copy)]
pub struct AccountLimits {
    pub login_failures: u32,
    pub emails_per_address: u32,
    pub window: Duration,
}

/// What a counter in the database tracks; the key is its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountCounter {
    FailedLogins,
    EmailsSent,
}

impl AccountLimits {
    /// How many hits a window of `counter` allows.
    pub fn limit(&self, counter: AccountCounter) -> u32 {
        match counter {
            AccountCounter::FailedLogins => self.login_failures,
            AccountCounter::EmailsSent => self.emails_per_address,
        }
    }
}

impl AccountCounter {
    pub fn key(self, normalized_email: &str) -> String {
        let prefix = match self {
            AccountCounter::FailedLogins => "login",
            AccountCounter::EmailsSent => "email",
        };
        format!("{prefix}:{normalized_email}")
    }
}

pub struct Throttle {
    enabled: bool,
    login: DefaultKeyedRateLimiter<IpAddr>,
    signup: DefaultKeyedRateLimiter<IpAddr>,
    email: DefaultKeyedRateLimiter<IpAddr>,
    refresh: DefaultKeyedRateLimiter<IpAddr>,
    account: AccountLimits,
    trusted_proxies: Vec<IpNet>,
}

impl Throttle {
    pub fn new(settings: &RateLimitSettings) -> Throttle {
        Throttle {
            enabled: settings.enabled,
            login: RateLimiter::keyed(quota(settings.login_per_ip)),
            signup: RateLimiter::keyed(quota(settings.signup_per_ip)),
            email: RateLimiter::keyed(quota(settings.email_per_ip)),
            refresh: RateLimiter::keyed(quota(settings.refresh_per_ip)),
            account: AccountLimits {
                login_failures: settings.login_failures,
                emails_per_address: settings.emails_per_address,
                window: settings.account_window,
            },
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    /// The per-account limits, or `None` when throttling is off.
    pub fn account_limits(&self) -> Option<AccountLimits> {
        self.enabled.then_some(self.account)
    }

    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted_proxies
    }

    /// Takes one request from the client's bucket, or says how long to wait.
    pub fn check_ip(&self, bucket: Bucket, ip: Option<IpAddr>) -> Result<(), Throttled> {
        let (true, Some(ip)) = (self.enabled, ip) else {
            return Ok(());
        };
        let limiter = match bucket {
            Bucket::Login => &self.login,
            Bucket::Signup => &self.signup,
            Bucket::Email => &self.email,
            Bucket::Refresh => &self.refresh,
        };
        limiter
            .check_key(&bucket_key(ip))
            .map_err(|not_until| Throttled {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })
    }

    /// Forgets buckets that have refilled, so idle clients cost no memory.
    pub fn forget_idle(&self) {
        for limiter in [&self.login, &self.signup, &self.email, &self.refresh] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Whether a counter that has reached `hits` in a window that started at `window_started_at`
/// is over `limit`, and if so until when.
pub fn over_limit(
    hits: i32,
    window_started_at: i64,
    limit: u32,
    window: Duration,
    now: i64,
) -> Option<Throttled> {
    let ends = window_started_at.saturating_add(window.as_secs() as i64);
    (i64::from(hits) > i64::from(limit) && ends > now).then(|| Throttled {
        retry_after: Duration::from_secs((ends - now) as u64),
    })
}

fn quota(rate: Rate) -> Quota {
    let period = rate.per / rate.count.get();
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("a non-zero period")
        .allow_burst(rate.count)
}

/// An IPv6 client controls at least a /64, so that is what one bucket covers; an IPv4 client
/// (even one that a dual-stack listener saw as `::ffff:a.b.c.d`) has a bucket of its own.
pub fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        ip @ IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
    }
}

/// One request per second with a burst of `n`, for tests.
#[cfg(test)]
fn settings(n: u32) -> RateLimitSettings {
    let rate = Rate {
        count: std::num::NonZeroU32::new(n).unwrap(),
        per: Duration::from_secs(u64::from(n)),
    };
    RateLimitSettings {
        enabled: true,
        login_per_ip: rate,
        signup_per_ip: rate,
        email_per_ip: rate,
        refresh_per_ip: rate,
        login_failures: 3,
        emails_per_address: 2,
        account_window: Duration::from_secs(60),
        trusted_proxies: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> Option<IpAddr> {
        Some(raw.parse().unwrap())
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_when_to_retry() {
        let throttle = Throttle::new(&settings(3));
        for _ in 0..3 {
            assert_eq!(throttle.check_ip(Bucket::Login, ip("192.0.2.1")), Ok(()));
        }
        let refused = throttle
            .check_ip(Bucket::Login, ip("192.0.2.1"))
            .unwrap_err();
        assert!(refused.retry_after <= Duration::from_secs(1), "{refused:?}");
        assert_eq!(refused.retry_after_secs(), 1);
        // Other clients and other buckets are untouched.
        assert_eq!(throttle.check_ip(Bucket::Login, ip("192.0.2.2")), Ok(()));
        assert_eq!(throttle.check_ip(Bucket::Signup, ip("192.0.2.1")), Ok(()));
    }

    #[test]
    fn one_ipv6_slash_64_shares_a_bucket() {
        let throttle = Throttle::new(&settings(1));
        assert_eq!(
            throttle.check_ip(Bucket::Email, ip("2001:db8:1:2::1")),
            Ok(())
        );
        assert!(throttle
            .check_ip(Bucket::Email, ip("2001:db8:1:2::ffff"))
            .is_err());
        assert_eq!(
            throttle.check_ip(Bucket::Email, ip("2001:db8:1:3::1")),
            Ok(())
        );
    }

    #[test]
    fn ipv4_mapped_clients_have_buckets_of_their_own() {
        let throttle = Throttle::new(&settings(1));
        assert_eq!(
            throttle.check_ip(Bucket::Signup, ip("::ffff:192.0.2.1")),
            Ok(())
        );
        assert!(throttle.check_ip(Bucket::Signup, ip("192.0.2.1")).is_err());
        assert_eq!(
            throttle.check_ip(Bucket::Signup, ip("::ffff:192.0.2.2")),
            Ok(())
        );
    }

    #[test]
    fn switched_off_nothing_is_throttled() {
        let mut off = settings(1);
        off.enabled = false;
        let throttle = Throttle::new(&off);
        for _ in 0..10 {
            assert_eq!(throttle.check_ip(Bucket::Login, ip("192.0.2.1")), Ok(()));
        }
        assert!(throttle.account_limits().is_none());
    }

    #[test]
    fn a_counter_is_over_its_limit_until_the_window_ends() {
        let window = Duration::from_secs(900);
        assert_eq!(over_limit(10, 1_000, 10, window, 1_100), None);
        let locked = over_limit(11, 1_000, 10, window, 1_100).unwrap();
        assert_eq!(locked.retry_after, Duration::from_secs(800));
        assert_eq!(over_limit(11, 1_000, 10, window, 1_900), None);
    }
}
