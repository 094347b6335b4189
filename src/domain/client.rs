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

/// A registered machine client, as the rest of the service sees it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    /// The scopes its tokens may carry.
    pub scopes: Scopes,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
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
