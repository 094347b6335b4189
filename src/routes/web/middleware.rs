//! The middleware every answer passes through: the page session, the security headers, the
//! access log, the request metrics and the count of requests in flight.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{Logger, Next};
use actix_web::web;

use ipnet::IpNet;

use super::client::{client_address, Forwarded};
use super::cookies::CookiePolicy;
use crate::config::Environment;
use crate::state::AppState;

/// The encrypted cookie that holds a browser's CSRF token and flash messages. It lives as long
/// as the browser session and is only written when it changes.
pub fn page_session(key: Key, cookies: CookiePolicy) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), key)
        .cookie_name(cookies.session_name().to_owned())
        .cookie_secure(cookies.secure())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_domain(None)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(BrowserSession::default())
        .build()
}

/// Where the API's viewer (Swagger UI) is served.
pub const VIEWER_PATH: &str = "/docs";

/// The Content-Security-Policy of Swagger UI's files: the server's usual one, except that
/// Swagger UI sets inline styles and draws some icons from `data:` URLs. Scripts stay
/// `'self'` only (its page has no inline script).
pub const VIEWER_CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; \
     object-src 'none'";

/// Whether `path` is one of Swagger UI's files (not the document, which is plain JSON).
pub fn is_viewer(path: &str) -> bool {
    path.strip_prefix(VIEWER_PATH)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// HTTP Strict Transport Security (RFC 6797): for a year, subdomains included.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Headers every answer gets: the JSON charset the API promises, and what keeps pages from
/// being framed, sniffed, or leaking where the user came from. JSON answers are never cached
/// unless their handler says otherwise (they carry personal data and tokens). In production,
/// browsers are told to use HTTPS only, unless a trusted proxy says this request came over
/// plain HTTP (where the header means nothing).
pub async fn response_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    // No `form-action`: browsers apply it to the redirects that follow a form's submission,
    // and signing in to an application ends with one to the application's redirect URI
    // (login, second step or consent → `/oauth/authorize` → the application).
    let csp = if is_viewer(req.path()) {
        VIEWER_CSP
    } else {
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    };
    let hsts = req.app_data::<web::Data<AppState>>().is_some_and(|state| {
        state.environment == Environment::Production
            && Forwarded::of(req.request(), state.throttle.trusted_proxies())
                .proto
                .as_deref()
                != Some("http")
    });
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json")
    {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(response)
}

/// One line per request: client, method, path (never the query string, which could carry a
/// token), status, size, duration. The client is the canonical address that throttling and
/// the audit log see (a trusted proxy's `X-Forwarded-For` believed, nobody else's).
pub fn request_logger(trusted_proxies: Vec<IpNet>) -> Logger {
    Logger::new(r#"%{client}xi "%{method}xi %U" %s %b %Dms"#)
        .custom_request_replace("client", move |req| {
            client_address(req.request(), &trusted_proxies)
                .map_or_else(|| "-".to_owned(), |ip| ip.to_string())
        })
        .custom_request_replace("method", |req| req.method().to_string())
}

/// Counts and times every request. The route is the pattern that matched, or `unmatched`; the
/// method is one of the standard ones or `OTHER` (actix accepts any token as a method).
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    // The resource map answers before routing, so an error from an inner middleware (which
    // returns no request) is labelled too.
    let route = req.match_pattern();
    let outcome = next.call(req).await;
    if let Some(state) = state {
        let status = match &outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        state.metrics.request(
            method_label(&method),
            route,
            status.as_u16(),
            started.elapsed(),
        );
    }
    outcome
}

/// The requests being handled, and how many a stop cut short: those dropped unanswered once
/// the stop's deadline (`SHUTDOWN_TIMEOUT`) has passed. Shared by every worker.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<InFlightCounts>);

#[derive(Debug, Default)]
struct InFlightCounts {
    running: AtomicUsize,
    past_deadline: AtomicBool,
    cut: AtomicUsize,
}

impl InFlight {
    /// Requests being handled now.
    pub fn running(&self) -> usize {
        self.0.running.load(Ordering::SeqCst)
    }

    /// The stop's deadline has passed: from now on, a request dropped before it is answered
    /// was cut by the stop (before, it was its client that went away).
    pub fn deadline_passed(&self) {
        self.0.past_deadline.store(true, Ordering::SeqCst);
    }

    /// Requests cut by the stop so far.
    pub fn cut(&self) -> usize {
        self.0.cut.load(Ordering::SeqCst)
    }

    fn start(&self) -> Handling {
        self.0.running.fetch_add(1, Ordering::SeqCst);
        Handling {
            counts: Arc::clone(&self.0),
            answered: false,
        }
    }
}

/// One request in flight; counted out when dropped, answered or not.
struct Handling {
    counts: Arc<InFlightCounts>,
    answered: bool,
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.counts.running.fetch_sub(1, Ordering::SeqCst);
        if !self.answered && self.counts.past_deadline.load(Ordering::SeqCst) {
            self.counts.cut.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Counts the requests in flight in the [`InFlight`] of the app's data, so that a stop can say
/// how many it had to cut.
pub async fn count_in_flight(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> actix_web::Result<ServiceResponse<impl MessageBody>> {
    let handling = req.app_data::<InFlight>().map(InFlight::start);
    let outcome = next.call(req).await;
    if let Some(mut handling) = handling {
        handling.answered = true;
    }
    outcome
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_dropped_unanswered_after_the_deadline_count_as_cut() {
        let in_flight = InFlight::default();
        let (answered, abandoned, cut) = (in_flight.start(), in_flight.start(), in_flight.start());
        assert_eq!(in_flight.running(), 3);
        let mut answered = answered;
        answered.answered = true;
        drop(answered);
        // A client that went away before the deadline: not the stop's doing.
        drop(abandoned);
        in_flight.deadline_passed();
        drop(cut);
        assert_eq!((in_flight.running(), in_flight.cut()), (0, 1));
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}
