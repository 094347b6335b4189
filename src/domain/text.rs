//! Text written where people read it line by line: the log and the audit trail.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every character that could break or disguise a line escaped: control
/// characters (`\r`, `\n`, escape sequences), the Unicode line and paragraph separators, and
/// the bidirectional controls that reorder what a reader sees. A carriage return typed into a
/// form cannot start a forged log line. Text with none of them is returned as it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{061c}' | '\u{200e}' | '\u{200f}' // bidi marks
                | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
                | '\u{2066}'..='\u{2069}' // bidi isolates
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_left_as_it_is() {
        assert!(matches!(
            printable("login failed for jürgen@example.com"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn line_breaks_and_controls_are_escaped() {
        assert_eq!(
            printable("eve\r\n[INFO gatehouse] forged"),
            "eve\\r\\n[INFO gatehouse] forged"
        );
        assert_eq!(printable("a\u{1b}[2Jb\u{0}"), "a\\u{1b}[2Jb\\u{0}");
        assert_eq!(printable("x\u{2028}y\u{202e}z"), "x\\u{2028}y\\u{202e}z");
        assert_eq!(printable("tab\there"), "tab\\there");
    }
}
