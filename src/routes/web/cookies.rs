//! The browser transport's cookies, built in one place so their flags never drift.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::HttpRequest;

use crate::auth::device::DEVICE_COOKIE_LIFETIME;
use crate::services::sessions::TokenPair;
use crate::state::AppState;

/// Names and flags of the cookies that carry a browser's session.
///
/// Every cookie is `HttpOnly`, `SameSite=Lax`, `Path=/` and has no `Domain`. When `secure`,
/// they are also `Secure` and carry the `__Host-` prefix, which makes browsers refuse them
/// from plain HTTP and from other hosts.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    secure: bool,
    refresh_ttl: std::time::Duration,
}

impl CookiePolicy {
    pub fn new(secure: bool, refresh_ttl: std::time::Duration) -> CookiePolicy {
        CookiePolicy {
            secure,
            refresh_ttl,
        }
    }

    /// The policy the application's settings ask for.
    pub fn of(state: &AppState) -> CookiePolicy {
        CookiePolicy::new(state.cookie_secure, state.refresh.ttl)
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The cookie holding the access JWT.
    pub fn access_name(&self) -> &'static str {
        if self.secure {
            "__Host-gatehouse_access"
        } else {
            "gatehouse_access"
        }
    }

    /// The cookie holding the refresh token that renews the access cookie.
    pub fn refresh_name(&self) -> &'static str {
        if self.secure {
            "__Host-gatehouse_refresh"
        } else {
            "gatehouse_refresh"
        }
    }

    /// The (encrypted) cookie of the page session: CSRF token and flash messages.
    pub fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-gatehouse_session"
        } else {
            "gatehouse_session"
        }
    }

    /// The cookie by which a browser that signed in before is known (`auth::device`).
    pub fn device_name(&self) -> &'static str {
        if self.secure {
            "__Host-gatehouse_device"
        } else {
            "gatehouse_device"
        }
    }

    /// The device cookie for a browser that has just signed in; it outlives the session (a
    /// logout keeps it), as the device stays known.
    pub fn device(&self, value: String) -> Cookie<'static> {
        self.cookie(
            self.device_name(),
            value,
            seconds(DEVICE_COOKIE_LIFETIME.as_secs()),
        )
    }

    /// The access and refresh cookies for a freshly issued token pair.
    pub fn signed_in(&self, tokens: &TokenPair) -> [Cookie<'static>; 2] {
        [
            self.cookie(
                self.access_name(),
                tokens.access_token.clone(),
                seconds(tokens.expires_in),
            ),
            self.cookie(
                self.refresh_name(),
                tokens.refresh_token.clone(),
                seconds(self.refresh_ttl.as_secs()),
            ),
        ]
    }

    /// Cookies that make the browser forget both tokens (`Max-Age=0`, same attributes).
    pub fn signed_out(&self) -> [Cookie<'static>; 2] {
        [
            self.cookie(self.access_name(), String::new(), time::Duration::ZERO),
            self.cookie(self.refresh_name(), String::new(), time::Duration::ZERO),
        ]
    }

    pub fn access_token(&self, req: &HttpRequest) -> Option<String> {
        non_empty(req, self.access_name())
    }

    pub fn refresh_token(&self, req: &HttpRequest) -> Option<String> {
        non_empty(req, self.refresh_name())
    }

    fn cookie(
        &self,
        name: &'static str,
        value: String,
        max_age: time::Duration,
    ) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(max_age)
            .finish()
    }
}

fn non_empty(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

fn seconds(secs: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::sessions::TokenType;

    fn pair() -> TokenPair {
        TokenPair {
            access_token: "a.b.c".into(),
            token_type: TokenType::Bearer,
            expires_in: 1800,
            refresh_token: "r".into(),
        }
    }

    #[test]
    fn secure_cookies_are_host_prefixed_and_locked_down() {
        let policy = CookiePolicy::new(true, std::time::Duration::from_secs(36_000));
        let [access, refresh] = policy.signed_in(&pair());
        let header = access.to_string();
        assert!(
            header.starts_with("__Host-gatehouse_access=a.b.c"),
            "{header}"
        );
        for flag in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=1800",
        ] {
            assert!(header.contains(flag), "{flag} missing from {header}");
        }
        assert!(!header.contains("Domain"), "{header}");
        assert!(refresh.to_string().contains("Max-Age=36000"));
    }

    #[test]
    fn insecure_cookies_drop_the_prefix_and_the_secure_flag() {
        let policy = CookiePolicy::new(false, std::time::Duration::from_secs(60));
        let [access, _] = policy.signed_in(&pair());
        let header = access.to_string();
        assert!(header.starts_with("gatehouse_access="), "{header}");
        assert!(!header.contains("Secure"), "{header}");
    }

    #[test]
    fn signing_out_expires_both_cookies_with_the_same_attributes() {
        let policy = CookiePolicy::new(true, std::time::Duration::from_secs(60));
        for cookie in policy.signed_out() {
            let header = cookie.to_string();
            for flag in ["Max-Age=0", "HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
                assert!(header.contains(flag), "{flag} missing from {header}");
            }
        }
    }
}
