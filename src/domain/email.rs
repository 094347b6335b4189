use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// The longest address SMTP can carry (RFC 5321: 64 + 1 + 255, capped at 254 in practice).
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// A syntactically valid email address, trimmed and stored as given.
///
/// Two addresses that a person would read as one are one account: [`Email::normalized`] is
/// the key the database indexes (compatibility-normalized, lower-cased, the domain in its
/// IDNA form), and [`Email::skeleton`] its UTS 39 confusable skeleton, indexed too, so a
/// look-alike spelled with letters of another script is refused as taken.
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
        if email.chars().any(is_invisible) {
            return Err(InvalidEmail(
                "it contains invisible or unassigned characters",
            ));
        }
        // An RFC 2047 encoded word (`=?charset?q?…?=`) would be decoded by mail clients into
        // something other than the address that was checked.
        if email.contains("=?") {
            return Err(InvalidEmail("it contains an encoded word (`=?`)"));
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
        let ascii_domain = idna::domain_to_ascii_strict(domain)
            .map_err(|_| InvalidEmail("the domain name is not valid"))?;
        if ascii_domain.split('.').count() < 2 {
            return Err(InvalidEmail("the domain name must contain a dot"));
        }
        Ok(Email(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which the address is unique: NFKC, lower case, and the domain as IDNA
    /// (UTS 46) gives it, so `ＡＬＩＣＥ@Exämple.com` and `alice@xn--exmple-cua.com` are one.
    pub fn normalized(&self) -> String {
        normalize(&self.0)
    }

    /// The UTS 39 confusable skeleton of [`Email::normalized`], also unique: `alicе@…` with a
    /// Cyrillic `е` has the skeleton of `alice@…`.
    ///
    /// Only characters outside ASCII are mapped to their prototypes: two distinct ASCII
    /// addresses (`bern@`, `bem@`; `jo1@`, `jol@`) are different mailboxes that mail servers
    /// tell apart, and neither may lock the other out; a letter borrowed from another script
    /// is what makes a look-alike.
    pub fn skeleton(&self) -> String {
        skeleton_of(&self.0)
    }
}

/// The unique key of an address (valid or not), for look-ups: what [`Email::normalized`]
/// gives for a valid one. A domain that IDNA refuses is only lower-cased.
pub fn normalize(raw: &str) -> String {
    let raw = raw.trim();
    match raw.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{}", fold(local), ascii_domain(domain)),
        None => fold(raw),
    }
}

/// What may be written down of an identifier someone typed that names no account: the first
/// character and the domain of an address (`a…@example.com`), or nothing of anything else,
/// since people type passwords into the email box.
pub fn mask(raw: &str) -> String {
    match Email::parse(raw) {
        Ok(email) => {
            let (local, domain) = email.0.rsplit_once('@').unwrap_or(("", ""));
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        Err(_) => "(not an address)".to_owned(),
    }
}

/// The confusable skeleton of an address (see [`Email::skeleton`]).
pub fn skeleton_of(raw: &str) -> String {
    let key = normalize(raw);
    let (local, domain) = key.rsplit_once('@').unwrap_or((&key, ""));
    let (unicode_domain, _) = idna::domain_to_unicode(domain);
    format!("{}@{}", skeleton(local), skeleton(&unicode_domain))
}

/// NFKC, lower case, NFKC again (lower-casing can leave a string that is not NFKC).
fn fold(text: &str) -> String {
    let lowered = text.nfkc().collect::<String>().to_lowercase();
    lowered.nfkc().collect()
}

fn ascii_domain(domain: &str) -> String {
    idna::domain_to_ascii(domain).unwrap_or_else(|_| fold(domain))
}

/// Maps every character outside ASCII to its UTS 39 prototype, in lower case.
fn skeleton(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            let prototype: String = unicode_security::skeleton(c.encode_utf8(&mut buf)).collect();
            out.push_str(&prototype.to_lowercase());
        }
    }
    out.nfc().collect()
}

/// Characters a reader cannot see or that mean nothing yet: default-ignorable code points
/// (zero-width spaces and joiners, soft hyphens, bidirectional controls, variation
/// selectors), private-use and unassigned-looking ones, and noncharacters.
fn is_invisible(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    let mut buf = [0u8; 4];
    // The UTS 39 skeleton drops exactly the default-ignorable code points.
    let default_ignorable = unicode_security::skeleton(c.encode_utf8(&mut buf))
        .next()
        .is_none();
    let code = u32::from(c);
    let private_use = matches!(code, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    let noncharacter = matches!(code, 0xFDD0..=0xFDEF) || code & 0xFFFE == 0xFFFE;
    default_ignorable || private_use || noncharacter || c == '\u{FFFD}'
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
            "ａｌｉｃｅ@example.com",
            "alicе@example.com",
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
    fn compatibility_forms_and_idna_domains_share_one_key() {
        let key = |raw: &str| Email::parse(raw).unwrap().normalized();
        assert_eq!(key("ａｌｉｃｅ@example.com"), "alice@example.com");
        assert_eq!(key("ALICE@ＥＸＡＭＰＬＥ．com"), "alice@example.com");
        assert_eq!(key("alice@exämple.com"), "alice@xn--exmple-cua.com");
        assert_eq!(key("alice@xn--exmple-cua.com"), "alice@xn--exmple-cua.com");
        assert_eq!(key("alice@EXÄMPLE.com"), "alice@xn--exmple-cua.com");
        // NFC and NFD spellings of one name are one address.
        assert_eq!(key("jürgen@example.com"), key("ju\u{308}rgen@example.com"));
        // What look-ups use for any input agrees with the key of a valid address.
        assert_eq!(
            normalize("ａｌｉｃｅ@exämple.com"),
            "alice@xn--exmple-cua.com"
        );
    }

    #[test]
    fn look_alikes_from_other_scripts_share_a_skeleton() {
        let skeleton = |raw: &str| Email::parse(raw).unwrap().skeleton();
        let alice = skeleton("alice@example.com");
        assert_eq!(alice, "alice@example.com");
        assert_eq!(skeleton("alicе@example.com"), alice, "Cyrillic е");
        assert_eq!(skeleton("аlice@example.com"), alice, "Cyrillic а");
        assert_eq!(skeleton("alice@ехample.com"), alice, "Cyrillic domain");
        assert_eq!(skeleton("ＡＬＩＣＥ@example.com"), alice, "fullwidth");
        assert_eq!(
            skeleton("b\u{3bf}b@example.com"),
            skeleton("b\u{43e}b@example.com"),
            "Greek and Cyrillic o"
        );
        assert_eq!(skeleton("b\u{3bf}b@example.com"), "bob@example.com");
        // Distinct ASCII addresses stay distinct.
        assert_ne!(skeleton("bern@example.com"), skeleton("bem@example.com"));
        assert_ne!(skeleton("jo1@example.com"), skeleton("jol@example.com"));
    }

    #[test]
    fn masks_keep_only_the_first_character_and_the_domain() {
        assert_eq!(mask(" Nobody@Example.com "), "N…@Example.com");
        assert_eq!(mask("correct horse battery staple"), "(not an address)");
        assert_eq!(mask("Tr0ub4dor&3"), "(not an address)");
        assert_eq!(mask("eve\r\n@example.com"), "(not an address)");
    }

    #[test]
    fn refuses_invisible_characters_and_encoded_words() {
        for bad in [
            "alice\u{200b}@example.com",
            "ali\u{200d}ce@example.com",
            "alice\u{00ad}@example.com",
            "\u{202e}alice@example.com",
            "alice\u{2060}@example.com",
            "alice\u{feff}@example.com",
            "alice\u{fe0f}@example.com",
            "alice@exa\u{200b}mple.com",
            "alice\u{e000}@example.com",
            "=?utf-8?q?x?=@example.com",
            "=?utf-8?b?YWxpY2U=?=@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
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
            "user\r@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(300));
        assert!(Email::parse(&long).is_err());
    }
}
