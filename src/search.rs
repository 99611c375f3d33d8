//! The search box's language, and what a hit shows. Pure.
//!
//! What people type is parsed here into a [`Query`] of plain words
//! (letters and digits, folded: lower case, no accents), and the store
//! builds its backend's query (FTS5 `MATCH`, PostgreSQL `tsquery`) from
//! those words only, each one quoted or bound: what was typed is never
//! the backend's syntax, so a stray `"`, `:`, `*` or `NEAR` is a word or
//! nothing, never an error or an injection.
//!
//! - words: every one must be found (in one document: a message, a
//!   comment, or how the ticket is known: contact, subject, keys);
//! - `"quoted words"`: a phrase, the words in that order;
//! - `-word`, `-"a phrase"`: documents with it are left out;
//! - a token of several words (`ana.munoz@correo.cl`, `75321_2`) is a
//!   phrase of its words, as both indexes split it;
//! - Spanish stop words ("el", "de", "mi") are dropped outside phrases
//!   (PostgreSQL's Spanish configuration drops them; SQLite would demand
//!   them);
//! - a query that is only a number may be the ticket's.
//!
//! [`excerpt`] cuts the few words around the first match out of the
//! matched text, with the matched words marked: segments of text, never
//! markup, which the page escapes and highlights itself.

use crate::rules::fold_text;
use crate::ticket::TicketRow;

/// Most parts (words, phrases, exclusions) a query keeps; the rest of a
/// long paste is ignored.
const MAX_PARTS: usize = 16;
/// Longest word kept (in characters): longer ones are cut.
const MAX_WORD: usize = 64;

/// Spanish words too common to tell tickets apart.
const STOP_WORDS: &[&str] = &[
    "a", "al", "con", "de", "del", "el", "en", "es", "la", "las", "le", "lo", "los", "me", "mi",
    "mis", "no", "o", "para", "por", "que", "se", "su", "sus", "un", "una", "y",
];

/// A search, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// What a document must hold, each part.
    pub parts: Vec<Part>,
    /// What it must not.
    pub excluded: Vec<Part>,
    /// The whole query was a number: also the ticket with that number.
    pub number: Option<i64>,
}

/// Words that must be found together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Folded words, each of letters and digits only, never empty.
    pub words: Vec<String>,
    /// Typed between quotes: the words as written, no stemming.
    pub quoted: bool,
}

impl Part {
    /// One word typed as it is: matched by its stem where the backend
    /// stems, by [`stem_prefix`] on SQLite.
    pub fn is_word(&self) -> bool {
        !self.quoted && self.words.len() == 1
    }
}

impl Query {
    /// Parses what was typed; never fails (anything that is not a word is
    /// a separator).
    pub fn parse(text: &str) -> Query {
        let mut query = Query {
            number: text.trim().parse::<i64>().ok().filter(|n| *n > 0),
            ..Query::default()
        };
        let mut rest = text;
        while query.parts.len() + query.excluded.len() < MAX_PARTS {
            rest = rest.trim_start();
            let Some(first) = rest.chars().next() else {
                break;
            };
            let excluded = first == '-' && rest.len() > 1;
            if excluded {
                rest = &rest[1..];
            }
            let (token, quoted, after) = match rest.strip_prefix('"') {
                Some(inner) => match inner.find('"') {
                    Some(end) => (&inner[..end], true, &inner[end + 1..]),
                    None => (inner, true, ""),
                },
                None => {
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    (&rest[..end], false, &rest[end..])
                }
            };
            rest = after;
            // An order and its copy ("75321_2", seed 000's suffix) is the
            // order: both find the same ticket.
            let token = match token.split_once('_') {
                Some((order, _)) if !quoted && is_key_copy(token) => order,
                _ => token,
            };
            let words = words_of(token);
            if words.is_empty() {
                continue;
            }
            let part = Part { words, quoted };
            if excluded {
                query.excluded.push(part);
            } else {
                query.parts.push(part);
            }
        }
        let stop = |p: &Part| p.is_word() && STOP_WORDS.contains(&p.words[0].as_str());
        if query.parts.iter().any(|p| !stop(p)) {
            query.parts.retain(|p| !stop(p));
        }
        query
    }

    /// Nothing to look for (only exclusions, or no word at all).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty() && self.number.is_none()
    }

    /// Every folded word looked for, for highlighting.
    fn wanted(&self) -> Vec<String> {
        self.parts
            .iter()
            .flat_map(|p| {
                p.words
                    .iter()
                    .map(move |w| stem_prefix(w).filter(|_| p.is_word()).unwrap_or(w))
            })
            .map(str::to_string)
            .collect()
    }
}

/// `75321_2`: digits, then `_digits` once or more.
fn is_key_copy(token: &str) -> bool {
    token.contains('_')
        && token
            .split('_')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The folded words of a token: runs of letters and digits.
fn words_of(token: &str) -> Vec<String> {
    fold_text(token)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD).collect())
        .collect()
}

/// The plural and gender endings [`word_forms`] puts back on a stem.
const ENDINGS: &[&str] = &["", "a", "e", "o", "s", "as", "es", "os"];

/// SQLite's stand-in for stemming: the forms a folded word is looked for
/// by, its stem ([`stem_prefix`]) with each plural and gender ending
/// ("observados" → observad, observada, observado, observadas ...), or
/// the word alone (short words: "sol" must not find "soles"). Exact
/// words, not a prefix: FTS5 merges every word of a prefix before
/// handing out the first match (60 ms for "notari*" at 1,000,000
/// messages), and a prefix found words that are not forms of the word
/// ("casas" → "cas*" → "castillo"). Digits are never passed here: they
/// stay a prefix ("7532" finds the order 75321).
pub fn word_forms(word: &str) -> Vec<String> {
    match stem_prefix(word) {
        Some(stem) => ENDINGS.iter().map(|e| format!("{stem}{e}")).collect(),
        None => vec![word.to_string()],
    }
}

/// A folded word's Spanish stem, plural and gender endings off
/// ("observados" → "observad"), or `None` when the word is too short to
/// have one ("sol"); digits as they are. [`word_forms`] builds on it, and
/// the excerpt marks the words starting with it.
pub fn stem_prefix(word: &str) -> Option<&str> {
    if word.chars().all(|c| c.is_ascii_digit()) {
        return Some(word);
    }
    if word.chars().count() < 5 {
        return None;
    }
    let mut stem = word.strip_suffix('s').unwrap_or(word);
    stem = stem.strip_suffix(['a', 'e', 'o']).unwrap_or(stem);
    Some(stem)
}

/// Where a ticket matched a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Its number.
    Number,
    /// Its keys (order number, internal id).
    Keys,
    /// The addresses and names of its requester and participants.
    Contact,
    /// Its subject.
    Subject,
    /// A mail from the customer (or anyone writing in).
    Incoming,
    /// An agent's reply or update.
    Reply,
    /// An internal comment.
    Comment,
}

impl Place {
    /// The canonical name (JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Number => "number",
            Place::Keys => "keys",
            Place::Contact => "contact",
            Place::Subject => "subject",
            Place::Incoming => "incoming",
            Place::Reply => "reply",
            Place::Comment => "comment",
        }
    }

    /// What people read.
    pub fn label(self) -> &'static str {
        match self {
            Place::Number => "número de ticket",
            Place::Keys => "claves",
            Place::Contact => "contacto",
            Place::Subject => "asunto",
            Place::Incoming => "correo recibido",
            Place::Reply => "respuesta de un agente",
            Place::Comment => "comentario interno",
        }
    }
}

/// A piece of an excerpt: text as written, and whether it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub hit: bool,
}

/// A few words of the matched text around the first match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excerpt {
    /// Text was left out before the first segment.
    pub cut_before: bool,
    pub segments: Vec<Segment>,
    /// Text was left out after the last segment.
    pub cut_after: bool,
}

impl Excerpt {
    /// Whether a searched word is in it.
    pub fn has_hit(&self) -> bool {
        self.segments.iter().any(|s| s.hit)
    }

    /// As plain text, with `…` where text was left out.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.cut_before {
            out.push('…');
        }
        for s in &self.segments {
            out.push_str(&s.text);
        }
        if self.cut_after {
            out.push('…');
        }
        out
    }

    /// The words that matched, as written.
    pub fn hits(&self) -> Vec<String> {
        self.segments
            .iter()
            .filter(|s| s.hit)
            .map(|s| s.text.clone())
            .collect()
    }
}

/// One ticket found, with where it matched and the words around.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub ticket: TicketRow,
    pub place: Place,
    pub excerpt: Excerpt,
}

/// Words shown before the first match.
const WORDS_BEFORE: usize = 5;
/// Words an excerpt shows.
const WORDS_SHOWN: usize = 18;

/// The words of `text` around the first word a search looked for (a
/// folded word starting with a wanted word or stem), those marked; the
/// start of the text, unmarked, when none is there (PostgreSQL's stemmer
/// may match what this simple test does not).
pub fn excerpt(text: &str, query: &Query) -> Excerpt {
    let wanted = query.wanted();
    // (start, end) of each word, in bytes.
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    let is_hit = |&(s, e): &(usize, usize)| {
        let folded = fold_text(&text[s..e]);
        wanted.iter().any(|w| folded.starts_with(w.as_str()))
    };
    let first = words.iter().position(is_hit);
    let from = first.map_or(0, |f| f.saturating_sub(WORDS_BEFORE));
    let to = (from + WORDS_SHOWN).min(words.len());
    let mut excerpt = Excerpt {
        cut_before: from > 0,
        segments: Vec::new(),
        cut_after: to < words.len(),
    };
    let mut push = |s: &str, hit: bool| {
        let s = if hit { s.to_string() } else { spaced(s) };
        match excerpt.segments.last_mut() {
            Some(last) if last.hit == hit && !hit => last.text.push_str(&s),
            _ if s.is_empty() => {}
            _ => excerpt.segments.push(Segment { text: s, hit }),
        }
    };
    for (i, w) in words[from..to].iter().enumerate() {
        if i > 0 {
            push(&text[words[from + i - 1].1..w.0], false);
        }
        push(&text[w.0..w.1], is_hit(w));
    }
    excerpt
}

/// Text between words on one line: runs of white space and control
/// characters become one space.
fn spaced(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            if !blank {
                out.push(' ');
            }
            blank = true;
        } else {
            out.push(c);
            blank = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(parts: &[Part]) -> Vec<Vec<&str>> {
        parts
            .iter()
            .map(|p| p.words.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn words_phrases_and_exclusions() {
        let q = Query::parse(r#"Notaría "documento observado" -rechazado mi pedido"#);
        assert_eq!(
            words(&q.parts),
            vec![
                vec!["notaria"],
                vec!["documento", "observado"],
                vec!["pedido"]
            ]
        );
        assert!(q.parts[1].quoted && !q.parts[0].quoted);
        assert_eq!(words(&q.excluded), vec![vec!["rechazado"]]);
        assert_eq!(q.number, None);
    }

    #[test]
    fn an_address_and_a_key_are_phrases_of_their_words() {
        let q = Query::parse("Ana.Muñoz@Correo.cl 75321_2 \"75321_2\" a_1");
        assert_eq!(
            words(&q.parts),
            vec![
                vec!["ana", "munoz", "correo", "cl"],
                vec!["75321"],
                vec!["75321", "2"],
                vec!["a", "1"]
            ]
        );
        assert_eq!(Query::parse(" 75321 ").number, Some(75321));
    }

    #[test]
    fn syntax_of_the_backends_is_only_words() {
        for text in [
            r#"""#,
            r#"a" OR "b"#,
            "NEAR(x y)",
            "body:secreto",
            "*",
            "x & !y | z:*",
            "-",
            "--",
            "\"",
        ] {
            let q = Query::parse(text);
            for p in q.parts.iter().chain(&q.excluded) {
                assert!(!p.words.is_empty());
                for w in &p.words {
                    assert!(
                        !w.is_empty() && w.chars().all(char::is_alphanumeric),
                        "{text}: {w}"
                    );
                }
            }
        }
        assert!(Query::parse("-solo").is_empty());
        assert!(Query::parse("  ").is_empty());
        // Only stop words: kept, or nothing would be searched.
        assert_eq!(
            words(&Query::parse("de la").parts),
            vec![vec!["de"], vec!["la"]]
        );
    }

    #[test]
    fn the_stem_prefix_drops_plural_and_gender() {
        assert_eq!(stem_prefix("observados"), Some("observad"));
        assert_eq!(stem_prefix("observado"), Some("observad"));
        assert_eq!(stem_prefix("notarias"), Some("notari"));
        assert_eq!(stem_prefix("sol"), None);
        assert_eq!(stem_prefix("7532"), Some("7532"));
    }

    #[test]
    fn a_word_is_looked_for_by_its_plural_and_gender_forms() {
        let forms = word_forms("observados");
        for form in ["observado", "observada", "observados", "observadas"] {
            assert!(forms.contains(&form.to_string()), "{form}: {forms:?}");
        }
        assert!(!forms.contains(&"observadora".to_string()), "{forms:?}");
        assert!(word_forms("casas").iter().all(|f| f.len() <= 5));
        assert_eq!(word_forms("sol"), vec!["sol"]);
        assert!(word_forms("notificaciones").contains(&"notificacion".to_string()));
    }

    #[test]
    fn an_excerpt_marks_the_words_around_the_first_match() {
        let text = "Estimados:\n\nles escribo porque el documento fue observado por la Notaría \
                    de Santiago y necesito corregirlo antes del viernes, gracias de antemano";
        let e = excerpt(text, &Query::parse("notaria observados"));
        assert_eq!(e.hits(), vec!["observado", "Notaría"]);
        assert!(e.cut_before && e.cut_after);
        assert!(
            e.text()
                .starts_with("…escribo porque el documento fue observado"),
            "{}",
            e.text()
        );
        assert!(!e.text().contains('\n'));
        let none = excerpt("Hola", &Query::parse("factura"));
        assert!(!none.has_hit());
        assert_eq!(none.text(), "Hola");
    }
}
