//! Mail a ticket sends: as composed ([`OutgoingMail`]) and as queued in the
//! outbox ([`OutboxRow`], with its [`OutboxStatus`]).

use serde::Serialize;

/// A mail ready to leave through the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// acknowledgement, notification, reply, ... (the template's name).
    pub kind: String,
    /// Our Message-ID, without brackets.
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The complete RFC 5322 message.
    pub raw: Vec<u8>,
    /// Recorded on the ticket as an outgoing message.
    pub subject: String,
    pub body_text: String,
    /// Automatic mail (acknowledgements, notifications, closing messages):
    /// at most this many to one recipient per hour; a recipient over the
    /// limit is dropped with a history line. `None` for a person's mail.
    pub auto_limit_per_hour: Option<u32>,
}

impl OutgoingMail {
    /// Whether this is the acknowledgement with the ticket number.
    pub fn is_acknowledgement(&self) -> bool {
        self.kind == "acknowledgement"
    }
}

/// Where an outbox row is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting for its next attempt (the first, or a retry).
    Queued,
    Sent,
    /// Given up: a permanent refusal, or too old.
    Failed,
}

stored_text!(OutboxStatus, "outbox status", {
    Queued => "queued",
    Sent => "sent",
    Failed => "failed",
});

/// One row of the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket: Option<i64>,
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// When `buzon outbox retry` last requeued it (the maximum age counts
    /// from here).
    pub requeued_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_stored_text() {
        for &status in OutboxStatus::ALL {
            assert_eq!(status.as_str().parse::<OutboxStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert!("delivered".parse::<OutboxStatus>().is_err());
    }
}
