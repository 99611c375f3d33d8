//! Answering a person who wrote to buzon by mail: why what they asked for
//! was not done (a refused or unknown command in a reply to a
//! notification). An automatic mail (RFC 3834), under the limit on
//! notifications, threaded under theirs.

use super::{Action, ActionError, Agent, Done};
use crate::outbound::compose::{self, Auto, AutoSubmitted, Envelope, MailParts, ticket_tag};
use crate::pipeline::domain_of;
use crate::ticket::EventKind;

impl Agent<'_> {
    /// Tells the acting person, by mail, that their mail was not carried
    /// out and why; the ticket's history says so too. Nothing reaches the
    /// customer.
    pub async fn tell_sender(
        &self,
        ticket: i64,
        why: &str,
        their_message_id: Option<&str>,
    ) -> Result<Done, ActionError> {
        let detail = self.load(ticket, Action::Read).await?;
        let mut change = self.change(EventKind::AgentMailRefused, why.to_string());
        let address = self
            .config
            .people
            .get(&self.me.id)
            .and_then(|p| p.address.clone());
        if let Some(address) = address {
            let mailbox = self
                .config
                .mailbox(&detail.ticket.mailbox)
                .map_err(ActionError::Invalid)?;
            let number = self.number(ticket);
            let references: Vec<String> =
                their_message_id.map(str::to_string).into_iter().collect();
            let envelope = Envelope {
                kind: "notification",
                message_id: self
                    .signer
                    .new_id_for(domain_of(&mailbox.address), &self.me.id),
                from_address: &mailbox.address,
                from_name: mailbox
                    .display_name
                    .as_deref()
                    .unwrap_or(&self.config.deployment.name),
                to: vec![(address, Some(self.me.name.clone()))],
                in_reply_to: their_message_id,
                references: &references,
                auto: Some(Auto {
                    submitted: AutoSubmitted::Replied,
                    limit_per_hour: self.config.outbox.notification_limit_per_hour,
                }),
            };
            let body = format!(
                "Hola {}:\n\nSu correo sobre el ticket {number} no se aplicó y no se envió nada al cliente:\n\n  {why}\n\nCorrija y responda de nuevo a la notificación del ticket.\n\nLos comandos, en las primeras líneas de la respuesta:\n  #nota             el resto es un comentario interno\n  #cerrar           finaliza con éxito (el resto es la nota de cierre)\n  #cerrar sin éxito finaliza sin éxito\n  #asignar NOMBRE   asigna el ticket\n  #tomar            toma un ticket sin responsable\n  #estado PALABRA   cambia el estado (las palabras del equipo)\n  #prioridad PALABRA\n\n--\n{}\n",
                self.me.name, self.config.deployment.name
            );
            change.outgoing.push(compose::build(MailParts {
                envelope,
                subject: format!("No se aplicó su correo {}", ticket_tag(&number)),
                body,
                html: None,
                attachments: Vec::new(),
            })?);
        }
        self.apply(&detail, change, None, Vec::new()).await
    }
}
