//! An agent's new words in a reply to a notification: the quoted
//! notification, the mail client's reply header and the agent's own
//! signature are cut, so the customer reads only what the agent wrote.
//!
//! What clients write above the quote, seen in real replies:
//! - Gmail: "El lun, 7 dic 2026 a las 10:02, Soporte <soporte@…> escribió:"
//!   or "On Mon, Dec 7, 2026 at 10:02 AM Soporte <soporte@…> wrote:", which
//!   Gmail's plain text wraps over two lines when long;
//! - Outlook: "De: … / Enviado: … / Para: … / Asunto: …" (or "From: /
//!   Sent:"), or "-----Mensaje original-----";
//! - Apple Mail, Thunderbird: "El 7 dic 2026, a las 10:02, … escribió:",
//!   "On 12/7/26 10:02, … wrote:".
//!
//! The signature starts at the standard delimiter line "-- ". Pure.

/// The agent's own words of `body`.
pub fn new_words(body: &str) -> String {
    let body = body.replace("\r\n", "\n");
    let lines: Vec<&str> = body.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if is_signature(line) {
            end = i;
            break;
        }
        if is_attribution(line) {
            // Gmail wraps a long "On … wrote:" line: the first half is the
            // line before, starting with "On " or "El ".
            end = match i.checked_sub(1).and_then(|p| lines.get(p).map(|l| (p, l))) {
                Some((p, prev)) if starts_attribution(prev) && !prev.trim().is_empty() => p,
                _ => i,
            };
            break;
        }
        if is_separator(line) || is_outlook_header(&lines, i) {
            end = i;
            break;
        }
    }
    // Trailing spaces (and Outlook's non-breaking ones) are layout, not words.
    let kept: Vec<&str> = lines[..end]
        .iter()
        .filter(|l| !l.trim_start().starts_with('>'))
        .map(|l| l.trim_end())
        .collect();
    kept.join("\n").trim().to_string()
}

/// "-- " alone on its line (RFC 3676); some clients drop the space.
fn is_signature(line: &str) -> bool {
    line == "-- " || line == "--"
}

fn is_attribution(line: &str) -> bool {
    let l = line.trim_end().to_lowercase();
    l.ends_with("escribió:") || l.ends_with("escribio:") || l.ends_with("wrote:")
}

fn starts_attribution(line: &str) -> bool {
    let l = line.trim_start();
    (l.starts_with("On ") || l.starts_with("El ")) && !l.trim_end().ends_with(':')
}

fn is_separator(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    (l.starts_with("-----") && (l.contains("mensaje original") || l.contains("original message")))
        || (l.len() >= 10 && l.bytes().all(|b| b == b'_'))
}

/// "De: …" followed within three lines by "Enviado: …" / "Sent: …".
fn is_outlook_header(lines: &[&str], i: usize) -> bool {
    let starts = |l: &str, words: &[&str]| {
        let l = l.trim_start().to_lowercase();
        words.iter().any(|w| l.starts_with(w))
    };
    lines.get(i).is_some_and(|l| starts(l, &["de:", "from:"]))
        && lines
            .iter()
            .skip(i + 1)
            .take(3)
            .any(|l| starts(l, &["enviado el:", "enviado:", "sent:", "fecha:", "date:"]))
}

#[cfg(test)]
mod tests {
    use super::new_words;

    /// One real reply per client and what the customer must read.
    const CASES: &[(&str, &str, &str)] = &[
        (
            "Gmail web, español",
            "Hola Ana, ya enviamos el documento corregido a la notaría.\n\nSaludos,\nAlonso\n\nEl lun, 7 dic 2026 a las 10:02, Soporte Tu Patrimonio (<soporte@tupatrimonio.example>) escribió:\n\n> Nuevo ticket a su cargo: Documento observado\n> Cliente: Ana Pérez\n",
            "Hola Ana, ya enviamos el documento corregido a la notaría.\n\nSaludos,\nAlonso",
        ),
        (
            "Gmail web, English, wrapped attribution",
            "Hi Ana, the corrected document is on its way.\n\nOn Mon, Dec 7, 2026 at 10:02 AM Soporte Tu Patrimonio <\nsoporte@tupatrimonio.example> wrote:\n\n> A new ticket is yours\n",
            "Hi Ana, the corrected document is on its way.",
        ),
        (
            "Outlook desktop, español",
            "Estimada Ana:\r\n\r\nLe confirmamos la recepción.\r\n\r\nDe: Soporte Tu Patrimonio <soporte@tupatrimonio.example>\r\nEnviado: lunes, 7 de diciembre de 2026 10:02\r\nPara: Alonso Pérez <alonso@tupatrimonio.example>\r\nAsunto: [#TP-1] Nuevo ticket a su cargo\r\n\r\nEl ticket TP-1 quedó a su cargo.\r\n",
            "Estimada Ana:\n\nLe confirmamos la recepción.",
        ),
        (
            "Outlook web, original message",
            "Listo, quedó resuelto.\n\n-----Mensaje original-----\nDe: Soporte\nAsunto: Nuevo ticket\n",
            "Listo, quedó resuelto.",
        ),
        (
            "Apple Mail, español",
            "Revisado y enviado.\n\nEl 7 dic 2026, a las 10:02, Soporte Tu Patrimonio <soporte@tupatrimonio.example> escribió:\n\n> El ticket TP-1 quedó a su cargo.\n",
            "Revisado y enviado.",
        ),
        (
            "Thunderbird with signature",
            "Ana, adjunto la escritura.\n\n-- \nAlonso Pérez\nEjecutivo de soporte\n\nOn 12/7/26 10:02, Soporte wrote:\n> El ticket TP-1\n",
            "Ana, adjunto la escritura.",
        ),
        (
            "inline quotes dropped, nothing else",
            "> ¿Cuándo llega?\nMañana por la mañana.\n",
            "Mañana por la mañana.",
        ),
    ];

    #[test]
    fn each_clients_reply_keeps_only_the_agents_words() {
        for (client, body, want) in CASES {
            assert_eq!(new_words(body), *want, "{client}");
        }
    }
}
