//! Deadlines moved by hand (seed 001's "Fecha Límite") and the ticket's
//! visibility to the client.

use super::{Action, ActionError, Agent, Change, Done};
use crate::ticket::{EventKind, Target};

impl Agent<'_> {
    /// Moves a deadline by hand: `at` is the new due time. The old date's
    /// alert clears; the new date is a new promise.
    pub async fn set_due(&self, ticket: i64, target: Target, at: i64) -> Result<Done, ActionError> {
        let detail = self.load(ticket, Action::Due).await?;
        let when = crate::view::local_time(at, self.calendar.time_zone());
        let mut change = self.owned_change(
            EventKind::Due,
            format!("{} vence el {when}", crate::deadline::target_label(target)),
        );
        change.due = Some((target, at));
        self.apply(&detail, change, None, vec![Change::Due { target, at }])
            .await
    }

    /// Makes a ticket internal (hidden from the client: nothing is mailed
    /// to them) or visible again.
    pub async fn set_internal(&self, ticket: i64, internal: bool) -> Result<Done, ActionError> {
        let detail = self.load(ticket, Action::Visibility).await?;
        let said = match internal {
            true => "interno: oculto para el cliente",
            false => "visible para el cliente",
        };
        let mut change = self.owned_change(EventKind::Visibility, said.into());
        change.internal = Some(internal);
        self.apply(&detail, change, None, vec![Change::Visibility { internal }])
            .await
    }
}

/// "2026-12-10 18:00" (or "2026-12-10T18:00") in the deployment's time
/// zone, as Unix ms; a date alone is the end of that day (23:59:59), so an
/// alert never fires a day early. Every front end reads dates with this.
pub fn local_instant(text: &str, tz: &jiff::tz::TimeZone) -> Result<i64, String> {
    let text = text.trim();
    let civil = match text.parse::<jiff::civil::Date>() {
        Ok(day) if !text.contains([' ', 'T']) => {
            day.to_datetime(jiff::civil::Time::constant(23, 59, 59, 0))
        }
        _ => text
            .parse::<jiff::civil::DateTime>()
            .or_else(|_| text.replace(' ', "T").parse::<jiff::civil::DateTime>())
            .map_err(|_| {
                format!("'{text}' no es una fecha: escriba \"2026-12-10 18:00\" o \"2026-12-10\" (hora local)")
            })?,
    };
    let zoned = civil
        .to_zoned(tz.clone())
        .map_err(|e| format!("'{text}' no existe en esa zona horaria: {e}"))?;
    Ok(zoned.timestamp().as_millisecond())
}
