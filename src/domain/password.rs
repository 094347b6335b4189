use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;
/// Local parts shorter than this are too common to forbid as substrings ("jo", "me").
const MIN_LOCAL_PART_TO_CHECK: usize = 3;

/// Common passwords of 8 to 128 characters, lower-cased and sorted (from the list Django ships).
static COMMON_PASSWORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut list: Vec<&str> = include_str!("common_passwords.txt").lines().collect();
    list.sort_unstable();
    list
});

/// A new password that satisfies the policy. Never printed: `Debug` is redacted.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

/// Why a password was refused, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("Password should be at least {MIN_LEN} characters long.")]
    TooShort,
    #[error("Password should be at most {MAX_LEN} characters long.")]
    TooLong,
    #[error("This password is too common; choose one that is harder to guess.")]
    TooCommon,
    #[error("Password should not contain your email address.")]
    ContainsEmail,
    #[error(
        "Password should contain an upper-case letter, a lower-case letter, a digit and a \
         special character."
    )]
    MissingCharacterClasses,
}

/// The password rules in force (NIST 800-63B by default; composition rules are opt-in).
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    require_composition: bool,
}

impl PasswordPolicy {
    /// The policy, with or without the opt-in composition rules (`PASSWORD_REQUIRE_COMPOSITION`).
    pub fn new(require_composition: bool) -> PasswordPolicy {
        PasswordPolicy {
            require_composition,
        }
    }

    /// Checks `candidate` for the account whose address is `email`.
    pub fn parse(&self, candidate: &str, email: &str) -> Result<Password, PolicyViolation> {
        let length = candidate.chars().count();
        if length < MIN_LEN {
            return Err(PolicyViolation::TooShort);
        }
        if length > MAX_LEN {
            return Err(PolicyViolation::TooLong);
        }
        let lowered = candidate.to_lowercase();
        if COMMON_PASSWORDS.binary_search(&lowered.as_str()).is_ok() {
            return Err(PolicyViolation::TooCommon);
        }
        let local = email
            .rsplit_once('@')
            .map_or(email, |(local, _)| local)
            .to_lowercase();
        if local.chars().count() >= MIN_LOCAL_PART_TO_CHECK && lowered.contains(&local) {
            return Err(PolicyViolation::ContainsEmail);
        }
        if self.require_composition && !has_every_character_class(candidate) {
            return Err(PolicyViolation::MissingCharacterClasses);
        }
        Ok(Password(candidate.into()))
    }
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
        PasswordPolicy {
            require_composition: false,
        }
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
        let strict = PasswordPolicy {
            require_composition: true,
        };
        assert_eq!(
            strict
                .parse("correct horse battery staple", email())
                .unwrap_err(),
            PolicyViolation::MissingCharacterClasses
        );
        assert!(strict.parse("Kingh_a1234!x", email()).is_ok());
    }

    #[test]
    fn the_bundled_list_is_loaded() {
        assert!(COMMON_PASSWORDS.len() > 8000);
        assert!(COMMON_PASSWORDS
            .iter()
            .all(|p| p.chars().count() >= MIN_LEN));
    }
}
