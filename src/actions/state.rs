//! Where a ticket is in its life: move it between open states, finish it
//! with an outcome, reopen a finished one.

use super::{Action, ActionError, Agent, Change, Done};
use crate::config::Response;
use crate::outbound::compose::{self, Auto, AutoSubmitted};
use crate::outbound::templates::{self, Vars};
use crate::ticket::{EventKind, Outcome, State};

impl Agent<'_> {
    /// Moves an open ticket to another open state. Finishing is `close`,
    /// and a finished ticket comes back only through `reopen`.
    pub async fn set_state(&self, ticket: i64, state: State) -> Result<Done, ActionError> {
        if state == State::Done {
            return Err(ActionError::Invalid(format!(
                "para finalizar use `buzon tickets close {} --outcome success|failure`",
                self.number(ticket)
            )));
        }
        let detail = self.load(ticket, Action::State).await?;
        let before = detail.ticket.state;
        if before == State::Done {
            return Err(ActionError::Invalid(format!(
                "{} está finalizado: para volver a trabajarlo use `buzon tickets reopen {}`",
                self.number(ticket),
                self.number(ticket)
            )));
        }
        if before == state {
            return Err(ActionError::Invalid(format!(
                "{} ya está en «{}»",
                self.number(ticket),
                self.state_label(state)
            )));
        }
        let mut change = self.owned_change(EventKind::State, format!("{before} → {state}"));
        change.state = Some(state);
        let label = self.state_label(state).to_string();
        self.tell_owner(
            &detail,
            &format!("movió el ticket a «{label}»"),
            "",
            &mut change,
        );
        let answer = (state == State::Open).then_some(Response::Open);
        let changes = vec![Change::State {
            before,
            after: state,
        }];
        self.apply(&detail, change, answer, changes).await
    }

    /// Moves a finished ticket back to an open state (`Open` unless said):
    /// its outcome is cleared, the clocks resume, and the owner is told
    /// when someone else did it.
    pub async fn reopen(
        &self,
        ticket: i64,
        state: Option<State>,
        why: Option<&str>,
    ) -> Result<Done, ActionError> {
        let state = state.unwrap_or(State::Open);
        if state == State::Done {
            return Err(ActionError::Invalid(
                "reabrir lleva el ticket a un estado abierto, no a finalizado".into(),
            ));
        }
        let detail = self.load(ticket, Action::Reopen).await?;
        let before = detail.ticket.state;
        if before != State::Done {
            return Err(ActionError::Invalid(format!(
                "{} no está finalizado (está en «{}»): no hay nada que reabrir",
                self.number(ticket),
                self.state_label(before)
            )));
        }
        let why = why.map(str::trim).filter(|w| !w.is_empty());
        let mut change = self.owned_change(
            EventKind::Reopened,
            format!(
                "{before} → {state}{}",
                why.map(|w| format!(": {w}")).unwrap_or_default()
            ),
        );
        change.state = Some(state);
        let label = self.state_label(state).to_string();
        self.tell_owner(
            &detail,
            &format!("reabrió el ticket («{label}»)"),
            why.unwrap_or(""),
            &mut change,
        );
        self.apply(&detail, change, None, vec![Change::Reopened { state }])
            .await
    }

    /// Finishes a ticket with an outcome and tells the contact
    /// ("finalizar"); the closing mail names who closed it.
    pub async fn close(
        &self,
        ticket: i64,
        outcome: Outcome,
        note: Option<&str>,
    ) -> Result<Done, ActionError> {
        let detail = self.load(ticket, Action::Close).await?;
        if detail.ticket.state == State::Done {
            return Err(ActionError::Invalid(format!(
                "{} ya está finalizado",
                self.number(ticket)
            )));
        }
        let vars = Vars {
            note: note.unwrap_or("").to_string(),
            outcome: match outcome {
                Outcome::Success => "finalizada con éxito",
                Outcome::Failure => "finalizada sin éxito",
            }
            .into(),
            ..self.ticket_vars(&detail)
        };
        let mut change = self.owned_change(
            EventKind::Closed,
            format!("{} ({})", outcome.as_str(), note.unwrap_or("")),
        );
        if detail.ticket.internal {
            change.events.push(self.event(
                EventKind::MailWithheld,
                "ticket interno: no se avisa al cliente".into(),
            ));
        } else if detail.ticket.requester.is_some() {
            let auto = Auto {
                submitted: AutoSubmitted::Generated,
                limit_per_hour: self.config.outbox.auto_reply_limit_per_hour,
            };
            let references = super::mail::thread_ids(&detail);
            let envelope = self.envelope_to_contact(&detail, &references, "closing", Some(auto))?;
            change.outgoing.push(compose::from_template(
                &self.templates,
                templates::CLOSING,
                &vars,
                envelope,
            )?);
        } else {
            change.events.push(self.event(
                EventKind::AckWithheld,
                "el ticket no tiene una dirección de contacto".into(),
            ));
        }
        change.state = Some(State::Done);
        change.outcome = Some(outcome);
        let activity = format!("finalizó el ticket ({})", vars.outcome);
        self.tell_owner(&detail, &activity, note.unwrap_or(""), &mut change);
        self.apply(&detail, change, None, vec![Change::Closed { outcome }])
            .await
    }
}
