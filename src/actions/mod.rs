//! The action layer: everything a person does to tickets, for every front
//! end (the command line today; the web workspace, agents' mail and the API
//! call the same functions). Each action resolves who is acting, checks
//! the permission (`permission::check`, the one place), does the work in
//! one store transaction with its history lines and the mails it sends
//! (outbox), and returns what it did (`Done`).
//!
//! Front ends parse their input into these calls and print the result;
//! they hold no rule of their own.

mod assign;
mod classify;
mod create;
mod documents;
mod done;
mod due;
mod mail;
mod note;
pub mod people;
pub mod permission;
mod state;
mod tell;
pub mod words;

use std::sync::Arc;

pub use create::NewRequest;
pub use done::{Change, Done, Queued};
pub use due::local_instant;
pub use permission::{Action, Denied, Staff};

use crate::config::{Config, Response};
use crate::deadline::{Calendar, on_state_change};
use crate::live::Snapshot;
use crate::outbound::compose;
use crate::outbound::compose::ticket_tag;
use crate::outbound::plan::{Plan, mail_owner_name, owner_name};
use crate::outbound::templates::{self, Templates, Vars};
use crate::pipeline::{Pipeline, PipelineError, load_rules};
use crate::rules::RuleSet;
use crate::store::{JobStep, Store, StoreError, TicketUpdate, now_ms};
use crate::thread::{IdSigner, strip_reply_prefixes};
use crate::ticket::{
    Actor, EventKind, MessageView, NewEvent, OutgoingMail, State, TicketDetail, TicketRow,
    display_number,
};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The person may not do that (see `permission`).
    #[error("{0}")]
    Denied(Denied),
    /// Who is acting, or who a ticket is given to, is not a person of
    /// `[people]`.
    #[error("{0}")]
    UnknownPerson(String),
    /// The request does not make sense as written (an unknown state, a
    /// missing text); the message says what to write instead.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compose(#[from] compose::ComposeError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl From<Denied> for ActionError {
    fn from(d: Denied) -> Self {
        ActionError::Denied(d)
    }
}

/// A person acting on tickets, with what the deployment needs for it: the
/// rules (vocabulary, business hours), the templates and the signer of our
/// Message-IDs. Built without a whole `Pipeline`; `create` makes one from
/// these parts when it needs the routing.
pub struct Agent<'a> {
    config: &'a Config,
    store: &'a Store,
    signer: IdSigner,
    templates: Templates,
    rules: Arc<RuleSet>,
    calendar: Calendar,
    /// Who is acting: a person of `[people]`.
    me: Staff,
    /// A fixed time for every action (tests); `None`: the real clock.
    clock: Option<i64>,
    /// The step of an agent's mail this action carries out (`mailroom`):
    /// counted in the action's transaction, refused if already counted.
    step: Option<JobStep>,
}

impl<'a> Agent<'a> {
    /// The person `actor` (their key or name in `[people]`) acting on the
    /// deployment's tickets. Anyone else is refused with the list of people.
    pub async fn open(
        config: &'a Config,
        store: &'a Store,
        actor: &str,
    ) -> Result<Self, ActionError> {
        let rules = Arc::new(load_rules(config)?);
        let me = people::find(config, actor).map_err(ActionError::UnknownPerson)?;
        let key = store.message_id_key().await?;
        let templates =
            Templates::load(config.templates.dir.as_deref()).map_err(PipelineError::from)?;
        Ok(Self::with_parts(
            config,
            store,
            IdSigner::new(key.as_bytes()),
            templates,
            rules,
            me,
        ))
    }

    /// The person `actor` acting with the daemon's snapshot in force: its
    /// people, rules and templates (not read again from disk).
    pub fn with_snapshot(
        snap: &'a Snapshot,
        store: &'a Store,
        actor: &str,
    ) -> Result<Self, ActionError> {
        let me = people::find(&snap.config, actor).map_err(ActionError::UnknownPerson)?;
        Ok(Self::with_parts(
            &snap.config,
            store,
            snap.signer.clone(),
            snap.templates.clone(),
            snap.rules.clone(),
            me,
        ))
    }

    /// The person `actor` acting with a pipeline's parts (its rules,
    /// templates and signer): the daemon and tests have one already.
    pub fn from_pipeline(
        config: &'a Config,
        store: &'a Store,
        pipeline: &Pipeline<'_>,
        actor: &str,
    ) -> Result<Self, ActionError> {
        let me = people::find(config, actor).map_err(ActionError::UnknownPerson)?;
        Ok(Self::with_parts(
            config,
            store,
            pipeline.signer().clone(),
            pipeline.templates().clone(),
            pipeline.rules().clone(),
            me,
        ))
    }

    fn with_parts(
        config: &'a Config,
        store: &'a Store,
        signer: IdSigner,
        templates: Templates,
        rules: Arc<RuleSet>,
        me: Staff,
    ) -> Self {
        let tz = config.deployment.zone.clone();
        Agent {
            config,
            store,
            signer,
            templates,
            calendar: Calendar::new(rules.clone(), tz),
            rules,
            me,
            clock: None,
            step: None,
        }
    }

    /// The same person carrying out one step of their mail.
    pub fn for_step(&self, step: JobStep) -> Agent<'a> {
        Agent {
            config: self.config,
            store: self.store,
            signer: self.signer.clone(),
            templates: self.templates.clone(),
            rules: self.rules.clone(),
            calendar: self.calendar.clone(),
            me: self.me.clone(),
            clock: self.clock,
            step: Some(step),
        }
    }

    /// The same person acting at a fixed time (tests control the clock).
    pub fn at(mut self, now: i64) -> Self {
        self.clock = Some(now);
        self
    }

    /// The configuration acted under (its people, mailboxes' defaults).
    pub fn config(&self) -> &Config {
        self.config
    }

    /// Who is acting.
    pub fn me(&self) -> &Staff {
        &self.me
    }

    /// The rule set: the team's words for states and priorities, types,
    /// fields.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn time_zone(&self) -> &jiff::tz::TimeZone {
        self.calendar.time_zone()
    }

    /// The ticket as people write it (`GF-5`).
    pub fn number(&self, ticket: i64) -> String {
        display_number(&self.config.deployment.ticket_prefix, ticket)
    }

    fn now(&self) -> i64 {
        self.clock.unwrap_or_else(now_ms)
    }

    /// Reads a ticket for `action`, refused unless the person may do it.
    pub async fn load(&self, ticket: i64, action: Action) -> Result<TicketDetail, ActionError> {
        let detail = self.store.ticket(ticket).await?;
        self.permit(action, &detail.ticket)?;
        Ok(detail)
    }

    /// Whether the person may do `action` on `t`: front ends show only
    /// what this allows (and the action checks again).
    pub fn may(&self, action: Action, t: &TicketRow) -> bool {
        self.permit(action, t).is_ok()
    }

    /// The team's mail templates, for agents to write from.
    pub fn template_names(&self) -> Vec<String> {
        self.templates.names().into_iter().collect()
    }

    /// The permission check for `action` on `t`.
    fn permit(&self, action: Action, t: &TicketRow) -> Result<(), Denied> {
        let number = self.number(t.number);
        let owner = t.owner.as_deref().map(|o| (o, owner_name(self.config, o)));
        permission::check(
            &self.me,
            action,
            &permission::Subject {
                number: &number,
                owner: owner.as_ref().map(|(id, name)| (*id, name.as_str())),
                pipeline: &t.pipeline,
            },
        )
    }

    /// Writes one change in one transaction, with what it does to the
    /// deadlines: a state change may pause or resume the clocks, and
    /// `answer` says which kind of answer to the client this is (it may
    /// meet the first-response target, per `deadlines.first_response_met_by`).
    async fn apply(
        &self,
        detail: &TicketDetail,
        mut change: TicketUpdate,
        answer: Option<Response>,
        changes: Vec<Change>,
    ) -> Result<Done, ActionError> {
        let ticket = detail.ticket.number;
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
        change.step = self.step.clone();
        if change.guard_owner {
            change.owner_was = Some(detail.ticket.owner.clone());
        }
        let queued = Queued::of(&change.outgoing);
        self.store.update_ticket(ticket, &change).await?;
        Ok(Done {
            ticket,
            number: self.number(ticket),
            changes,
            queued,
        })
    }

    /// A change at the action's time with its first history line.
    /// A change whose permission rests on who owns the ticket (an agent
    /// acting on their own, or taking an unowned one): it is written only if
    /// the owner is still the one the check saw, so that two agents acting
    /// at once cannot both pass. Admins' changes are not guarded.
    fn owned_change(&self, kind: EventKind, detail: String) -> TicketUpdate {
        TicketUpdate {
            guard_owner: !self.me.is_admin(),
            ..self.change(kind, detail)
        }
    }

    fn change(&self, kind: EventKind, detail: String) -> TicketUpdate {
        TicketUpdate {
            now: self.now(),
            events: vec![self.event(kind, detail)],
            ..TicketUpdate::default()
        }
    }

    fn event(&self, kind: EventKind, detail: String) -> NewEvent {
        NewEvent {
            actor: Actor::Agent(self.me.id.clone()),
            kind,
            detail,
        }
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
        let Some(owner) = t.owner.as_deref().filter(|o| *o != self.me.id) else {
            return;
        };
        let mut plan = Plan::for_ticket(self.config, t, Some(owner), t.due_at, text);
        plan.vars.actor = self.me.name.clone();
        plan.vars.activity = activity.to_string();
        plan.notify_owner(
            self.config,
            owner,
            templates::OWNER_ACTIVITY,
            &mut change.events,
        );
        change.outgoing.extend(self.compose(&plan, t.number));
    }

    fn compose(&self, plan: &Plan, ticket: i64) -> Vec<OutgoingMail> {
        plan.compose(
            &self.config.deployment.ticket_prefix,
            ticket,
            &self.signer,
            &self.templates,
        )
    }

    /// What a template may say about a ticket (the closing message, an
    /// agent's reply written from a template).
    fn ticket_vars(&self, detail: &TicketDetail) -> Vars {
        let t = &detail.ticket;
        let number = self.number(t.number);
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
                .and_then(|o| mail_owner_name(self.config, o))
                .unwrap_or_default(),
            priority: templates::priority_label(t.priority).into(),
            due: t
                .due_at
                .map(|d| templates::spanish_date(d, tz))
                .unwrap_or_default(),
            team: self.config.deployment.name.clone(),
            actor: self.me.name.clone(),
            ..Vars::default()
        }
    }

    /// The customer's latest mail on the ticket: what answers thread under.
    /// Mail from the team (an agent answering a notification) is on the
    /// ticket too, but is not the customer's.
    fn last_from_customer<'d>(&self, detail: &'d TicketDetail) -> Option<&'d MessageView> {
        detail.messages.iter().rev().find(|m| {
            m.direction == "in"
                && m.from.as_deref().is_none_or(|from| {
                    self.config.person_by_address(from).is_none()
                        && !self.config.is_own_address(from)
                })
        })
    }

    /// The team's word for a state ("En ejecución").
    pub fn state_label(&self, state: State) -> &str {
        self.rules.state_label(state)
    }
}
