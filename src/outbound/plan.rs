//! Which automatic mails an event on a ticket sends, to whom, and, when one
//! is not sent, the history line that says why. Pure.
//!
//! The pipeline (a new ticket, a customer's answer) and the agent commands
//! (assign, close) describe the event; this module picks the recipients
//! (the customer, the owner, the rules' extra addresses), refuses the ones
//! that would start a loop (our own shared mailboxes), and composes the
//! mails once the ticket number is known, inside the ticket's transaction.

use super::compose::{self, Auto, AutoSubmitted, Envelope};
use super::templates::{self, Templates, Vars};
use crate::config::Config;
use crate::parse::MailAddress;
use crate::thread::IdSigner;
use crate::ticket::{EventKind, NewEvent, OutgoingMail, Priority, TicketRow, display_number};

/// One mail to send once the ticket number is known.
#[derive(Debug, Clone)]
pub struct PlannedMail {
    /// acknowledgement, notification, closing.
    pub kind: &'static str,
    pub template: String,
    pub to: (String, Option<String>),
    pub submitted: AutoSubmitted,
    /// The person of `[people]` a staff notification is for: its
    /// Message-ID is signed for them, so their reply proves who answers.
    pub person: Option<String>,
}

/// The automatic mails of one event on one ticket.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Everything but the ticket number and tag.
    pub vars: Vars,
    /// The shared mailbox the mails come from (and replies go to).
    pub from_address: String,
    pub from_name: String,
    /// The customer's mail they answer, to thread under it.
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub mails: Vec<PlannedMail>,
    /// `outbox.auto_reply_limit_per_hour` (mail to customers).
    pub limit_per_hour: u32,
    /// `outbox.notification_limit_per_hour` (notifications to staff).
    pub notification_limit_per_hour: u32,
}

/// What the variables are made of.
pub struct Facts<'a> {
    pub subject: &'a str,
    pub customer: Option<&'a MailAddress>,
    pub pipeline: &'a str,
    pub owner: Option<&'a str>,
    pub priority: Priority,
    pub due_at: Option<i64>,
    pub text: &'a str,
}

/// Shortened customer text in staff notifications: enough to triage
/// without opening the ticket, not the whole thread.
const EXCERPT_CHARS: usize = 1500;

impl Plan {
    /// A plan of mails from `mailbox` (a `[mailboxes.NAME]`).
    pub fn new(config: &Config, mailbox: &str, facts: &Facts<'_>) -> Plan {
        let (from_address, from_name) = match config.mailboxes.get(mailbox) {
            Some(m) => (
                m.address.clone(),
                m.display_name
                    .clone()
                    .unwrap_or_else(|| config.deployment.name.clone()),
            ),
            None => (String::new(), config.deployment.name.clone()),
        };
        let tz = &config.deployment.zone;
        // "RE: Documento observado" is the customer's subject "Documento
        // observado": a template puts its own words before it ("Recibimos tu
        // respuesta: …"), never after the customer's "RE:".
        let subject = crate::thread::strip_reply_prefixes(facts.subject);
        let subject = if subject.is_empty() {
            "(sin asunto)".to_string()
        } else {
            subject.to_string()
        };
        Plan {
            vars: Vars {
                subject,
                name: facts
                    .customer
                    .and_then(|c| c.name.clone())
                    .unwrap_or_default(),
                customer: facts
                    .customer
                    .map(|c| c.address.clone())
                    .unwrap_or_default(),
                pipeline: facts.pipeline.to_string(),
                owner: facts
                    .owner
                    .map(|o| owner_name(config, o))
                    .unwrap_or_default(),
                owner_id: facts.owner.map(shell_word).unwrap_or_default(),
                priority: templates::priority_label(facts.priority).to_string(),
                due: facts
                    .due_at
                    .map(|d| templates::spanish_date(d, tz))
                    .unwrap_or_default(),
                team: config.deployment.name.clone(),
                text: templates::excerpt(facts.text, EXCERPT_CHARS),
                ..Vars::default()
            },
            from_address,
            from_name,
            limit_per_hour: config.outbox.auto_reply_limit_per_hour,
            notification_limit_per_hour: config.outbox.notification_limit_per_hour,
            ..Plan::default()
        }
    }

    /// A plan about an existing ticket (agents' notifications, alerts):
    /// the facts come from the ticket row.
    pub fn for_ticket(
        config: &Config,
        t: &TicketRow,
        owner: Option<&str>,
        due_at: Option<i64>,
        text: &str,
    ) -> Plan {
        let customer = t.requester.as_ref().map(|a| MailAddress {
            address: a.clone(),
            name: t.requester_name.clone(),
        });
        Plan::new(
            config,
            &t.mailbox,
            &Facts {
                subject: &t.subject,
                customer: customer.as_ref(),
                pipeline: &t.pipeline,
                owner,
                priority: t.priority,
                due_at,
                text,
            },
        )
    }

    /// Threads the mails under the customer's mail.
    pub fn answering(mut self, message_id: Option<&str>, references: &[String]) -> Plan {
        self.in_reply_to = message_id.map(str::to_string);
        self.references = references.to_vec();
        self
    }

    /// Plans the owner's notification, or records why there is none.
    pub fn notify_owner(
        &mut self,
        config: &Config,
        owner: &str,
        template: &str,
        events: &mut Vec<NewEvent>,
    ) {
        self.notify_owner_as(config, owner, "notification", template, events);
    }

    /// As `notify_owner`, with the outbox kind of the mail (`alert`).
    pub fn notify_owner_as(
        &mut self,
        config: &Config,
        owner: &str,
        kind: &'static str,
        template: &str,
        events: &mut Vec<NewEvent>,
    ) {
        match config.owner_address(owner) {
            Ok((address, _)) if config.is_mailbox_address(address) => events.push(withheld(
                format!("{template} notification to {owner} not sent: {address} is one of our shared mailboxes (it would come back as a new mail)"),
            )),
            Ok((address, name)) => self.mails.push(PlannedMail {
                kind,
                template: template.to_string(),
                to: (address.to_string(), name.map(str::to_string)),
                submitted: AutoSubmitted::Generated,
                person: Some(owner.to_string()),
            }),
            Err(why) => events.push(withheld(format!(
                "{template} notification to {owner} not sent: {why}"
            ))),
        }
    }

    /// Plans a notification to each of the rules' extra recipients.
    pub fn notify_extra(
        &mut self,
        config: &Config,
        addresses: &[String],
        events: &mut Vec<NewEvent>,
    ) {
        self.notify_addresses(config, addresses, "notification", templates::NOTIFY, events);
    }

    /// Plans a mail of `kind` from `template` to each address (staff lists:
    /// the rules' extra recipients, the escalation list).
    pub fn notify_addresses(
        &mut self,
        config: &Config,
        addresses: &[String],
        kind: &'static str,
        template: &str,
        events: &mut Vec<NewEvent>,
    ) {
        for address in addresses {
            let duplicate = self
                .mails
                .iter()
                .any(|m| m.to.0.eq_ignore_ascii_case(address))
                || self.vars.customer.eq_ignore_ascii_case(address);
            if duplicate {
                continue;
            }
            if config.is_mailbox_address(address) {
                events.push(withheld(format!(
                    "{kind} to {address} not sent: it is one of our shared mailboxes (it would come back as a new mail)"
                )));
                continue;
            }
            self.mails.push(PlannedMail {
                kind,
                template: template.to_string(),
                to: (address.clone(), None),
                submitted: AutoSubmitted::Generated,
                person: None,
            });
        }
    }

    /// The mails, composed for ticket `number`. A mail that cannot be
    /// composed (which the checks at load and at planning make a bug) is
    /// logged and left out rather than losing the ticket.
    pub fn compose(
        &self,
        prefix: &str,
        number: i64,
        signer: &IdSigner,
        templates: &Templates,
    ) -> Vec<OutgoingMail> {
        let ticket = display_number(prefix, number);
        let vars = Vars {
            tag: compose::ticket_tag(&ticket),
            ticket,
            ..self.vars.clone()
        };
        let domain = self
            .from_address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("localhost");
        self.mails
            .iter()
            .filter_map(|m| {
                let envelope = Envelope {
                    kind: m.kind,
                    message_id: match &m.person {
                        Some(person) => signer.new_id_for(domain, person),
                        None => signer.new_id(domain),
                    },
                    from_address: &self.from_address,
                    from_name: &self.from_name,
                    to: vec![m.to.clone()],
                    in_reply_to: self.in_reply_to.as_deref(),
                    references: &self.references,
                    auto: Some(Auto {
                        submitted: m.submitted,
                        limit_per_hour: if STAFF_KINDS.contains(&m.kind) {
                            self.notification_limit_per_hour
                        } else {
                            self.limit_per_hour
                        },
                    }),
                };
                compose::from_template(templates, &m.template, &vars, envelope)
                    .inspect_err(|e| {
                        tracing::error!(error = %e, kind = m.kind, to = %m.to.0, "Cannot compose mail.")
                    })
                    .ok()
            })
            .collect()
    }
}

/// Mails to staff, under the higher `notification_limit_per_hour`.
const STAFF_KINDS: &[&str] = &["notification", "alert", "escalation"];

/// The owner's display name (`[people.NAME] name`), else their id.
pub fn owner_name(config: &Config, owner: &str) -> String {
    config
        .people
        .get(owner)
        .and_then(|p| p.name.clone())
        .unwrap_or_else(|| owner.to_string())
}

/// `s` as one shell word: as is when it is plain (`camila`), else in single
/// quotes (`'maría josé'`), for the commands a mail suggests.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_alphanumeric() || "._-@".contains(c);
    if !s.is_empty() && !s.starts_with('-') && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn withheld(detail: String) -> NewEvent {
    NewEvent::system(EventKind::MailWithheld, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mailbox, Person};

    fn config() -> Config {
        let mut c = Config::with_defaults("sqlite::memory:".into());
        c.mailboxes.insert(
            "soporte".into(),
            Mailbox {
                address: "soporte@tp.example".into(),
                display_name: None,
                pipeline: "Soporte".into(),
                owner: None,
                priority: Priority::Medium,
                acknowledge: true,
            },
        );
        c.people.insert(
            "camila".into(),
            Person {
                address: Some("camila@tp.example".into()),
                name: Some("Camila Rojas".into()),
                notify: true,
                role: Default::default(),
                pipelines: Vec::new(),
            },
        );
        c.people.insert(
            "loop".into(),
            Person {
                address: Some("SOPORTE@tp.example".into()),
                name: None,
                notify: true,
                role: Default::default(),
                pipelines: Vec::new(),
            },
        );
        c
    }

    fn facts() -> Facts<'static> {
        Facts {
            subject: "Pedido 75321",
            customer: None,
            pipeline: "Soporte",
            owner: Some("camila"),
            priority: Priority::High,
            due_at: None,
            text: "hola",
        }
    }

    #[test]
    fn owners_with_and_without_addresses() {
        let c = config();
        let mut plan = Plan::new(&c, "soporte", &facts());
        assert_eq!(plan.vars.owner, "Camila Rojas");
        assert_eq!(plan.vars.priority, "alta");
        let mut events = Vec::new();
        plan.notify_owner(&c, "camila", templates::OWNER_NEW, &mut events);
        plan.notify_owner(&c, "alonso", templates::OWNER_NEW, &mut events);
        plan.notify_owner(&c, "loop", templates::OWNER_NEW, &mut events);
        assert_eq!(plan.mails.len(), 1);
        assert_eq!(plan.mails[0].to.0, "camila@tp.example");
        assert_eq!(events.len(), 2);
        assert!(
            events[0].detail.contains("alonso has no address"),
            "{:?}",
            events
        );
        assert!(
            events[1].detail.contains("shared mailboxes"),
            "{:?}",
            events
        );
        plan.notify_extra(
            &c,
            &["camila@tp.example".into(), "jefa@tp.example".into()],
            &mut events,
        );
        assert_eq!(plan.mails.len(), 2);
        let signer = IdSigner::new(b"k");
        let out = plan.compose("T-", 9, &signer, &Templates::builtin());
        assert_eq!(out.len(), 2);
        let back = crate::parse::parse(&out[0].raw, 1 << 20).unwrap();
        assert!(
            back.subject.starts_with("[#T-9] Nuevo ticket"),
            "{}",
            back.subject
        );
        assert_eq!(back.header("Auto-Submitted"), Some("auto-generated"));
        assert_eq!(out[1].kind, "notification");
        // Staff get the higher notification limit, not the customers' 5.
        assert_eq!(out[0].auto_limit_per_hour, Some(60));
    }
}
