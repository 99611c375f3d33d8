//! The new text of a reply: the body without the quoted earlier messages.
//!
//! A customer's answer usually carries our own notification below it
//! ("> Puede anular el pedido y volver a subirlo..."), and rules about what
//! the customer decided must not match our words. Mail clients mark the
//! history in a few well-known ways; everything from the first of these on
//! is history, and `>` lines anywhere are quotes:
//!
//! - an attribution line ending in "escribió:" / "wrote:" (Gmail, Apple,
//!   Thunderbird: "El lun, 13 oct 2025 a las 9:02, Tu Patrimonio escribió:");
//! - an Outlook header block: "De:" / "From:" followed within three lines by
//!   "Enviado el:", "Enviado:", "Sent:", "Fecha:" or "Date:";
//! - "-----Mensaje original-----", "-----Original Message-----", or a line
//!   of underscores (Outlook on the web).
//!
//! A body without any of these is returned whole. Pure and total.

use std::borrow::Cow;

// Checked on every line of every mail: compare without allocating.
fn ends_with_ci(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text
            .get(text.len() - suffix.len()..)
            .is_some_and(|end| end.to_lowercase() == suffix)
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

fn is_attribution(line: &str) -> bool {
    let l = line.trim_end();
    l.ends_with(':')
        && (ends_with_ci(l, "escribió:")
            || ends_with_ci(l, "escribio:")
            || ends_with_ci(l, "wrote:"))
}

fn is_separator(line: &str) -> bool {
    let l = line.trim();
    if l.starts_with("-----") {
        let lower = l.to_lowercase();
        return lower.contains("mensaje original") || lower.contains("original message");
    }
    l.len() >= 10 && l.bytes().all(|b| b == b'_')
}

fn starts_with_word(line: &str, words: &[&str]) -> bool {
    let l = line.trim_start();
    words.iter().any(|w| starts_with_ci(l, w))
}

/// "De: ..." followed closely by "Enviado el: ..." (or the English form).
fn is_outlook_header(lines: &[&str], i: usize) -> bool {
    let Some(first) = lines.get(i) else {
        return false;
    };
    if !starts_with_word(first, &["de:", "from:"]) {
        return false;
    }
    lines
        .iter()
        .skip(i + 1)
        .take(3)
        .any(|l| starts_with_word(l, &["enviado el:", "enviado:", "sent:", "fecha:", "date:"]))
}

/// The body up to the quoted history, without `>` lines.
pub fn new_text(body: &str) -> Cow<'_, str> {
    let lines: Vec<&str> = body.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines
                .get(i)
                .is_some_and(|l| is_attribution(l) || is_separator(l))
                || is_outlook_header(&lines, i)
        })
        .unwrap_or(lines.len());
    let quoted = |l: &&&str| l.trim_start().starts_with('>');
    let kept = lines.get(..end).unwrap_or(&lines);
    if end == lines.len() && !kept.iter().any(|l| quoted(&l)) {
        return Cow::Borrowed(body);
    }
    let text: Vec<&str> = kept.iter().filter(|l| !quoted(l)).copied().collect();
    Cow::Owned(text.join("\n").trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_attribution_ends_the_new_text() {
        let body = "Prefiero esperar.\n\nSaludos\n\nEl lun, 13 oct 2025 a las 9:02, Tu Patrimonio (<soporte@tupatrimonio.example>) escribió:\n\n> Puede anular el pedido y volver a subirlo.\n";
        assert_eq!(new_text(body), "Prefiero esperar.\n\nSaludos");
    }

    #[test]
    fn outlook_header_block_ends_the_new_text() {
        let body = "Adjunto los documentos.\n\nDe: TuProcurador <clientes@tuprocurador.example>\nEnviado el: miércoles, 15 de octubre de 2025 10:02\nPara: Francisca\nAsunto: Solicitud de documentos\n\nLe solicitamos...";
        assert_eq!(new_text(body), "Adjunto los documentos.");
    }

    #[test]
    fn inline_quotes_are_dropped_and_plain_bodies_kept() {
        assert_eq!(new_text("> cita\nrespuesta\n> otra"), "respuesta");
        assert!(matches!(
            new_text("sin historial\nDe: nada más"),
            Cow::Borrowed(_)
        ));
        assert_eq!(new_text("hola\n-----Mensaje original-----\nviejo"), "hola");
        assert_eq!(new_text(""), "");
    }
}
