//! Keyed pseudonyms: a short reference to a value that must not be kept (what someone typed
//! into the email box of a failed login may be their password).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex digits of a pseudonym: 48 bits, enough to tell attempts apart in an audit trail.
const PSEUDONYM_HEX_LEN: usize = 12;

/// Makes pseudonyms with a server secret, so the same value always gives the same reference
/// (attempts on one identifier can be told apart from attempts on many), while nobody without
/// the secret can test a guess against one.
#[derive(Clone)]
pub struct Pseudonyms {
    key: [u8; 32],
}

impl Pseudonyms {
    pub fn new(key: [u8; 32]) -> Pseudonyms {
        Pseudonyms { key }
    }

    /// The pseudonym of `value`: the first 12 hex digits of its HMAC-SHA-256.
    pub fn of(&self, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        hex.truncate(PSEUDONYM_HEX_LEN);
        hex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_short() {
        let ours = Pseudonyms::new([7; 32]);
        let theirs = Pseudonyms::new([8; 32]);
        let p = ours.of("hunter2");
        assert_eq!(p.len(), 12);
        assert_eq!(p, ours.of("hunter2"));
        assert_ne!(p, ours.of("hunter3"));
        assert_ne!(p, theirs.of("hunter2"));
        assert!(!p.contains("hunter2"));
    }
}
