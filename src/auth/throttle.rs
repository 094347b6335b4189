//! Throttling (NIST SP 800-63B §5.2.2, RFC 6749 §10.10): token buckets per client address, kept
//! in memory by `governor`, and fixed-window counters per account, kept in the database so
//! every instance on it counts together.
//!
//! The account counters are keyed by the normalized address as typed, whether or not an
//! account has it, so a refusal says nothing about which addresses are registered.
//!
//! Password guesses against an account are counted three ways, so that brute force stays
//! impossible without anyone being able to lock the owner out:
//! - per known device (a browser with the account's device cookie, `auth::device`): it is
//!   judged by its own failures only, and refused for the rest of the window after
//!   `login_failures` of them;
//! - per client address, for every other client: the same, for that address and account;
//! - per account, across every client it does not know: past `login_failures`, each attempt
//!   must wait a delay that doubles with each further attempt (1 s, 2 s, 4 s, … up to
//!   `login_delay_max`), which slows guessing from many addresses to a crawl but never shuts
//!   the door for the rest of the window.

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
    /// The longest wait the account-wide login delay grows to.
    pub login_delay_max: Duration,
    pub emails_per_address: u32,
    /// Attempts a user may make to change their address (each tells whether the new one is
    /// taken).
    pub email_changes: u32,
    pub window: Duration,
}

/// What a fixed-window counter in the database tracks; the key is its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountCounter {
    /// Recovery and verification emails, per (normalized) address.
    EmailsSent,
    /// Attempts to change one's address, per user id.
    EmailChanges,
}

impl AccountLimits {
    /// How many hits a window of `counter` allows.
    pub fn limit(&self, counter: AccountCounter) -> u32 {
        match counter {
            AccountCounter::EmailsSent => self.emails_per_address,
            AccountCounter::EmailChanges => self.email_changes,
        }
    }
}

impl AccountCounter {
    /// The counter's key for `subject`: a normalized address, or a user id.
    pub fn key(self, subject: &str) -> String {
        let prefix = match self {
            AccountCounter::EmailsSent => "email",
            AccountCounter::EmailChanges => "email-change",
        };
        format!("{prefix}:{subject}")
    }
}

/// Who a password guess against an account is judged by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginJudge {
    /// A device that signed in to the account before (its device id): its own failures only.
    Device(String),
    /// Any other client, by its address: its failures on the account, and the account's
    /// failures from every client it does not know.
    Address(Option<IpAddr>),
}

/// The keys of an account's login counters. The account's own key prefixes the others, so a
/// password reset can forget them all at once.
pub struct LoginKeys {
    /// Attempts on the account from every client it does not know.
    pub account: String,
    /// Attempts by this client: its device, or its address (an IPv6 client's /64).
    pub client: String,
}

/// What separates the account's key from its clients' keys.
pub const LOGIN_KEY_SEPARATOR: char = '|';

impl LoginKeys {
    pub fn new(normalized_email: &str, judge: &LoginJudge) -> LoginKeys {
        let account = LoginKeys::account(normalized_email);
        let client = match judge {
            LoginJudge::Device(id) => format!("{account}{LOGIN_KEY_SEPARATOR}device:{id}"),
            LoginJudge::Address(Some(ip)) => {
                format!("{account}{LOGIN_KEY_SEPARATOR}ip:{}", bucket_key(*ip))
            }
            LoginJudge::Address(None) => format!("{account}{LOGIN_KEY_SEPARATOR}ip:-"),
        };
        LoginKeys { account, client }
    }

    /// The account's own key, which prefixes the keys of its clients.
    pub fn account(normalized_email: &str) -> String {
        // An address longer than any real one is kept short (the column holds 400).
        if normalized_email.len() > 320 {
            let digest = crate::auth::refresh::hash(normalized_email);
            return format!("login:#{digest}");
        }
        format!("login:{normalized_email}")
    }
}

/// A counter of login attempts as it stands: attempts in the window that started at
/// `window_started_at`, and until when further attempts must wait (0: they need not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub hits: u32,
    pub window_started_at: i64,
    pub blocked_until: i64,
}

impl Counter {
    /// The counter at `now`: one whose window has ended starts afresh.
    fn at(self, now: i64, window: Duration) -> Counter {
        if now >= window_end(self.window_started_at, window) {
            Counter {
                hits: 0,
                window_started_at: now,
                blocked_until: 0,
            }
        } else {
            self
        }
    }

    /// Refuses an attempt when this client has used up the window's failures: until the
    /// window ends.
    fn spent(&self, limit: u32, window: Duration, now: i64) -> Result<(), Throttled> {
        if self.hits < limit {
            return Ok(());
        }
        Err(until(window_end(self.window_started_at, window), now))
    }
}

impl AccountLimits {
    /// Counts an attempt, before its password is checked, by a device the account knows;
    /// returns the device's counter after it, or why the attempt must not happen.
    pub fn admit_device(&self, device: Counter, now: i64) -> Result<Counter, Throttled> {
        let mut device = device.at(now, self.window);
        device.spent(self.login_failures, self.window, now)?;
        device.hits += 1;
        Ok(device)
    }

    /// Counts an attempt, before its password is checked, by a client the account does not
    /// know; returns the account's and the address's counters after it, or why the attempt
    /// must not happen. A refused attempt counts nowhere, so waiting is never punished.
    pub fn admit_address(
        &self,
        account: Counter,
        address: Counter,
        now: i64,
    ) -> Result<(Counter, Counter), Throttled> {
        let (mut account, mut address) =
            (account.at(now, self.window), address.at(now, self.window));
        address.spent(self.login_failures, self.window, now)?;
        if account.blocked_until > now {
            return Err(until(account.blocked_until, now));
        }
        address.hits += 1;
        account.hits += 1;
        if account.hits >= self.login_failures {
            let beyond = account.hits - self.login_failures;
            account.blocked_until = now + self.login_delay(beyond).as_secs() as i64;
        }
        Ok((account, address))
    }

    /// The wait after the `beyond`-th attempt past the free ones (counting from 0): 1 s,
    /// doubling, at most `login_delay_max`.
    fn login_delay(&self, beyond: u32) -> Duration {
        let doubled = 1u64.checked_shl(beyond).unwrap_or(u64::MAX);
        Duration::from_secs(doubled).min(self.login_delay_max)
    }
}

fn window_end(started_at: i64, window: Duration) -> i64 {
    started_at.saturating_add(window.as_secs() as i64)
}

/// Refused until `then`: at least a second from `now`.
fn until(then: i64, now: i64) -> Throttled {
    Throttled {
        retry_after: Duration::from_secs(then.saturating_sub(now).max(1) as u64),
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
                login_delay_max: settings.login_delay_max,
                emails_per_address: settings.emails_per_address,
                email_changes: settings.email_changes,
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
        login_delay_max: Duration::from_secs(60),
        emails_per_address: 2,
        email_changes: 2,
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

    fn limits(failures: u32) -> AccountLimits {
        AccountLimits {
            login_failures: failures,
            login_delay_max: Duration::from_secs(60),
            emails_per_address: 2,
            email_changes: 2,
            window: Duration::from_secs(900),
        }
    }

    #[test]
    fn an_address_is_refused_for_the_rest_of_the_window_after_its_failures() {
        let limits = limits(3);
        let (mut account, mut address) = (Counter::default(), Counter::default());
        for now in [1_000, 1_000, 1_000] {
            (account, address) = limits.admit_address(account, address, now).unwrap();
        }
        assert_eq!(address.hits, 3);
        let refused = limits.admit_address(account, address, 1_100).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(800));
        // Another address only waits for the account's delay.
        let refused = limits
            .admit_address(account, Counter::default(), 1_000)
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert!(limits
            .admit_address(account, Counter::default(), 1_001)
            .is_ok());
        // The window over, all is forgiven.
        assert!(limits.admit_address(account, address, 1_900).is_ok());
    }

    #[test]
    fn past_its_free_failures_an_account_slows_guessing_down_more_and_more() {
        let limits = limits(2);
        let mut account = Counter::default();
        let mut now = 1_000;
        let mut waits = Vec::new();
        for _ in 0..10 {
            let fresh = Counter::default();
            match limits.admit_address(account, fresh, now) {
                Ok((counted, _)) => account = counted,
                Err(refused) => {
                    waits.push(refused.retry_after.as_secs());
                    now += refused.retry_after.as_secs() as i64;
                }
            }
        }
        assert_eq!(account.hits, 6, "{waits:?}");
        assert_eq!(waits, [1, 2, 4, 8]);
        let mut long = account;
        long.hits = 40;
        let (after, _) = limits
            .admit_address(long, Counter::default(), now + 60)
            .unwrap();
        assert_eq!(
            after.blocked_until - (now + 60),
            60,
            "at most the longest delay"
        );
    }

    #[test]
    fn a_known_device_is_judged_by_its_own_failures() {
        let limits = limits(2);
        let mut device = Counter::default();
        for _ in 0..2 {
            device = limits.admit_device(device, 1_000).unwrap();
        }
        let refused = limits.admit_device(device, 1_010).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(890));
        assert!(limits.admit_device(device, 1_900).is_ok());
    }

    #[test]
    fn login_keys_share_the_accounts_prefix() {
        let device = LoginKeys::new("a@example.com", &LoginJudge::Device("d1".into()));
        assert_eq!(device.account, "login:a@example.com");
        assert_eq!(device.client, "login:a@example.com|device:d1");
        let address = LoginKeys::new(
            "a@example.com",
            &LoginJudge::Address(ip("::ffff:192.0.2.1")),
        );
        assert_eq!(address.client, "login:a@example.com|ip:192.0.2.1");
        let v6 = LoginKeys::new("a@example.com", &LoginJudge::Address(ip("2001:db8:1:2::7")));
        assert_eq!(v6.client, "login:a@example.com|ip:2001:db8:1:2::");
        let long = "x".repeat(400);
        assert!(LoginKeys::account(&long).len() < 100);
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
