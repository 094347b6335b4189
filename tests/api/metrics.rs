//! `GET /metrics`: Prometheus' text format, requests labelled by route pattern, the security
//! counters, the pool gauges, and the optional bearer token.

use std::collections::BTreeMap;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};

use crate::helpers::*;

const ADMIN: &str = "admin@example.com";
const USER: &str = "metered@example.com";
const METRICS_TOKEN: &str = "scrape-token-for-the-metrics-test";

/// One sample line of the text format: `name{label="value",…} value`.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the sample lines of Prometheus' text format (comments and blank lines skipped).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value in `{line}`"));
            let value = match value {
                "+Inf" => f64::INFINITY,
                other => other
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in `{line}`")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest
                        .strip_suffix('}')
                        .unwrap_or_else(|| panic!("unclosed labels in `{line}`"));
                    (name, parse_labels(inner, line))
                }
                None => (series, BTreeMap::new()),
            };
            Sample {
                name: name.to_owned(),
                labels,
                value,
            }
        })
        .collect()
}

/// `key="value",…`, with `\\`, `\"` and `\n` escapes in values.
fn parse_labels(mut rest: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in `{line}`"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("bad escape in `{line}`"),
                },
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in `{line}`"),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The value of the sample with exactly this name and these labels.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .unwrap_or_else(|| panic!("no sample {name}{wanted:?} in {samples:#?}"))
        .value
}

fn samples_named<'a>(samples: &'a [Sample], name: &'a str) -> impl Iterator<Item = &'a Sample> {
    samples.iter().filter(move |s| s.name == name)
}

async fn get_metrics(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let request = app.client.get(app.url("/metrics"));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.unwrap()
}

/// Scrapes `/metrics` (with `token`, if any), checks the headers, and parses the answer.
pub(crate) async fn scrape(app: &TestApp, token: Option<&str>) -> Vec<Sample> {
    let response = get_metrics(app, token).await;
    assert_eq!(response.status(), 200);
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(
        header(CONTENT_TYPE).starts_with("text/plain; version=0.0.4"),
        "{}",
        header(CONTENT_TYPE)
    );
    assert_eq!(header(CACHE_CONTROL), "no-store");
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn counters_follow_the_traffic_with_route_patterns_as_labels() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let admin = app.superuser(ADMIN).await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let tokens = app.tokens(USER, PASSWORD).await;
    let failed = app.login(USER, "not the password at all").await;
    assert_eq!(failed.status(), 400);
    assert_eq!(app.refresh(&tokens.refresh).await.status(), 200);
    // Rotated a while ago (times are whole seconds), and its child used since, so presenting
    // it again is reuse.
    app.execute(
        "UPDATE refresh_tokens SET rotated_at = rotated_at - 60, access_used_at = issued_at",
    );
    assert_detail(
        app.refresh(&tokens.refresh).await,
        401,
        "REFRESH_TOKEN_INVALID",
    )
    .await;
    let client = app
        .machine_client(&admin.access, "billing", &["read:reports"])
        .await;
    app.client_token(&client).await;
    let missing = uuid::Uuid::new_v4().to_string();
    let path = format!("/users/{missing}");
    assert_eq!(app.get(&path, &admin.access).await.status(), 404);
    assert_eq!(app.get("/no/such/thing", &admin.access).await.status(), 404);

    let samples = scrape(&app, None).await;

    let logins = |outcome| value(&samples, "gatehouse_logins_total", &[("outcome", outcome)]);
    assert_eq!(
        (logins("succeeded"), logins("failed"), logins("throttled")),
        (2.0, 1.0, 0.0)
    );
    let issued = |kind| value(&samples, "gatehouse_tokens_issued_total", &[("kind", kind)]);
    // Two logins and a refresh; one client token.
    assert_eq!(
        (issued("access"), issued("refresh"), issued("client")),
        (3.0, 3.0, 1.0)
    );
    assert_eq!(
        value(&samples, "gatehouse_refresh_reuse_detected_total", &[]),
        1.0
    );

    // Every request so far, by route pattern: never the path with its id.
    let mut requests: Vec<(String, String, String, f64)> =
        samples_named(&samples, "http_requests_total")
            .map(|s| {
                (
                    s.labels["method"].clone(),
                    s.labels["route"].clone(),
                    s.labels["status"].clone(),
                    s.value,
                )
            })
            .collect();
    requests.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let expected = [
        ("GET", "/users/{id}", "404", 1.0),
        ("GET", "unmatched", "404", 1.0),
        ("POST", "/auth/jwt/login", "200", 2.0),
        ("POST", "/auth/jwt/login", "400", 1.0),
        ("POST", "/auth/jwt/refresh", "200", 1.0),
        ("POST", "/auth/jwt/refresh", "401", 1.0),
        ("POST", "/auth/register", "201", 2.0),
        ("POST", "/auth/token", "200", 1.0),
        ("POST", "/clients", "201", 1.0),
    ]
    .map(|(m, r, s, v)| (m.to_owned(), r.to_owned(), s.to_owned(), v));
    assert_eq!(requests, expected);
    for sample in &samples {
        for label in sample.labels.values() {
            assert!(
                !label.contains(&missing) && !label.contains("/no/such"),
                "a path made it into a label: {sample:?}"
            );
        }
    }

    // The histogram: cumulative buckets up to +Inf, a count and a sum.
    let route = [("method", "GET"), ("route", "/users/{id}")];
    let buckets: Vec<(String, f64)> =
        samples_named(&samples, "http_request_duration_seconds_bucket")
            .filter(|s| s.labels["route"] == "/users/{id}")
            .map(|s| (s.labels["le"].clone(), s.value))
            .collect();
    assert!(buckets.len() >= 5, "{buckets:?}");
    assert_eq!(buckets.last().unwrap(), &("+Inf".to_owned(), 1.0));
    assert!(
        buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "{buckets:?}"
    );
    assert_eq!(
        value(&samples, "http_request_duration_seconds_count", &route),
        1.0
    );
    assert!(value(&samples, "http_request_duration_seconds_sum", &route) > 0.0);

    // The pool, as r2d2 sees it at the scrape (DATABASE_POOL_SIZE defaults to 8).
    let max = value(&samples, "gatehouse_db_pool_max_connections", &[]);
    let open = value(&samples, "gatehouse_db_pool_connections", &[]);
    let idle = value(&samples, "gatehouse_db_pool_idle_connections", &[]);
    assert_eq!(max, 8.0);
    assert!((1.0..=max).contains(&open), "{open} open");
    assert!((0.0..=open).contains(&idle), "{idle} idle of {open}");

    // The scrape itself is counted once it is answered.
    let again = scrape(&app, None).await;
    assert_eq!(
        value(
            &again,
            "http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "200")]
        ),
        1.0
    );
}

#[tokio::test]
async fn refused_logins_count_as_throttled() {
    let app = spawn_app_with(&[
        ("RATE_LIMIT", "on"),
        ("RATE_LIMIT_LOGIN_PER_IP", "2/3600"),
        ("RATE_LIMIT_LOGIN_FAILURES", "1"),
    ])
    .await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    // A wrong password; then the account is locked, even to the right one; then the address
    // has used its burst.
    assert_eq!(
        app.login(USER, "not the password at all").await.status(),
        400
    );
    assert_eq!(app.login(USER, PASSWORD).await.status(), 429);
    assert_eq!(app.login(USER, PASSWORD).await.status(), 429);

    let samples = scrape(&app, None).await;
    let logins = |outcome| value(&samples, "gatehouse_logins_total", &[("outcome", outcome)]);
    assert_eq!(
        (logins("succeeded"), logins("failed"), logins("throttled")),
        (0.0, 1.0, 2.0)
    );
    assert_eq!(
        value(
            &samples,
            "gatehouse_tokens_issued_total",
            &[("kind", "access")]
        ),
        0.0
    );
}

#[tokio::test]
async fn a_metrics_token_is_required_when_configured() {
    let app = spawn_app_with(&[("METRICS_TOKEN", METRICS_TOKEN)]).await;

    for (token, what) in [
        (None, "no token"),
        (Some("scrape-token-for-the-metrics-tesT"), "a wrong token"),
        (Some(""), "an empty token"),
    ] {
        let response = get_metrics(&app, token).await;
        assert_eq!(response.status(), 401, "{what}");
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("http_requests_total"), "{what}: {body}");
    }
    let basic = app
        .client
        .get(app.url("/metrics"))
        .basic_auth("prometheus", Some(METRICS_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401, "the token as a Basic password");

    let samples = scrape(&app, Some(METRICS_TOKEN)).await;
    assert_eq!(
        value(
            &samples,
            "http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "401")]
        ),
        4.0
    );
}

#[tokio::test]
async fn metrics_are_open_without_a_token() {
    let app = spawn_app().await;
    let samples = scrape(&app, None).await;
    assert_eq!(
        value(&samples, "gatehouse_refresh_reuse_detected_total", &[]),
        0.0
    );
    // A token is ignored rather than refused.
    scrape(&app, Some("whatever")).await;
}
