//! Which automatic mails an event on a ticket sends, to whom, and, when one
//! is not sent, the history line that says why. Pure.
//!
//! The pipeline (a new ticket, a customer's answer: see [`Planner`]) and
//! the agent commands (assign, close) describe the event; this module picks
//! the recipients (the customer, the owner, the rules' extra addresses),
//! refuses the ones that must not be written to (robots, our own shared
//! mailboxes: a loop in the making), and composes the mails once the ticket
//! number is known, inside the ticket's transaction.

use super::compose::{self, Auto, AutoSubmitted, Envelope};
use super::templates::{self, Templates, Vars};
use crate::classify::{Automatic, unattended_address};
use crate::config::Config;
use crate::parse::{MailAddress, ParsedMail};
use crate::route::Route;
use crate::thread::{IdSigner, TagMatcher};
use crate::ticket::{
    EventKind, NewEvent, OutgoingMail, Priority, TicketRow, TicketState, display_number,
};

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
                    .and_then(|o| mail_owner_name(config, o))
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
                format!("aviso {template} a {owner} no enviado: {address} es uno de nuestros buzones compartidos (volvería como un correo nuevo)"),
            )),
            Ok((address, name)) => self.mails.push(PlannedMail {
                kind,
                template: template.to_string(),
                to: (address.to_string(), name.map(str::to_string)),
                submitted: AutoSubmitted::Generated,
                person: Some(owner.to_string()),
            }),
            Err(why) => events.push(withheld(format!(
                "aviso {template} a {owner} no enviado: {why}"
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
                    "{kind} a {address} no enviado: es uno de nuestros buzones compartidos (volvería como un correo nuevo)"
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

/// A mail that arrived, as planning sees it.
#[derive(Clone, Copy)]
pub struct Incoming<'a> {
    /// The mailbox it arrived in (a `[mailboxes.NAME]`).
    pub mailbox: &'a str,
    pub mail: &'a ParsedMail,
    /// What `classify` found, when the mail is automatic.
    pub automatic: Option<&'a Automatic>,
}

/// Plans the automatic mails of the pipeline's events: a new ticket (the
/// acknowledgement, the owner's and the rules' notifications) and a
/// customer's answer (the owner's notification).
#[derive(Clone, Copy)]
pub struct Planner<'a> {
    pub config: &'a Config,
    /// The templates there are (a rule may name one that is not).
    pub templates: &'a Templates,
    /// Ticket tags, kept out of the subjects the mails echo.
    pub tags: &'a TagMatcher,
}

impl Planner<'_> {
    /// The acknowledgement of a new ticket, promising an answer by
    /// `due_at`; when it is withheld, the history line that says why.
    pub fn acknowledgement(
        &self,
        incoming: Incoming<'_>,
        route: &Route,
        due_at: Option<i64>,
        events: &mut Vec<NewEvent>,
    ) -> Plan {
        let mail = incoming.mail;
        let requester = requester(mail);
        let mut plan = Plan::new(
            self.config,
            incoming.mailbox,
            &Facts {
                subject: &self.tags.strip(&mail.subject),
                customer: requester.as_ref(),
                pipeline: &route.pipeline,
                owner: route.owner.as_deref(),
                priority: route.priority,
                due_at,
                text: &mail.text,
            },
        )
        .answering(mail.message_id.as_deref(), &mail.references);
        match self.acknowledgement_to(requester, incoming.automatic, route) {
            Ok(ack) => plan.mails.push(ack),
            Err(why) => events.push(NewEvent::system(EventKind::AckWithheld, why)),
        }
        plan
    }

    /// The acknowledgement to `requester`, or why there is none.
    fn acknowledgement_to(
        &self,
        requester: Option<MailAddress>,
        automatic: Option<&Automatic>,
        route: &Route,
    ) -> Result<PlannedMail, String> {
        let Some(template) = route.ack_template.clone() else {
            return Err("no hay acuse de recibo configurado para este correo".into());
        };
        if let Some(auto) = automatic {
            return Err(format!(
                "un correo automático ({}) nunca se responde",
                auto.kind.as_str()
            ));
        }
        let Some(requester) = requester else {
            return Err("el correo no tiene dirección de remitente".into());
        };
        if self.config.is_own_address(&requester.address) {
            return Err(format!(
                "{} es una de nuestras propias direcciones",
                requester.address
            ));
        }
        if let Some(why) = unattended_address(&requester.address) {
            return Err(format!("la respuesta iría a {why}"));
        }
        compose::check_address(&requester.address)?;
        if !self.templates.contains(&template) {
            return Err(format!("plantilla de correo desconocida '{template}'"));
        }
        Ok(PlannedMail {
            kind: "acknowledgement",
            template,
            to: (requester.address, requester.name),
            submitted: AutoSubmitted::Replied,
            person: None,
        })
    }

    /// The owner's and the rules' extra notifications for a new ticket.
    /// Automatic mail does not tell the owner (bounces and newsletters are
    /// not news); a rule that wants someone told names them in `notify`.
    pub fn notifications(
        &self,
        plan: &mut Plan,
        automatic: Option<&Automatic>,
        route: &Route,
        events: &mut Vec<NewEvent>,
    ) {
        if let Some(owner) = &route.owner
            && automatic.is_none()
        {
            plan.notify_owner(self.config, owner, templates::OWNER_NEW, events);
        }
        plan.notify_extra(self.config, &route.notify, events);
    }

    /// Tells the ticket's owner that the customer answered. Only a
    /// person's answer is news for the owner: robots and staff writing to
    /// the shared mailbox are not (an empty plan).
    pub fn answer_notification(
        &self,
        incoming: Incoming<'_>,
        ticket: &TicketState,
        events: &mut Vec<NewEvent>,
    ) -> Plan {
        let mail = incoming.mail;
        let sender = mail.from.as_ref().map_or("", |f| f.address.as_str());
        let from_us = self.config.is_own_address(sender);
        if incoming.automatic.is_some() || from_us {
            return Plan::default();
        }
        // The ticket's mailbox, unless it is no longer configured.
        let mailbox = if self.config.mailboxes.contains_key(&ticket.mailbox) {
            &ticket.mailbox
        } else {
            incoming.mailbox
        };
        let mut plan = Plan::new(
            self.config,
            mailbox,
            &Facts {
                subject: &self.tags.strip(&ticket.subject),
                customer: mail.from.as_ref(),
                pipeline: &ticket.pipeline,
                owner: ticket.owner.as_deref(),
                priority: ticket.priority,
                due_at: None,
                text: &mail.text,
            },
        )
        .answering(mail.message_id.as_deref(), &mail.references);
        if let Some(owner) = &ticket.owner {
            plan.notify_owner(self.config, owner, templates::OWNER_REPLY, events);
        }
        plan
    }
}

/// Whom an answer goes to: Reply-To when there is one, else From; a
/// Reply-To without a display name still greets the person named in From.
fn requester(mail: &ParsedMail) -> Option<MailAddress> {
    mail.reply_to
        .clone()
        .or_else(|| mail.from.clone())
        .map(|mut r| {
            if r.name.is_none() {
                r.name = mail.from.as_ref().and_then(|f| f.name.clone());
            }
            r
        })
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

/// The owner as mail names them: their `[people.NAME] name`, or nothing
/// (the templates then leave the sentence out), never the internal id a
/// customer would read as "La atenderá camila.".
pub fn mail_owner_name(config: &Config, owner: &str) -> Option<String> {
    config
        .people
        .get(owner)
        .and_then(|p| p.name.clone())
        .filter(|n| !n.trim().is_empty())
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
            events[0].detail.contains("alonso no tiene dirección"),
            "{:?}",
            events
        );
        assert!(
            events[1].detail.contains("buzones compartidos"),
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

    /// What a `Planner` borrows besides the configuration.
    struct Parts {
        templates: Templates,
        tags: TagMatcher,
    }

    impl Parts {
        fn new() -> Parts {
            Parts {
                templates: Templates::builtin(),
                tags: TagMatcher::new("T-").unwrap(),
            }
        }

        fn planner<'a>(&'a self, config: &'a Config) -> Planner<'a> {
            Planner {
                config,
                templates: &self.templates,
                tags: &self.tags,
            }
        }
    }

    /// A mail as parsed, from its header lines.
    fn mail(headers: &str) -> ParsedMail {
        let raw = format!("{headers}Message-ID: <m1@cliente.example>\r\n\r\nHola\r\n");
        crate::parse::parse(raw.as_bytes(), 1 << 20).unwrap()
    }

    fn route(c: &Config) -> Route {
        let decision = crate::route::Decision {
            owner: Some("camila".into()),
            ..Default::default()
        };
        decision.complete("soporte", &c.mailboxes["soporte"])
    }

    fn incoming<'a>(mail: &'a ParsedMail, automatic: Option<&'a Automatic>) -> Incoming<'a> {
        Incoming {
            mailbox: "soporte",
            mail,
            automatic,
        }
    }

    /// The acknowledgement planned for `mail`, or the reason it is withheld.
    fn acknowledge(
        c: &Config,
        mail: &ParsedMail,
        automatic: Option<&Automatic>,
        route: &Route,
    ) -> Result<PlannedMail, String> {
        let parts = Parts::new();
        let planner = parts.planner(c);
        let mut events = Vec::new();
        let mut plan = planner.acknowledgement(incoming(mail, automatic), route, None, &mut events);
        match (plan.mails.pop(), events.as_slice()) {
            (Some(ack), []) if plan.mails.is_empty() => Ok(ack),
            (None, [why]) if why.kind == EventKind::AckWithheld => Err(why.detail.clone()),
            other => panic!("one mail or one reason expected: {other:?}"),
        }
    }

    #[test]
    fn the_acknowledgement_goes_to_reply_to_greeting_the_sender() {
        let c = config();
        let m = mail(
            "From: Ana Pérez <ana@cliente.example>\r\nReply-To: pedidos@cliente.example\r\nSubject: RE: [#T-3] Pedido\r\n",
        );
        let ack = acknowledge(&c, &m, None, &route(&c)).unwrap();
        assert_eq!(ack.kind, "acknowledgement");
        assert_eq!(ack.template, templates::ACKNOWLEDGEMENT);
        assert_eq!(
            ack.to,
            ("pedidos@cliente.example".into(), Some("Ana Pérez".into()))
        );
        assert_eq!(ack.submitted, AutoSubmitted::Replied);
    }

    #[test]
    fn the_acknowledgement_is_withheld_and_the_history_says_why() {
        let c = config();
        let r = route(&c);
        let person = mail("From: ana@cliente.example\r\nSubject: Pedido\r\n");
        let robot = Automatic {
            kind: crate::classify::AutoKind::AutoReply,
            reason: "Auto-Submitted: auto-replied".into(),
        };
        let why = acknowledge(&c, &person, Some(&robot), &r).unwrap_err();
        assert_eq!(why, "un correo automático (autoreply) nunca se responde");

        let nobody = mail("Subject: Pedido\r\n");
        let why = acknowledge(&c, &nobody, None, &r).unwrap_err();
        assert_eq!(why, "el correo no tiene dirección de remitente");

        let ours = mail("From: Soporte@tp.example\r\nSubject: Pedido\r\n");
        let why = acknowledge(&c, &ours, None, &r).unwrap_err();
        assert_eq!(
            why,
            "soporte@tp.example es una de nuestras propias direcciones"
        );

        let daemon = mail(
            "From: ana@cliente.example\r\nReply-To: postmaster@cliente.example\r\nSubject: x\r\n",
        );
        let why = acknowledge(&c, &daemon, None, &r).unwrap_err();
        assert!(why.starts_with("la respuesta iría a postmaster@"), "{why}");

        let mut unknown = r.clone();
        unknown.ack_template = Some("gracias".into());
        let why = acknowledge(&c, &person, None, &unknown).unwrap_err();
        assert_eq!(why, "plantilla de correo desconocida 'gracias'");

        let mut none = r.clone();
        none.ack_template = None;
        let why = acknowledge(&c, &person, None, &none).unwrap_err();
        assert_eq!(why, "no hay acuse de recibo configurado para este correo");

        // A robot is never answered, whatever else is wrong.
        let why = acknowledge(&c, &nobody, Some(&robot), &r).unwrap_err();
        assert!(why.starts_with("un correo automático"), "{why}");
    }

    #[test]
    fn new_tickets_of_robots_tell_only_the_rules_extra_addresses() {
        let c = config();
        let parts = Parts::new();
        let planner = parts.planner(&c);
        let mut r = route(&c);
        r.notify = vec!["jefa@tp.example".into()];
        let robot = Automatic {
            kind: crate::classify::AutoKind::Bounce,
            reason: "multipart/report".into(),
        };
        let to = |automatic: Option<&Automatic>| {
            let mut plan = Plan::default();
            let mut events = Vec::new();
            planner.notifications(&mut plan, automatic, &r, &mut events);
            assert!(events.is_empty(), "{events:?}");
            plan.mails.into_iter().map(|m| m.to.0).collect::<Vec<_>>()
        };
        assert_eq!(to(None), ["camila@tp.example", "jefa@tp.example"]);
        assert_eq!(to(Some(&robot)), ["jefa@tp.example"]);
    }

    #[test]
    fn only_a_persons_answer_tells_the_owner() {
        let c = config();
        let parts = Parts::new();
        let planner = parts.planner(&c);
        let ticket = TicketState {
            state: crate::ticket::State::WaitingOnContact,
            closed_at: None,
            requester: Some("ana@cliente.example".into()),
            subject: "[#T-3] Pedido".into(),
            owner: Some("camila".into()),
            pipeline: "Soporte".into(),
            priority: Priority::High,
            // A mailbox no longer configured: the mail comes from the one
            // the answer arrived in.
            mailbox: "antiguo".into(),
            deadlines: Default::default(),
            first_response_at: None,
            paused_at: None,
        };
        let answer = mail("From: ana@cliente.example\r\nSubject: RE: [#T-3] Pedido\r\n");
        let mut events = Vec::new();
        let plan = planner.answer_notification(incoming(&answer, None), &ticket, &mut events);
        assert_eq!(plan.mails.len(), 1);
        assert_eq!(plan.mails[0].to.0, "camila@tp.example");
        assert_eq!(plan.mails[0].template, templates::OWNER_REPLY);
        assert_eq!(plan.from_address, "soporte@tp.example");
        assert_eq!(plan.vars.subject, "Pedido");
        assert_eq!(plan.in_reply_to.as_deref(), Some("m1@cliente.example"));

        let robot = Automatic {
            kind: crate::classify::AutoKind::AutoReply,
            reason: "x".into(),
        };
        let plan =
            planner.answer_notification(incoming(&answer, Some(&robot)), &ticket, &mut events);
        assert!(plan.mails.is_empty());
        let staff = mail("From: camila@tp.example\r\nSubject: RE: [#T-3] Pedido\r\n");
        let mut c2 = config();
        c2.deployment.our_domains = vec!["tp.example".into()];
        let plan = Planner {
            config: &c2,
            ..planner
        }
        .answer_notification(incoming(&staff, None), &ticket, &mut events);
        assert!(plan.mails.is_empty());
        assert!(events.is_empty(), "{events:?}");
    }
}
