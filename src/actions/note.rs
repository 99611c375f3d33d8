//! Internal comments: never mailed to the client; the owner hears of them
//! when someone else writes one.

use super::{Action, ActionError, Agent, Change, Done};
use crate::ticket::EventKind;

impl Agent<'_> {
    /// Adds an internal comment ("Ingresar Comentario").
    pub async fn comment(&self, ticket: i64, text: &str) -> Result<Done, ActionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ActionError::Invalid(
                "el comentario está vacío: escriba el texto".into(),
            ));
        }
        let detail = self.load(ticket, Action::Comment).await?;
        let mut change = self.change(EventKind::Comment, text.to_string());
        self.tell_owner(&detail, "agregó un comentario", text, &mut change);
        self.apply(&detail, change, None, vec![Change::Commented])
            .await
    }
}
