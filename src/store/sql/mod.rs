//! The SQL, written once and compiled for each backend.
//!
//! Each aggregate (`tickets.rs`, `messages.rs`, `listing.rs` for what is
//! listed and shown, `search.rs` the search, `events.rs` the history, `outbox.rs`, `deadlines.rs`,
//! `quarantine.rs`, `leases.rs` with the IMAP checkpoints, `settings.rs`,
//! `tx.rs`) is one ordinary file of queries over the types `Db` and `Conn`
//! of its parent module. That parent is `sqlite.rs` or `postgres.rs`: each
//! includes every aggregate file (`#[path]`), so the text of every query is
//! identical on both backends, and the only backend-specific pieces are the
//! few constants each defines beside its `Db`, each with why it differs:
//!
//! - `BEGIN_WRITE`: how a write transaction starts;
//! - `CLAIM_LOCK`: the row locking clause for claiming outbox rows;
//! - `LIMIT_LOCK`: the lock that makes the per-recipient count of automatic
//!   mail exact;
//! - `GIVE_BACK_NUMBER`: how a ticket number taken back is given back;
//! - `MESSAGE_WITH_TICKET`: whether a new ticket and its first message are
//!   one statement (an `INSERT` inside `WITH`, PostgreSQL) or two;
//! - `DOC_ID`, `push_hits`, `rank_hits` and `SEARCH_WALK`: the search
//!   index's document id, the query of matching documents (FTS5 `MATCH`,
//!   then where the words are, asked per column; a `tsquery` of the
//!   Spanish configuration and `ts_rank`), built from parsed words, and
//!   the newest documents tested before the index (PostgreSQL's GIN).
//! - `FANOUT_LOCK`: what makes one webhook fan-out run at a time;
//!
//! What does not depend on the backend (text decoding, the limit on
//! automatic mail, the history line of a queued mail) is here, once.

use std::collections::HashMap;
use std::str::FromStr;

use super::{Result, StoreError};
use crate::ticket::{EventKind, NewEvent, OutgoingMail};

// Each backend module includes the same aggregate files: on purpose.
#[allow(clippy::duplicate_mod)]
pub(super) mod postgres;
#[allow(clippy::duplicate_mod)]
pub(super) mod sqlite;

/// The deadline a ticket is judged by: the first-response target while it is
/// unanswered and earlier than the resolution target, else the resolution
/// target. A CASE rather than LEAST/MIN, which the two databases spell
/// differently.
const EFFECTIVE_DUE: &str = "(CASE WHEN t.first_response_at IS NULL \
     AND t.first_response_due_at IS NOT NULL \
     AND (t.due_at IS NULL OR t.first_response_due_at < t.due_at) \
     THEN t.first_response_due_at ELSE t.due_at END)";

/// Most rows (or list items) one statement carries: far under the bind
/// parameter limits of both databases (SQLite 32,766, PostgreSQL 65,535)
/// with a dozen columns a row.
const ROWS_PER_STATEMENT: usize = 500;

/// A text column read back as one of buzon's types (a state, a priority,
/// a kind of history line ...): a value buzon does not know is an error
/// naming the column and the value, never a silent default.
fn decode<T: FromStr>(column: &'static str, value: String) -> Result<T> {
    value
        .parse()
        .map_err(|_| StoreError::Invalid { column, value })
}

/// [`decode`] for a column that may be NULL.
fn decode_opt<T: FromStr>(column: &'static str, value: Option<String>) -> Result<Option<T>> {
    value.map(|v| decode(column, v)).transpose()
}

/// A JSON text column (a ticket's tags, its fields).
fn decode_json<T: serde::de::DeserializeOwned>(column: &'static str, value: String) -> Result<T> {
    serde_json::from_str(&value).map_err(|_| StoreError::Invalid { column, value })
}

/// Comma-joined addresses for the message columns.
fn join_addresses(list: &[crate::parse::MailAddress]) -> String {
    list.iter()
        .map(|a| a.address.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A mail on its way into the outbox, with the recipients the limit on
/// automatic mail let through.
struct Queued<'a> {
    ticket: i64,
    now: i64,
    mail: &'a OutgoingMail,
    rcpt_to: Vec<String>,
}

/// The recipients of an automatic mail still under the hourly limit.
/// `sent` holds what each (lowercased) address got in the last hour,
/// including the mails queued before this one in the same transaction, and
/// counts this one; each recipient over the limit gets a history line.
fn under_auto_limit(
    mail: &OutgoingMail,
    limit: u32,
    sent: &mut HashMap<String, i64>,
    events: &mut Vec<NewEvent>,
) -> Vec<String> {
    let mut kept = Vec::new();
    for address in &mail.rcpt_to {
        let count = sent
            .get(&address.to_ascii_lowercase())
            .copied()
            .unwrap_or(0);
        if count < i64::from(limit) {
            kept.push(address.clone());
            continue;
        }
        let kind = if mail.is_acknowledgement() {
            EventKind::AckWithheld
        } else {
            EventKind::MailWithheld
        };
        let detail = format!(
            "{} a {address} no enviado: en la última hora se enviaron {count} correos automáticos a esta dirección y el límite es {limit} (outbox.auto_reply_limit_per_hour); lo más probable es un bucle con un robot",
            mail.kind
        );
        events.push(NewEvent::system(kind, detail));
    }
    for address in &kept {
        *sent.entry(address.to_ascii_lowercase()).or_default() += 1;
    }
    kept
}

/// The history line of a mail queued.
fn queued_line(mail: &OutgoingMail, rcpt_to: &[String]) -> NewEvent {
    NewEvent::system(
        EventKind::MailQueued,
        format!(
            "{} to {} queued (Message-ID <{}>)",
            mail.kind,
            rcpt_to.join(", "),
            mail.message_id
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{Actor, Priority, State};

    #[test]
    fn a_known_stored_text_decodes() {
        let state: State = decode("tickets.state", "waiting_on_us".into()).unwrap();
        assert_eq!(state, State::WaitingOnUs);
        let actor: Actor = decode("events.actor", "agent:ana".into()).unwrap();
        assert_eq!(actor, Actor::Agent("ana".into()));
        let none: Option<Priority> = decode_opt("tickets.priority", None).unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn a_bad_stored_value_names_its_column_and_value() {
        let err = decode::<Priority>("tickets.priority", "altisima".into()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("tickets.priority"), "{text}");
        assert!(text.contains("'altisima'"), "{text}");
        assert!(!err.is_transient());
        for (column, value) in [
            ("tickets.state", "cerrado"),
            ("events.kind", "teleported"),
            ("events.actor", "robot"),
            ("outbox.status", "delivered"),
            ("tickets.outcome", "maybe"),
        ] {
            let err = match column {
                "tickets.state" => decode::<State>(column, value.into()).unwrap_err(),
                "events.kind" => decode::<EventKind>(column, value.into()).unwrap_err(),
                "events.actor" => decode::<Actor>(column, value.into()).unwrap_err(),
                "outbox.status" => {
                    decode::<crate::ticket::OutboxStatus>(column, value.into()).unwrap_err()
                }
                _ => decode::<crate::ticket::Outcome>(column, value.into()).unwrap_err(),
            };
            let text = err.to_string();
            assert!(text.contains(column) && text.contains(value), "{text}");
        }
    }

    #[test]
    fn bad_json_names_its_column() {
        let err = decode_json::<Vec<String>>("tickets.tags", "[oops".into()).unwrap_err();
        assert!(err.to_string().contains("tickets.tags"), "{err}");
    }
}
