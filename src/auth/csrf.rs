//! The CSRF token of a signed-in session (OWASP's signed double-submit): an HMAC-SHA-256 of
//! the session's id under a server secret. Only this server can make it, it differs for every
//! session, and it is worthless the moment its session ends, so a token learned before login
//! or from another account never passes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Keeps what separates these MACs from any other made with the same primitive.
const CONTEXT: &[u8] = b"gatehouse session csrf v1\0";

/// Makes and checks the CSRF tokens of signed-in sessions.
#[derive(Clone)]
pub struct SessionCsrf {
    key: [u8; 32],
}

impl SessionCsrf {
    pub fn new(key: [u8; 32]) -> SessionCsrf {
        SessionCsrf { key }
    }

    /// The token of `session_id`: 43 characters of unpadded base64url.
    pub fn token(&self, session_id: Uuid) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(session_id).finalize().into_bytes())
    }

    /// Whether `presented` is the token of `session_id`, compared in constant time.
    pub fn verify(&self, session_id: Uuid, presented: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else {
            return false;
        };
        self.mac(session_id).verify_slice(&tag).is_ok()
    }

    fn mac(&self, session_id: Uuid) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(CONTEXT);
        mac.update(session_id.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_one_session_and_one_key() {
        let csrf = SessionCsrf::new([7; 32]);
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        let token = csrf.token(one);
        assert_eq!(token.len(), 43);
        assert_eq!(token, csrf.token(one), "stable within a session");
        assert!(csrf.verify(one, &token));
        assert!(!csrf.verify(two, &token), "another session");
        assert!(
            !SessionCsrf::new([8; 32]).verify(one, &token),
            "another key"
        );
        let mut altered = token.clone();
        altered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
        for bad in ["", "not base64!", &altered, &token[..42]] {
            assert!(!csrf.verify(one, bad), "{bad}");
        }
    }
}
