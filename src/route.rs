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
    /// A group (`[groups.NAME]` of the rule files) to pick the owner from;
    /// set instead of `owner`, resolved by the pipeline with `Group::pick`.
    pub owner_group: Option<String>,
    pub priority: Option<Priority>,
    pub state: Option<State>,
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub tags: Vec<String>,
    /// The team's own fields (`asociacion = "Arrendatario"`, `nivel = "Nivel 1"`).
    pub fields: BTreeMap<String, String>,
    pub keys: Vec<Key>,
    /// Acknowledgement template to send; `Some("")` means "send none".
    pub ack_template: Option<String>,
    /// Extra addresses to notify about the ticket.
    pub notify: Vec<String>,
    /// Resolution target in hours, if a rule set one.
    pub sla_hours: Option<u32>,
    /// Whether `sla_hours` counts business hours only.
    pub sla_business_hours: bool,
    /// First-response target in hours (a reply from staff meets it), if a
    /// rule set one.
    pub first_response_hours: Option<u32>,
    /// Whether `first_response_hours` counts business hours only.
    pub first_response_business_hours: bool,
    /// Field name → who set it (`rule:FILE/NAME`, `defaults:FILE/MAILBOX`,
    /// `type:FILE/TYPE` or `mailbox:NAME`), for the history and for
    /// `rules explain`. Keys appear as `keys.NAME`.
    pub set_by: BTreeMap<String, String>,
}

/// The decision with every required field present.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub pipeline: String,
    pub owner: Option<String>,
    /// Still to be resolved to a member (see [`Decision::owner_group`]).
    pub owner_group: Option<String>,
    pub priority: Priority,
    pub state: State,
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub tags: Vec<String>,
    pub fields: BTreeMap<String, String>,
    pub keys: Vec<Key>,
    pub ack_template: Option<String>,
    pub notify: Vec<String>,
    /// Resolution target (see [`Decision::sla_hours`]).
    pub sla_hours: Option<u32>,
    pub sla_business_hours: bool,
    /// First-response target (see [`Decision::first_response_hours`]).
    pub first_response_hours: Option<u32>,
    pub first_response_business_hours: bool,
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
        // A group chosen by a rule is an owner decision: the mailbox's
        // default owner must not pre-empt the group's turn order.
        let fill_owner = self.owner.is_none() && self.owner_group.is_none();
        if fill_owner && mailbox.owner.is_some() {
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
            owner: match self.owner {
                Some(owner) => Some(owner),
                None if fill_owner => mailbox.owner.clone(),
                None => None,
            },
            owner_group: self.owner_group,
            priority: self.priority.unwrap_or(mailbox.priority),
            state: self.state.unwrap_or_default(),
            ticket_type: self.ticket_type,
            category: self.category,
            area: self.area,
            tags: self.tags,
            fields: self.fields,
            keys: self.keys,
            ack_template,
            notify: self.notify,
            sla_hours: self.sla_hours,
            sla_business_hours: self.sla_business_hours,
            first_response_hours: self.first_response_hours,
            first_response_business_hours: self.first_response_business_hours,
            set_by: self.set_by,
        }
    }
}
