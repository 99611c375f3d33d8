//! A ticket's history lines.

use super::{Conn, Db};
use crate::store::Result;
use crate::store::sql::ROWS_PER_STATEMENT;
use crate::ticket::NewEvent;

/// All history lines of a change in one statement (each
/// statement is a round trip to the database).
pub async fn insert_events(
    tx: &mut sqlx::Transaction<'static, Db>,
    ticket: i64,
    at: i64,
    events: &[NewEvent],
) -> Result<()> {
    let rows: Vec<_> = events.iter().map(|e| (ticket, at, e)).collect();
    insert_events_of(tx, &rows).await
}

/// History lines of several tickets (`(ticket, at, line)`), in
/// one statement per few hundred.
pub(super) async fn insert_events_of(
    tx: &mut Conn,
    events: &[(i64, i64, &NewEvent)],
) -> Result<()> {
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO events (ticket_id, at, actor, kind, detail) ",
        );
        q.push_values(chunk, |mut row, (ticket, at, e)| {
            row.push_bind(*ticket)
                .push_bind(*at)
                .push_bind(e.actor.to_string())
                .push_bind(e.kind.as_str())
                .push_bind(&e.detail);
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}
