//! The machinery of second factors: the key that seals TOTP secrets and keys recovery-code
//! hashes, TOTP itself (RFC 6238, through `totp-rs`), recovery codes, and the opaque token of
//! a login's second step.

use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Secret, Totp};

use crate::config::{decode_secret, MfaKeySource};
use crate::domain::UserId;

/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;
/// The sealed form's version prefix, so that a later scheme can be told apart.
const SEALED_PREFIX: &str = "v1.";
/// A TOTP secret's length: 160 bits, RFC 4226's recommendation (at least 128 are required).
const TOTP_SECRET_BYTES: usize = 20;
/// Recovery codes are written in Crockford's base32: no I, L, O or U to misread.
const CODE_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters in a recovery code (50 bits), shown as two groups of five.
const CODE_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum MfaKeyError {
    #[error(
        "MFA_KEY must be the base64 or hex of at least 32 random bytes (`gatehouse keys \
         generate --hs256` prints one)"
    )]
    Malformed,
    #[error("the MFA key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// A sealed secret that does not open: the wrong key, another user's row, or tampering.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret could not be opened (wrong MFA_KEY, or the row was altered)")]
pub struct Unsealable;

/// The server's second-factor key, kept outside the database (`MFA_KEY`), so that a copy of
/// the database alone yields no working TOTP seed and no way to test recovery codes.
pub struct MfaKey {
    seal: LessSafeKey,
    codes: [u8; 32],
    /// Where a development key was generated, to say so at start.
    pub generated_at: Option<String>,
}

impl MfaKey {
    pub fn load(source: &MfaKeySource) -> Result<MfaKey, MfaKeyError> {
        match source {
            MfaKeySource::Configured(secret) => MfaKey::from_text(secret.expose_secret(), None),
            MfaKeySource::GeneratedFile(path) => from_file(path),
        }
    }

    fn from_text(text: &str, generated_at: Option<String>) -> Result<MfaKey, MfaKeyError> {
        let master = decode_key(text.trim()).ok_or(MfaKeyError::Malformed)?;
        // Two keys from one: each use gets its own, derived with HMAC-SHA-256 as HKDF's expand
        // step does.
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = Hmac::<Sha256>::new_from_slice(&master).expect("HMAC takes any key");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let seal = UnboundKey::new(&AES_256_GCM, &derive(b"gatehouse totp seal v1"))
            .map_err(|_| MfaKeyError::Malformed)?;
        Ok(MfaKey {
            seal: LessSafeKey::new(seal),
            codes: derive(b"gatehouse recovery codes v1"),
            generated_at,
        })
    }

    /// Encrypts a secret for one user's row (AES-256-GCM, the user id as associated data, so
    /// a sealed secret moved to another row does not open).
    pub fn seal(&self, user_id: UserId, secret: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let mut sealed = secret.to_vec();
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user_id.to_string().as_bytes()),
                &mut sealed,
            )
            .expect("AES-GCM seals any secret this short");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, user_id: UserId, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or(Unsealable)?;
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unsealable)?;
        let mut buffer = ciphertext.to_vec();
        let opened = self
            .seal
            .open_in_place(
                nonce,
                Aad::from(user_id.to_string().as_bytes()),
                &mut buffer,
            )
            .map_err(|_| Unsealable)?;
        Ok(opened.to_vec())
    }

    /// The stored form of one of a user's recovery codes: a keyed hash of its normalised text.
    pub fn recovery_code_hash(&self, user_id: UserId, code: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.codes).expect("HMAC takes any key");
        mac.update(user_id.to_string().as_bytes());
        mac.update(b":");
        mac.update(normalize_recovery_code(code).as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

fn from_file(path: &Path) -> Result<MfaKey, MfaKeyError> {
    let file_error = |source| MfaKeyError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => MfaKey::from_text(&text, None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            OsRng.fill_bytes(&mut bytes);
            let text = URL_SAFE_NO_PAD.encode(bytes);
            write_private_file(path, &text).map_err(file_error)?;
            MfaKey::from_text(&text, Some(path.display().to_string()))
        }
        Err(e) => Err(file_error(e)),
    }
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// Base64 or hex of at least 32 bytes.
fn decode_key(text: &str) -> Option<Vec<u8>> {
    decode_secret(text).filter(|bytes| bytes.len() >= 32)
}

/// A new TOTP secret (160 random bits).
pub fn new_totp_secret() -> Vec<u8> {
    let mut secret = vec![0u8; TOTP_SECRET_BYTES];
    OsRng.fill_bytes(&mut secret);
    secret
}

/// An authenticator app's view of a secret: RFC 6238 with SHA-1, 6 digits, 30-second steps,
/// one step of drift either way.
pub struct TotpSecret {
    totp: Totp,
}

impl TotpSecret {
    /// `issuer` and `account` label the entry in the app (`otpauth://totp/issuer:account`).
    pub fn new(secret: Vec<u8>, issuer: &str, account: &str) -> TotpSecret {
        // A colon would end the label early; the app shows the account as a name only.
        let account = account.replace(':', " ");
        let totp = Builder::new()
            .with_secret(Secret::new(secret.into_boxed_slice()))
            .with_issuer(Some(issuer.replace(':', " ")))
            .with_account_name(account)
            .build()
            .expect("a 160-bit secret with RFC 6238's parameters is valid");
        TotpSecret { totp }
    }

    /// The secret as the app is given it: base32, without padding.
    pub fn base32(&self) -> String {
        self.totp.secret().to_base32()
    }

    /// `otpauth://totp/…?secret=…&issuer=…`, for a QR code.
    pub fn otpauth_uri(&self) -> String {
        self.totp
            .to_url()
            .expect("the issuer and account are set, and the secret is valid")
    }

    /// The step (`unix time / 30`) whose code `code` is, within one step of `now`; `None` if it
    /// is no such code. Spaces in the code are ignored.
    pub fn matching_step(&self, code: &str, now: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp.check(&code, now)
    }

    /// The code of the step that holds `time` (for tests and the enrolment page's checks).
    pub fn code_at(&self, time: u64) -> String {
        self.totp.generate(time).to_string()
    }
}

/// A new set of recovery codes, as shown to their owner: `xxxxx-xxxxx`.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; CODE_CHARS];
            OsRng.fill_bytes(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| CODE_ALPHABET[(b & 31) as usize] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// A recovery code as typed, reduced to what it is: any letter case, spaces and dashes
/// ignored, and the letters Crockford's base32 reads as digits read so.
pub fn normalize_recovery_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect()
}

/// A new second-step token: 256 random bits, base64url.
pub fn new_step_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a second-step token (it carries 256 bits: a plain hash will do).
pub fn step_token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MfaKey {
        MfaKey::from_text(&"ab".repeat(32), None).unwrap()
    }

    /// RFC 6238, appendix B: the SHA-1 vectors, with the 20-byte ASCII secret "12345678901234567890"
    /// (the RFC prints 8 digits; an authenticator app shows their last 6).
    #[test]
    fn rfc_6238_test_vectors() {
        let totp = TotpSecret::new(b"12345678901234567890".to_vec(), "Gatehouse", "a@b.c");
        for (time, eight_digits) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(totp.code_at(time), eight_digits[2..], "at {time}");
            assert_eq!(
                totp.matching_step(&eight_digits[2..], time),
                Some(time / 30)
            );
        }
    }

    #[test]
    fn codes_one_step_away_match_and_two_steps_do_not() {
        let totp = TotpSecret::new(new_totp_secret(), "Gatehouse", "a@b.c");
        let now = 1_800_000_015;
        assert_eq!(
            totp.matching_step(&totp.code_at(now - 30), now),
            Some(now / 30 - 1)
        );
        assert_eq!(
            totp.matching_step(&totp.code_at(now + 30), now),
            Some(now / 30 + 1)
        );
        let far = totp.code_at(now - 60);
        if far != totp.code_at(now)
            && far != totp.code_at(now - 30)
            && far != totp.code_at(now + 30)
        {
            assert_eq!(totp.matching_step(&far, now), None);
        }
        assert_eq!(totp.matching_step("12345", now), None);
        assert_eq!(totp.matching_step("abcdef", now), None);
    }

    #[test]
    fn the_uri_names_issuer_account_and_secret() {
        let totp = TotpSecret::new(new_totp_secret(), "Gatehouse", "ada@example.com");
        let uri = totp.otpauth_uri();
        assert!(
            uri.starts_with("otpauth://totp/Gatehouse:ada%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", totp.base32())), "{uri}");
        assert!(uri.contains("issuer=Gatehouse"), "{uri}");
        assert!(totp.base32().len() >= 26, "at least 128 bits");
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let (key, ada, bob) = (key(), UserId::new(), UserId::new());
        let sealed = key.seal(ada, b"seed");
        assert!(!sealed.contains("seed"));
        assert_eq!(key.open(ada, &sealed).unwrap(), b"seed");
        assert!(key.open(bob, &sealed).is_err());
        let other = MfaKey::from_text(&"cd".repeat(32), None).unwrap();
        assert!(other.open(ada, &sealed).is_err());
        assert!(key.open(ada, "v1.garbage").is_err());
    }

    #[test]
    fn recovery_codes_are_distinct_and_forgiving_to_type() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let (key, user) = (key(), UserId::new());
        let code = &codes[0];
        let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(
            key.recovery_code_hash(user, code),
            key.recovery_code_hash(user, &typed)
        );
        assert_ne!(
            key.recovery_code_hash(user, code),
            key.recovery_code_hash(UserId::new(), code)
        );
    }

    #[test]
    fn keys_must_carry_32_bytes() {
        let valid = |text: &str| MfaKey::from_text(text, None).is_ok();
        assert!(valid(&"ab".repeat(32)));
        assert!(valid(&URL_SAFE_NO_PAD.encode([7u8; 32])));
        assert!(!valid("short"));
        assert!(!valid(&"ab".repeat(31)));
    }
}
