//! Who is acting, and who a ticket is given to: always a person of
//! `[people]`, found by their key or their name, ignoring case and accents.

use super::permission::Staff;
use super::words;
use crate::config::Config;
use crate::rules::fold_text;

/// The person `[people.ID]` as the checks see them, if declared.
pub fn staff(config: &Config, id: &str) -> Option<Staff> {
    config.people.get(id).map(|p| Staff {
        id: id.to_string(),
        name: p.name.clone().unwrap_or_else(|| id.to_string()),
        role: p.role,
        pipelines: p.pipelines.clone(),
    })
}

/// The person `text` names: their key (`alonso`) or their name ("Alonso
/// Pérez"), in any case, with or without accents. Anyone else is refused
/// with the list of people and the closest names.
pub fn find(config: &Config, text: &str) -> Result<Staff, String> {
    let wanted = fold_text(text.trim());
    let found = config.people.iter().find(|(id, p)| {
        fold_text(id) == wanted || p.name.as_deref().is_some_and(|n| fold_text(n) == wanted)
    });
    if let Some((id, _)) = found {
        return staff(config, id).ok_or_else(|| format!("'{text}' no está en [people]"));
    }
    if config.people.is_empty() {
        return Err(format!(
            "'{text}' no es una persona de la configuración: no hay ninguna; agregue [people.NOMBRE] con address, name y role = \"admin\" o \"agent\""
        ));
    }
    let ids: Vec<&str> = config.people.keys().map(String::as_str).collect();
    let message = words::unknown(text, &ids, "una persona de [people]");
    Err(format!("{message}; las personas: {}", roster(config)))
}

/// "alonso (Alonso Pérez, agente), camila (Camila Rojas, administrador)".
fn roster(config: &Config) -> String {
    config
        .people
        .iter()
        .map(|(id, p)| match &p.name {
            Some(name) => format!("{id} ({name}, {})", p.role.label()),
            None => format!("{id} ({})", p.role.label()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
