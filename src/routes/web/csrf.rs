//! Cross-site request forgery defence for everything the cookie authenticates.
//!
//! Three layers: the cookies are `SameSite=Lax`; a request whose `Sec-Fetch-Site` or `Origin`
//! (or, without `Origin`, `Referer`) says it comes from another site is refused; and every
//! state change must echo a secret token (form field `csrf_token` or header `X-CSRF-Token`).
//!
//! The token is bound to who is asking. A browser signed in by the cookie must present its
//! session's token, derived from the session's id (`auth::csrf`), so neither a token from
//! before login nor another user's passes with its cookies. A visitor who is not signed in
//! (the login and signup forms) presents a random token kept in its page session (an
//! encrypted cookie), replaced at every login and logout.
//!
//! "This site" is the origin of `PUBLIC_URL`, or the origin the request was sent to: its
//! `Host` and scheme, which only a trusted proxy (`TRUSTED_PROXIES`) may restate with
//! `Forwarded` or `X-Forwarded-Host`/`-Proto`. Scheme, host and port must all match.

use actix_session::Session;
use actix_web::http::header;
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;

use uuid::Uuid;

use super::client::Forwarded;
use crate::state::AppState;

/// The form field that carries the token.
pub const FORM_FIELD: &str = "csrf_token";
/// The header that carries the token on JSON requests.
pub const HEADER: &str = "x-csrf-token";
const SESSION_KEY: &str = "csrf";

#[derive(Debug, thiserror::Error)]
#[error("the page session could not be read or written: {0}")]
pub struct SessionError(String);

/// The token the forms of this request's pages carry: that of `signed_in`, the session the
/// cookie authenticated, or else the page session's.
pub fn token(
    state: &AppState,
    session: &Session,
    signed_in: Option<Uuid>,
) -> Result<String, SessionError> {
    match signed_in {
        Some(session_id) => Ok(state.session_csrf.token(session_id)),
        None => page_token(session),
    }
}

/// The page session's token, created on first use.
fn page_token(session: &Session) -> Result<String, SessionError> {
    let existing = session
        .get::<String>(SESSION_KEY)
        .map_err(|e| SessionError(e.to_string()))?;
    match existing {
        Some(token) => Ok(token),
        None => renew(session),
    }
}

/// Replaces the page session's token; done whenever the signed-in user changes, so a token
/// learned before login is worthless after it (and after logout, the one shown before).
pub fn renew(session: &Session) -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    session
        .insert(SESSION_KEY, &token)
        .map_err(|e| SessionError(e.to_string()))?;
    Ok(token)
}

/// Whether a state-changing request may proceed: it comes from this site and presents the
/// token of `signed_in` (the session the cookie authenticated), or, when the cookie
/// authenticated nobody, the page session's.
pub fn verify(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    signed_in: Option<Uuid>,
    presented: Option<&str>,
) -> bool {
    if !from_this_site(req, state) {
        log::info!("refused a cross-site {} {}", req.method(), req.path());
        return false;
    }
    let Some(presented) = presented else {
        return false;
    };
    match signed_in {
        Some(session_id) => state.session_csrf.verify(session_id, presented),
        None => match session.get::<String>(SESSION_KEY).ok().flatten() {
            Some(expected) => bool::from(expected.as_bytes().ct_eq(presented.as_bytes())),
            None => false,
        },
    }
}

/// The token in the `X-CSRF-Token` header, if any.
pub fn header_token(req: &HttpRequest) -> Option<&str> {
    req.headers().get(HEADER)?.to_str().ok()
}

/// False when the browser says the request comes from another site: `Sec-Fetch-Site`, then
/// `Origin`, or `Referer` when there is no `Origin`. Clients that send none of them
/// (non-browsers) pass this check and still need the token.
pub fn from_this_site(req: &HttpRequest, state: &AppState) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site") {
        // `none` is a navigation the user typed or bookmarked.
        if !matches!(site.to_str(), Ok("same-origin" | "none")) {
            return false;
        }
    }
    let claimed = match (
        req.headers().get(header::ORIGIN),
        req.headers().get(header::REFERER),
    ) {
        // `null` (a sandboxed or privacy-sensitive context) parses as nothing: refused.
        (Some(origin), _) => origin.to_str().ok().and_then(SiteOrigin::parse),
        (None, Some(referer)) => referer.to_str().ok().and_then(SiteOrigin::of_url),
        (None, None) => return true,
    };
    claimed.is_some_and(|claimed| {
        SiteOrigin::of_url(&state.public_url).as_ref() == Some(&claimed)
            || addressed_to(req, state).as_ref() == Some(&claimed)
    })
}

/// The origin the request was sent to: its scheme and `Host`, as a trusted proxy restates
/// them if the request came through one.
fn addressed_to(req: &HttpRequest, state: &AppState) -> Option<SiteOrigin> {
    let forwarded = Forwarded::of(req, state.throttle.trusted_proxies());
    let scheme = forwarded.proto.unwrap_or_else(|| {
        let tls = req.app_config().secure();
        (if tls { "https" } else { "http" }).to_owned()
    });
    let host = match forwarded.host {
        Some(host) => host,
        None => match req.headers().get(header::HOST) {
            Some(host) => host.to_str().ok()?.to_owned(),
            None => req.uri().authority()?.as_str().to_owned(),
        },
    };
    SiteOrigin::parse(&format!("{scheme}://{host}"))
}

/// A web origin (RFC 6454): scheme, host and port, with the scheme's default port made
/// explicit, so `https://example.com` and `https://example.com:443` are one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SiteOrigin {
    scheme: &'static str,
    host: String,
    port: u16,
}

impl SiteOrigin {
    /// An origin as the `Origin` header serializes it: `scheme://host[:port]`, nothing more.
    fn parse(raw: &str) -> Option<SiteOrigin> {
        let (scheme, authority) = raw.trim().split_once("://")?;
        let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "http" => ("http", 80),
            "https" => ("https", 443),
            _ => return None,
        };
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            // A colon inside an IPv6 literal is not a port separator.
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (authority, None),
        };
        let port = match port {
            None => default_port,
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse().ok()?
            }
            Some(_) => return None,
        };
        if host.is_empty() {
            return None;
        }
        Some(SiteOrigin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The origin of a URL (`Referer`, `PUBLIC_URL`): its scheme and authority.
    fn of_url(url: &str) -> Option<SiteOrigin> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        SiteOrigin::parse(&format!("{scheme}://{}", &rest[..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(scheme: &'static str, host: &str, port: u16) -> Option<SiteOrigin> {
        Some(SiteOrigin {
            scheme,
            host: host.to_owned(),
            port,
        })
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            SiteOrigin::parse("http://localhost:8080"),
            origin("http", "localhost", 8080)
        );
        assert_eq!(
            SiteOrigin::parse("HTTPS://Auth.Example.com"),
            origin("https", "auth.example.com", 443)
        );
        assert_eq!(
            SiteOrigin::parse("https://auth.example.com:443"),
            SiteOrigin::parse("https://auth.example.com")
        );
        assert_eq!(
            SiteOrigin::parse("http://[::1]:8080"),
            origin("http", "[::1]", 8080)
        );
        assert_eq!(
            SiteOrigin::parse("http://[::1]"),
            origin("http", "[::1]", 80)
        );
        for refused in [
            "null",
            "",
            "ftp://localhost:8080",
            "http://localhost:8080.evil",
            "http://localhost:",
            "http://user@localhost",
            "http://localhost/path",
            "http://",
        ] {
            assert_eq!(SiteOrigin::parse(refused), None, "{refused}");
        }
    }

    #[test]
    fn urls_have_the_origin_of_their_scheme_and_authority() {
        assert_eq!(
            SiteOrigin::of_url("https://auth.example.com/login?next=/x#top"),
            origin("https", "auth.example.com", 443)
        );
        assert_eq!(
            SiteOrigin::of_url("http://127.0.0.1:8080"),
            origin("http", "127.0.0.1", 8080)
        );
        assert_eq!(SiteOrigin::of_url("/relative"), None);
    }
}
