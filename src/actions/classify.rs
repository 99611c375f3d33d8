//! Reclassifying a ticket (seed 004: "clasificar", "marcar como Alta"):
//! priority, type, category, area, pipeline and the team's own fields, in
//! the rule files' vocabulary.

use super::{Action, ActionError, Agent, Change, Done, words};
use crate::rules::RuleSet;
use crate::ticket::{Classification, EventKind};

impl Agent<'_> {
    /// Changes what is given. Types and field values must be the rule
    /// files' own when they define any (a typo would split the reports);
    /// they are matched ignoring case and accents and stored in the files'
    /// spelling. The deadlines stay as they are (`set_due` moves them).
    pub async fn classify(
        &self,
        ticket: i64,
        mut change: Classification,
        set_fields: &[(String, String)],
    ) -> Result<Done, ActionError> {
        let set_fields =
            in_vocabulary(&self.rules, &mut change, set_fields).map_err(ActionError::Invalid)?;
        let detail = self.load(ticket, Action::Classify).await?;
        let t = &detail.ticket;
        let mut said = Vec::new();
        let mut was = |what: &str, before: Option<&str>, after: Option<&str>| {
            if let Some(after) = after
                && before != Some(after)
            {
                said.push(format!("{what} {} → {after}", before.unwrap_or("-")));
            }
        };
        was(
            "priority",
            Some(t.priority.as_str()),
            change.priority.map(|p| p.as_str()),
        );
        was(
            "type",
            t.ticket_type.as_deref(),
            change.ticket_type.as_deref(),
        );
        was(
            "category",
            t.category.as_deref(),
            change.category.as_deref(),
        );
        was("area", t.area.as_deref(), change.area.as_deref());
        was("pipeline", Some(&t.pipeline), change.pipeline.as_deref());
        if !set_fields.is_empty() {
            let mut fields = t.fields.clone();
            for (name, value) in &set_fields {
                was(name, t.fields.get(name).map(String::as_str), Some(value));
                fields.insert(name.clone(), value.clone());
            }
            change.fields = Some(fields);
        }
        if said.is_empty() {
            return Err(ActionError::Invalid(
                "nada que cambiar: indique --priority, --type, --category, --area, --pipeline o --field NOMBRE=VALOR con un valor nuevo".into(),
            ));
        }
        let mut update = self.owned_change(EventKind::Classified, said.join("; "));
        update.classify = Some(change);
        self.tell_owner(
            &detail,
            "reclasificó el ticket",
            &said.join("\n"),
            &mut update,
        );
        self.apply(&detail, update, None, vec![Change::Classified { said }])
            .await
    }
}

/// Checks the type and the fields against the rules' vocabulary and
/// writes them in its spelling; the fields, so spelt.
fn in_vocabulary(
    rules: &RuleSet,
    change: &mut Classification,
    fields: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let types = rules.type_names();
    if let Some(ty) = &change.ticket_type
        && !types.is_empty()
    {
        change.ticket_type = Some(words::pick(
            ty,
            &own_words(&types),
            "un tipo de las reglas",
        )?);
    }
    let names = rules.field_names();
    let mut out = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let name = match names.is_empty() {
            true => name.clone(),
            false => words::pick(name, &own_words(&names), "un campo de las reglas")?,
        };
        let value = match rules.field_values(&name) {
            Some(values) if !values.is_empty() => {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                words::pick(value, &own_words(&values), &format!("un valor de {name}"))?
            }
            _ => value.clone(),
        };
        out.push((name, value));
    }
    Ok(out)
}

fn own_words(words: &[&str]) -> Vec<(String, Vec<String>)> {
    words
        .iter()
        .map(|w| (w.to_string(), vec![w.to_string()]))
        .collect()
}
