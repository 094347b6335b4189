//! Cross-site request forgery defence for everything the cookie authenticates.
//!
//! Three layers: the cookies are `SameSite=Lax`; a request whose `Sec-Fetch-Site` or `Origin`
//! says it comes from another site is refused; and every state change must echo the page
//! session's secret token (form field `csrf_token` or header `X-CSRF-Token`).

use actix_session::Session;
use actix_web::http::header;
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;

/// The form field that carries the token.
pub const FORM_FIELD: &str = "csrf_token";
/// The header that carries the token on JSON requests.
pub const HEADER: &str = "x-csrf-token";
const SESSION_KEY: &str = "csrf";

#[derive(Debug, thiserror::Error)]
#[error("the page session could not be read or written: {0}")]
pub struct SessionError(String);

/// The page session's token, created on first use.
pub fn token(session: &Session) -> Result<String, SessionError> {
    let existing = session
        .get::<String>(SESSION_KEY)
        .map_err(|e| SessionError(e.to_string()))?;
    match existing {
        Some(token) => Ok(token),
        None => renew(session),
    }
}

/// Replaces the token; done whenever the signed-in user changes, so a token learned before
/// login is worthless after it.
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
/// session's token.
pub fn verify(req: &HttpRequest, session: &Session, presented: Option<&str>) -> bool {
    if !from_this_site(req) {
        log::info!("refused a cross-site {} {}", req.method(), req.path());
        return false;
    }
    let expected = session.get::<String>(SESSION_KEY).ok().flatten();
    match (expected, presented) {
        (Some(expected), Some(presented)) => {
            bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
        }
        _ => false,
    }
}

/// The token in the `X-CSRF-Token` header, if any.
pub fn header_token(req: &HttpRequest) -> Option<&str> {
    req.headers().get(HEADER)?.to_str().ok()
}

/// False when the browser says the request comes from another site. Clients that send
/// neither header (non-browsers) pass this check and still need the token.
pub fn from_this_site(req: &HttpRequest) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site") {
        // `none` is a navigation the user typed or bookmarked.
        if !matches!(site.to_str(), Ok("same-origin" | "none")) {
            return false;
        }
    }
    match req.headers().get(header::ORIGIN).map(|v| v.to_str()) {
        None => true,
        Some(Ok(origin)) => origin_matches_host(origin, req.connection_info().host()),
        Some(Err(_)) => false,
    }
}

/// `Origin: http://host:port` must name the host the request was sent to (`null` never does).
fn origin_matches_host(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn origins_must_name_the_requested_host() {
        assert!(origin_matches_host(
            "http://localhost:8080",
            "localhost:8080"
        ));
        assert!(origin_matches_host(
            "https://Auth.Example.com",
            "auth.example.com"
        ));
        assert!(!origin_matches_host("null", "localhost:8080"));
        assert!(!origin_matches_host(
            "http://evil.example",
            "localhost:8080"
        ));
        assert!(!origin_matches_host(
            "http://localhost:8080.evil",
            "localhost:8080"
        ));
        assert!(!origin_matches_host(
            "ftp://localhost:8080",
            "localhost:8080"
        ));
    }

    #[test]
    fn cross_site_fetch_metadata_is_refused() {
        let req = |site: &str| {
            TestRequest::post()
                .insert_header(("sec-fetch-site", site))
                .to_http_request()
        };
        assert!(from_this_site(&req("same-origin")));
        assert!(from_this_site(&req("none")));
        assert!(!from_this_site(&req("same-site")));
        assert!(!from_this_site(&req("cross-site")));
        assert!(from_this_site(&TestRequest::post().to_http_request()));
    }
}
