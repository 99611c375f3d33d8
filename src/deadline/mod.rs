//! Deadlines: the first-response and resolution targets of each ticket, the
//! clocks that pause while the contact has the ball, and the watch that turns
//! a missed deadline into one alert.
//!
//! The targets come from the rules (`first_response_hours`, `sla_hours`, and
//! their business-hours forms); [`clock`] turns them into due times and moves
//! them when a clock pauses. [`Watch::check`] runs in the daemon every
//! `deadlines.check_seconds` (and once in `run --once`): each missed deadline
//! without an alert gets, in one transaction, the alert row, a history line,
//! a mail to the owner and a mail to the escalation list. The alert's unique
//! key makes that happen once per breach, across restarts and instances.

pub mod clock;

pub use clock::{Calendar, on_state_change};

use crate::config::Config;
use crate::outbound::plan::Plan;
use crate::outbound::templates::{self, Templates};
use crate::store::{NewBreach, Store, StoreError};
use crate::thread::IdSigner;
use crate::ticket::{Breach, EventKind, NewEvent, Target, TicketDetail};

#[derive(Debug, thiserror::Error)]
pub enum DeadlineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Templates(#[from] templates::TemplateErrors),
}

/// Breaches handled per query; a backlog (the daemon was off for a week)
/// is worked through in rounds of this many.
const ROUND: i64 = 200;

/// What one check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Breaches recorded now (alert, history, mails).
    pub recorded: usize,
    /// Breaches another writer recorded first (another instance).
    pub already: usize,
    /// Breaches that could not be recorded (logged; tried again next time).
    pub failed: usize,
}

/// Looks for missed deadlines and records each one once.
pub struct Watch<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub signer: IdSigner,
    pub templates: Templates,
}

impl<'a> Watch<'a> {
    /// A watch with the deployment's templates and Message-ID key.
    pub async fn new(config: &'a Config, store: &'a Store) -> Result<Watch<'a>, DeadlineError> {
        let key = store.message_id_key().await?;
        Ok(Watch {
            config,
            store,
            signer: IdSigner::new(key.as_bytes()),
            templates: Templates::load(config.templates.dir.as_deref())?,
        })
    }

    /// Records every deadline missed at `now` that has no alert yet. One
    /// breach that cannot be recorded is logged and left for the next check;
    /// it does not hold up the others.
    pub async fn check(&self, now: i64) -> Result<CheckReport, DeadlineError> {
        let mut report = CheckReport::default();
        loop {
            let breaches = self.store.breaches(now, ROUND).await?;
            let round = breaches.len();
            let mut progress = false;
            for breach in breaches {
                let (ticket, target) = (breach.ticket, breach.target);
                match self.record(breach, now).await {
                    Ok(true) => report.recorded += 1,
                    Ok(false) => report.already += 1,
                    Err(DeadlineError::Store(e)) if e.is_transient() => return Err(e.into()),
                    Err(error) => {
                        report.failed += 1;
                        tracing::error!(ticket, target = target.as_str(), %error, "Cannot record a missed deadline; will try again.");
                        continue;
                    }
                }
                progress = true;
            }
            // Recorded breaches (ours or another instance's) drop out of the
            // next query; a round without progress would only repeat itself.
            if i64::try_from(round).unwrap_or(i64::MAX) < ROUND || !progress {
                return Ok(report);
            }
        }
    }

    async fn record(&self, breach: Breach, now: i64) -> Result<bool, DeadlineError> {
        let detail = self.store.ticket(breach.ticket).await?;
        let mut events = vec![NewEvent::system(
            EventKind::Overdue,
            format!(
                "plazo de {} vencido (vencía el {})",
                target_label(breach.target),
                templates::spanish_date(breach.due_at, &self.config.deployment.zone)
            ),
        )];
        let plan = self.plan(&detail, &breach, now, &mut events);
        let outgoing = plan.compose(
            &self.config.deployment.ticket_prefix,
            detail.ticket.number,
            &self.signer,
            &self.templates,
        );
        let recorded = self
            .store
            .record_breach(&NewBreach {
                breach: breach.clone(),
                now,
                events,
                outgoing,
            })
            .await?;
        if recorded {
            tracing::warn!(
                ticket = breach.ticket,
                target = breach.target.as_str(),
                late_minutes = (now - breach.due_at) / 60_000,
                "Deadline missed."
            );
        }
        Ok(recorded)
    }

    /// The owner's alert and the escalation mails of one breach.
    fn plan(
        &self,
        detail: &TicketDetail,
        breach: &Breach,
        now: i64,
        events: &mut Vec<NewEvent>,
    ) -> Plan {
        let t = &detail.ticket;
        let mut plan =
            Plan::for_ticket(self.config, t, t.owner.as_deref(), Some(breach.due_at), "");
        plan.vars.target = target_label(breach.target).into();
        plan.vars.late = late(now - breach.due_at);
        let policy = &self.config.deadlines;
        match &t.owner {
            Some(owner) if policy.alert_owner => plan.notify_owner_as(
                self.config,
                owner,
                "alert",
                templates::OVERDUE_ALERT,
                events,
            ),
            Some(_) => {}
            None => events.push(NewEvent::system(
                EventKind::MailWithheld,
                "alerta de vencimiento no enviada: el ticket no tiene responsable".into(),
            )),
        }
        plan.notify_addresses(
            self.config,
            policy.escalation_for(&t.pipeline),
            "escalation",
            templates::ESCALATION,
            events,
        );
        plan
    }
}

/// The target's name as the teams say it (mail templates, history).
pub fn target_label(target: Target) -> &'static str {
    match target {
        Target::FirstResponse => "primera respuesta",
        Target::Resolution => "resolución",
    }
}

/// How late, in words a person reads at a glance: "45 min", "2 h 15 min",
/// "3 días 4 h".
pub fn late(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, h) if mins == 0 => format!("{h} h"),
        (0, h) => format!("{h} h {mins} min"),
        (1, h) => format!("1 día {h} h"),
        (d, h) => format!("{d} días {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_reads_naturally() {
        assert_eq!(late(-5), "0 min");
        assert_eq!(late(45 * 60_000), "45 min");
        assert_eq!(late(120 * 60_000), "2 h");
        assert_eq!(late(135 * 60_000), "2 h 15 min");
        assert_eq!(late((24 + 3) * 3_600_000), "1 día 3 h");
        assert_eq!(late((72 + 4) * 3_600_000 + 59_000), "3 días 4 h");
    }
}
