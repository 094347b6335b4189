//! Where a page may send the browser after login: a path on this site, never another site.

use std::fmt;

/// A path on this site (`/account`, `/admin/users?q=x`), safe to put in a `Location` header.
///
/// Refuses anything a browser could read as another origin: a scheme (`https:`,
/// `javascript:`), a host (`//evil.example`), a backslash (`/\evil.example`, which browsers
/// treat as `//`), and control characters or spaces (browsers strip tabs and newlines, turning
/// `/\t/evil.example` into `//evil.example`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPath(String);

impl LocalPath {
    pub fn parse(raw: &str) -> Option<LocalPath> {
        let mut chars = raw.chars();
        let first_is_slash = chars.next() == Some('/');
        let second = chars.next();
        let local = first_is_slash
            && !matches!(second, Some('/' | '\\'))
            && raw.len() <= 2048
            && !raw
                .chars()
                .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
        local.then(|| LocalPath(raw.to_owned()))
    }

    /// Parses `raw`, falling back to `default` for anything missing or not local.
    pub fn parse_or(raw: Option<&str>, default: &str) -> LocalPath {
        raw.and_then(LocalPath::parse)
            .unwrap_or_else(|| LocalPath(default.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LocalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_accepted() {
        for path in [
            "/",
            "/account",
            "/admin/users?q=a%40b&page=2",
            "/a/b#c",
            "/%2F%2Fevil",
        ] {
            assert_eq!(LocalPath::parse(path).unwrap().as_str(), path);
        }
    }

    #[test]
    fn anything_that_could_leave_the_site_is_refused() {
        for hostile in [
            "",
            "account",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/a\\b",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            " /account",
            "/a b",
            "/\u{0}",
        ] {
            assert!(LocalPath::parse(hostile).is_none(), "accepted {hostile:?}");
        }
    }

    #[test]
    fn a_refused_path_falls_back_to_the_default() {
        assert_eq!(
            LocalPath::parse_or(Some("//evil.example"), "/account").as_str(),
            "/account"
        );
        assert_eq!(LocalPath::parse_or(None, "/account").as_str(), "/account");
    }
}
