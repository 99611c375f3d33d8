//! The team's words on the command line: states and priorities read in the
//! canonical form or as the rule files' labels ("En ejecución", "Alta"),
//! ignoring case and accents. Showing them in those words is
//! `view::Labels`.

use anyhow::Result;

use buzon::actions::words;
use buzon::rules::RuleSet;
use buzon::ticket::{Priority, State};

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
