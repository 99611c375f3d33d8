//! One message through the pipeline:
//! dedupe → parse → classify → thread → route → one store transaction.
//!
//! `ingest` is what every source calls (the CLI with a file or stdin, the
//! IMAP intake). It either stores the mail on a ticket, records it as one
//! more arrival of a message already stored, or quarantines it with the
//! reason; it only fails when nothing could be stored, and then the caller
//! must keep the mail where it was (the mailbox is never touched first).

use crate::classify::{Automatic, classify};
use crate::config::Config;
use crate::outbound::compose::{self, AckContext};
use crate::parse::{self, ParsedMail};
use crate::route::{Decision, Route};
use crate::store::{self, CreateOutcome, NewEvent, NewTicket, OutgoingMail, Store, StoreError};
use crate::ticket::display_number;

/// What happened to one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new ticket; `acknowledged` says whether an acknowledgement was queued.
    Created { ticket: i64, acknowledged: bool },
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PipelineError {
    /// Whether the same mail may be stored by trying again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, PipelineError::Store(e) if e.is_transient())
    }
}

/// The long-lived parts the pipeline works with.
pub struct Pipeline<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
}

impl Pipeline<'_> {
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
        let (ack_plan, events) =
            self.plan_acknowledgement(&mail, automatic.as_ref(), &route, mailbox);
        let outgoing = |ticket: i64| -> Vec<OutgoingMail> {
            ack_plan
                .as_ref()
                .and_then(|plan| plan.compose(ticket).ok())
                .into_iter()
                .collect()
        };
        let new = NewTicket {
            mailbox,
            raw,
            mail: &mail,
            automatic: automatic.as_ref(),
            route: &route,
            due_at: route.sla_hours.map(|h| now + i64::from(h) * 3_600_000),
            now,
            events,
            outgoing: &outgoing,
        };
        match self.store.create_ticket(&new).await? {
            CreateOutcome::Created { ticket, queued } => {
                tracing::info!(ticket, queued, "Ticket created.");
                Ok(Outcome::Created {
                    ticket,
                    acknowledged: queued > 0,
                })
            }
            // Another writer stored the same message between our lookup and
            // our insert: record this arrival on its ticket instead.
            CreateOutcome::Duplicate => Ok(self
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
            subject: mail.subject.clone(),
            route: route.clone(),
            in_reply_to: mail.message_id.clone(),
            references: mail.references.clone(),
        };
        (Some(plan), events)
    }
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
    fn compose(&self, ticket: i64) -> Result<OutgoingMail, compose::ComposeError> {
        let number = display_number(&self.prefix, ticket);
        compose::acknowledgement(&AckContext {
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
        })
        .inspect_err(|e| tracing::error!(error = %e, "Cannot compose acknowledgement."))
    }
}
