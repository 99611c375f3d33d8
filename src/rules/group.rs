//! Owner groups: a rule can give a ticket to a group, and the pipeline picks
//! the member with [`Group::pick`] against the store's open-ticket counts.
//!
//! Pure: the caller supplies the counts and the last assignee, so the choice
//! is testable and the rules layer never touches the database.

use serde::Serialize;

/// How a group's next owner is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Members take turns in the order they are listed.
    RoundRobin,
    /// The member with the fewest open tickets; ties go to whoever comes
    /// next in turn, so equal loads still rotate.
    LeastOpen,
}

impl Strategy {
    pub const NAMES: &'static [&'static str] = &["round_robin", "least_open"];

    pub fn parse(name: &str) -> Option<Strategy> {
        match name {
            "round_robin" => Some(Strategy::RoundRobin),
            "least_open" => Some(Strategy::LeastOpen),
            _ => None,
        }
    }
}

/// A named set of people who share tickets (`[groups.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    /// Never empty: loading refuses a group without members.
    pub members: Vec<String>,
    pub strategy: Strategy,
}

impl Group {
    /// The member who gets the next ticket.
    ///
    /// `open_counts` holds (member, open tickets) as the store knows them;
    /// missing members count as 0. `last_assigned` is the member who got the
    /// group's previous ticket, if any.
    pub fn pick(&self, open_counts: &[(String, i64)], last_assigned: Option<&str>) -> String {
        let turn = self.turn_order(last_assigned);
        let chosen = match self.strategy {
            Strategy::RoundRobin => turn.first().copied(),
            Strategy::LeastOpen => turn
                .iter()
                .enumerate()
                .min_by_key(|(pos, m)| (open_count(open_counts, m), *pos))
                .map(|(_, m)| *m),
        };
        chosen.unwrap_or_default().to_string()
    }

    /// Members starting with the one after `last_assigned`.
    fn turn_order(&self, last_assigned: Option<&str>) -> Vec<&str> {
        let start = last_assigned
            .and_then(|last| self.members.iter().position(|m| m == last))
            .map(|i| i + 1)
            .unwrap_or(0);
        let n = self.members.len();
        (0..n)
            .filter_map(|k| self.members.get((start + k) % n).map(String::as_str))
            .collect()
    }
}

fn open_count(counts: &[(String, i64)], member: &str) -> i64 {
    counts
        .iter()
        .find(|(m, _)| m == member)
        .map(|(_, c)| *c)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(strategy: Strategy) -> Group {
        Group {
            name: "finanzas".into(),
            members: vec!["alonso".into(), "milagros".into(), "rosario".into()],
            strategy,
        }
    }

    #[test]
    fn round_robin_takes_turns_and_wraps() {
        let g = group(Strategy::RoundRobin);
        assert_eq!(g.pick(&[], None), "alonso");
        assert_eq!(g.pick(&[], Some("alonso")), "milagros");
        assert_eq!(g.pick(&[], Some("rosario")), "alonso");
        // Someone who left the group: start from the top.
        assert_eq!(g.pick(&[], Some("pedro")), "alonso");
    }

    #[test]
    fn least_open_prefers_the_lightest_load_then_the_turn() {
        let g = group(Strategy::LeastOpen);
        let counts = vec![("alonso".to_string(), 5), ("milagros".to_string(), 2)];
        // rosario is missing from the counts: 0 open tickets.
        assert_eq!(g.pick(&counts, None), "rosario");
        let even = vec![
            ("alonso".to_string(), 1),
            ("milagros".to_string(), 1),
            ("rosario".to_string(), 1),
        ];
        assert_eq!(g.pick(&even, Some("alonso")), "milagros");
        assert_eq!(g.pick(&even, Some("rosario")), "alonso");
    }

    #[test]
    fn an_empty_group_never_panics() {
        let g = Group {
            name: "x".into(),
            members: vec![],
            strategy: Strategy::LeastOpen,
        };
        assert_eq!(g.pick(&[], Some("a")), "");
    }
}
