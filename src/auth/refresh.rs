//! Refresh tokens: opaque random strings, stored only as SHA-256 hashes, rotated on every use.
//!
//! A token's successor is derived from it with a keyed MAC (HMAC-SHA-256 under a key kept in
//! the database). That lets the server hand a client that lost a response the *same* successor
//! again (as long as nobody has used it), without ever storing a token in the clear, and makes
//! concurrent refreshes of one token agree on one successor. Without the key, nobody can compute
//! a successor from a stolen old token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// Length of an encoded refresh token: 32 random bytes in unpadded base64url.
const TOKEN_LEN: usize = 43;

/// Makes, chains and hashes refresh tokens.
#[derive(Clone)]
pub struct RefreshTokens {
    chain_key: [u8; 32],
}

impl RefreshTokens {
    pub fn new(chain_key: [u8; 32]) -> RefreshTokens {
        RefreshTokens { chain_key }
    }

    /// A new random token that starts a session.
    pub fn generate(&self) -> String {
        random_token()
    }

    /// The token that replaces `parent` when it is rotated.
    pub fn successor(&self, parent: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.chain_key).expect("HMAC takes any key");
        mac.update(parent.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// 256 random bits in unpadded base64url: refresh tokens and client secrets.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `token` has the shape of a refresh token (cheap pre-check before any database work).
pub fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The form in which a refresh token or client secret is stored: a hex SHA-256 digest.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let tokens = RefreshTokens::new([7; 32]);
        let (a, b) = (tokens.generate(), tokens.generate());
        assert_ne!(a, b);
        assert!(is_well_formed(&a) && is_well_formed(&b));
    }

    #[test]
    fn successors_are_deterministic_well_formed_and_keyed() {
        let tokens = RefreshTokens::new([7; 32]);
        let parent = tokens.generate();
        let child = tokens.successor(&parent);
        assert_eq!(child, tokens.successor(&parent));
        assert!(is_well_formed(&child));
        assert_ne!(child, parent);
        assert_ne!(child, RefreshTokens::new([8; 32]).successor(&parent));
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
            &"é".repeat(21),
        ] {
            assert!(!is_well_formed(bad), "{bad}");
        }
    }
}
