//! Machine clients: services that call services, with a client id, a secret and scopes.

use std::collections::BTreeSet;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use serde::Serialize;

const CLIENT_ID_PREFIX: &str = "client_";
const NAME_MAX_LEN: usize = 100;
const SCOPE_MAX_LEN: usize = 64;
const SCOPES_MAX: usize = 32;

/// A machine client's public identifier: `client_` and 22 base64url characters (128 random
/// bits). The prefix keeps it from being mistaken for a user id (a UUID) in a token's `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> ClientId {
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        ClientId(format!(
            "{CLIENT_ID_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    pub fn parse(raw: &str) -> Option<ClientId> {
        let random = raw.strip_prefix(CLIENT_ID_PREFIX)?;
        let well_formed = random.len() == 22
            && random
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| ClientId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client's display name: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidClient {
    #[error("the name must be 1 to {NAME_MAX_LEN} characters without control characters")]
    Name,
    #[error(
        "`{0}` is not a valid scope (1 to {SCOPE_MAX_LEN} printable ASCII characters, no spaces, \
         quotes or backslashes)"
    )]
    Scope(String),
    #[error("at most {SCOPES_MAX} scopes")]
    TooManyScopes,
}

impl ClientName {
    pub fn parse(raw: &str) -> Result<ClientName, InvalidClient> {
        let name = raw.trim();
        let valid = !name.is_empty()
            && name.chars().count() <= NAME_MAX_LEN
            && !name.chars().any(char::is_control);
        valid
            .then(|| ClientName(name.to_owned()))
            .ok_or(InvalidClient::Name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of OAuth scopes (RFC 6749 §3.3), kept sorted and without repeats.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses scopes given one by one (a JSON list, repeated `--scope` flags).
    pub fn parse_each<'a>(
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<Scopes, InvalidClient> {
        let mut scopes = BTreeSet::new();
        for item in items {
            if !is_scope_token(item) {
                return Err(InvalidClient::Scope(
                    item.chars().take(SCOPE_MAX_LEN).collect(),
                ));
            }
            scopes.insert(item.to_owned());
        }
        if scopes.len() > SCOPES_MAX {
            return Err(InvalidClient::TooManyScopes);
        }
        Ok(Scopes(scopes))
    }

    /// Parses the space-separated form of OAuth requests and of the database.
    pub fn parse_space_separated(raw: &str) -> Result<Scopes, InvalidClient> {
        Scopes::parse_each(raw.split(' ').filter(|s| !s.is_empty()))
    }

    pub fn to_space_separated(&self) -> String {
        self.0.iter().cloned().collect::<Vec<_>>().join(" ")
    }

    pub fn is_subset_of(&self, allowed: &Scopes) -> bool {
        self.0.is_subset(&allowed.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, bounded in length.
fn is_scope_token(token: &str) -> bool {
    (1..=SCOPE_MAX_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// A registered client, as the rest of the service sees it (never its secret): a machine
/// client, an application that signs its users in with Gatehouse (OpenID Connect), or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    /// The scopes its own (client-credentials) tokens may carry.
    pub scopes: Scopes,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    /// Where `/oauth/authorize` may send the user back to; none for a machine client.
    pub redirect_uris: Vec<RedirectUri>,
    /// Where `/oauth/logout` may send the user after signing out.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// A browser or native app, which cannot keep a secret: it has none, and proves itself
    /// with PKCE alone.
    pub public: bool,
    /// First-party: its users are not asked for consent.
    pub skip_consent: bool,
    /// How its ID tokens are signed.
    pub id_token_alg: IdTokenAlgorithm,
}

impl Client {
    /// Whether it signs users in (has somewhere to send them back to).
    pub fn is_application(&self) -> bool {
        !self.redirect_uris.is_empty()
    }

    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|allowed| allowed.as_str() == uri)
    }

    pub fn allows_post_logout_redirect(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|allowed| allowed.as_str() == uri)
    }
}

/// How an application's ID tokens are signed (`id_token_signed_response_alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum IdTokenAlgorithm {
    #[default]
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "RS256")]
    Rs256,
}

impl IdTokenAlgorithm {
    pub fn parse(raw: &str) -> Option<IdTokenAlgorithm> {
        match raw {
            "ES256" => Some(IdTokenAlgorithm::Es256),
            "RS256" => Some(IdTokenAlgorithm::Rs256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenAlgorithm::Es256 => "ES256",
            IdTokenAlgorithm::Rs256 => "RS256",
        }
    }
}

/// A registered redirect URI: an absolute `https` URL, or `http` on a loopback host (a native
/// app's local listener, RFC 8252 §7.3); no fragment. Compared as exact strings, never by
/// prefix or pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

const REDIRECT_URI_MAX_LEN: usize = 2000;
const REDIRECT_URIS_MAX: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRedirectUri {
    #[error("`{0}` is not an absolute URL")]
    NotAbsolute(String),
    #[error("`{0}` must use https (http only on localhost, 127.0.0.1 or [::1])")]
    Insecure(String),
    #[error("`{0}` has a fragment, which redirect URIs may not have")]
    Fragment(String),
    #[error("`{0}` has a user name or password")]
    Credentials(String),
    #[error(
        "at most {REDIRECT_URIS_MAX} redirect URIs of at most {REDIRECT_URI_MAX_LEN} characters"
    )]
    TooMany,
}

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<RedirectUri, InvalidRedirectUri> {
        let shown = || raw.chars().take(100).collect::<String>();
        if raw.len() > REDIRECT_URI_MAX_LEN {
            return Err(InvalidRedirectUri::TooMany);
        }
        let url = url::Url::parse(raw).map_err(|_| InvalidRedirectUri::NotAbsolute(shown()))?;
        // The parser normalises; a URI that is not already in its normal form would never
        // compare equal to what a client sends, so it is refused rather than silently changed.
        if url.as_str() != raw && url.as_str() != format!("{raw}/") {
            return Err(InvalidRedirectUri::NotAbsolute(shown()));
        }
        if url.fragment().is_some() {
            return Err(InvalidRedirectUri::Fragment(shown()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidRedirectUri::Credentials(shown()));
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(domain)) => domain == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if loopback => {}
            _ => return Err(InvalidRedirectUri::Insecure(shown())),
        }
        Ok(RedirectUri(raw.to_owned()))
    }

    /// Parses a list (a JSON array, repeated flags), bounded in length.
    pub fn parse_each<'a>(
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<RedirectUri>, InvalidRedirectUri> {
        let mut uris: Vec<RedirectUri> = Vec::new();
        for item in items {
            let uri = RedirectUri::parse(item.trim())?;
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
        if uris.len() > REDIRECT_URIS_MAX {
            return Err(InvalidRedirectUri::TooMany);
        }
        Ok(uris)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_never_look_like_a_uuid() {
        let id = ClientId::generate();
        assert_eq!(ClientId::parse(id.as_str()), Some(id.clone()));
        assert!(uuid::Uuid::parse_str(id.as_str()).is_err());
        assert_ne!(ClientId::generate(), id);
        for bad in [
            "",
            "client_",
            "client_short",
            "user_AAAAAAAAAAAAAAAAAAAAAA",
            "client_AAAAAAAAAAAAAAAAAAAA/A",
        ] {
            assert!(ClientId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scopes_follow_rfc_6749() {
        let scopes =
            Scopes::parse_space_separated("write:reports  read:reports read:reports").unwrap();
        assert_eq!(scopes.to_space_separated(), "read:reports write:reports");
        for bad in ["quote\"d", "back\\slash", "tab\there", "é"] {
            assert!(Scopes::parse_each([bad]).is_err(), "{bad}");
        }
        assert!(Scopes::parse_each([""]).is_err());
        let read = Scopes::parse_space_separated("read:reports").unwrap();
        assert!(read.is_subset_of(&scopes));
        assert!(!scopes.is_subset_of(&read));
        assert!(Scopes::default().is_subset_of(&read));
    }

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        for good in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?tenant=a",
            "http://127.0.0.1:8000/callback",
            "http://localhost/cb",
            "http://[::1]:9/cb",
        ] {
            assert_eq!(RedirectUri::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "/callback",
            "http://app.example.com/callback",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "javascript:alert(1)",
            "HTTPS://APP.example.com/cb",
            "ftp://localhost/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            RedirectUri::parse_each(["https://a.example/cb", "https://a.example/cb"])
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            ClientName::parse("  billing  ").unwrap().as_str(),
            "billing"
        );
        assert!(ClientName::parse("   ").is_err());
        assert!(ClientName::parse(&"x".repeat(101)).is_err());
        assert!(ClientName::parse("a\nb").is_err());
    }
}
