//! Regex syntax errors located in the rule file, down to the character.
//!
//! The `regex` crate reports a position inside the pattern; this maps it to
//! the file. In literal strings ('...', the recommended form) the mapping is
//! exact; in basic strings ("...") with escapes it points at the string and
//! names the character position inside the pattern instead.

use super::error::{RuleError, Source};
use super::syntax::At;

const HINT: &str = "write regexes in single quotes ('...') so backslashes need no doubling; syntax: https://docs.rs/regex/latest/regex/#syntax";

/// The problem with a pattern, if it does not parse.
pub fn check(src: &Source, pattern: &At<String>) -> Option<RuleError> {
    let error = regex_syntax::ParserBuilder::new()
        .build()
        .parse(&pattern.value)
        .err()?;
    let (offset, what) = match &error {
        regex_syntax::Error::Parse(e) => (e.span().start.offset, e.kind().to_string()),
        regex_syntax::Error::Translate(e) => (e.span().start.offset, e.kind().to_string()),
        other => (0, other.to_string()),
    };
    let (at, exact) = file_offset(src, pattern, offset);
    let message = if exact {
        format!("invalid regex: {what}")
    } else {
        let column = pattern
            .value
            .get(..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        format!("invalid regex: {what} (at character {column} of the pattern)")
    };
    Some(src.error(at, message).with_hint(HINT))
}

/// The byte offset in the file of byte `offset` of the pattern, and whether
/// it is exact.
fn file_offset(src: &Source, pattern: &At<String>, offset: usize) -> (usize, bool) {
    let raw = src.text.get(pattern.span.clone()).unwrap_or("");
    let start = pattern.span.start;
    if let Some(rest) = raw.strip_prefix("'''") {
        // TOML drops a newline right after the opening quotes.
        let skip = if rest.starts_with("\r\n") {
            2
        } else {
            usize::from(rest.starts_with('\n'))
        };
        return (start + 3 + skip + offset, true);
    }
    if raw.starts_with('\'') {
        return (start + 1 + offset, true);
    }
    let quotes = if raw.starts_with("\"\"\"") { 3 } else { 1 };
    let inner = raw
        .get(quotes..raw.len().saturating_sub(quotes))
        .unwrap_or("");
    if inner == pattern.value {
        return (start + quotes + offset, true);
    }
    (start, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, value: &str) -> (Source, At<String>) {
        let src = Source::new("r.toml", "r.toml", text.to_string());
        let start = text.find(['\'', '"']).unwrap();
        let end = text.trim_end().len();
        (src, At::new(value.to_string(), start..end))
    }

    #[test]
    fn literal_strings_map_exactly() {
        let (src, p) = at("regex = 'pedido (\\d+'\n", "pedido (\\d+");
        let e = check(&src, &p).unwrap();
        assert_eq!((e.line, e.column), (1, 17), "{e}");
        assert!(e.message.contains("unclosed group"), "{e}");
    }

    #[test]
    fn escaped_basic_strings_name_the_position() {
        let (src, p) = at("regex = \"a\\\\d[\"\n", "a\\d[");
        let e = check(&src, &p).unwrap();
        assert_eq!(e.column, 9, "{e}");
        assert!(e.message.contains("at character 4"), "{e}");
    }

    #[test]
    fn valid_patterns_pass() {
        let (src, p) = at("regex = '(?P<order>\\d{5})'\n", "(?P<order>\\d{5})");
        assert!(check(&src, &p).is_none());
    }
}
