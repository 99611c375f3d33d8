//! Case and accent folding, so that "notaria" matches "Notaría".
//!
//! Spanish mail is written both with and without accents (phones, foreign
//! keyboards, hurried customers), so text matching ignores case and accents
//! unless a condition says otherwise. The fold is deliberately small and
//! predictable instead of full Unicode normalisation:
//!
//! - the accented Latin letters (á à â ä ã å, é è ê ë, í ì î ï, ó ò ô ö õ,
//!   ú ù û ü, ý ÿ, and their capitals) lose the accent;
//! - ñ becomes n and ç becomes c: customers writing "Nunez" or "senor" mean
//!   "Núñez" and "señor", and conflating "año" with "ano" never misroutes a
//!   ticket;
//! - combining accents (text written in decomposed form, as macOS sometimes
//!   sends it) are dropped;
//! - with case folding, every letter becomes lower case (one character for
//!   one character, so positions can be mapped back to the original).
//!
//! Everything else (º, °, ß, æ, other scripts) is left as it is.

use std::borrow::Cow;
use std::ops::Range;

/// Which form of a text a pattern is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// As written.
    Original,
    /// Lower case and without accents (the default for text conditions).
    Folded,
    /// Without accents, case kept (`ignore_case = false`).
    Unaccented,
}

impl Variant {
    pub fn index(self) -> usize {
        match self {
            Variant::Original => 0,
            Variant::Folded => 1,
            Variant::Unaccented => 2,
        }
    }

    /// The text form used for a condition's flags. Case-insensitive matching
    /// without accent folding uses the original text and a `(?i)` pattern.
    pub fn for_flags(ignore_case: bool, ignore_accents: bool) -> Variant {
        match (ignore_case, ignore_accents) {
            (true, true) => Variant::Folded,
            (false, true) => Variant::Unaccented,
            (_, false) => Variant::Original,
        }
    }
}

/// The letter without its accent, case kept; `None` when `c` has none.
fn unaccented(c: char) -> Option<char> {
    let base = match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
        'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => 'A',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'É' | 'È' | 'Ê' | 'Ë' => 'E',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
        'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'O',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'Ú' | 'Ù' | 'Û' | 'Ü' => 'U',
        'ý' | 'ÿ' => 'y',
        'Ý' | 'Ÿ' => 'Y',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ç' => 'c',
        'Ç' => 'C',
        _ => return None,
    };
    Some(base)
}

/// Combining diacritical marks (U+0300–U+036F): the accents of decomposed text.
fn is_combining_accent(c: char) -> bool {
    ('\u{300}'..='\u{36f}').contains(&c)
}

fn lower(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        // One character for one character: 'İ' lowers to "i̇"; keeping only
        // the first keeps positions mappable, and the dot is an accent anyway.
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// One character of `variant`; `None` means the character is dropped.
fn fold_char(c: char, variant: Variant) -> Option<char> {
    match variant {
        Variant::Original => Some(c),
        Variant::Unaccented if is_combining_accent(c) => None,
        Variant::Unaccented => Some(unaccented(c).unwrap_or(c)),
        Variant::Folded if is_combining_accent(c) => None,
        Variant::Folded => Some(lower(unaccented(c).unwrap_or(c))),
    }
}

/// `text` in the given form; borrowed when nothing changes.
pub fn fold(text: &str, variant: Variant) -> Cow<'_, str> {
    match variant {
        Variant::Original => Cow::Borrowed(text),
        _ if text.is_ascii() => match variant {
            Variant::Folded if text.bytes().any(|b| b.is_ascii_uppercase()) => {
                Cow::Owned(text.to_ascii_lowercase())
            }
            _ => Cow::Borrowed(text),
        },
        _ => Cow::Owned(fold_mixed(text, variant)),
    }
}

/// Folds text with non-ASCII characters: ASCII runs are copied in bulk
/// (most of a Spanish mail is ASCII), the rest goes character by character.
fn fold_mixed(text: &str, variant: Variant) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let ascii = rest
            .bytes()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(ascii);
        if variant == Variant::Folded {
            out.extend(run.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        } else {
            out.push_str(run);
        }
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.extend(fold_char(c, variant));
        }
        rest = chars.as_str();
    }
    out
}

/// Lower case without accents: the default comparison form.
pub fn fold_default(text: &str) -> Cow<'_, str> {
    fold(text, Variant::Folded)
}

/// Removes accents from a regex pattern, leaving case and syntax alone.
///
/// Escapes and class names are ASCII, so removing accents never changes the
/// meaning of the syntax; case is handled by the regex engine's own
/// case-insensitive flag, so `\D` stays `\D`.
pub fn unaccent_pattern(pattern: &str) -> Cow<'_, str> {
    fold(pattern, Variant::Unaccented)
}

/// Rewrites a regex written by an admin for matching against folded text
/// (lower case, no accents), so that no `(?i)` flag is needed: letters are
/// lowered, while escapes (`\D`, `\p{Lu}`), group names (`(?P<Order>`) and
/// flags (`(?U)`) are kept as written. With `ascii_boundaries`, `\b` and
/// `\B` become their ASCII forms: on unaccented text the two agree for
/// Spanish, and the ASCII form keeps the fast DFA engines usable on text
/// with symbols such as "°" or "¿" (a Unicode `\b` makes them give up).
///
/// Returns the pattern and whether it still needs `(?i)` (Unicode classes
/// such as `\p{Lu}` name a case, which lowering cannot fix).
pub fn lower_pattern(pattern: &str, ascii_boundaries: bool) -> (String, bool) {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut needs_case_flag = false;
    let mut chars = pattern.chars().peekable();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push(c);
                    break;
                };
                match n {
                    'b' | 'B' if ascii_boundaries && class_depth == 0 => {
                        out.push_str(if n == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
                    }
                    'p' | 'P' | 'x' | 'u' | 'U' => {
                        needs_case_flag |= matches!(n, 'p' | 'P');
                        out.push(c);
                        out.push(n);
                        if chars.peek() == Some(&'{') {
                            copy_through(&mut chars, &mut out, '}');
                        } else if matches!(n, 'p' | 'P') {
                            out.extend(chars.next());
                        }
                    }
                    _ => {
                        out.push(c);
                        out.push(n);
                    }
                }
            }
            '(' if class_depth == 0 && chars.peek() == Some(&'?') => {
                out.push(c);
                out.extend(chars.next());
                match chars.peek() {
                    Some('P') | Some('<') => copy_through(&mut chars, &mut out, '>'),
                    _ => copy_flags(&mut chars, &mut out),
                }
            }
            '[' => {
                class_depth += 1;
                out.push(c);
                // `[]` and `[^]` start with a literal `]`.
                if chars.peek() == Some(&'^') {
                    out.extend(chars.next());
                }
                if chars.peek() == Some(&']') {
                    out.extend(chars.next());
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(lower(c)),
        }
    }
    (out, needs_case_flag)
}

fn copy_through(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String, end: char) {
    for c in chars.by_ref() {
        out.push(c);
        if c == end {
            break;
        }
    }
}

/// Copies inline flags up to and including the `)` or `:` that ends them.
fn copy_flags(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    while let Some(&c) = chars.peek() {
        if !(c.is_ascii_alphabetic() || c == '-') {
            if c == ')' || c == ':' {
                out.extend(chars.next());
            }
            return;
        }
        out.extend(chars.next());
    }
}

/// Maps a byte range of `fold(original, variant)` back to `original`, so
/// captured keys keep the customer's spelling ("O-1532-2025", not "o-1532-2025").
pub fn original_range(original: &str, variant: Variant, folded: Range<usize>) -> Range<usize> {
    if variant == Variant::Original {
        return folded;
    }
    let mut start = None;
    let mut folded_pos = 0;
    for (i, c) in original.char_indices() {
        if start.is_none() && folded_pos >= folded.start {
            start = Some(i);
        }
        if folded_pos >= folded.end {
            return start.unwrap_or(i)..i;
        }
        if let Some(f) = fold_char(c, variant) {
            folded_pos += f.len_utf8();
        }
    }
    start.unwrap_or(original.len())..original.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_spanish_accents_and_case() {
        assert_eq!(fold_default("Notaría"), "notaria");
        assert_eq!(fold_default("NÚÑEZ Çedilla Ü"), "nunez cedilla u");
        assert_eq!(fold_default("Pedido N° 75321"), "pedido n° 75321");
        assert_eq!(fold("Notaría", Variant::Unaccented), "Notaria");
        assert_eq!(fold("Notaría", Variant::Original), "Notaría");
    }

    #[test]
    fn decomposed_accents_are_dropped() {
        // "Notaría" with a combining acute accent after the i.
        assert_eq!(fold_default("Notari\u{301}a"), "notaria");
    }

    #[test]
    fn ascii_without_capitals_is_borrowed() {
        assert!(matches!(fold_default("pedido 75321"), Cow::Borrowed(_)));
    }

    #[test]
    fn patterns_keep_escapes_and_case() {
        assert_eq!(
            unaccent_pattern(r"N[°º]\s*(?P<order>\D+)Ñ"),
            r"N[°º]\s*(?P<order>\D+)N"
        );
    }

    #[test]
    fn lowered_patterns_keep_escapes_names_and_flags() {
        let (p, i) = lower_pattern(r"Pedido\s+N[°º]\D(?P<Order>\d+)(?U:X)\bA", true);
        assert_eq!(p, r"pedido\s+n[°º]\D(?P<Order>\d+)(?U:x)(?-u:\b)a");
        assert!(!i);
        let (p, i) = lower_pattern(r"\p{Lu}[\b]\x{41}", true);
        assert_eq!(p, r"\p{Lu}[\b]\x{41}");
        assert!(i);
        let (p, _) = lower_pattern(r"[]A]\bX", false);
        assert_eq!(p, r"[]a]\bx");
        for pattern in [
            r"(?i)a",
            r"(?x) a # c",
            r"[^]x]",
            r"\\",
            "\\",
            r"(?P<n>a)|(?:B)",
        ] {
            let (p, _) = lower_pattern(pattern, true);
            assert_eq!(
                regex::Regex::new(pattern).is_ok(),
                regex::Regex::new(&p).is_ok(),
                "{pattern} → {p}"
            );
        }
    }

    #[test]
    fn ranges_map_back_to_the_original() {
        let original = "Rol Ó-1532 de Núñez";
        let folded = fold_default(original);
        let at = folded.find("o-1532").unwrap();
        let range = original_range(original, Variant::Folded, at..at + "o-1532".len());
        assert_eq!(&original[range], "Ó-1532");
        let at = folded.find("nunez").unwrap();
        let range = original_range(original, Variant::Folded, at..at + 5);
        assert_eq!(&original[range], "Núñez");
        let decomposed = "Mari\u{301}a Paz";
        let folded = fold_default(decomposed);
        let range = original_range(decomposed, Variant::Folded, 0..5);
        assert_eq!(&folded[..5], "maria");
        assert_eq!(&decomposed[range], "Mari\u{301}a");
    }
}
