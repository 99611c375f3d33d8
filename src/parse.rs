//! Raw bytes → [`ParsedMail`]: the one place that reads MIME.
//!
//! Pure and total: every input either yields a `ParsedMail` (possibly with
//! warnings) or a [`ParseError`] that says why it cannot be ticketed. It never
//! panics; a panic inside the MIME library is caught and becomes an error, so
//! one hostile mail cannot take the daemon down.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

/// Why a mail could not be parsed into something we can ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty input: no bytes to parse")]
    Empty,
    #[error("not an email: no RFC 5322 header field found in the first bytes")]
    NoHeaders,
    #[error(
        "message of {size} bytes exceeds the limit of {limit} bytes (limits.max_message_bytes)"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("text part {part} declares unknown charset '{charset}' and is not valid UTF-8")]
    UnknownCharset { part: usize, charset: String },
    #[error("the MIME parser failed unexpectedly: {0}")]
    Panicked(String),
}

/// A name and address as written in From/To/Cc.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailAddress {
    /// Lower-cased address (`ana@cliente.example`).
    pub address: String,
    /// Display name if given (`Ana Pérez`).
    pub name: Option<String>,
}

impl MailAddress {
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    pub fn local_part(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(l, _)| l)
            .unwrap_or(&self.address)
    }
}

/// One attachment with its decoded content.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
    #[serde(skip)]
    pub content: Vec<u8>,
}

/// Everything later stages need from a mail, owned and decoded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParsedMail {
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<MailAddress>,
    pub reply_to: Option<MailAddress>,
    pub to: Vec<MailAddress>,
    pub cc: Vec<MailAddress>,
    /// Decoded subject ("" when absent).
    pub subject: String,
    /// Date header as Unix seconds, if it parsed.
    pub date: Option<i64>,
    /// Decoded plain text of the body; HTML-only mail is converted to text.
    pub text: String,
    /// Every header as (name, raw value, trimmed), in order.
    pub headers: Vec<(String, String)>,
    /// Top-level MIME type, lower-case (`multipart/report`).
    pub content_type: String,
    /// `report-type` parameter of a top-level multipart/report.
    pub report_type: Option<String>,
    /// MIME types of every part, lower-case (classification looks for
    /// `message/delivery-status` anywhere in the tree).
    pub part_types: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// Problems that did not stop parsing (kept on the stored message).
    pub warnings: Vec<String>,
    /// Hex SHA-256 of the raw bytes (dedupe key when there is no Message-ID).
    pub raw_sha256: String,
    pub size: usize,
}

impl ParsedMail {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The key that makes two copies of a mail the same message.
    pub fn dedupe_key(&self) -> String {
        match &self.message_id {
            Some(id) if !id.is_empty() => format!("mid:{id}"),
            _ => format!("sha256:{}", self.raw_sha256),
        }
    }
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Parses a raw mail. `limit` is the size above which it is refused.
pub fn parse(raw: &[u8], limit: usize) -> Result<ParsedMail, ParseError> {
    if raw.is_empty() {
        return Err(ParseError::Empty);
    }
    if raw.len() > limit {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            limit,
        });
    }
    if !starts_with_header(raw) {
        return Err(ParseError::NoHeaders);
    }
    // Some producers put blank (or all-space) lines before the headers; the
    // MIME parser would then see an empty header block. The stored raw
    // bytes stay untouched; only parsing starts at the first header line.
    let raw = skip_leading_blank_lines(raw);
    catch_unwind(AssertUnwindSafe(|| parse_inner(raw))).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(ParseError::Panicked(what))
    })
}

fn skip_leading_blank_lines(raw: &[u8]) -> &[u8] {
    let mut start = 0;
    while let Some(nl) = raw[start..].iter().position(|b| *b == b'\n') {
        let line = &raw[start..start + nl];
        if !line.iter().all(|b| b.is_ascii_whitespace()) {
            break;
        }
        start += nl + 1;
    }
    &raw[start..]
}

/// A mail starts with a header field (`Name: value`) or an mbox `From `
/// line; binary garbage and plain text files do not.
fn starts_with_header(raw: &[u8]) -> bool {
    let head = &raw[..raw.len().min(4096)];
    let first = head
        .split(|b| *b == b'\n')
        .find(|line| !line.iter().all(|b| b.is_ascii_whitespace()));
    let Some(line) = first else {
        return false;
    };
    if line.starts_with(b"From ") {
        return true;
    }
    match line.iter().position(|b| *b == b':') {
        Some(colon) if colon > 0 => line[..colon]
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b':'),
        _ => false,
    }
}

fn parse_inner(raw: &[u8]) -> Result<ParsedMail, ParseError> {
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::NoHeaders)?;
    if msg.headers().is_empty() {
        return Err(ParseError::NoHeaders);
    }
    let mut warnings = Vec::new();
    check_charsets(&msg, &mut warnings)?;
    let root_ct = msg.root_part().content_type();
    let content_type = root_ct
        .map(|ct| mime_string(ct.ctype(), ct.subtype()))
        .unwrap_or_else(|| "text/plain".into());
    let report_type = root_ct
        .and_then(|ct| ct.attribute("report-type"))
        .map(|s| s.to_ascii_lowercase());
    Ok(ParsedMail {
        message_id: msg.message_id().map(clean_id).filter(|s| !s.is_empty()),
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        from: first_address(msg.from()),
        reply_to: first_address(msg.reply_to()),
        to: all_addresses(msg.to()),
        cc: all_addresses(msg.cc()),
        subject: subject(&msg),
        date: msg.date().map(|d| d.to_timestamp()),
        text: body_text(&msg),
        headers: msg
            .headers_raw()
            .map(|(n, v)| (n.to_string(), collapse_ws(v)))
            .collect(),
        content_type,
        report_type,
        part_types: msg
            .parts
            .iter()
            .map(|p| {
                p.content_type()
                    .map(|ct| mime_string(ct.ctype(), ct.subtype()))
                    .unwrap_or_else(|| "text/plain".into())
            })
            .collect(),
        attachments: attachments(&msg),
        warnings,
        raw_sha256: sha256_hex(raw),
        size: raw.len(),
    })
}

/// An unknown charset is harmless when the bytes are UTF-8 anyway (we decode
/// them as such); otherwise the text would be mojibake, so it is refused and
/// the mail is quarantined for a person to look at.
fn check_charsets(msg: &Message<'_>, warnings: &mut Vec<String>) -> Result<(), ParseError> {
    for (i, part) in msg.parts.iter().enumerate() {
        if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
            continue;
        }
        let Some(charset) = part.content_type().and_then(|ct| ct.attribute("charset")) else {
            continue;
        };
        if charset_decoder(charset.as_bytes()).is_some() || is_utf8_label(charset) {
            continue;
        }
        // mail-parser decodes unknown charsets as lossy UTF-8: replacement
        // characters mean the bytes were not UTF-8 and the text is garbled.
        let garbled = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.contains('\u{FFFD}'),
            _ => false,
        };
        if !garbled {
            warnings.push(format!(
                "part {i}: unknown charset '{charset}', decoded as UTF-8"
            ));
        } else {
            return Err(ParseError::UnknownCharset {
                part: i,
                charset: charset.to_string(),
            });
        }
    }
    Ok(())
}

/// The decoded subject. A subject written as raw 8-bit bytes (no RFC 2047
/// encoding) in a legacy charset comes out of the parser with replacement
/// characters; such mailers use the same charset as the body, so decode the
/// raw bytes with that.
fn subject(msg: &Message<'_>) -> String {
    let decoded = msg.subject().map(collapse_ws).unwrap_or_default();
    if !decoded.contains('\u{FFFD}') {
        return decoded;
    }
    let raw_value = msg
        .headers()
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case("subject"))
        .and_then(|h| {
            msg.raw_message()
                .get(h.offset_start as usize..h.offset_end as usize)
        });
    let decoder = msg
        .parts
        .iter()
        .filter_map(|p| p.content_type().and_then(|ct| ct.attribute("charset")))
        .find_map(|c| charset_decoder(c.as_bytes()));
    match (raw_value, decoder) {
        (Some(bytes), Some(decode)) if std::str::from_utf8(bytes).is_err() => {
            let repaired = collapse_ws(&decode(bytes));
            if repaired.contains('\u{FFFD}') {
                decoded
            } else {
                repaired
            }
        }
        _ => decoded,
    }
}

fn is_utf8_label(charset: &str) -> bool {
    matches!(
        charset.to_ascii_lowercase().as_str(),
        "utf-8" | "utf8" | "us-ascii" | "ascii"
    )
}

fn mime_string(ctype: &str, subtype: Option<&str>) -> String {
    match subtype {
        Some(sub) => format!("{}/{}", ctype, sub).to_ascii_lowercase(),
        None => ctype.to_ascii_lowercase(),
    }
}

fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

fn to_mail_address(addr: &mail_parser::Addr<'_>) -> Option<MailAddress> {
    let address = addr.address()?.trim().to_lowercase();
    if address.is_empty() {
        return None;
    }
    Some(MailAddress {
        address,
        name: addr.name().map(collapse_ws).filter(|n| !n.is_empty()),
    })
}

fn first_address(addr: Option<&Address<'_>>) -> Option<MailAddress> {
    addr?.iter().find_map(to_mail_address)
}

fn all_addresses(addr: Option<&Address<'_>>) -> Vec<MailAddress> {
    addr.map(|a| a.iter().filter_map(to_mail_address).collect())
        .unwrap_or_default()
}

/// All text bodies joined; mail-parser turns HTML-only bodies into text.
fn body_text(msg: &Message<'_>) -> String {
    let mut out = String::new();
    for i in 0..msg.text_body_count().max(1) {
        if let Some(text) = msg.body_text(i) {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(text.trim_end());
        }
    }
    tidy_text(&out)
}

/// Trims trailing blanks per line and collapses runs of blank lines, which
/// HTML conversion leaves in abundance.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.trim_end().replace('\u{a0}', " ");
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.trim().to_string()
}

fn attachments(msg: &Message<'_>) -> Vec<Attachment> {
    msg.attachments()
        .enumerate()
        .map(|(i, part)| {
            let content: Cow<'_, [u8]> = match &part.body {
                PartType::Message(inner) => Cow::Borrowed(inner.raw_message()),
                _ => Cow::Borrowed(part.contents()),
            };
            let content_type = part
                .content_type()
                .map(|ct| mime_string(ct.ctype(), ct.subtype()))
                .unwrap_or_else(|| "application/octet-stream".into());
            let name = part
                .attachment_name()
                .map(collapse_ws)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("adjunto-{}", i + 1));
            Attachment {
                name,
                content_type,
                size: content.len(),
                sha256: sha256_hex(&content),
                content: content.into_owned(),
            }
        })
        .collect()
}

/// Collapses every run of whitespace to one space (folded headers, and the
/// spacing that encoded-words leave behind).
pub fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    #[test]
    fn parses_basic_fields() {
        let raw = b"From: Ana P\xc3\xa9rez <ANA@Cliente.example>\r\nTo: soporte@tp.example\r\nSubject: =?UTF-8?Q?Pedido_N=C2=B0_75321?=\r\nMessage-ID: <abc@cliente.example>\r\nIn-Reply-To: <x@tp.example>\r\n\r\nHola, necesito ayuda.\r\n";
        let m = parse(raw, LIMIT).unwrap();
        assert_eq!(m.subject, "Pedido N° 75321");
        assert_eq!(m.message_id.as_deref(), Some("abc@cliente.example"));
        assert_eq!(m.in_reply_to, vec!["x@tp.example".to_string()]);
        let from = m.from.clone().unwrap();
        assert_eq!(from.address, "ana@cliente.example");
        assert_eq!(from.domain(), "cliente.example");
        assert_eq!(m.text, "Hola, necesito ayuda.");
        assert_eq!(m.dedupe_key(), "mid:abc@cliente.example");
    }

    #[test]
    fn refuses_empty_garbage_and_oversize() {
        assert_eq!(parse(b"", LIMIT).unwrap_err(), ParseError::Empty);
        assert_eq!(
            parse(b"\x00\x01\x02binary\xff\xfe", LIMIT).unwrap_err(),
            ParseError::NoHeaders
        );
        assert_eq!(
            parse(b"just some text\nwithout headers\n", LIMIT).unwrap_err(),
            ParseError::NoHeaders
        );
        let big = vec![b'a'; 2048];
        assert!(matches!(
            parse(&big, 1024).unwrap_err(),
            ParseError::TooLarge { size: 2048, .. }
        ));
    }

    #[test]
    fn mail_without_message_id_dedupes_by_hash() {
        let m = parse(b"Subject: hola\n\ncuerpo\n", LIMIT).unwrap();
        assert!(m.message_id.is_none());
        assert!(m.dedupe_key().starts_with("sha256:"));
    }

    #[test]
    fn unknown_charset_with_8bit_bytes_is_refused() {
        let raw = b"Subject: x\nContent-Type: text/plain; charset=x-klingon\nContent-Transfer-Encoding: 8bit\n\ncaf\xe9 \xff\xfe\n";
        assert!(matches!(
            parse(raw, LIMIT).unwrap_err(),
            ParseError::UnknownCharset { .. }
        ));
        let ascii = b"Subject: x\nContent-Type: text/plain; charset=x-klingon\n\nplain ascii\n";
        let m = parse(ascii, LIMIT).unwrap();
        assert_eq!(m.warnings.len(), 1);
        assert_eq!(m.text, "plain ascii");
    }

    #[test]
    fn html_only_becomes_text() {
        let raw = b"Subject: x\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>Hola <b>mundo</b></p><p>Segunda l\xc3\xadnea</p></body></html>\n";
        let m = parse(raw, LIMIT).unwrap();
        assert!(m.text.contains("Hola mundo"), "{}", m.text);
        assert!(m.text.contains("Segunda línea"), "{}", m.text);
        assert!(!m.text.contains('<'));
    }
}
