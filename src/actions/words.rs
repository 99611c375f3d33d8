//! The team's words as people type them: a state, a priority, a document
//! item, a type or a field value is found ignoring case and accents
//! ("en ejecucion" is "En ejecución"), and a word that is not there is
//! answered with the list and the closest ones.

use crate::config::closest;
use crate::rules::fold_text;

/// The value among `candidates` (each with the words that name it) that
/// `text` names, ignoring case and accents; `what` says what it should
/// have been, for the error ("un estado", "un documento pedido").
pub fn pick<T: Clone>(
    text: &str,
    candidates: &[(T, Vec<String>)],
    what: &str,
) -> Result<T, String> {
    let wanted = fold_text(text.trim());
    for (value, names) in candidates {
        if names.iter().any(|n| fold_text(n) == wanted) {
            return Ok(value.clone());
        }
    }
    let shown: Vec<&str> = candidates
        .iter()
        .filter_map(|(_, names)| names.first().map(String::as_str))
        .collect();
    Err(unknown(text, &shown, what))
}

/// "'copia carnet' no es un documento pedido: ¿quiso decir …?",
/// with the closest names first when some are close.
pub fn unknown(text: &str, known: &[&str], what: &str) -> String {
    if known.is_empty() {
        return format!("'{text}' no es {what}: no hay ninguno");
    }
    let folded: Vec<String> = known.iter().map(|k| fold_text(k).into_owned()).collect();
    let folded_refs: Vec<&str> = folded.iter().map(String::as_str).collect();
    let wanted = fold_text(text.trim());
    let near: Vec<&str> = known
        .iter()
        .zip(&folded)
        .filter(|(_, f)| {
            closest(&wanted, &folded_refs) == Some(f.as_str())
                || (wanted.len() >= 4 && f.contains(wanted.as_ref()))
                || (f.len() >= 4 && wanted.contains(f.as_str()))
                || shares_words(&wanted, f)
        })
        .map(|(k, _)| *k)
        .collect();
    let list = quoted(known);
    match near.as_slice() {
        [] => format!("'{text}' no es {what}: escriba uno de {list}"),
        _ => format!(
            "'{text}' no es {what}: ¿quiso decir {}? (todos: {list})",
            quoted(&near)
        ),
    }
}

/// Whether two folded texts share every significant word of the shorter
/// one ("copia carnet" and "copia de carnet").
fn shares_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
            .map(str::to_string)
            .collect()
    };
    let (wa, wb) = (words(a), words(b));
    let (short, long) = if wa.len() <= wb.len() {
        (wa, wb)
    } else {
        (wb, wa)
    };
    !short.is_empty() && short.iter().all(|w| long.contains(w))
}

/// `"a", "b"` for messages.
pub fn quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> Vec<(u8, Vec<String>)> {
        vec![
            (1, vec!["Nueva".into(), "new".into()]),
            (2, vec!["En ejecución".into(), "open".into()]),
        ]
    }

    #[test]
    fn team_words_match_without_case_or_accents() {
        assert_eq!(pick("en ejecucion", &states(), "un estado"), Ok(2));
        assert_eq!(pick("EN EJECUCIÓN", &states(), "un estado"), Ok(2));
        assert_eq!(pick("open", &states(), "un estado"), Ok(2));
    }

    #[test]
    fn an_unknown_word_lists_the_close_ones() {
        let items = vec![
            (0, vec!["Copia de carnet".to_string()]),
            (1, vec!["Poder notarial".to_string()]),
        ];
        let e = pick("copia carnet", &items, "un documento").unwrap_err();
        assert!(e.contains("¿quiso decir \"Copia de carnet\"?"), "{e}");
        let e = pick("escritura", &items, "un documento").unwrap_err();
        assert!(
            e.contains("escriba uno de \"Copia de carnet\", \"Poder notarial\""),
            "{e}"
        );
        let e = pick("en ejecusion", &states(), "un estado").unwrap_err();
        assert!(e.contains("\"En ejecución\""), "{e}");
    }
}
