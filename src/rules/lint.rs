//! Rules that cannot do what their author meant, found at load time:
//!
//! - a rule that can never match, because an earlier rule with `stop = true`
//!   matches every message it matches;
//! - a rule that can never change anything, because an earlier rule matches
//!   every message it matches and already sets all of its fields (first
//!   match wins), and it neither overrides, adds to lists, extracts keys
//!   nor stops.
//!
//! "Matches every message it matches" is decided conservatively from the
//! conditions' structure: each condition of the earlier rule must be implied
//! by one condition of the later rule (the same condition, a narrower value
//! list, `equals "factura proveedor"` implying `contains "factura"`, ...).
//! Anything cleverer could be wrong; this never is.

use super::error::{RuleError, Severity};
use super::matcher::{Leaf, Matchers};
use super::model::{Cond, Overrides, Rule};
use super::syntax::OpKind;

pub fn check(rules: &[Rule], matchers: &Matchers) -> Vec<RuleError> {
    let mut problems = Vec::new();
    for (j, later) in rules.iter().enumerate() {
        for earlier in rules.iter().take(j) {
            if !implies(later.when.as_ref(), earlier.when.as_ref(), matchers) {
                continue;
            }
            if earlier.stop {
                problems.push(unreachable(later, earlier));
                break;
            }
            if never_changes_anything(later, earlier, matchers) {
                problems.push(ineffective(later, earlier));
                break;
            }
        }
    }
    problems
}

fn at(rule: &Rule, message: String, hint: String) -> RuleError {
    RuleError {
        severity: Severity::Error,
        file: rule.file.clone(),
        line: rule.line,
        column: 1,
        message,
        hint: Some(hint),
    }
}

fn unreachable(later: &Rule, earlier: &Rule) -> RuleError {
    at(
        later,
        format!(
            "rule `{}` can never match: rule `{}` ({}:{}) matches every message it matches and stops evaluation",
            later.name, earlier.name, earlier.file, earlier.line
        ),
        format!(
            "move `{}` above `{}`, or narrow `{}`'s conditions, or remove its `stop`",
            later.name, earlier.name, earlier.name
        ),
    )
}

fn ineffective(later: &Rule, earlier: &Rule) -> RuleError {
    at(
        later,
        format!(
            "rule `{}` never changes anything: rule `{}` ({}:{}) matches first and already sets {}",
            later.name,
            earlier.name,
            earlier.file,
            earlier.line,
            later.actions.scalar_fields().join(", ")
        ),
        format!(
            "first match wins: move `{}` above `{}`, or add `override = true` to it",
            later.name, earlier.name
        ),
    )
}

fn never_changes_anything(later: &Rule, earlier: &Rule, matchers: &Matchers) -> bool {
    let fields = later.actions.scalar_fields();
    let covered = earlier.actions.scalar_fields();
    let extracts = later.when.as_ref().is_some_and(|c| captures(c, matchers));
    !fields.is_empty()
        && later.overrides == Overrides::None
        && !later.stop
        && !later.actions.adds_to_lists()
        && !extracts
        && fields.iter().all(|f| covered.contains(f))
}

fn captures(cond: &Cond, matchers: &Matchers) -> bool {
    match cond {
        Cond::All(list) | Cond::Any(list) => list.iter().any(|c| captures(c, matchers)),
        Cond::Leaf(id) => matchers.leaves.get(*id).is_some_and(|l| l.captures),
        _ => false,
    }
}

/// Whether every message matching `later` also matches `earlier`.
fn implies(later: Option<&Cond>, earlier: Option<&Cond>, matchers: &Matchers) -> bool {
    let Some(earlier) = earlier else {
        return true;
    };
    let Some(later) = later else {
        return false;
    };
    let have = conjuncts(later);
    conjuncts(earlier)
        .iter()
        .all(|need| have.iter().any(|h| cond_implies(h, need, matchers)))
}

fn conjuncts(cond: &Cond) -> Vec<&Cond> {
    match cond {
        Cond::All(list) => list.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

fn cond_implies(have: &Cond, need: &Cond, matchers: &Matchers) -> bool {
    if have == need {
        return true;
    }
    match (have, need) {
        (Cond::Leaf(h), Cond::Leaf(n)) => {
            match (matchers.leaves.get(*h), matchers.leaves.get(*n)) {
                (Some(h), Some(n)) => leaf_implies(h, n),
                _ => false,
            }
        }
        // `any` needs just one of its members.
        (_, Cond::Any(list)) => list.iter().any(|n| cond_implies(have, n, matchers)),
        _ => false,
    }
}

fn leaf_implies(have: &Leaf, need: &Leaf) -> bool {
    let same_flags = have.field == need.field
        && have.variant == need.variant
        && have.pattern.starts_with("(?i") == need.pattern.starts_with("(?i");
    if !same_flags || have.kind == OpKind::Regex || need.kind == OpKind::Regex {
        return false;
    }
    have.compared.iter().all(|x| {
        need.compared
            .iter()
            .any(|y| value_implies(have.kind, x, need.kind, y))
    })
}

/// Whether "text `have` x" guarantees "text `need` y".
fn value_implies(have: OpKind, x: &str, need: OpKind, y: &str) -> bool {
    match need {
        OpKind::Equals => have == OpKind::Equals && x == y,
        OpKind::Contains => x.contains(y),
        OpKind::StartsWith => {
            matches!(have, OpKind::Equals | OpKind::StartsWith) && x.starts_with(y)
        }
        OpKind::EndsWith => matches!(have, OpKind::Equals | OpKind::EndsWith) && x.ends_with(y),
        OpKind::Regex => false,
    }
}
