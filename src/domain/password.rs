use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;
/// Local parts shorter than this are too common to forbid as substrings ("jo", "me").
const MIN_LOCAL_PART_TO_CHECK: usize = 3;
/// The service's own name: the first word anyone guessing a password here tries.
pub const SERVICE_NAME: &str = "gatehouse";
/// Labels of the public host shorter than this ("www", "id", "sso") are not words to refuse.
const MIN_HOST_LABEL_TO_CHECK: usize = 4;
/// Longer than this, a candidate is not normalized at all: no password can be that long.
const MAX_RAW_LEN: usize = 4 * MAX_LEN;

/// Common passwords of 8 to 128 characters, lower-cased and sorted (from the list Django ships).
static COMMON_PASSWORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut list: Vec<&str> = include_str!("common_passwords.txt").lines().collect();
    list.sort_unstable();
    list
});

/// The form of a password that is hashed and checked: NFKC (NIST 800-63B 5.1.1.2), so the
/// same password typed on another keyboard or composed another way (`é` as one character or
/// as `e` and an accent) is the same password.
pub fn normalize(raw: &str) -> String {
    raw.nfkc().collect()
}

/// Whether `raw` could be a password the policy ever let in; longer candidates are not worth
/// normalizing or hashing.
pub fn is_plausible(raw: &str) -> bool {
    let length = raw.chars().count();
    length <= MAX_LEN || (length <= MAX_RAW_LEN && normalize(raw).chars().count() <= MAX_LEN)
}

/// A new password that satisfies the policy, in its normalized form. Never printed: `Debug`
/// is redacted.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

/// Why a password was refused, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("Password should be at least {MIN_LEN} characters long.")]
    TooShort,
    #[error("Password should be at most {MAX_LEN} characters long.")]
    TooLong,
    #[error("Password should not be blank or only spaces.")]
    Blank,
    #[error("This password is too common; choose one that is harder to guess.")]
    TooCommon,
    #[error("Password should not contain your email address.")]
    ContainsEmail,
    #[error(
        "Password should not be built on the name or address of this service; add more of \
         your own."
    )]
    ContainsContextWord,
    #[error(
        "Password should contain an upper-case letter, a lower-case letter, a digit and a \
         special character."
    )]
    MissingCharacterClasses,
}

/// The password rules in force (NIST 800-63B by default; composition rules are opt-in).
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    require_composition: bool,
    /// Words of this deployment (the service's name, the public host and its labels), lower
    /// case: a password that is little more than one of them is refused.
    context_words: Vec<String>,
}

impl PasswordPolicy {
    /// The policy, with or without the opt-in composition rules (`PASSWORD_REQUIRE_COMPOSITION`),
    /// for a service reached at `public_url` (whose host is a context word).
    pub fn new(require_composition: bool, public_url: &str) -> PasswordPolicy {
        PasswordPolicy {
            require_composition,
            context_words: context_words(public_url),
        }
    }

    /// Checks `candidate`, normalized, for the account whose address is `email`.
    pub fn parse(&self, candidate: &str, email: &str) -> Result<Password, PolicyViolation> {
        if candidate.chars().count() > MAX_RAW_LEN {
            return Err(PolicyViolation::TooLong);
        }
        let candidate = normalize(candidate);
        let length = candidate.chars().count();
        if length < MIN_LEN {
            return Err(PolicyViolation::TooShort);
        }
        if length > MAX_LEN {
            return Err(PolicyViolation::TooLong);
        }
        if candidate.trim().is_empty() {
            return Err(PolicyViolation::Blank);
        }
        let lowered = candidate.to_lowercase();
        if is_common(&lowered) {
            return Err(PolicyViolation::TooCommon);
        }
        let local =
            normalize(email.rsplit_once('@').map_or(email, |(local, _)| local)).to_lowercase();
        if local.chars().count() >= MIN_LOCAL_PART_TO_CHECK && lowered.contains(&local) {
            return Err(PolicyViolation::ContainsEmail);
        }
        if self.rests_on_context_words(&lowered) {
            return Err(PolicyViolation::ContainsContextWord);
        }
        if self.require_composition && !has_every_character_class(&candidate) {
            return Err(PolicyViolation::MissingCharacterClasses);
        }
        Ok(Password(candidate.into()))
    }

    /// Whether the password contains a context word and what is left without them is too
    /// short or common to stand on its own (`gatehouse123`, `Gatehouse-password`), while a
    /// long passphrase that happens to name the service is fine.
    fn rests_on_context_words(&self, lowered: &str) -> bool {
        let mut rest = lowered.to_owned();
        for word in &self.context_words {
            rest = rest.replace(word.as_str(), " ");
        }
        if rest == lowered {
            return false;
        }
        let core = rest.trim_matches(|c: char| !c.is_alphanumeric());
        core.chars().filter(|c| !c.is_whitespace()).count() < MIN_LEN || is_common(core)
    }
}

fn is_common(lowered: &str) -> bool {
    COMMON_PASSWORDS.binary_search(&lowered).is_ok()
}

/// The service's name, the host of `public_url`, and the host's labels long enough to be
/// words (but not the top-level domain); longest first, so a host goes before its labels.
fn context_words(public_url: &str) -> Vec<String> {
    let after_scheme = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_and_port.starts_with('[') {
        "" // an IPv6 literal names nothing anyone would type
    } else {
        host_and_port.split(':').next().unwrap_or("")
    };
    let host = normalize(host).to_lowercase();
    let mut words = vec![SERVICE_NAME.to_owned()];
    let labels: Vec<&str> = host.split('.').collect();
    let is_ip = labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit()));
    if !host.is_empty() && !is_ip {
        words.push(host.clone());
        let named = if labels.len() > 1 {
            &labels[..labels.len() - 1]
        } else {
            &labels[..]
        };
        words.extend(
            named
                .iter()
                .filter(|l| l.chars().count() >= MIN_HOST_LABEL_TO_CHECK)
                .map(|l| (*l).to_owned()),
        );
    }
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words.dedup();
    words
}

fn has_every_character_class(candidate: &str) -> bool {
    candidate.chars().any(char::is_uppercase)
        && candidate.chars().any(char::is_lowercase)
        && candidate.chars().any(|c| c.is_ascii_digit())
        && candidate
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
}

impl Password {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> &'static str {
        "Alice.Smith@example.com"
    }

    fn default_policy() -> PasswordPolicy {
        PasswordPolicy::new(false, "https://auth.acme-widgets.example")
    }

    #[test]
    fn accepts_a_long_passphrase_without_composition_rules() {
        assert!(default_policy()
            .parse("correct horse battery staple", email())
            .is_ok());
        assert!(default_policy()
            .parse(&"é".repeat(MAX_LEN), email())
            .is_ok());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let policy = default_policy();
        assert_eq!(
            policy.parse("short", email()).unwrap_err(),
            PolicyViolation::TooShort
        );
        assert!(
            policy.parse("ééééé", email()).is_err(),
            "10 bytes, 5 characters"
        );
        assert_eq!(
            policy.parse(&"x".repeat(MAX_LEN + 1), email()).unwrap_err(),
            PolicyViolation::TooLong
        );
    }

    #[test]
    fn refuses_common_passwords_in_any_case() {
        for common in [
            "password",
            "Password123",
            "QWERTYUIOP",
            "iloveyou1",
            "12345678",
        ] {
            assert_eq!(
                default_policy().parse(common, email()).unwrap_err(),
                PolicyViolation::TooCommon,
                "{common}"
            );
        }
    }

    #[test]
    fn refuses_passwords_containing_the_local_part() {
        assert_eq!(
            default_policy()
                .parse("my-alice.smith-secret", email())
                .unwrap_err(),
            PolicyViolation::ContainsEmail
        );
        assert!(default_policy()
            .parse("enjoy the journey", "jo@example.com")
            .is_ok());
    }

    #[test]
    fn composition_rule_is_opt_in() {
        let strict = PasswordPolicy::new(true, "https://auth.acme-widgets.example");
        assert_eq!(
            strict
                .parse("correct horse battery staple", email())
                .unwrap_err(),
            PolicyViolation::MissingCharacterClasses
        );
        assert!(strict.parse("Kingh_a1234!x", email()).is_ok());
    }

    #[test]
    fn refuses_blank_passwords() {
        for blank in [
            " ".repeat(8),
            "\t".repeat(10),
            "\u{3000}".repeat(9),
            " \u{a0}".repeat(6),
        ] {
            assert_eq!(
                default_policy().parse(&blank, email()).unwrap_err(),
                PolicyViolation::Blank,
                "{blank:?}"
            );
        }
    }

    #[test]
    fn refuses_passwords_that_rest_on_the_services_name_or_host() {
        for weak in [
            "gatehouse123",
            "Gatehouse2024!",
            "GATEHOUSE-password",
            "ｇａｔｅｈｏｕｓｅ1",
            "acme-widgets1234",
            "auth.acme-widgets.example",
            "widgets@acme-widgets",
        ] {
            assert_eq!(
                default_policy().parse(weak, email()).unwrap_err(),
                PolicyViolation::ContainsContextWord,
                "{weak}"
            );
        }
        for fine in [
            "my gatehouse has a mossy green door",
            "authentic horse battery",
            "exampled sentences here",
        ] {
            assert!(default_policy().parse(fine, email()).is_ok(), "{fine}");
        }
        let local = PasswordPolicy::new(false, "http://localhost:8080");
        assert_eq!(
            local.parse("localhost123", email()).unwrap_err(),
            PolicyViolation::ContainsContextWord
        );
        let by_ip = PasswordPolicy::new(false, "http://127.0.0.1:8080");
        assert!(by_ip.parse("127.0.0.1 is home sweet home", email()).is_ok());
    }

    #[test]
    fn passwords_are_normalized_to_nfkc() {
        let composed = default_policy()
            .parse("caf\u{e9} au lait", email())
            .unwrap();
        let decomposed = default_policy()
            .parse("cafe\u{301} au lait", email())
            .unwrap();
        assert_eq!(composed.expose(), decomposed.expose());
        assert_eq!(composed.expose(), "café au lait");
        let fullwidth = default_policy()
            .parse("ｐａｓｓｐｈｒａｓｅ ｘ", email())
            .unwrap();
        assert_eq!(fullwidth.expose(), "passphrase x");
        // Decomposed, 10 characters; composed, 5: the policy counts the normal form.
        assert!(default_policy()
            .parse("e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}", email())
            .is_err());
        assert!(is_plausible(&"e\u{301}".repeat(MAX_LEN)));
        assert!(!is_plausible(&"x".repeat(MAX_LEN + 1)));
    }

    #[test]
    fn the_bundled_list_is_loaded() {
        assert!(COMMON_PASSWORDS.len() > 8000);
        assert!(COMMON_PASSWORDS
            .iter()
            .all(|p| p.chars().count() >= MIN_LEN));
    }
}
