//! Second factors: which ones an account has, and how a login was proved (RFC 8176).

use serde::Serialize;
use utoipa::ToSchema;

/// A way to complete a login after the password, as `methods` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    Totp,
    RecoveryCode,
    Passkey,
}

/// The name a user gives a passkey: 1 to 64 characters, none of them a control or a
/// character that reorders or breaks a line; surrounding blanks are trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

/// Why a passkey name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPasskeyName {
    #[error("The name must have 1 to 64 characters")]
    Length,
    #[error("The name must not contain control characters")]
    Unprintable,
}

impl PasskeyName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<PasskeyName, InvalidPasskeyName> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > PasskeyName::MAX_CHARS {
            return Err(InvalidPasskeyName::Length);
        }
        if !matches!(super::printable(name), std::borrow::Cow::Borrowed(_)) {
            return Err(InvalidPasskeyName::Unprintable);
        }
        Ok(PasskeyName(name.to_owned()))
    }

    /// The name of a passkey registered without one.
    pub fn default_name() -> PasskeyName {
        PasskeyName("Passkey".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The methods a login was proved with: the `amr` claim. Small and `Copy`, as it rides on
/// every verified access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthMethods(u8);

impl AuthMethods {
    /// A password (`pwd`).
    pub const PASSWORD: AuthMethods = AuthMethods(1);
    /// A one-time code: an authenticator app's or a recovery code (`otp`).
    pub const ONE_TIME_CODE: AuthMethods = AuthMethods(2);
    /// Proof of possession of a key kept by an authenticator (`hwk`).
    pub const KEY: AuthMethods = AuthMethods(4);
    /// The authenticator verified its user, by PIN or biometrics (`user`).
    pub const USER_VERIFIED: AuthMethods = AuthMethods(8);

    const NAMES: [(AuthMethods, &'static str); 4] = [
        (AuthMethods::PASSWORD, "pwd"),
        (AuthMethods::ONE_TIME_CODE, "otp"),
        (AuthMethods::KEY, "hwk"),
        (AuthMethods::USER_VERIFIED, "user"),
    ];

    pub fn with(self, other: AuthMethods) -> AuthMethods {
        AuthMethods(self.0 | other.0)
    }

    pub fn contains(self, other: AuthMethods) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the login used more than one factor: a password and a code or key, or a key
    /// whose authenticator verified its user (a passkey is something you have and something
    /// you know or are).
    pub fn is_multi_factor(self) -> bool {
        let proofs = [
            self.contains(AuthMethods::PASSWORD),
            self.contains(AuthMethods::ONE_TIME_CODE),
            self.contains(AuthMethods::KEY),
            self.contains(AuthMethods::USER_VERIFIED),
        ];
        proofs.iter().filter(|&&proved| proved).count() >= 2
    }

    /// The `amr` values, `mfa` included when it applies.
    pub fn names(self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = AuthMethods::NAMES
            .iter()
            .filter(|(method, _)| self.contains(*method))
            .map(|(_, name)| *name)
            .collect();
        if self.is_multi_factor() {
            names.push("mfa");
        }
        names
    }

    /// Reads `amr` values back; unknown names (and `mfa`, which is derived) are ignored.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> AuthMethods {
        names.into_iter().fold(AuthMethods(0), |methods, name| {
            AuthMethods::NAMES
                .iter()
                .find(|(_, known)| *known == name)
                .map_or(methods, |(method, _)| methods.with(*method))
        })
    }

    /// The stored form: the names, space-separated.
    pub fn to_stored(self) -> String {
        self.names().join(" ")
    }

    pub fn from_stored(stored: &str) -> AuthMethods {
        AuthMethods::from_names(stored.split_whitespace())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_alone_is_one_factor() {
        assert_eq!(AuthMethods::PASSWORD.names(), ["pwd"]);
        assert!(!AuthMethods::PASSWORD.is_multi_factor());
    }

    #[test]
    fn a_password_and_a_code_are_two() {
        let methods = AuthMethods::PASSWORD.with(AuthMethods::ONE_TIME_CODE);
        assert_eq!(methods.names(), ["pwd", "otp", "mfa"]);
        assert_eq!(AuthMethods::from_stored(&methods.to_stored()), methods);
    }

    #[test]
    fn a_verified_passkey_is_two() {
        let methods = AuthMethods::KEY.with(AuthMethods::USER_VERIFIED);
        assert_eq!(methods.names(), ["hwk", "user", "mfa"]);
        assert!(!AuthMethods::KEY.is_multi_factor());
    }

    #[test]
    fn a_passkey_name_is_trimmed_printable_and_short() {
        assert_eq!(PasskeyName::parse("  Phone ").unwrap().as_str(), "Phone");
        assert_eq!(PasskeyName::parse(" "), Err(InvalidPasskeyName::Length));
        assert!(PasskeyName::parse(&"é".repeat(64)).is_ok());
        assert_eq!(
            PasskeyName::parse(&"a".repeat(65)),
            Err(InvalidPasskeyName::Length)
        );
        assert_eq!(
            PasskeyName::parse("a\nb"),
            Err(InvalidPasskeyName::Unprintable)
        );
        assert_eq!(
            PasskeyName::parse("a\u{202e}b"),
            Err(InvalidPasskeyName::Unprintable)
        );
    }

    #[test]
    fn unknown_names_are_ignored() {
        assert_eq!(
            AuthMethods::from_stored("pwd sms mfa"),
            AuthMethods::PASSWORD
        );
    }
}
