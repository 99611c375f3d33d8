//! The routing decision: which pipeline, owner, priority and fields a new
//! ticket gets, and who set each of them.
//!
//! Pure. The rules engine (`rules`) fills a [`Decision`] from the rule files;
//! whatever no rule set is filled from the mailbox defaults in the
//! configuration, so every ticket has a pipeline and a priority.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Mailbox;
use crate::ticket::{Priority, State};

/// An extracted key such as `order = 75321`, used for threading and search.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub name: String,
    pub value: String,
}

/// Everything routing decides for a new ticket.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Decision {
    pub pipeline: Option<String>,
    pub owner: Option<String>,
    pub priority: Option<Priority>,
    pub state: Option<State>,
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub tags: Vec<String>,
    pub keys: Vec<Key>,
    /// Acknowledgement template to send; `Some("")` means "send none".
    pub ack_template: Option<String>,
    /// Extra addresses to notify about the ticket.
    pub notify: Vec<String>,
    /// Resolution target in hours, if a rule set one.
    pub sla_hours: Option<u32>,
    /// Field name → who set it (`rule:NAME` or `mailbox:NAME`), for the
    /// history and for `rules explain`.
    pub set_by: BTreeMap<String, String>,
}

/// The decision with every required field present.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub pipeline: String,
    pub owner: Option<String>,
    pub priority: Priority,
    pub state: State,
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub tags: Vec<String>,
    pub keys: Vec<Key>,
    pub ack_template: Option<String>,
    pub notify: Vec<String>,
    pub sla_hours: Option<u32>,
    pub set_by: BTreeMap<String, String>,
}

impl Decision {
    /// Fills what the rules left empty from the mailbox's defaults.
    pub fn complete(mut self, mailbox_name: &str, mailbox: &Mailbox) -> Route {
        let origin = format!("mailbox:{mailbox_name}");
        let note = |field: &str, set: &mut BTreeMap<String, String>| {
            set.entry(field.to_string())
                .or_insert_with(|| origin.clone());
        };
        note("pipeline", &mut self.set_by);
        note("priority", &mut self.set_by);
        if self.owner.is_none() && mailbox.owner.is_some() {
            note("owner", &mut self.set_by);
        }
        let ack_template = match self.ack_template {
            Some(t) if t.is_empty() => None,
            Some(t) => Some(t),
            None if mailbox.acknowledge => Some("acknowledgement".to_string()),
            None => None,
        };
        self.keys.sort();
        self.keys.dedup();
        Route {
            pipeline: self.pipeline.unwrap_or_else(|| mailbox.pipeline.clone()),
            owner: self.owner.or_else(|| mailbox.owner.clone()),
            priority: self.priority.unwrap_or(mailbox.priority),
            state: self.state.unwrap_or_default(),
            ticket_type: self.ticket_type,
            category: self.category,
            area: self.area,
            tags: self.tags,
            keys: self.keys,
            ack_template,
            notify: self.notify,
            sla_hours: self.sla_hours,
            set_by: self.set_by,
        }
    }
}
