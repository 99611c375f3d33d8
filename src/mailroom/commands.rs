//! Commands an agent writes on the first lines of a reply to a
//! notification, in Spanish or English: `#nota`, `#cerrar` / `#cerrar sin
//! éxito`, `#asignar NOMBRE`, `#tomar`, `#estado PALABRA`, `#prioridad
//! PALABRA`. Pure: what they mean is the action layer's.

use crate::rules::fold_text;
use crate::ticket::Outcome;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The text is an internal comment, mailed to no customer.
    Note,
    /// Close with this outcome; the text is the closing note.
    Close(Outcome),
    Assign(String),
    Take,
    /// A state in the team's words.
    State(String),
    /// A priority in the team's words.
    Priority(String),
}

/// What the agent wrote: the commands, the lines that looked like commands
/// but are none, and the text below them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instructions {
    pub commands: Vec<Command>,
    pub unknown: Vec<String>,
    pub text: String,
}

impl Instructions {
    /// Whether the text goes to the customer (not a note, not a closing note).
    pub fn text_is_reply(&self) -> bool {
        !self
            .commands
            .iter()
            .any(|c| matches!(c, Command::Note | Command::Close(_)))
    }
}

/// Reads the commands on the first non-blank lines of `words` (the agent's
/// new words, quotes already cut).
pub fn parse(words: &str) -> Instructions {
    let mut out = Instructions::default();
    let mut lines = words.lines().skip_while(|l| l.trim().is_empty()).peekable();
    while let Some(line) = lines.peek() {
        let line = line.trim();
        let Some(command) = line.strip_prefix('#') else {
            break;
        };
        match command_of(command) {
            Some(c) => out.commands.push(c),
            None => out.unknown.push(line.to_string()),
        }
        lines.next();
    }
    out.text = lines.collect::<Vec<_>>().join("\n").trim().to_string();
    out
}

fn command_of(text: &str) -> Option<Command> {
    let (word, rest) = match text.trim().split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (text.trim(), ""),
    };
    let folded_rest = fold_text(rest);
    Some(match fold_text(word).as_ref() {
        "nota" | "note" if rest.is_empty() => Command::Note,
        "cerrar" | "close" => match folded_rest.as_ref() {
            "" | "con exito" | "exito" | "success" => Command::Close(Outcome::Success),
            "sin exito" | "failure" | "unsuccessful" => Command::Close(Outcome::Failure),
            _ => return None,
        },
        "asignar" | "assign" if !rest.is_empty() => Command::Assign(rest.to_string()),
        "tomar" | "take" if rest.is_empty() => Command::Take,
        "estado" | "state" if !rest.is_empty() => Command::State(rest.to_string()),
        "prioridad" | "priority" if !rest.is_empty() => Command::Priority(rest.to_string()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_on_the_first_lines_in_either_language() {
        let i = parse("\n#cerrar sin éxito\nNo corresponde: el documento es de otra notaría.");
        assert_eq!(i.commands, vec![Command::Close(Outcome::Failure)]);
        assert_eq!(i.text, "No corresponde: el documento es de otra notaría.");
        assert!(!i.text_is_reply());

        let i = parse("#Asignar Milagros Muñoz\n#prioridad alta\nHola Ana, lo ve mi colega.");
        assert_eq!(
            i.commands,
            vec![
                Command::Assign("Milagros Muñoz".into()),
                Command::Priority("alta".into())
            ]
        );
        assert!(i.text_is_reply());

        let i = parse("#note\nLlamar mañana");
        assert_eq!(i.commands, vec![Command::Note]);
        assert_eq!(
            parse("#close").commands,
            vec![Command::Close(Outcome::Success)]
        );
        assert_eq!(parse("#tomar").commands, vec![Command::Take]);
    }

    #[test]
    fn a_hash_below_the_text_is_text_and_unknown_commands_are_kept() {
        let i = parse("Su pedido #75321 ya salió.\n#cerrar");
        assert!(i.commands.is_empty());
        assert_eq!(i.text, "Su pedido #75321 ya salió.\n#cerrar");
        let i = parse("#borrar todo\nhola");
        assert_eq!(i.unknown, vec!["#borrar todo".to_string()]);
        assert_eq!(parse("#cerrar quizás").unknown.len(), 1);
    }
}
