//! Prometheus metrics, served at `GET /metrics`: every request by method, route pattern and
//! status, with its duration; logins by outcome; tokens issued by kind; refresh-token reuse;
//! requests made with the old fastapi-users backend's tokens;
//! and, sampled at each scrape, the database pool and the email outbox.
//!
//! Requests are labelled with the route *pattern* that matched (`/users/{id}`), never the path:
//! paths carry ids, and every distinct label value is a new series kept for good.

use std::fmt;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::db::outbox::{self, OutboxStats};
use crate::db::{self, Pool};

/// The `Content-Type` of what [`Metrics::render`] writes: Prometheus' text format 0.0.4.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the request-duration buckets, in seconds: from a cached lookup to a login
/// queued behind other password hashes.
const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// How long a scrape waits for the outbox's figures before it answers without them.
const OUTBOX_SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// The route label of a request that matched no route (the 404 fallback).
const UNMATCHED: &str = "unmatched";

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginOutcome {
    Succeeded,
    /// Wrong credentials, an inactive account, or an unverified address when that is required.
    Failed,
    /// Refused before the password was checked: too many attempts from the address or on the
    /// account.
    Throttled,
}

/// Which kind of token was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A user's access token (login, signup, refresh).
    Access,
    /// A user's refresh token (a new session, or a rotation's successor).
    Refresh,
    /// A machine client's access token (`client_credentials`).
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LoginLabels {
    outcome: LoginOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TokenLabels {
    kind: TokenKind,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric Gatehouse keeps, in its own registry (so each application, and each test's,
/// counts for itself), and the token that guards them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily,
    logins: Family<LoginLabels, Counter>,
    tokens_issued: Family<TokenLabels, Counter>,
    refresh_reuse: Counter,
    legacy_tokens: Counter,
    /// Sampled for the outbox's figures at each scrape.
    pool: Pool,
    /// SHA-256 of `METRICS_TOKEN`: equal-length digests compare in constant time, and do not
    /// reveal the token's length.
    token_digest: Option<[u8; 32]>,
}

impl Metrics {
    /// Registers every metric; `pool` and the outbox in its database are sampled at each
    /// scrape.
    pub fn new(pool: Pool, token: Option<&SecretString>) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        let durations: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (up to its headers), by method and route pattern",
            durations.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "gatehouse_logins",
            "Login attempts with a password, by outcome",
            logins.clone(),
        );
        let tokens_issued = Family::<TokenLabels, Counter>::default();
        registry.register(
            "gatehouse_tokens_issued",
            "Tokens handed out, by kind",
            tokens_issued.clone(),
        );
        let refresh_reuse = Counter::default();
        registry.register(
            "gatehouse_refresh_reuse_detected",
            "Replayed refresh tokens: each revoked its session",
            refresh_reuse.clone(),
        );
        let legacy_tokens = Counter::default();
        registry.register(
            "gatehouse_legacy_tokens_accepted",
            "Requests authenticated by an access token of the old fastapi-users backend \
             (LEGACY_JWT_SECRET); once it stops growing, the setting can go",
            legacy_tokens.clone(),
        );
        registry.register_collector(Box::new(PoolCollector(pool.clone())));
        // Series that exist from the start, so that a rate is defined before the first event.
        for outcome in [
            LoginOutcome::Succeeded,
            LoginOutcome::Failed,
            LoginOutcome::Throttled,
        ] {
            logins.get_or_create_owned(&LoginLabels { outcome });
        }
        for kind in [TokenKind::Access, TokenKind::Refresh, TokenKind::Client] {
            tokens_issued.get_or_create_owned(&TokenLabels { kind });
        }
        Metrics {
            registry,
            requests,
            durations,
            logins,
            tokens_issued,
            refresh_reuse,
            legacy_tokens,
            pool,
            token_digest: token.map(|t| Sha256::digest(t.expose_secret().as_bytes()).into()),
        }
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    pub fn token_issued(&self, kind: TokenKind) {
        self.tokens_issued
            .get_or_create(&TokenLabels { kind })
            .inc();
    }

    pub fn refresh_reuse_detected(&self) {
        self.refresh_reuse.inc();
    }

    pub fn legacy_token_accepted(&self) {
        self.legacy_tokens.inc();
    }

    /// Counts and times one answered request. `method` is a standard method's name or `OTHER`
    /// (see the request middleware); `route` is the pattern that matched, if any.
    pub fn request(
        &self,
        method: &'static str,
        route: Option<String>,
        status: u16,
        took: Duration,
    ) {
        let route = route.unwrap_or_else(|| UNMATCHED.to_owned());
        self.durations
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Whether a scrape with this bearer token may read the metrics: always when no
    /// `METRICS_TOKEN` is configured.
    pub fn allows(&self, bearer: Option<&str>) -> bool {
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let presented: [u8; 32] = Sha256::digest(bearer.unwrap_or_default().as_bytes()).into();
        bearer.is_some() && bool::from(presented.as_slice().ct_eq(expected.as_slice()))
    }

    /// The metrics in Prometheus' text format ([`CONTENT_TYPE`]). The outbox's figures are
    /// read from the database now; if it does not answer soon, they are left out (and the
    /// reason logged) rather than holding up the scrape.
    pub async fn render(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        let sampled =
            tokio::time::timeout(OUTBOX_SAMPLE_TIMEOUT, db::run(&self.pool, outbox::stats)).await;
        match sampled {
            Ok(Ok(stats)) => {
                let mut registry = Registry::default();
                registry.register_collector(Box::new(OutboxCollector {
                    stats,
                    now: db::now(),
                }));
                prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
            }
            Ok(Err(e)) => log::warn!("metrics without the email outbox: {e}"),
            Err(_) => log::warn!("metrics without the email outbox: the database is slow"),
        }
        Ok(text)
    }
}

impl LoginOutcome {
    fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Succeeded => "succeeded",
            LoginOutcome::Failed => "failed",
            LoginOutcome::Throttled => "throttled",
        }
    }
}

impl EncodeLabelValue for LoginOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        self.as_str().encode(encoder)
    }
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::Client => "client",
        }
    }
}

impl EncodeLabelValue for TokenKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        self.as_str().encode(encoder)
    }
}

/// The pool's gauges, read from r2d2 when scraped rather than kept up to date on every checkout.
#[derive(Debug)]
struct PoolCollector(Pool);

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let state = self.0.state();
        // The encoder ends the help of registered metrics with a period, not these.
        for (name, help, value) in [
            (
                "gatehouse_db_pool_connections",
                "Open database connections, in use or idle.",
                state.connections,
            ),
            (
                "gatehouse_db_pool_idle_connections",
                "Open database connections waiting in the pool.",
                state.idle_connections,
            ),
            (
                "gatehouse_db_pool_max_connections",
                "The most connections the pool opens (DATABASE_POOL_SIZE).",
                self.0.max_size(),
            ),
            (
                "gatehouse_db_available",
                "1 while connections to the database can be made; 0 while requests answer 503.",
                u32::from(!self.0.is_failing()),
            ),
        ] {
            let gauge = ConstGauge::new(i64::from(value));
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// The outbox's gauges, from one sample of its table.
#[derive(Debug)]
struct OutboxCollector {
    stats: OutboxStats,
    now: i64,
}

impl Collector for OutboxCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let oldest_age = self
            .stats
            .oldest_pending_created_at
            .map_or(0, |created| (self.now - created).max(0));
        for (name, help, value) in [
            (
                "gatehouse_email_outbox_pending",
                "Emails in the outbox waiting to be sent, by every instance.",
                self.stats.pending,
            ),
            (
                "gatehouse_email_outbox_failed",
                "Emails given up on after their last attempt, kept in the outbox.",
                self.stats.failed,
            ),
            (
                "gatehouse_email_outbox_oldest_pending_age_seconds",
                "Seconds since the oldest email waiting to be sent was queued (0 when none waits).",
                oldest_age,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(url: &str) -> Pool {
        crate::db::connect(
            url,
            crate::db::PoolSettings {
                size: 2,
                timeout: Duration::from_secs(5),
            },
            crate::db::Creation::Allowed,
        )
        .unwrap()
    }

    fn metrics(token: Option<&str>) -> Metrics {
        Metrics::new(
            pool(":memory:"),
            token.map(|t| SecretString::from(t.to_owned())).as_ref(),
        )
    }

    #[test]
    fn a_configured_token_must_be_presented_exactly() {
        let guarded = metrics(Some("the-right-token-1234"));
        assert!(guarded.allows(Some("the-right-token-1234")));
        for wrong in [None, Some(""), Some("the-right-token-123"), Some("x")] {
            assert!(!guarded.allows(wrong), "{wrong:?}");
        }
        let open = metrics(None);
        assert!(open.allows(None));
        assert!(open.allows(Some("anything")));
    }

    #[tokio::test]
    async fn renders_the_text_format_with_every_family() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir.path().join("gatehouse.db").display().to_string());
        crate::db::migrate(&pool).unwrap();
        let queued = outbox::NewMessage {
            recipient: "ada@example.com",
            subject: "Hello",
            message: "Subject: Hello\r\n\r\nHello\r\n",
        };
        outbox::insert(&mut pool.get().unwrap(), queued).unwrap();
        let metrics = Metrics::new(pool, None);
        metrics.login(LoginOutcome::Failed);
        metrics.token_issued(TokenKind::Client);
        metrics.request(
            "GET",
            Some("/users/{id}".to_owned()),
            404,
            Duration::from_millis(3),
        );
        metrics.request("GET", None, 404, Duration::ZERO);
        let text = metrics.render().await.unwrap();
        for line in [
            "# TYPE http_requests_total counter",
            r#"http_requests_total{method="GET",route="/users/{id}",status="404"} 1"#,
            r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
            r#"http_request_duration_seconds_bucket{method="GET",route="/users/{id}",le="0.005"} 1"#,
            r#"http_request_duration_seconds_count{method="GET",route="/users/{id}"} 1"#,
            r#"gatehouse_logins_total{outcome="failed"} 1"#,
            r#"gatehouse_logins_total{outcome="throttled"} 0"#,
            r#"gatehouse_tokens_issued_total{kind="client"} 1"#,
            "gatehouse_refresh_reuse_detected_total 0",
            "gatehouse_db_pool_max_connections 2",
            "# TYPE gatehouse_email_outbox_pending gauge",
            "gatehouse_email_outbox_pending 1",
            "gatehouse_email_outbox_failed 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("gatehouse_email_outbox_oldest_pending_age_seconds "))
            .unwrap_or_else(|| panic!("no outbox age in\n{text}"));
        assert!(age.parse::<i64>().unwrap() < 60, "{age}");
    }
}
