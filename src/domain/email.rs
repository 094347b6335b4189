use std::fmt;

/// The longest address SMTP can carry (RFC 5321: 64 + 1 + 255, capped at 254 in practice).
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// A syntactically valid email address, trimmed and stored as given.
///
/// Uniqueness is case-insensitive: [`Email::normalized`] is the key the database indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value is not a valid email address: {0}")]
pub struct InvalidEmail(&'static str);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, InvalidEmail> {
        let email = raw.trim();
        if email.is_empty() {
            return Err(InvalidEmail("it is empty"));
        }
        if email.chars().count() > MAX_LEN {
            return Err(InvalidEmail("it is too long"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidEmail("it contains spaces or control characters"));
        }
        let (local, domain) = email
            .rsplit_once('@')
            .ok_or(InvalidEmail("an email address must have an @-sign"))?;
        if local.is_empty() || local.chars().count() > MAX_LOCAL_LEN {
            return Err(InvalidEmail(
                "the part before the @-sign is empty or too long",
            ));
        }
        if local.contains('@')
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(InvalidEmail("the part before the @-sign is not valid"));
        }
        if local.chars().any(|c| "\"(),:;<>[\\]".contains(c)) {
            return Err(InvalidEmail(
                "the part before the @-sign has characters that are not allowed",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(InvalidEmail("the domain name must contain a dot"));
        }
        for label in &labels {
            let valid = !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !valid {
                return Err(InvalidEmail("the domain name is not valid"));
            }
        }
        Ok(Email(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form under which the address is unique.
    pub fn normalized(&self) -> String {
        normalize(&self.0)
    }
}

/// Case-folds an address (valid or not) the way the unique index does, for look-ups.
pub fn normalize(raw: &str) -> String {
    raw.trim().to_lowercase()
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_trims() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "  Alice@Example.COM ",
            "user@xn--bcher-kva.example",
            "jürgen@müller.de",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "Alice@Example.COM"
        );
    }

    #[test]
    fn normalizes_case_for_uniqueness() {
        let email = Email::parse("Alice@Example.COM").unwrap();
        assert_eq!(email.normalized(), "alice@example.com");
        assert_eq!(normalize(" ALICE@example.com"), "alice@example.com");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "user@",
            "user@localhost",
            "user@exa mple.com",
            "user name@example.com",
            "user@@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@-example.com",
            "user@example..com",
            "user@example.com.",
            "a\"b@example.com",
            "user@exam_ple.com",
            "user\n@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(300));
        assert!(Email::parse(&long).is_err());
    }
}
