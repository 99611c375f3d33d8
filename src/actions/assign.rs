//! Who works a ticket: give it to someone, or take it.

use super::{Action, ActionError, Agent, Change, Done, people};
use crate::outbound::plan::{Plan, owner_name};
use crate::outbound::templates;
use crate::ticket::{EventKind, TicketDetail};

impl Agent<'_> {
    /// Gives the ticket to `to` (a person of `[people]`, by key or name)
    /// and tells them, unless they gave it to themselves. Giving an unowned
    /// ticket to oneself is taking it.
    pub async fn assign(&self, ticket: i64, to: &str) -> Result<Done, ActionError> {
        let to = people::find(self.config, to).map_err(ActionError::UnknownPerson)?;
        let detail = self.store.ticket(ticket).await?;
        let taking = to.id == self.me.id && detail.ticket.owner.is_none();
        self.permit(
            if taking { Action::Take } else { Action::Assign },
            &detail.ticket,
        )?;
        self.give(&detail, &to.id).await
    }

    /// Takes an unowned ticket (any agent of its pipeline may).
    pub async fn take(&self, ticket: i64) -> Result<Done, ActionError> {
        let detail = self.load(ticket, Action::Take).await?;
        let me = self.me.id.clone();
        self.give(&detail, &me).await
    }

    async fn give(&self, detail: &TicketDetail, owner: &str) -> Result<Done, ActionError> {
        let before = detail.ticket.owner.clone();
        if before.as_deref() == Some(owner) {
            return Err(ActionError::Invalid(format!(
                "{} ya está a cargo de {}",
                self.number(detail.ticket.number),
                owner_name(self.config, owner)
            )));
        }
        let mut change = self.owned_change(
            EventKind::Assigned,
            format!("{} → {owner}", before.as_deref().unwrap_or("-")),
        );
        if owner != self.me.id {
            change.outgoing = self.owner_notification(detail, owner, &mut change.events);
        }
        change.owner = Some(owner.to_string());
        let changes = vec![Change::Owner {
            before,
            after: owner.to_string(),
        }];
        self.apply(detail, change, None, changes).await
    }

    /// The new owner's notice that the ticket is now theirs.
    fn owner_notification(
        &self,
        detail: &TicketDetail,
        owner: &str,
        events: &mut Vec<crate::ticket::NewEvent>,
    ) -> Vec<crate::ticket::OutgoingMail> {
        let t = &detail.ticket;
        let last_in = self.last_from_customer(detail);
        let mut plan = Plan::for_ticket(
            self.config,
            t,
            Some(owner),
            t.due_at,
            last_in.map(|m| m.body_text.as_str()).unwrap_or(""),
        )
        .answering(last_in.and_then(|m| m.message_id.as_deref()), &[]);
        plan.vars.actor = self.me.name.clone();
        plan.notify_owner(self.config, owner, templates::OWNER_ASSIGNED, events);
        self.compose(&plan, t.number)
    }
}
