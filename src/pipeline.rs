//! Messages through the pipeline:
//! parse → classify → route → thread → store (which also dedupes: a message
//! already stored becomes one more arrival), the mails of a batch in order
//! in one store transaction.
//!
//! `ingest_batch` is what the IMAP intake calls, `ingest` (a batch of one)
//! what the CLI calls with a file or stdin. Each mail is stored on a ticket
//! (new, or the one it continues), recorded as one more arrival of a
//! message already stored, or quarantined with the reason; a mail fails
//! only when nothing could be stored, and then the caller must keep it
//! where it was (the mailbox is never touched first). An answer of staff
//! to a notification leaves the flow after classifying: it is kept on the
//! notification's ticket for `mailroom` to carry out. `open_by_hand` routes
//! a request an agent writes down and opens a ticket for it, never threaded.
//!
//! The decisions are pure and made elsewhere: `classify`, the rules and
//! `route`, `thread::decide` (continue a ticket, or open one linked to it),
//! `outbound::plan::Planner` (the acknowledgement and notifications). This
//! module makes the store lookups they need (an owner group's load, the
//! ticket the clues find, whether the sender is a participant), writes the
//! history lines, and hands the result to the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::Instrument;

use crate::classify::{Automatic, classify};
use crate::config::Config;
use crate::deadline::{Calendar, on_state_change};
use crate::outbound::plan::{Incoming, Planner};
use crate::outbound::templates::{TemplateErrors, Templates};
use crate::parse::{self, MailAddress, ParsedMail};
use crate::route::{Key, Route};
use crate::rules::{LoadContext, RuleInput, RuleSet};
use crate::store::{
    self, AppendMessage, AppendOutcome, Bookkeeping, NewParticipant, NewTicket, Store, StoreError,
    StoreTx,
};
use crate::thread::{self, FollowUp, Found, IdSigner, TagMatcher, Thread, referenced_ids};
use crate::ticket::{Actor, EventKind, NewEvent, OutgoingMail, State, display_number};

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

/// What became of a batch of mails: an outcome for each, in order, up to
/// the first that could not be stored at all (`failed`); that one and the
/// rest were not stored, and must stay where they are (in the mailbox).
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub outcomes: Vec<Outcome>,
    pub failed: Option<PipelineError>,
    /// `Some(lease held)` when the batch's bookkeeping was written with its
    /// mails; `None` when it was not (no mail to store in one transaction,
    /// or the batch was stored mail by mail): the caller writes it.
    pub bookkept: Option<bool>,
}

/// A mail of a batch as the intake hands it over: its bytes, and their
/// parse when it was done ahead (on another thread, while the batch
/// before was stored; see `source::imap`).
pub struct Fetched<'r> {
    pub raw: &'r [u8],
    pub parsed: Option<Result<ParsedMail, parse::ParseError>>,
}

/// A mail of a batch before the store: parsed, or already quarantined.
enum Slot<'r> {
    Parsed(&'r [u8], Box<ParsedMail>),
    Done(Outcome),
}

/// Why a mail could not be stored at all (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    UnknownMailbox(String),
    #[error("invalid ticket prefix for tags: {0}")]
    TagPattern(regex::Error),
    #[error(transparent)]
    Templates(#[from] TemplateErrors),
    #[error("the rules cannot be loaded:\n{0}")]
    Rules(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request written down by hand that cannot be opened (see `ByHand`).
    #[error("{0}")]
    Refused(String),
}

/// The message says the cause, so it is not a `source()` too.
impl From<regex::Error> for PipelineError {
    fn from(e: regex::Error) -> PipelineError {
        PipelineError::TagPattern(e)
    }
}

impl PipelineError {
    /// Whether the same mail may be stored by trying again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, PipelineError::Store(e) if e.is_transient())
    }

    /// Whether the database refused the mail for what it contains (see
    /// `StoreError::is_about_the_data`), so that trying again cannot help.
    fn is_about_the_mail(&self) -> bool {
        matches!(self, PipelineError::Store(e) if e.is_about_the_data())
    }
}

/// One mail on its way to a ticket: what it is, how it came and when. The
/// argument of every step after classifying (route, thread, store).
#[derive(Clone, Copy)]
struct Arrival<'m> {
    mailbox: &'m str,
    raw: &'m [u8],
    mail: &'m ParsedMail,
    automatic: Option<&'m Automatic>,
    now: i64,
    /// Written down by an agent rather than read from a mailbox.
    by_hand: Option<&'m ByHand<'m>>,
}

impl Arrival<'_> {
    /// What the rules see: the mail, and the channel it came by.
    fn rule_input(&self) -> RuleInput<'_> {
        let input = RuleInput::new(self.mailbox, self.mail, self.automatic);
        match self.by_hand {
            Some(hand) => input.via(hand.channel),
            None => input,
        }
    }

    /// The mail as the planning of automatic mail sees it.
    fn incoming(&self) -> Incoming<'_> {
        Incoming {
            mailbox: self.mailbox,
            mail: self.mail,
            automatic: self.automatic,
        }
    }

    /// The From address ("" when the mail has none).
    fn sender(&self) -> &str {
        self.mail
            .from
            .as_ref()
            .map(|f| f.address.as_str())
            .unwrap_or("")
    }
}

/// A request an agent writes down (`buzon tickets new`).
pub struct ByHand<'a> {
    /// How it arrived: a phone call, a visit.
    pub channel: crate::ticket::Channel,
    /// The agent's id (`[people.NAME]`), for the history.
    pub by: &'a str,
    /// The owner the agent chose, over the rules' choice.
    pub owner: Option<&'a str>,
    /// Sees the route before anything is written; an error refuses the
    /// ticket with that reason (the agent may not open tickets in the
    /// pipeline the rules chose).
    pub authorize: &'a (dyn Fn(&Route) -> Result<(), String> + Send + Sync),
}

/// The long-lived parts the pipeline works with.
pub struct Pipeline<'a> {
    config: &'a Config,
    store: &'a Store,
    signer: IdSigner,
    tags: TagMatcher,
    /// The mail templates, checked at load.
    templates: Templates,
    /// The routing rules (the daemon builds a pipeline per drain over the
    /// snapshot in force, see `live`).
    rules: Arc<RuleSet>,
}

impl<'a> Pipeline<'a> {
    /// A pipeline over the rules and templates on disk now (the command
    /// line's; the daemon's come from `live::Snapshot::pipeline`).
    pub async fn new(config: &'a Config, store: &'a Store) -> Result<Pipeline<'a>, PipelineError> {
        let rules = Arc::new(load_rules(config)?);
        let key = store.message_id_key().await?;
        let templates = Templates::load(config.templates.dir.as_deref())?;
        Self::from_parts(
            config,
            store,
            IdSigner::new(key.as_bytes()),
            templates,
            rules,
        )
    }

    /// A pipeline over parts already loaded (the action layer has them).
    pub fn from_parts(
        config: &'a Config,
        store: &'a Store,
        signer: IdSigner,
        templates: Templates,
        rules: Arc<RuleSet>,
    ) -> Result<Pipeline<'a>, PipelineError> {
        Ok(Pipeline {
            config,
            store,
            signer,
            tags: TagMatcher::new(&config.deployment.ticket_prefix)?,
            templates,
            rules,
        })
    }

    /// The rule set in force.
    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// The working calendar deadlines are counted in (the rules' business
    /// hours, the deployment's time zone).
    pub fn calendar(&self) -> Calendar {
        Calendar::new(self.rules.clone(), self.config.deployment.zone.clone())
    }

    /// The mail templates (agents' closing messages and notifications use
    /// them too).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Signs our outgoing Message-IDs (agents' replies use it too).
    pub fn signer(&self) -> &IdSigner {
        &self.signer
    }

    /// Ingests one raw mail that arrived in `mailbox` (a batch of one).
    pub async fn ingest(&self, raw: &[u8], mailbox: &str) -> Result<Outcome, PipelineError> {
        self.ingest_at(raw, mailbox, store::now_ms()).await
    }

    /// As [`Pipeline::ingest`], at a given time (Unix ms): deadlines are
    /// counted from it, which is how tests control the clock.
    pub async fn ingest_at(
        &self,
        raw: &[u8],
        mailbox: &str,
        now: i64,
    ) -> Result<Outcome, PipelineError> {
        let mut batch = self.ingest_batch_at(&[raw], mailbox, now).await;
        match (batch.failed, batch.outcomes.pop()) {
            (Some(e), _) => Err(e),
            (None, Some(outcome)) => Ok(outcome),
            (None, None) => {
                Err(StoreError::Corrupt("a batch of one mail gave no outcome".into()).into())
            }
        }
    }

    /// Ingests the mails of one IMAP batch that arrived in `mailbox`, in
    /// order, in one store transaction (see `StoreTx`): a follow-up may
    /// thread onto a ticket opened earlier in the same batch. When that
    /// transaction fails, the batch is stored again mail by mail, so that
    /// one mail the store refuses is quarantined and does not hold up the
    /// others.
    pub async fn ingest_batch(&self, raws: &[&[u8]], mailbox: &str) -> BatchOutcome {
        self.ingest_batch_at(raws, mailbox, store::now_ms()).await
    }

    /// As [`Pipeline::ingest_batch`], at a given time (Unix ms).
    pub async fn ingest_batch_at(&self, raws: &[&[u8]], mailbox: &str, now: i64) -> BatchOutcome {
        let mails = raws
            .iter()
            .map(|raw| Fetched { raw, parsed: None })
            .collect();
        self.ingest_fetched_at(mails, mailbox, now, &Bookkeeping::default())
            .await
    }

    /// As [`Pipeline::ingest_batch`], over mails maybe parsed ahead, with
    /// the intake's bookkeeping written in the batch's transaction (see
    /// [`BatchOutcome::bookkept`]).
    pub async fn ingest_fetched(
        &self,
        mails: Vec<Fetched<'_>>,
        mailbox: &str,
        bookkeeping: &Bookkeeping<'_>,
    ) -> BatchOutcome {
        self.ingest_fetched_at(mails, mailbox, store::now_ms(), bookkeeping)
            .await
    }

    async fn ingest_fetched_at(
        &self,
        fetched: Vec<Fetched<'_>>,
        mailbox: &str,
        now: i64,
        bookkeeping: &Bookkeeping<'_>,
    ) -> BatchOutcome {
        let mailbox_cfg = match self.config.mailbox(mailbox) {
            Ok(cfg) => cfg,
            Err(e) => return failed(Vec::new(), PipelineError::UnknownMailbox(e)),
        };
        let slots = match self.parse_all(fetched, mailbox, now).await {
            Ok(slots) => slots,
            Err(e) => return failed(Vec::new(), e),
        };
        let mails: Vec<(&[u8], &ParsedMail)> = slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Parsed(raw, mail) => Some((*raw, &**mail)),
                Slot::Done(_) => None,
            })
            .collect();
        let stored = self
            .store_batch(&mails, mailbox, mailbox_cfg, now, bookkeeping)
            .await;
        let (stored, bookkept) = match stored {
            Ok(stored) => stored,
            Err(e) if e.is_transient() => return failed(Vec::new(), e),
            // A mail alone in its batch is not tried twice.
            Err(e) if mails.len() == 1 => {
                return self
                    .ingest_one_by_one(slots, mailbox, mailbox_cfg, now, Some(e))
                    .await;
            }
            Err(e) => {
                tracing::warn!(mailbox, mails = mails.len(), error = %e, "Batch not stored; storing its mails one by one.");
                return self
                    .ingest_one_by_one(slots, mailbox, mailbox_cfg, now, None)
                    .await;
            }
        };
        let mut stored = stored.into_iter();
        let outcomes = slots
            .into_iter()
            .filter_map(|slot| match slot {
                Slot::Parsed(..) => stored.next(),
                Slot::Done(outcome) => Some(outcome),
            })
            .collect();
        BatchOutcome {
            outcomes,
            failed: None,
            bookkept,
        }
    }

    /// Parses every mail of a batch not parsed ahead; what cannot be parsed
    /// is quarantined now, before the batch's transaction (which on SQLite
    /// holds the only write lock) begins.
    async fn parse_all<'r>(
        &self,
        fetched: Vec<Fetched<'r>>,
        mailbox: &str,
        now: i64,
    ) -> Result<Vec<Slot<'r>>, PipelineError> {
        let mut slots = Vec::with_capacity(fetched.len());
        for Fetched { raw, parsed } in fetched {
            let parsed =
                parsed.unwrap_or_else(|| parse::parse(raw, self.config.limits.max_message_bytes));
            slots.push(match parsed {
                Ok(mail) => Slot::Parsed(raw, Box::new(mail)),
                Err(e) => Slot::Done(self.quarantine(mailbox, &e.to_string(), raw, now).await?),
            });
        }
        Ok(slots)
    }

    /// Stores parsed mails in one transaction, with the bookkeeping; their
    /// outcomes in order once it committed, and `bookkept` (see
    /// [`BatchOutcome`]).
    async fn store_batch(
        &self,
        mails: &[(&[u8], &ParsedMail)],
        mailbox: &str,
        mailbox_cfg: &crate::config::Mailbox,
        now: i64,
        bookkeeping: &Bookkeeping<'_>,
    ) -> Result<(Vec<Outcome>, Option<bool>), PipelineError> {
        if mails.is_empty() {
            return Ok((Vec::new(), None));
        }
        let mut tx = self.store.begin().await?;
        let keys: Vec<String> = mails.iter().map(|(_, mail)| mail.dedupe_key()).collect();
        tx.batch_new_tickets(&keys).await?;
        // The mails that can only open a ticket get their numbers at once
        // (the first copy of each, not stored before).
        let mut first = std::collections::HashSet::new();
        let opening = mails
            .iter()
            .zip(&keys)
            .filter(|((_, mail), key)| {
                first.insert(key.as_str())
                    && !tx.was_stored(key)
                    && self.only_opens(mail, mailbox, mailbox_cfg)
            })
            .count();
        tx.reserve_numbers(opening).await?;
        let mut outcomes = Vec::with_capacity(mails.len());
        for (raw, mail) in mails {
            // `instrument`, not `span.enter()`: an entered guard held across
            // awaits corrupts the span stack when the task changes threads.
            let span = tracing::info_span!(
                "mail",
                mailbox,
                message_id = mail.message_id.as_deref().unwrap_or("")
            );
            let outcome = self
                .ingest_parsed(&mut tx, raw, mailbox, mailbox_cfg, mail, now)
                .instrument(span)
                .await?;
            outcomes.push(outcome);
        }
        let bookkept = if bookkeeping.is_empty() {
            None
        } else {
            Some(tx.bookkeeping(bookkeeping, store::now_ms()).await?)
        };
        let committed = tx.commit_batch().await?;
        for (outcome, (_, mail)) in outcomes.iter_mut().zip(mails) {
            if let Outcome::Created { ticket, .. } = outcome
                && let Some(holder) = committed.replaced.get(ticket)
            {
                // Another writer stored this message while the batch ran.
                *outcome = Outcome::Duplicate {
                    ticket: *holder,
                    new_mailbox: true,
                };
            }
            if let Outcome::Created {
                ticket,
                acknowledged,
            } = outcome
            {
                *acknowledged = self::acknowledged(&committed.queued, *ticket);
            }
            log_stored(outcome, mailbox, mail);
        }
        Ok((outcomes, bookkept))
    }

    /// Whether a mail can only open a ticket of its own: not an answer of
    /// staff, and nothing to thread it by (no reference that may be ours,
    /// no ticket tag, no key from the rules). Pure: the rules are
    /// evaluated again when the mail is routed.
    fn only_opens(
        &self,
        mail: &ParsedMail,
        mailbox: &str,
        mailbox_cfg: &crate::config::Mailbox,
    ) -> bool {
        if crate::mailroom::identify(mail, self.config, &self.signer)
            != crate::mailroom::Verdict::NotStaff
            || referenced_ids(mail)
                .iter()
                .any(|id| self.signer.verify(id) != Some(false))
            || self.tags.find(&mail.subject).is_some()
        {
            return false;
        }
        let automatic = classify(mail, &|a: &str| self.config.is_own_address(a));
        let input = RuleInput::new(mailbox, mail, automatic.as_ref());
        self.rules
            .evaluate(&input)
            .complete(mailbox, mailbox_cfg)
            .keys
            .is_empty()
    }

    /// The fallback when a batch's transaction failed: each mail in its own
    /// transaction. A mail the database refuses for what it contains is
    /// quarantined with the reason; any other failure stops here, leaving
    /// that mail and the rest for the next attempt. `known` is the failure
    /// of the only mail of the batch, already tried.
    async fn ingest_one_by_one(
        &self,
        slots: Vec<Slot<'_>>,
        mailbox: &str,
        mailbox_cfg: &crate::config::Mailbox,
        now: i64,
        mut known: Option<PipelineError>,
    ) -> BatchOutcome {
        let mut outcomes = Vec::with_capacity(slots.len());
        for slot in slots {
            let (raw, mail) = match slot {
                Slot::Done(outcome) => {
                    outcomes.push(outcome);
                    continue;
                }
                Slot::Parsed(raw, mail) => (raw, mail),
            };
            let stored = match known.take() {
                Some(e) => Err(e),
                None => {
                    let none = Bookkeeping::default();
                    self.store_batch(&[(raw, &mail)], mailbox, mailbox_cfg, now, &none)
                        .await
                }
            };
            let outcome = match stored {
                Ok((mut one, _)) => one.pop(),
                Err(e) if !e.is_about_the_mail() => return failed(outcomes, e),
                Err(e) => {
                    let reason = format!("cannot be stored: {e}");
                    match self.quarantine(mailbox, &reason, raw, now).await {
                        Ok(outcome) => Some(outcome),
                        Err(e) => return failed(outcomes, e),
                    }
                }
            };
            outcomes.extend(outcome);
        }
        BatchOutcome {
            outcomes,
            failed: None,
            bookkept: None,
        }
    }

    /// One parsed mail of a batch: classify → route → thread → store (an
    /// agent's answer to a notification is kept on its ticket instead: see
    /// `staff_mail`).
    async fn ingest_parsed(
        &self,
        tx: &mut StoreTx,
        raw: &[u8],
        mailbox: &str,
        mailbox_cfg: &crate::config::Mailbox,
        mail: &ParsedMail,
        now: i64,
    ) -> Result<Outcome, PipelineError> {
        let automatic = classify(mail, &|a: &str| self.config.is_own_address(a));
        let arrival = Arrival {
            mailbox,
            raw,
            mail,
            automatic: automatic.as_ref(),
            now,
            by_hand: None,
        };
        if let Some(outcome) = self.staff_mail(tx, &arrival).await? {
            return Ok(outcome);
        }
        let route = self.route(tx, &arrival, mailbox_cfg).await?;
        // No lookup of the dedupe key first: the insert of the message is
        // conditional (`ON CONFLICT DO NOTHING`), so a mail already stored
        // leaves nothing of it written and is recorded as one more arrival
        // below. Duplicates are rare; one statement less per new mail is
        // not.
        let stored = match self.thread(tx, &arrival, &route.keys).await? {
            Thread::Continue(found) => self.append(tx, &arrival, found).await?,
            opened => {
                self.create(tx, &arrival, &route, opened.into_link())
                    .await?
            }
        };
        match stored {
            Some(outcome) => Ok(outcome),
            // The message was already stored (an earlier arrival, or
            // another writer just now): record this arrival on its ticket.
            None => Ok(self
                .dedupe(tx, mail, mailbox, now)
                .await?
                .ok_or_else(|| StoreError::Corrupt("duplicate message vanished".into()))?),
        }
    }

    /// An answer to a staff notification (see `mailroom`): kept on the
    /// notification's ticket without touching its state. An agent's answer
    /// is queued to be carried out once this transaction commits; an
    /// automatic one (out of office) or one that cannot be trusted as the
    /// agent's is only recorded, and reaches no customer. `None`: not staff
    /// mail, or no ticket of ours is referenced: the usual pipeline.
    async fn staff_mail(
        &self,
        tx: &mut StoreTx,
        arrival: &Arrival<'_>,
    ) -> Result<Option<Outcome>, PipelineError> {
        let mail = arrival.mail;
        let verdict = crate::mailroom::identify(mail, self.config, &self.signer);
        if verdict == crate::mailroom::Verdict::NotStaff {
            return Ok(None);
        }
        let ids: Vec<String> = referenced_ids(mail)
            .into_iter()
            .filter(|id| self.signer.verify(id) == Some(true))
            .collect();
        let Some(ticket) = tx.ticket_for_message_ids(&ids).await? else {
            return Ok(None);
        };
        let from = arrival.sender();
        let (event, job) = match (&verdict, arrival.automatic) {
            (crate::mailroom::Verdict::Agent { person }, None) => (
                NewEvent {
                    actor: Actor::Agent(person.clone()),
                    kind: EventKind::AgentMail,
                    detail: "respondió la notificación por correo; se ejecuta a continuación"
                        .into(),
                },
                Some(person.clone()),
            ),
            (crate::mailroom::Verdict::Agent { person }, Some(auto)) => (
                NewEvent::system(
                    EventKind::StaffMailUntrusted,
                    format!(
                        "respuesta automática ({}) de {person} a una notificación: guardada, no reenviada",
                        auto.kind.as_str()
                    ),
                ),
                None,
            ),
            (crate::mailroom::Verdict::Untrusted { reason }, _) => (
                NewEvent::system(
                    EventKind::StaffMailUntrusted,
                    format!("correo de {from} guardado, no reenviado: {reason}"),
                ),
                None,
            ),
            (crate::mailroom::Verdict::NotStaff, _) => return Ok(None),
        };
        let add = AppendMessage {
            ticket,
            mailbox: arrival.mailbox,
            raw: arrival.raw,
            mail,
            automatic: arrival.automatic,
            participants: Vec::new(),
            new_state: None,
            clock: None,
            now: arrival.now,
            events: vec![event],
            outgoing: Vec::new(),
        };
        if tx.append_message(&add).await? == AppendOutcome::Duplicate {
            return Ok(self.dedupe(tx, mail, arrival.mailbox, arrival.now).await?);
        }
        if let Some(person) = job {
            tx.queue_staff_mail(&mail.dedupe_key(), ticket, &person, arrival.now)
                .await?;
        }
        Ok(Some(Outcome::Appended {
            ticket,
            reopened: false,
        }))
    }

    /// Routes a mail: the rules' decision (deadline targets included), the
    /// mailbox's defaults for what they left open, an owner picked from a
    /// group.
    async fn route(
        &self,
        tx: &mut StoreTx,
        arrival: &Arrival<'_>,
        mailbox_cfg: &crate::config::Mailbox,
    ) -> Result<Route, StoreError> {
        let mut route = self
            .rules
            .evaluate(&arrival.rule_input())
            .complete(arrival.mailbox, mailbox_cfg);
        if route.owner.is_none()
            && let Some(name) = route.owner_group.clone()
            && let Some(group) = self.rules.group(&name)
        {
            let mut counts = Vec::new();
            let mut last: Option<(i64, String)> = None;
            for member in &group.members {
                let (open, newest) = tx.owner_load(member).await?;
                counts.push((member.clone(), open));
                if let Some(id) = newest
                    && last.as_ref().is_none_or(|(best, _)| id > *best)
                {
                    last = Some((id, member.clone()));
                }
            }
            let picked = group.pick(&counts, last.as_ref().map(|(_, m)| m.as_str()));
            route.set_by.insert("owner".into(), format!("group:{name}"));
            route.owner = Some(picked);
        }
        Ok(route)
    }

    /// Looks the mail's clues up, strongest first, and whether the sender
    /// may write to the ticket found; `thread::decide` says what then.
    async fn thread(
        &self,
        tx: &mut StoreTx,
        arrival: &Arrival<'_>,
        keys: &[Key],
    ) -> Result<Thread, StoreError> {
        let Some(found) = self.find(tx, arrival.mail, keys).await? else {
            return Ok(Thread::New);
        };
        let sender = arrival.sender();
        let sender_may_join = found.reacts_to_our_mail(arrival.automatic)
            || self.config.is_own_address(sender)
            || tx.is_participant(found.ticket, sender).await?;
        let mail = FollowUp {
            sender_may_join,
            automatic: arrival.automatic.is_some(),
        };
        Ok(thread::decide(
            found,
            mail,
            self.config.deployment.reopen_days,
            arrival.now,
        ))
    }

    async fn find(
        &self,
        tx: &mut StoreTx,
        mail: &ParsedMail,
        keys: &[Key],
    ) -> Result<Option<Found>, StoreError> {
        // A reference that claims to be ours but fails the signature check
        // is ignored: it was made up, or copied from another deployment.
        let ids: Vec<String> = referenced_ids(mail)
            .into_iter()
            .filter(|id| self.signer.verify(id) != Some(false))
            .collect();
        if let Some(ticket) = tx.ticket_for_message_ids(&ids).await? {
            let ours = ids.iter().any(|id| self.signer.verify(id) == Some(true));
            return self.found(tx, ticket, "In-Reply-To/References", ours).await;
        }
        if let Some(ticket) = self.tags.find(&mail.subject)
            && let Some(found) = self
                .found(tx, ticket, "ticket tag in the subject", false)
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
            if let Some(ticket) = tx
                .open_ticket_for_key(&key.name, &key.value, &from.address, domain)
                .await?
            {
                let via = format!("key {}={}", key.name, key.value);
                return self.found(tx, ticket, &via, false).await;
            }
        }
        Ok(None)
    }

    async fn found(
        &self,
        tx: &mut StoreTx,
        ticket: i64,
        via: &str,
        via_our_message: bool,
    ) -> Result<Option<Found>, StoreError> {
        Ok(tx.ticket_state(ticket).await?.map(|state| Found {
            ticket,
            state,
            via: via.to_string(),
            via_our_message,
        }))
    }

    /// Opens a new ticket (maybe linked to another). `None` on a dedupe race.
    async fn create(
        &self,
        tx: &mut StoreTx,
        arrival: &Arrival<'_>,
        route: &Route,
        link: Option<(Found, bool)>,
    ) -> Result<Option<Outcome>, StoreError> {
        let Arrival {
            mailbox,
            raw,
            mail,
            automatic,
            now,
            by_hand,
        } = *arrival;
        let deadlines = self.calendar().deadlines(route, now);
        // The acknowledgement promises the first answer when the rules set
        // that target, else the resolution.
        let promised = deadlines.first_response_due_at.or(deadlines.due_at);
        let mut events = opening_events(arrival, route);
        let planner = self.planner();
        let mut plan = planner.acknowledgement(arrival.incoming(), route, promised, &mut events);
        planner.notifications(&mut plan, automatic, route, &mut events);
        let prefix = &self.config.deployment.ticket_prefix;
        let (needs_review, linked_ticket) = match &link {
            Some((found, review)) => {
                events.push(self.link_event(found, *review));
                (*review, Some(found.ticket))
            }
            None => (false, None),
        };
        let outgoing = |ticket: i64| -> Vec<OutgoingMail> {
            plan.compose(prefix, ticket, &self.signer, &self.templates)
        };
        let new = NewTicket {
            mailbox,
            channel: by_hand.map(|h| h.channel).unwrap_or_default(),
            raw,
            mail,
            automatic,
            route,
            participants: self.participants_with_notify(mail, &route.notify),
            needs_review,
            linked_ticket,
            deadlines,
            now,
            events,
            outgoing: &outgoing,
        };
        // Whether the acknowledgement went out (or the limit on automatic
        // mail held it back) is known at commit: see `store_batch`.
        Ok(tx
            .create_ticket(&new)
            .await?
            .map(|ticket| Outcome::Created {
                ticket,
                acknowledged: false,
            }))
    }

    /// Adds a follow-up to its ticket. Returns `None` on a dedupe race.
    async fn append(
        &self,
        tx: &mut StoreTx,
        arrival: &Arrival<'_>,
        found: Found,
    ) -> Result<Option<Outcome>, StoreError> {
        let from_us = self.config.is_own_address(arrival.sender());
        let was = found.state.state;
        // Robots and staff never change a ticket; a customer's answer puts
        // the ball in our court (unless nobody has picked the ticket up
        // yet), reopening it when it was done.
        let customer = arrival.automatic.is_none() && !from_us;
        let reopened = customer && was == State::Done;
        let new_state = (customer && !matches!(was, State::New | State::WaitingOnUs))
            .then_some(State::WaitingOnUs);
        let mut events = follow_up_events(arrival, &found, from_us, new_state, reopened);
        let outgoing = self
            .planner()
            .answer_notification(arrival.incoming(), &found.state, &mut events)
            .compose(
                &self.config.deployment.ticket_prefix,
                found.ticket,
                &self.signer,
                &self.templates,
            );
        let clock = new_state.and_then(|to| {
            on_state_change(
                &self.calendar(),
                &self.config.deadlines,
                &found.state,
                to,
                arrival.now,
            )
        });
        let add = AppendMessage {
            ticket: found.ticket,
            mailbox: arrival.mailbox,
            raw: arrival.raw,
            mail: arrival.mail,
            automatic: arrival.automatic,
            participants: if arrival.automatic.is_some() {
                Vec::new()
            } else {
                self.participants(arrival.mail)
            },
            new_state,
            clock,
            now: arrival.now,
            events,
            outgoing,
        };
        Ok(match tx.append_message(&add).await? {
            AppendOutcome::Appended => Some(Outcome::Appended {
                ticket: found.ticket,
                reopened,
            }),
            AppendOutcome::Duplicate => None,
        })
    }

    async fn dedupe(
        &self,
        tx: &mut StoreTx,
        mail: &ParsedMail,
        mailbox: &str,
        now: i64,
    ) -> Result<Option<Outcome>, StoreError> {
        let Some(found) = tx.find_message(&mail.dedupe_key()).await? else {
            return Ok(None);
        };
        let new_mailbox = tx.record_arrival(found.message, mailbox, now).await?;
        Ok(Some(Outcome::Duplicate {
            ticket: found.ticket,
            new_mailbox,
        }))
    }

    /// Opens a ticket for a request an agent writes down (`buzon tickets
    /// new`: a phone call, a visit): routed by the same rules as mail, with
    /// its channel, and never threaded onto another ticket. `hand.authorize`
    /// sees the route before anything is written and may refuse it.
    pub async fn open_by_hand(
        &self,
        raw: &[u8],
        mailbox: &str,
        hand: &ByHand<'_>,
        now: i64,
    ) -> Result<Outcome, PipelineError> {
        let mailbox_cfg = self
            .config
            .mailbox(mailbox)
            .map_err(PipelineError::UnknownMailbox)?;
        let mail = parse::parse(raw, self.config.limits.max_message_bytes)
            .map_err(|e| PipelineError::Refused(format!("the request cannot be read: {e}")))?;
        let arrival = Arrival {
            mailbox,
            raw,
            mail: &mail,
            automatic: None,
            now,
            by_hand: Some(hand),
        };
        let mut tx = self.store.begin().await?;
        let mut route = self.route(&mut tx, &arrival, mailbox_cfg).await?;
        if let Some(owner) = hand.owner {
            route.owner = Some(owner.to_string());
            route.owner_group = None;
            route.set_by.insert(
                "owner".into(),
                Actor::Agent(hand.by.to_string()).to_string(),
            );
        }
        (hand.authorize)(&route).map_err(PipelineError::Refused)?;
        let created = self.create(&mut tx, &arrival, &route, None).await?;
        let queued = tx.commit().await?;
        match created {
            Some(Outcome::Created { ticket, .. }) => Ok(Outcome::Created {
                ticket,
                acknowledged: acknowledged(&queued, ticket),
            }),
            _ => Err(PipelineError::Refused(
                "a request with the same Message-ID is already stored".into(),
            )),
        }
    }

    /// Quarantines a mail too large to fetch whole: its header is kept with
    /// a note, so a person can see who wrote and what about.
    pub async fn quarantine_oversize(
        &self,
        header: &[u8],
        size: usize,
        mailbox: &str,
    ) -> Result<Outcome, PipelineError> {
        let limit = self.config.limits.max_message_bytes;
        let reason = parse::ParseError::TooLarge { size, limit }.to_string();
        let mut kept = header.to_vec();
        kept.extend_from_slice(
            format!(
                "\r\n[buzon: body of a {size}-byte message not fetched: {reason}; headers kept]\r\n"
            )
            .as_bytes(),
        );
        self.quarantine(mailbox, &reason, &kept, store::now_ms())
            .await
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

    /// The history line of a new ticket linked to the one its mail's clues
    /// found: flagged for `review` (a stranger), or opened beside a ticket
    /// closed too long ago.
    fn link_event(&self, found: &Found, review: bool) -> NewEvent {
        let deployment = &self.config.deployment;
        let number = display_number(&deployment.ticket_prefix, found.ticket);
        if review {
            NewEvent::system(
                EventKind::NeedsReview,
                format!(
                    "quien escribe no participa en {number}, al que este correo se refiere ({}); abierto aparte, para revisar",
                    found.via
                ),
            )
        } else {
            NewEvent::system(
                EventKind::Linked,
                format!(
                    "{number} se cerró hace más de {} días; se abrió un ticket nuevo vinculado a él",
                    deployment.reopen_days
                ),
            )
        }
    }

    /// Plans the automatic mails of new tickets and follow-ups.
    fn planner(&self) -> Planner<'_> {
        Planner {
            config: self.config,
            templates: &self.templates,
            tags: &self.tags,
        }
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

    /// The mail's participants plus the rules' extra recipients (seed 002:
    /// a client's additional addresses hear of every news on the case), so
    /// agents' replies and the closing message reach them too. Our own
    /// addresses among them are told only at creation.
    fn participants_with_notify(
        &self,
        mail: &ParsedMail,
        notify: &[String],
    ) -> Vec<NewParticipant> {
        let mut out = self.participants(mail);
        for address in notify {
            let known = out.iter().any(|p| p.address.eq_ignore_ascii_case(address));
            if !known && !self.config.is_own_address(address) {
                out.push(NewParticipant {
                    address: address.clone(),
                    name: None,
                    role: "notify".into(),
                });
            }
        }
        out
    }
}

/// The first history lines of a new ticket: who opened it (the sender, or
/// the agent who wrote it down), how it was routed and by whom, and what
/// kind of automatic mail it is.
fn opening_events(arrival: &Arrival<'_>, route: &Route) -> Vec<NewEvent> {
    let Arrival {
        mailbox,
        mail,
        automatic,
        by_hand,
        ..
    } = *arrival;
    let created = match by_hand {
        Some(hand) => NewEvent {
            actor: Actor::Agent(hand.by.to_string()),
            kind: EventKind::Created,
            detail: format!(
                "ingresado a mano ({}) en el buzón {mailbox}",
                hand.channel.label()
            ),
        },
        None => NewEvent {
            actor: mail
                .from
                .as_ref()
                .map(|f| Actor::Customer(f.address.clone()))
                .unwrap_or_else(|| Actor::Mailbox(mailbox.to_string())),
            kind: EventKind::Created,
            detail: format!("desde un correo en el buzón {mailbox}"),
        },
    };
    let set_by: Vec<String> = route
        .set_by
        .iter()
        .map(|(field, by)| format!("{field} by {by}"))
        .collect();
    let mut events = vec![
        created,
        NewEvent::system(
            EventKind::Routed,
            format!(
                "pipeline={} priority={} owner={} ({})",
                route.pipeline,
                route.priority,
                route.owner.as_deref().unwrap_or("-"),
                set_by.join(", ")
            ),
        ),
    ];
    if let Some(auto) = automatic {
        events.push(NewEvent::system(
            EventKind::AutomaticMail,
            format!("{}: {}", auto.kind.as_str(), auto.reason),
        ));
    }
    events
}

/// The history lines of a follow-up: the message (from an agent when
/// `from_us`, else from the customer), what kind of automatic mail it is,
/// and the state it moves the ticket to.
fn follow_up_events(
    arrival: &Arrival<'_>,
    found: &Found,
    from_us: bool,
    new_state: Option<State>,
    reopened: bool,
) -> Vec<NewEvent> {
    let sender = arrival.sender().to_string();
    let actor = if from_us {
        Actor::Agent(sender)
    } else {
        Actor::Customer(sender)
    };
    let mut events = vec![NewEvent {
        actor: actor.clone(),
        kind: EventKind::Message,
        detail: format!(
            "seguimiento en el buzón {}, encontrado por {}",
            arrival.mailbox, found.via
        ),
    }];
    if let Some(auto) = arrival.automatic {
        events.push(NewEvent::system(
            EventKind::AutomaticMail,
            format!(
                "{}: {}; el ticket queda sin cambios",
                auto.kind.as_str(),
                auto.reason
            ),
        ));
    }
    if let Some(state) = new_state {
        events.push(NewEvent {
            actor,
            kind: if reopened {
                EventKind::Reopened
            } else {
                EventKind::State
            },
            detail: format!("{} → {state}", found.state.state),
        });
    }
    events
}

/// Whether a transaction's commit queued an acknowledgement for `ticket`
/// (the limit on automatic mail may have held it back).
fn acknowledged(queued: &BTreeMap<i64, Vec<String>>, ticket: i64) -> bool {
    queued
        .get(&ticket)
        .is_some_and(|kinds| kinds.iter().any(|k| k == "acknowledgement"))
}

fn failed(outcomes: Vec<Outcome>, e: PipelineError) -> BatchOutcome {
    BatchOutcome {
        outcomes,
        failed: Some(e),
        bookkept: None,
    }
}

/// Logs a mail stored (after its transaction committed, so a batch that
/// is stored again mail by mail does not log its tickets twice).
fn log_stored(outcome: &Outcome, mailbox: &str, mail: &ParsedMail) {
    let message_id = mail.message_id.as_deref().unwrap_or("");
    match outcome {
        Outcome::Created {
            ticket,
            acknowledged,
        } => tracing::info!(mailbox, message_id, ticket, acknowledged, "Ticket created."),
        Outcome::Appended { ticket, reopened } => {
            tracing::info!(mailbox, message_id, ticket, reopened, "Follow-up appended.")
        }
        Outcome::Duplicate {
            ticket,
            new_mailbox,
        } => tracing::info!(
            mailbox,
            message_id,
            ticket,
            new_mailbox,
            "Message already stored."
        ),
        Outcome::Quarantined { .. } => {}
    }
}

/// Loads the configured rule set (none configured: no rules, every ticket
/// gets its mailbox's defaults).
pub fn load_rules(config: &Config) -> Result<RuleSet, PipelineError> {
    let Some(dir) = &config.rules.dir else {
        return Ok(RuleSet::empty());
    };
    let ctx = LoadContext::from_config(config).map_err(|e| PipelineError::Rules(e.to_string()))?;
    RuleSet::load(dir, &ctx).map_err(|e| PipelineError::Rules(e.to_string()))
}

/// The domain part of an address (for our Message-IDs).
pub fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("localhost")
}
