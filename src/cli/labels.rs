//! The team's words on the command line: states and priorities shown with
//! the rule files' labels ("En ejecución", "Alta") on the views meant for
//! people (JSON and CSV keep the canonical names scripts rely on), and read
//! back in either form, ignoring case and accents.

use anyhow::Result;

use buzon::actions::words;
use buzon::rules::RuleSet;
use buzon::store::{AlertRow, TicketRow};
use buzon::ticket::{Priority, State};

/// The tickets with states and priorities in the team's words (`rules`:
/// the rule set already loaded, if any).
pub fn with_labels(rules: Option<&RuleSet>, rows: &mut [TicketRow]) {
    let Some(rules) = rules else {
        return;
    };
    for t in rows {
        relabel(rules, &mut t.state, &mut t.priority);
    }
}

/// The alerts with states and priorities in the team's words.
pub fn alerts_with_labels(rules: Option<&RuleSet>, rows: &mut [AlertRow]) {
    let Some(rules) = rules else {
        return;
    };
    for a in rows {
        relabel(rules, &mut a.state, &mut a.priority);
    }
}

/// A canonical state and priority replaced by the rule files' labels.
fn relabel(rules: &RuleSet, state: &mut String, priority: &mut String) {
    if let Ok(s) = state.parse::<State>() {
        *state = rules.state_label(s).to_string();
    }
    if let Ok(p) = priority.parse::<Priority>() {
        *priority = rules.priority_label(p).to_string();
    }
}

/// A state as an agent writes it: the canonical name (`waiting_on_contact`)
/// or the team's label ("En ejecución", "en ejecucion").
pub fn state(text: &str, rules: Option<&RuleSet>) -> Result<State> {
    let candidates: Vec<(State, Vec<String>)> = State::ALL
        .into_iter()
        .map(|s| (s, named(s.as_str(), rules.map(|r| r.state_label(s)))))
        .collect();
    words::pick(text, &candidates, "un estado").map_err(anyhow::Error::msg)
}

/// A priority as an agent writes it: `high`, or the team's "Alta".
pub fn priority(text: &str, rules: Option<&RuleSet>) -> Result<Priority> {
    let candidates: Vec<(Priority, Vec<String>)> = Priority::ALL
        .into_iter()
        .map(|p| (p, named(p.as_str(), rules.map(|r| r.priority_label(p)))))
        .collect();
    words::pick(text, &candidates, "una prioridad").map_err(anyhow::Error::msg)
}

/// The team's label first (what the error lists), then the canonical name
/// with and without underscores.
fn named(canonical: &str, label: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = label.map(str::to_string).into_iter().collect();
    names.push(canonical.to_string());
    names.push(canonical.replace('_', " "));
    names
}
