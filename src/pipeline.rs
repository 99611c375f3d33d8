//! One message through the pipeline:
//! dedupe → parse → classify → thread → route → one store transaction.
//!
//! `ingest` is what every source calls (the CLI with a file or stdin, the
//! IMAP intake). It either stores the mail on a ticket (new, or the one it
//! continues), records it as one more arrival of a message already stored,
//! or quarantines it with the reason; it only fails when nothing could be
//! stored, and then the caller must keep the mail where it was (the mailbox
//! is never touched first).

use crate::classify::{Automatic, classify};
use crate::config::Config;
use crate::outbound::compose::{self, AckContext};
use crate::parse::{self, MailAddress, ParsedMail};
use crate::route::{Decision, Key, Route};
use crate::store::{
    self, AppendMessage, AppendOutcome, CreateOutcome, NewEvent, NewParticipant, NewTicket,
    OutgoingMail, Store, StoreError, TicketState,
};
use crate::thread::{IdSigner, TagMatcher, referenced_ids};
use crate::ticket::{State, display_number};

/// What happened to one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new ticket; `acknowledged` says whether an acknowledgement was queued.
    Created { ticket: i64, acknowledged: bool },
    /// A follow-up appended to an existing ticket.
    Appended { ticket: i64, reopened: bool },
    /// The message was already stored (same Message-ID, or same bytes);
    /// `new_mailbox` says whether this mailbox was recorded as a new arrival.
    Duplicate { ticket: i64, new_mailbox: bool },
    /// Kept in quarantine with the reason it could not be ticketed.
    Quarantined { id: i64, reason: String },
}

/// Why a mail could not be stored at all (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    UnknownMailbox(String),
    #[error("invalid ticket prefix for tags: {0}")]
    TagPattern(#[from] regex::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PipelineError {
    /// Whether the same mail may be stored by trying again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, PipelineError::Store(e) if e.is_transient())
    }
}

/// A ticket a mail continues, and how it was found.
struct Found {
    ticket: i64,
    state: TicketState,
    via: String,
    /// Found through a signed Message-ID of ours (a reaction to our mail).
    via_our_message: bool,
}

/// What threading decided.
enum Thread {
    New,
    /// Append to this ticket.
    Continue(Found),
    /// New ticket linked to this one (not a participant, or closed too long
    /// ago); `review` flags it for a person.
    Linked {
        found: Found,
        review: bool,
    },
}

/// The long-lived parts the pipeline works with.
pub struct Pipeline<'a> {
    config: &'a Config,
    store: &'a Store,
    signer: IdSigner,
    tags: TagMatcher,
}

impl<'a> Pipeline<'a> {
    pub async fn new(config: &'a Config, store: &'a Store) -> Result<Pipeline<'a>, PipelineError> {
        let key = store.message_id_key().await?;
        Ok(Pipeline {
            config,
            store,
            signer: IdSigner::new(key.as_bytes()),
            tags: TagMatcher::new(&config.deployment.ticket_prefix)?,
        })
    }

    /// Signs our outgoing Message-IDs (agents' replies use it too).
    pub fn signer(&self) -> &IdSigner {
        &self.signer
    }

    /// Ingests one raw mail that arrived in `mailbox`.
    pub async fn ingest(&self, raw: &[u8], mailbox: &str) -> Result<Outcome, PipelineError> {
        let mailbox_cfg = self
            .config
            .mailbox(mailbox)
            .map_err(PipelineError::UnknownMailbox)?;
        let now = store::now_ms();
        let mail = match parse::parse(raw, self.config.limits.max_message_bytes) {
            Ok(mail) => mail,
            Err(e) => return self.quarantine(mailbox, &e.to_string(), raw, now).await,
        };
        let span = tracing::info_span!(
            "mail",
            mailbox,
            message_id = mail.message_id.as_deref().unwrap_or("")
        );
        let _enter = span.enter();

        if let Some(outcome) = self.dedupe(&mail, mailbox, now).await? {
            return Ok(outcome);
        }
        let automatic = classify(&mail, &|a: &str| self.config.is_own_address(a));
        let route = Decision::default().complete(mailbox, mailbox_cfg);
        let outcome = match self
            .thread(&mail, automatic.as_ref(), &route.keys, now)
            .await?
        {
            Thread::Continue(found) => {
                self.append(found, mailbox, raw, &mail, automatic.as_ref(), now)
                    .await?
            }
            Thread::Linked { found, review } => {
                let link = Some((found, review));
                self.create(mailbox, raw, &mail, automatic.as_ref(), &route, link, now)
                    .await?
            }
            Thread::New => {
                self.create(mailbox, raw, &mail, automatic.as_ref(), &route, None, now)
                    .await?
            }
        };
        match outcome {
            Some(o) => Ok(o),
            // Another writer stored the same message between our lookup and
            // our insert: record this arrival on its ticket instead.
            None => Ok(self
                .dedupe(&mail, mailbox, now)
                .await?
                .ok_or_else(|| StoreError::Corrupt("duplicate message vanished".into()))?),
        }
    }

    async fn dedupe(
        &self,
        mail: &ParsedMail,
        mailbox: &str,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(found) = self.store.find_message(&mail.dedupe_key()).await? else {
            return Ok(None);
        };
        let new_mailbox = self
            .store
            .record_arrival(found.message, mailbox, now)
            .await?;
        tracing::info!(
            ticket = found.ticket,
            new_mailbox,
            "Message already stored."
        );
        Ok(Some(Outcome::Duplicate {
            ticket: found.ticket,
            new_mailbox,
        }))
    }

    async fn quarantine(
        &self,
        mailbox: &str,
        reason: &str,
        raw: &[u8],
        now: i64,
    ) -> Result<Outcome, PipelineError> {
        let id = self.store.quarantine(mailbox, reason, raw, now).await?;
        tracing::warn!(mailbox, quarantine = id, reason, "Mail quarantined.");
        Ok(Outcome::Quarantined {
            id,
            reason: reason.to_string(),
        })
    }

    /// Looks the mail's clues up, strongest first, then decides whether the
    /// sender may join the ticket found.
    async fn thread(
        &self,
        mail: &ParsedMail,
        automatic: Option<&Automatic>,
        keys: &[Key],
        now: i64,
    ) -> Result<Thread, StoreError> {
        let Some(found) = self.find(mail, keys).await? else {
            return Ok(Thread::New);
        };
        let sender = mail.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
        let is_reaction = automatic.is_some_and(|a| a.kind.is_reaction()) && found.via_our_message;
        let allowed = is_reaction
            || self.config.is_own_address(sender)
            || self.store.is_participant(found.ticket, sender).await?;
        if !allowed {
            return Ok(Thread::Linked {
                found,
                review: true,
            });
        }
        let closed_long_ago = found.state.state == State::Done.as_str()
            && found.state.closed_at.is_some_and(|at| {
                now - at > i64::from(self.config.deployment.reopen_days) * 86_400_000
            });
        if closed_long_ago && automatic.is_none() {
            return Ok(Thread::Linked {
                found,
                review: false,
            });
        }
        Ok(Thread::Continue(found))
    }

    async fn find(&self, mail: &ParsedMail, keys: &[Key]) -> Result<Option<Found>, StoreError> {
        // A reference that claims to be ours but fails the signature check
        // is ignored: it was made up, or copied from another deployment.
        let ids: Vec<String> = referenced_ids(mail)
            .into_iter()
            .filter(|id| self.signer.verify(id) != Some(false))
            .collect();
        if let Some(ticket) = self.store.ticket_for_message_ids(&ids).await? {
            let ours = ids.iter().any(|id| self.signer.verify(id) == Some(true));
            return self.found(ticket, "In-Reply-To/References", ours).await;
        }
        if let Some(ticket) = self.tags.find(&mail.subject)
            && let Some(found) = self
                .found(ticket, "ticket tag in the subject", false)
                .await?
        {
            return Ok(Some(found));
        }
        let Some(from) = &mail.from else {
            return Ok(None);
        };
        let domain = self
            .config
            .deployment
            .thread_keys_by_domain
            .then(|| from.domain());
        for key in keys {
            if let Some(ticket) = self
                .store
                .open_ticket_for_key(&key.name, &key.value, &from.address, domain)
                .await?
            {
                let via = format!("key {}={}", key.name, key.value);
                return self.found(ticket, &via, false).await;
            }
        }
        Ok(None)
    }

    async fn found(
        &self,
        ticket: i64,
        via: &str,
        via_our_message: bool,
    ) -> Result<Option<Found>, StoreError> {
        Ok(self.store.ticket_state(ticket).await?.map(|state| Found {
            ticket,
            state,
            via: via.to_string(),
            via_our_message,
        }))
    }

    /// Adds a follow-up to its ticket. Returns `None` on a dedupe race.
    async fn append(
        &self,
        found: Found,
        mailbox: &str,
        raw: &[u8],
        mail: &ParsedMail,
        automatic: Option<&Automatic>,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        let sender = mail
            .from
            .as_ref()
            .map(|f| f.address.clone())
            .unwrap_or_default();
        let from_us = self.config.is_own_address(&sender);
        let was = found.state.state.as_str();
        let reopened = was == State::Done.as_str() && automatic.is_none() && !from_us;
        // Robots never change a ticket; a customer's answer puts the ball in
        // our court (unless nobody has picked the ticket up yet).
        let new_state = match (automatic, from_us) {
            (Some(_), _) | (None, true) => None,
            _ if was == State::New.as_str() => None,
            _ if was == State::WaitingOnUs.as_str() => None,
            _ => Some(State::WaitingOnUs),
        };
        let actor = if from_us {
            format!("agent:{sender}")
        } else {
            format!("customer:{sender}")
        };
        let mut events = vec![NewEvent {
            actor: actor.clone(),
            kind: "message".into(),
            detail: format!("follow-up in mailbox {mailbox}, found by {}", found.via),
        }];
        if let Some(auto) = automatic {
            events.push(NewEvent {
                actor: "system".into(),
                kind: "automatic_mail".into(),
                detail: format!(
                    "{}: {}; ticket left unchanged",
                    auto.kind.as_str(),
                    auto.reason
                ),
            });
        }
        if let Some(state) = new_state {
            events.push(NewEvent {
                actor,
                kind: if reopened { "reopened" } else { "state" }.into(),
                detail: format!("{was} → {state}"),
            });
        }
        let add = AppendMessage {
            ticket: found.ticket,
            mailbox,
            raw,
            mail,
            automatic,
            participants: if automatic.is_some() {
                Vec::new()
            } else {
                self.participants(mail)
            },
            new_state,
            now,
            events,
            outgoing: Vec::new(),
        };
        Ok(match self.store.append_message(&add).await? {
            AppendOutcome::Appended => {
                tracing::info!(ticket = found.ticket, reopened, "Follow-up appended.");
                Some(Outcome::Appended {
                    ticket: found.ticket,
                    reopened,
                })
            }
            AppendOutcome::Duplicate => None,
        })
    }

    /// Opens a new ticket (maybe linked to another). `None` on a dedupe race.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        mailbox: &str,
        raw: &[u8],
        mail: &ParsedMail,
        automatic: Option<&Automatic>,
        route: &Route,
        link: Option<(Found, bool)>,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        let (ack_plan, mut events) = self.plan_acknowledgement(mail, automatic, route, mailbox);
        let (needs_review, linked_ticket) = match &link {
            Some((found, review)) => {
                let prefix = &self.config.deployment.ticket_prefix;
                let number = display_number(prefix, found.ticket);
                events.push(NewEvent {
                    actor: "system".into(),
                    kind: if *review { "needs_review" } else { "linked" }.into(),
                    detail: if *review {
                        format!(
                            "the sender is not a participant of {number}, which this mail references ({}); opened separately for review",
                            found.via
                        )
                    } else {
                        format!("{number} was closed more than {} days ago; opened a new ticket linked to it", self.config.deployment.reopen_days)
                    },
                });
                (*review, Some(found.ticket))
            }
            None => (false, None),
        };
        let outgoing = |ticket: i64| -> Vec<OutgoingMail> {
            ack_plan
                .as_ref()
                .and_then(|plan| plan.compose(ticket, &self.signer).ok())
                .into_iter()
                .collect()
        };
        let new = NewTicket {
            mailbox,
            raw,
            mail,
            automatic,
            route,
            participants: self.participants(mail),
            needs_review,
            linked_ticket,
            due_at: route.sla_hours.map(|h| now + i64::from(h) * 3_600_000),
            now,
            events,
            outgoing: &outgoing,
        };
        Ok(match self.store.create_ticket(&new).await? {
            CreateOutcome::Created { ticket, queued } => {
                tracing::info!(ticket, queued, needs_review, "Ticket created.");
                Some(Outcome::Created {
                    ticket,
                    acknowledged: queued > 0,
                })
            }
            CreateOutcome::Duplicate => None,
        })
    }

    /// Everyone on a mail except our own addresses: they may write to the
    /// ticket later.
    fn participants(&self, mail: &ParsedMail) -> Vec<NewParticipant> {
        let mut out: Vec<NewParticipant> = Vec::new();
        let mut push = |a: &MailAddress, role: &str| {
            if !self.config.is_own_address(&a.address)
                && !out.iter().any(|p| p.address == a.address)
            {
                out.push(NewParticipant {
                    address: a.address.clone(),
                    name: a.name.clone(),
                    role: role.to_string(),
                });
            }
        };
        if let Some(from) = &mail.from {
            push(from, "requester");
        }
        if let Some(reply_to) = &mail.reply_to {
            push(reply_to, "requester");
        }
        for a in &mail.to {
            push(a, "to");
        }
        for a in &mail.cc {
            push(a, "cc");
        }
        out
    }

    /// Decides whether to acknowledge, and records why not when we don't.
    fn plan_acknowledgement(
        &self,
        mail: &ParsedMail,
        automatic: Option<&Automatic>,
        route: &Route,
        mailbox: &str,
    ) -> (Option<AckPlan>, Vec<NewEvent>) {
        let mut events = vec![NewEvent {
            actor: mail
                .from
                .as_ref()
                .map(|f| format!("customer:{}", f.address))
                .unwrap_or_else(|| format!("mailbox:{mailbox}")),
            kind: "created".into(),
            detail: format!("from mail in mailbox {mailbox}"),
        }];
        let set_by: Vec<String> = route
            .set_by
            .iter()
            .map(|(field, by)| format!("{field} by {by}"))
            .collect();
        events.push(NewEvent {
            actor: "system".into(),
            kind: "routed".into(),
            detail: format!(
                "pipeline={} priority={} owner={} ({})",
                route.pipeline,
                route.priority,
                route.owner.as_deref().unwrap_or("-"),
                set_by.join(", ")
            ),
        });
        if let Some(auto) = automatic {
            events.push(NewEvent {
                actor: "system".into(),
                kind: "automatic_mail".into(),
                detail: format!("{}: {}", auto.kind.as_str(), auto.reason),
            });
        }
        let withheld = |why: String| NewEvent {
            actor: "system".into(),
            kind: "ack_withheld".into(),
            detail: why,
        };
        let Some(template) = route.ack_template.clone() else {
            events.push(withheld(
                "no acknowledgement configured for this mail".into(),
            ));
            return (None, events);
        };
        if let Some(auto) = automatic {
            events.push(withheld(format!(
                "automatic mail ({}) is never answered",
                auto.kind.as_str()
            )));
            return (None, events);
        }
        let Some(requester) = mail.reply_to.clone().or_else(|| mail.from.clone()) else {
            events.push(withheld("the mail has no sender address".into()));
            return (None, events);
        };
        if self.config.is_own_address(&requester.address) {
            events.push(withheld(format!(
                "{} is one of our own addresses",
                requester.address
            )));
            return (None, events);
        }
        let Ok(mailbox_cfg) = self.config.mailbox(mailbox) else {
            return (None, events);
        };
        let plan = AckPlan {
            _template: template,
            team: self.config.deployment.name.clone(),
            prefix: self.config.deployment.ticket_prefix.clone(),
            from_address: mailbox_cfg.address.clone(),
            from_name: mailbox_cfg
                .display_name
                .clone()
                .unwrap_or_else(|| self.config.deployment.name.clone()),
            to_address: requester.address,
            to_name: requester.name,
            subject: self.tags.strip(&mail.subject),
            route: route.clone(),
            in_reply_to: mail.message_id.clone(),
            references: mail.references.clone(),
        };
        (Some(plan), events)
    }
}

/// The domain part of an address (for our Message-IDs).
pub fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("localhost")
}

/// Everything needed to compose the acknowledgement once the number is known.
struct AckPlan {
    _template: String,
    team: String,
    prefix: String,
    from_address: String,
    from_name: String,
    to_address: String,
    to_name: Option<String>,
    subject: String,
    route: Route,
    in_reply_to: Option<String>,
    references: Vec<String>,
}

impl AckPlan {
    fn compose(
        &self,
        ticket: i64,
        signer: &IdSigner,
    ) -> Result<OutgoingMail, compose::ComposeError> {
        let number = display_number(&self.prefix, ticket);
        compose::acknowledgement(AckContext {
            team: &self.team,
            ticket: &number,
            from_address: &self.from_address,
            from_name: &self.from_name,
            to_address: &self.to_address,
            to_name: self.to_name.as_deref(),
            subject: &self.subject,
            pipeline: &self.route.pipeline,
            owner: self.route.owner.as_deref(),
            priority: self.route.priority.as_str(),
            in_reply_to: self.in_reply_to.as_deref(),
            references: &self.references,
            message_id: signer.new_id(domain_of(&self.from_address)),
        })
        .inspect_err(|e| tracing::error!(error = %e, "Cannot compose acknowledgement."))
    }
}
