//! The deadline clocks: when a ticket is due, and how a pause moves that.
//! Pure: the caller passes "now", so tests control time without sleeping.
//!
//! A clock stops while the ticket waits on the contact (when
//! `deadlines.pause_while_waiting`) and while it is done; it runs again when
//! the state moves on, with the working time that was left when it stopped.
//! A deadline already missed when the clock stopped stays where it was: the
//! breach happened, and moving it would raise a second alert for it.

use std::sync::Arc;

use jiff::tz::TimeZone;

use crate::config::DeadlinePolicy;
use crate::route::Route;
use crate::rules::RuleSet;
use crate::ticket::State;
use crate::ticket::{ClockChange, Deadlines, TicketState};

/// The deployment's working calendar (from the rules' `[business_hours]`)
/// in its time zone.
#[derive(Clone)]
pub struct Calendar {
    rules: Arc<RuleSet>,
    tz: TimeZone,
}

impl Calendar {
    pub fn new(rules: Arc<RuleSet>, tz: TimeZone) -> Calendar {
        Calendar { rules, tz }
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The rule set the calendar comes from (its labels name states).
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The targets a route promises for a ticket opened at `now`.
    pub fn deadlines(&self, route: &Route, now: i64) -> Deadlines {
        let due = |hours: Option<u32>, business: bool| {
            hours.map(|h| self.rules.due_at_ms(now, h, business, &self.tz))
        };
        Deadlines {
            due_at: due(route.sla_hours, route.sla_business_hours),
            due_business: route.sla_business_hours,
            first_response_due_at: due(
                route.first_response_hours,
                route.first_response_business_hours,
            ),
            first_response_business: route.first_response_business_hours,
        }
    }

    /// A due time after a pause from `paused_at` to `now`: the working time
    /// that was left at the pause, counted again from `now`.
    fn resumed(&self, due: Option<i64>, business: bool, paused_at: i64, now: i64) -> Option<i64> {
        due.map(|due| {
            if due <= paused_at {
                return due;
            }
            let left = self
                .rules
                .work_ms_between(paused_at, due, business, &self.tz);
            self.rules.add_work_ms(now, left, business, &self.tz)
        })
    }
}

/// Whether the clocks stand still in `state`.
fn stopped(policy: &DeadlinePolicy, state: State) -> bool {
    state == State::Done || (policy.pause_while_waiting && state == State::WaitingOnContact)
}

/// How moving `ticket` to `to` at `now` changes its clocks, if at all.
pub fn on_state_change(
    calendar: &Calendar,
    policy: &DeadlinePolicy,
    ticket: &TicketState,
    to: State,
    now: i64,
) -> Option<ClockChange> {
    match (ticket.paused_at, stopped(policy, to)) {
        (None, true) => Some(ClockChange::Pause { at: now }),
        (Some(paused_at), false) => {
            let d = &ticket.deadlines;
            let first_response_due_at = if ticket.first_response_at.is_some() {
                d.first_response_due_at
            } else {
                calendar.resumed(
                    d.first_response_due_at,
                    d.first_response_business,
                    paused_at,
                    now,
                )
            };
            Some(ClockChange::Resume {
                due_at: calendar.resumed(d.due_at, d.due_business, paused_at, now),
                first_response_due_at,
            })
        }
        _ => None,
    }
}
