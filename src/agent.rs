//! What agents do to tickets from the command line: assign, change state,
//! comment, reply, close. Each action is one store transaction with its
//! history line and, when it mails the customer, its outbox row.

use crate::config::{Config, Response};
use crate::deadline::{Calendar, on_state_change};
use crate::outbound::compose::{self, Auto, AutoSubmitted, Envelope, MailParts, ticket_tag};
use crate::outbound::plan::Plan;
use crate::outbound::templates::{self, Templates, Vars};
use crate::pipeline::domain_of;
use crate::store::{
    Classification, NewEvent, Store, StoreError, Target, TicketDetail, TicketUpdate, now_ms,
};
use crate::thread::{IdSigner, strip_reply_prefixes};
use crate::ticket::{Outcome, State, display_number};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot compose the mail: {0}")]
    Compose(#[from] compose::ComposeError),
    #[error("{0}")]
    Invalid(String),
}

/// An agent acting on tickets, with the deployment it works in.
pub struct Agent<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub signer: IdSigner,
    /// The mail templates (closing message, owner notification).
    pub templates: Templates,
    /// Who is acting (recorded in the history as `agent:NAME`).
    pub name: String,
    /// The working calendar the deadline clocks count in.
    pub calendar: Calendar,
    /// A fixed time for every action (tests); `None`: the real clock.
    pub clock: Option<i64>,
}

impl Agent<'_> {
    fn now(&self) -> i64 {
        self.clock.unwrap_or_else(now_ms)
    }

    /// Writes one change, with what it does to the deadlines: a state
    /// change may pause or resume the clocks, and `answer` says which kind
    /// of answer to the client this is (it may meet the first-response
    /// target, per `deadlines.first_response_met_by`).
    async fn apply(
        &self,
        ticket: i64,
        mut change: TicketUpdate,
        answer: Option<Response>,
    ) -> Result<(), AgentError> {
        if let Some(to) = change.state {
            let state = self
                .store
                .ticket_state(ticket)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket}")))?;
            change.clock = on_state_change(
                &self.calendar,
                &self.config.deadlines,
                &state,
                to,
                change.now,
            );
        }
        change.first_response =
            answer.is_some_and(|a| self.config.deadlines.meets_first_response(a));
        Ok(self.store.update_ticket(ticket, &change).await?)
    }

    fn event(&self, kind: &str, detail: String) -> NewEvent {
        NewEvent {
            actor: format!("agent:{}", self.name),
            kind: kind.into(),
            detail,
        }
    }

    /// Gives the ticket to `owner` and tells them (unless they assigned it
    /// to themselves).
    pub async fn assign(&self, ticket: i64, owner: &str) -> Result<(), AgentError> {
        let detail = self.store.ticket(ticket).await?;
        let before = detail.ticket.owner.clone();
        let mut events = vec![self.event(
            "assigned",
            format!("{} → {owner}", before.as_deref().unwrap_or("-")),
        )];
        let outgoing = if owner == self.name || before.as_deref() == Some(owner) {
            Vec::new()
        } else {
            self.owner_notification(&detail, owner, &mut events)
        };
        let change = TicketUpdate {
            owner: Some(owner.to_string()),
            now: self.now(),
            events,
            outgoing,
            ..TicketUpdate::default()
        };
        self.apply(ticket, change, None).await
    }

    fn owner_notification(
        &self,
        detail: &TicketDetail,
        owner: &str,
        events: &mut Vec<NewEvent>,
    ) -> Vec<crate::store::OutgoingMail> {
        let t = &detail.ticket;
        let last_in = detail.messages.iter().rev().find(|m| m.direction == "in");
        let mut plan = Plan::for_ticket(
            self.config,
            t,
            Some(owner),
            t.due_at,
            last_in.map(|m| m.body_text.as_str()).unwrap_or(""),
        )
        .answering(last_in.and_then(|m| m.message_id.as_deref()), &[]);
        plan.notify_owner(self.config, owner, templates::OWNER_ASSIGNED, events);
        plan.compose(
            &self.config.deployment.ticket_prefix,
            t.number,
            &self.signer,
            &self.templates,
        )
    }

    pub async fn set_state(&self, ticket: i64, state: State) -> Result<(), AgentError> {
        if state == State::Done {
            return Err(AgentError::Invalid(
                "use `buzon tickets close N --outcome success|failure` to finish a ticket".into(),
            ));
        }
        let detail = self.store.ticket(ticket).await?;
        let before = detail.ticket.state.clone();
        let mut change = TicketUpdate {
            state: Some(state),
            now: self.now(),
            events: vec![self.event("state", format!("{before} → {state}"))],
            ..TicketUpdate::default()
        };
        let label = self.calendar.rules().state_label(state);
        self.tell_owner(
            &detail,
            &format!("movió el ticket a «{label}»"),
            "",
            &mut change,
        );
        let answer = (state == State::Open).then_some(Response::Open);
        self.apply(ticket, change, answer).await
    }

    pub async fn comment(&self, ticket: i64, text: &str) -> Result<(), AgentError> {
        let detail = self.store.ticket(ticket).await?;
        let mut change = TicketUpdate {
            now: self.now(),
            events: vec![self.event("comment", text.to_string())],
            ..TicketUpdate::default()
        };
        self.tell_owner(&detail, "agregó un comentario", text, &mut change);
        self.apply(ticket, change, None).await
    }

    /// Mails the requester and participants, threaded under the latest
    /// inbound message; the ticket then waits on the contact.
    pub async fn reply(&self, ticket: i64, body: &str) -> Result<String, AgentError> {
        let detail = self.store.ticket(ticket).await?;
        let before = detail.ticket.state.clone();
        let mail = self.person_mail(&detail, "reply", "Re:", body.to_string())?;
        let message_id = mail.message_id.clone();
        let mut change = TicketUpdate {
            state: Some(State::WaitingOnContact),
            now: self.now(),
            events: vec![
                self.event("reply", format!("to {}", mail.rcpt_to.join(", "))),
                self.event("state", format!("{before} → {}", State::WaitingOnContact)),
            ],
            outgoing: vec![mail],
            ..TicketUpdate::default()
        };
        self.tell_owner(&detail, "respondió al cliente", body, &mut change);
        self.apply(ticket, change, Some(Response::Reply)).await?;
        Ok(message_id)
    }

    /// Mails a "novedad" (case update) to the client and the ticket's
    /// additional recipients, threaded; the state does not change.
    pub async fn update(&self, ticket: i64, body: &str) -> Result<String, AgentError> {
        let detail = self.store.ticket(ticket).await?;
        let mail = self.person_mail(&detail, "update", "Novedad en su caso:", body.to_string())?;
        let message_id = mail.message_id.clone();
        let mut change = TicketUpdate {
            now: self.now(),
            events: vec![self.event("update", format!("novedad to {}", mail.rcpt_to.join(", ")))],
            outgoing: vec![mail],
            ..TicketUpdate::default()
        };
        self.tell_owner(&detail, "envió una novedad al cliente", body, &mut change);
        self.apply(ticket, change, Some(Response::Update)).await?;
        Ok(message_id)
    }

    /// Asks the client for documents: the items are mailed as a list and
    /// kept on the ticket as a checklist; the ticket waits on the client.
    pub async fn request_documents(
        &self,
        ticket: i64,
        items: &[String],
        note: Option<&str>,
    ) -> Result<String, AgentError> {
        let items: Vec<String> = items
            .iter()
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .collect();
        if items.is_empty() {
            return Err(AgentError::Invalid(
                "name at least one document: --item \"poder notarial\"".into(),
            ));
        }
        let detail = self.store.ticket(ticket).await?;
        let mut body =
            String::from("Hola:\n\nPara continuar con su caso necesitamos que nos envíe:\n\n");
        for item in &items {
            body.push_str(&format!("  - {item}\n"));
        }
        if let Some(note) = note {
            body.push_str(&format!("\n{note}\n"));
        }
        body.push_str(&format!(
            "\nPuede responder a este correo adjuntando los documentos.\n\nSaludos cordiales,\n{}\n",
            self.config.deployment.name
        ));
        let mail = self.person_mail(
            &detail,
            "document_request",
            "Solicitud de documentos:",
            body,
        )?;
        let message_id = mail.message_id.clone();
        let before = detail.ticket.state.clone();
        let mut change = TicketUpdate {
            state: Some(State::WaitingOnContact),
            request_items: items.clone(),
            now: self.now(),
            events: vec![
                self.event("documents_requested", items.join("; ")),
                self.event("state", format!("{before} → {}", State::WaitingOnContact)),
            ],
            outgoing: vec![mail],
            ..TicketUpdate::default()
        };
        let asked = items.join("\n");
        self.tell_owner(&detail, "pidió documentos al cliente", &asked, &mut change);
        self.apply(ticket, change, Some(Response::Request)).await?;
        Ok(message_id)
    }

    /// Marks a requested document as received.
    pub async fn received(&self, ticket: i64, item: &str) -> Result<(), AgentError> {
        let change = TicketUpdate {
            received_item: Some(item.to_string()),
            now: self.now(),
            events: vec![self.event("document_received", item.to_string())],
            ..TicketUpdate::default()
        };
        self.apply(ticket, change, None).await
    }

    /// Reclassifies a ticket (seed 004: "clasificar", "marcar como Alta"):
    /// priority, type, category, area, pipeline, the team's fields. Types
    /// and field values are checked against the rule files' vocabulary.
    /// The deadlines stay as they are (`tickets due` moves them).
    pub async fn classify(
        &self,
        ticket: i64,
        mut change: Classification,
        set_fields: &[(String, String)],
    ) -> Result<(), AgentError> {
        check_vocabulary(self.calendar.rules(), &change, set_fields)
            .map_err(AgentError::Invalid)?;
        let detail = self.store.ticket(ticket).await?;
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
            Some(&t.priority),
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
            for (name, value) in set_fields {
                was(name, t.fields.get(name).map(String::as_str), Some(value));
                fields.insert(name.clone(), value.clone());
            }
            change.fields = Some(fields);
        }
        if said.is_empty() {
            return Err(AgentError::Invalid(
                "nothing to change: give --priority, --type, --category, --area, --pipeline or --field NAME=VALUE with a new value".into(),
            ));
        }
        let mut update = TicketUpdate {
            classify: Some(change),
            now: self.now(),
            events: vec![self.event("classified", said.join("; "))],
            ..TicketUpdate::default()
        };
        self.tell_owner(
            &detail,
            "reclasificó el ticket",
            &said.join("\n"),
            &mut update,
        );
        self.apply(ticket, update, None).await
    }

    /// Moves a deadline by hand ("Fecha Límite"): `at` is the new due time.
    pub async fn set_due(&self, ticket: i64, target: Target, at: i64) -> Result<(), AgentError> {
        let when = crate::view::local_time(at, self.calendar.time_zone());
        let change = TicketUpdate {
            due: Some((target, at)),
            now: self.now(),
            events: vec![self.event("due", format!("{} due {when}", target.as_str()))],
            ..TicketUpdate::default()
        };
        self.apply(ticket, change, None).await
    }

    /// Makes a ticket internal (hidden from the client: nothing is mailed
    /// to them) or visible again.
    pub async fn set_internal(&self, ticket: i64, internal: bool) -> Result<(), AgentError> {
        let change = TicketUpdate {
            internal: Some(internal),
            now: self.now(),
            events: vec![
                self.event(
                    "visibility",
                    if internal {
                        "internal: hidden from the client"
                    } else {
                        "visible to the client"
                    }
                    .into(),
                ),
            ],
            ..TicketUpdate::default()
        };
        self.apply(ticket, change, None).await
    }

    /// Finishes a ticket with an outcome and tells the contact ("finalizar").
    pub async fn close(
        &self,
        ticket: i64,
        outcome: Outcome,
        note: Option<&str>,
    ) -> Result<(), AgentError> {
        let detail = self.store.ticket(ticket).await?;
        let vars = Vars {
            note: note.unwrap_or("").to_string(),
            outcome: match outcome {
                Outcome::Success => "finalizada con éxito",
                Outcome::Failure => "finalizada sin éxito",
            }
            .into(),
            ..self.ticket_vars(&detail)
        };
        let mut events = vec![self.event(
            "closed",
            format!("{} ({})", outcome.as_str(), note.unwrap_or("")),
        )];
        let mut outgoing = Vec::new();
        if detail.ticket.internal {
            events.push(self.event(
                "mail_withheld",
                "internal ticket: the client is not told".into(),
            ));
        } else if detail.ticket.requester.is_some() {
            let auto = Auto {
                submitted: AutoSubmitted::Generated,
                limit_per_hour: self.config.outbox.auto_reply_limit_per_hour,
            };
            let references = thread_ids(&detail);
            let envelope = self.envelope_to_contact(&detail, &references, "closing", Some(auto))?;
            outgoing.push(compose::from_template(
                &self.templates,
                templates::CLOSING,
                &vars,
                envelope,
            )?);
        } else {
            events.push(self.event("ack_withheld", "the ticket has no contact address".into()));
        }
        let mut change = TicketUpdate {
            state: Some(State::Done),
            outcome: Some(outcome),
            now: self.now(),
            events,
            outgoing,
            ..TicketUpdate::default()
        };
        let activity = format!("finalizó el ticket ({})", vars.outcome);
        self.tell_owner(&detail, &activity, note.unwrap_or(""), &mut change);
        self.apply(ticket, change, None).await
    }

    /// Tells the ticket's owner that someone else acted on it (seed 001:
    /// the owner is notified when a request is executed or finished, a
    /// comment is added or a mail sent). Not when the owner acted, and not
    /// when the ticket has no owner.
    fn tell_owner(
        &self,
        detail: &TicketDetail,
        activity: &str,
        text: &str,
        change: &mut TicketUpdate,
    ) {
        let t = &detail.ticket;
        let Some(owner) = t.owner.as_deref().filter(|o| *o != self.name) else {
            return;
        };
        let mut plan = Plan::for_ticket(self.config, t, Some(owner), t.due_at, text);
        plan.vars.actor = crate::outbound::plan::owner_name(self.config, &self.name);
        plan.vars.activity = activity.to_string();
        plan.notify_owner(
            self.config,
            owner,
            templates::OWNER_ACTIVITY,
            &mut change.events,
        );
        change.outgoing.extend(plan.compose(
            &self.config.deployment.ticket_prefix,
            t.number,
            &self.signer,
            &self.templates,
        ));
    }

    /// What a template may say about a ticket (the closing message, an
    /// agent's reply written from a template).
    fn ticket_vars(&self, detail: &TicketDetail) -> Vars {
        let t = &detail.ticket;
        let number = display_number(&self.config.deployment.ticket_prefix, t.number);
        let tz = self.calendar.time_zone();
        Vars {
            tag: ticket_tag(&number),
            ticket: number,
            subject: strip_reply_prefixes(&t.subject).to_string(),
            name: t.requester_name.clone().unwrap_or_default(),
            customer: t.requester.clone().unwrap_or_default(),
            pipeline: t.pipeline.clone(),
            owner: t
                .owner
                .as_deref()
                .map(|o| crate::outbound::plan::owner_name(self.config, o))
                .unwrap_or_default(),
            priority: templates::priority_label(t.priority.parse().unwrap_or_default()).into(),
            due: t
                .due_at
                .map(|d| templates::spanish_date(d, tz))
                .unwrap_or_default(),
            team: self.config.deployment.name.clone(),
            ..Vars::default()
        }
    }

    /// The body of a reply or update written from a template (seed 000's
    /// "plantillas"): its text part, filled in for this ticket. The
    /// template's `Subject:` line is not used; the mail keeps the ticket's
    /// subject so the answer stays in the thread.
    pub async fn template_body(
        &self,
        ticket: i64,
        name: &str,
        note: Option<&str>,
    ) -> Result<String, AgentError> {
        if !self.templates.contains(name) {
            let known: Vec<String> = self.templates.names().into_iter().collect();
            return Err(AgentError::Invalid(format!(
                "no template '{name}': write one of {} (files NAME.txt in templates.dir)",
                known.join(", ")
            )));
        }
        let detail = self.store.ticket(ticket).await?;
        let vars = Vars {
            note: note.unwrap_or("").to_string(),
            ..self.ticket_vars(&detail)
        };
        self.templates
            .render(name, &vars)
            .map(|r| r.text)
            .map_err(|e| AgentError::Invalid(e.to_string()))
    }

    /// An agent's mail to the contact: subject `PREFIX <subject> [#T-N]`,
    /// threaded, without the automatic-mail headers (a person wrote it).
    fn person_mail(
        &self,
        detail: &TicketDetail,
        kind: &str,
        prefix: &str,
        body: String,
    ) -> Result<crate::store::OutgoingMail, AgentError> {
        let number = display_number(&self.config.deployment.ticket_prefix, detail.ticket.number);
        let subject = format!(
            "{prefix} {} {}",
            strip_reply_prefixes(&detail.ticket.subject),
            ticket_tag(&number)
        );
        let references = thread_ids(detail);
        let envelope = self.envelope_to_contact(detail, &references, kind, None)?;
        Ok(compose::build(MailParts {
            envelope,
            subject,
            body,
            html: None,
        })?)
    }

    /// To the requester and participants, threaded under the latest
    /// inbound message, from the ticket's mailbox.
    fn envelope_to_contact<'d>(
        &'d self,
        detail: &'d TicketDetail,
        references: &'d [String],
        kind: &'d str,
        auto: Option<Auto>,
    ) -> Result<Envelope<'d>, AgentError> {
        let t = &detail.ticket;
        if t.internal {
            return Err(AgentError::Invalid(format!(
                "{} is internal: nothing is mailed to the client (`buzon tickets internal N --off` to change that)",
                display_number(&self.config.deployment.ticket_prefix, t.number)
            )));
        }
        let mailbox = self
            .config
            .mailbox(&t.mailbox)
            .map_err(AgentError::Invalid)?;
        let mut to: Vec<(String, Option<String>)> = Vec::new();
        if let Some(r) = &t.requester {
            to.push((r.clone(), t.requester_name.clone()));
        }
        for p in &detail.participants {
            if !self.config.is_own_address(&p.address) && !to.iter().any(|(a, _)| *a == p.address) {
                to.push((p.address.clone(), p.name.clone()));
            }
        }
        if to.is_empty() {
            return Err(AgentError::Invalid(
                "the ticket has no contact address".into(),
            ));
        }
        let last_in = detail.messages.iter().rev().find(|m| m.direction == "in");
        Ok(Envelope {
            kind,
            message_id: self.signer.new_id(domain_of(&mailbox.address)),
            from_address: &mailbox.address,
            from_name: mailbox
                .display_name
                .as_deref()
                .unwrap_or(&self.config.deployment.name),
            to,
            in_reply_to: last_in.and_then(|m| m.message_id.as_deref()),
            references,
            auto,
        })
    }
}

/// Types and field values must be the rule files' own (when they define
/// any): a typo would otherwise split the reports.
fn check_vocabulary(
    rules: &crate::rules::RuleSet,
    change: &Classification,
    fields: &[(String, String)],
) -> Result<(), String> {
    let types = rules.type_names();
    if let Some(ty) = &change.ticket_type
        && !types.is_empty()
        && !types.contains(&ty.as_str())
    {
        return Err(format!(
            "unknown type '{ty}': write one of {}",
            quoted(&types)
        ));
    }
    let names = rules.field_names();
    for (name, value) in fields {
        if !names.is_empty() && !names.contains(&name.as_str()) {
            return Err(format!(
                "unknown field '{name}': the rule files define {}",
                quoted(&names)
            ));
        }
        if let Some(values) = rules.field_values(name)
            && !values.is_empty()
            && !values.contains(value)
        {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            return Err(format!(
                "'{value}' is not a value of {name}: write one of {}",
                quoted(&values)
            ));
        }
    }
    Ok(())
}

fn quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every Message-ID of the ticket, oldest first: the `References` chain of
/// our mails to the contact.
fn thread_ids(detail: &TicketDetail) -> Vec<String> {
    detail
        .messages
        .iter()
        .filter_map(|m| m.message_id.clone())
        .collect()
}
