//! The documents asked of the client: a list mailed to them and kept on the
//! ticket as a checklist, ticked as they arrive.

use super::{Action, ActionError, Agent, Change, Done, words};
use crate::config::Response;
use crate::ticket::{EventKind, State};

impl Agent<'_> {
    /// Asks the client for documents; the ticket waits on the client.
    pub async fn request_documents(
        &self,
        ticket: i64,
        items: &[String],
        note: Option<&str>,
    ) -> Result<Done, ActionError> {
        let items: Vec<String> = items
            .iter()
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .collect();
        if items.is_empty() {
            return Err(ActionError::Invalid(
                "nombre al menos un documento: --item \"poder notarial\"".into(),
            ));
        }
        let detail = self.load(ticket, Action::Documents).await?;
        let body = request_body(&items, note, &self.config.deployment.name);
        let mail = self.person_mail(
            &detail,
            "document_request",
            "Solicitud de documentos:",
            body,
        )?;
        let before = detail.ticket.state;
        let mut change = self.owned_change(EventKind::DocumentsRequested, items.join("; "));
        change.outgoing.push(mail);
        change.request_items = items.clone();
        if before != State::WaitingOnContact {
            change.state = Some(State::WaitingOnContact);
            change.events.push(self.event(
                EventKind::State,
                format!("{before} → {}", State::WaitingOnContact),
            ));
        }
        let asked = items.join("\n");
        self.tell_owner(&detail, "pidió documentos al cliente", &asked, &mut change);
        let changes = vec![
            Change::DocumentsRequested { items },
            Change::Mailed {
                kind: "document_request",
            },
        ];
        self.apply(&detail, change, Some(Response::Request), changes)
            .await
    }

    /// Marks a requested document as received. The item is found among
    /// those asked ignoring case and accents; another is refused with the
    /// list and the closest ones ("copia carnet": ¿"Copia de carnet"?).
    pub async fn received(&self, ticket: i64, item: &str) -> Result<Done, ActionError> {
        let detail = self.load(ticket, Action::Documents).await?;
        let asked: Vec<(String, Vec<String>)> = detail
            .requests
            .iter()
            .map(|r| (r.item.clone(), vec![r.item.clone()]))
            .collect();
        if asked.is_empty() {
            return Err(ActionError::Invalid(format!(
                "a {} no se le han pedido documentos (`buzon tickets request {} --item ...`)",
                self.number(ticket),
                self.number(ticket)
            )));
        }
        let item = words::pick(item, &asked, "un documento pedido en este ticket")
            .map_err(ActionError::Invalid)?;
        let mut change = self.owned_change(EventKind::DocumentReceived, item.clone());
        change.received_item = Some(item.clone());
        self.apply(
            &detail,
            change,
            None,
            vec![Change::DocumentReceived { item }],
        )
        .await
    }
}

fn request_body(items: &[String], note: Option<&str>, team: &str) -> String {
    let mut body =
        String::from("Hola:\n\nPara continuar con su caso necesitamos que nos envíe:\n\n");
    for item in items {
        body.push_str(&format!("  - {item}\n"));
    }
    if let Some(note) = note {
        body.push_str(&format!("\n{note}\n"));
    }
    body.push_str(&format!(
        "\nPuede responder a este correo adjuntando los documentos.\n\nSaludos cordiales,\n{team}\n"
    ));
    body
}
