//! What an action did, typed, for every front end to show in its own way:
//! the command line prints a line, the web a notice, mail a confirmation.

use crate::ticket::{Channel, Outcome, State};
use crate::ticket::{OutgoingMail, Target};

/// The result of one action on one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub ticket: i64,
    /// The ticket as people write it (`GF-5`).
    pub number: String,
    pub changes: Vec<Change>,
    /// The mails handed to the outbox in the same transaction.
    pub queued: Vec<Queued>,
}

/// One thing an action changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A ticket opened by hand.
    Created {
        channel: Channel,
        pipeline: String,
        owner: Option<String>,
        acknowledged: bool,
    },
    Owner {
        before: Option<String>,
        after: String,
    },
    State {
        before: State,
        after: State,
    },
    /// A finished ticket moved back to an open state.
    Reopened {
        state: State,
    },
    Closed {
        outcome: Outcome,
    },
    Commented,
    /// A reply, case update or document request mailed to the client.
    Mailed {
        kind: &'static str,
    },
    /// Priority, type, category, area, pipeline or fields, in words.
    Classified {
        said: Vec<String>,
    },
    Due {
        target: Target,
        at: i64,
    },
    Visibility {
        internal: bool,
    },
    DocumentsRequested {
        items: Vec<String>,
    },
    DocumentReceived {
        item: String,
    },
}

/// A mail queued by an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// reply, update, closing, notification, ...
    pub kind: String,
    /// Our Message-ID, without brackets.
    pub message_id: String,
    pub to: Vec<String>,
}

impl Queued {
    pub fn of(mails: &[OutgoingMail]) -> Vec<Queued> {
        mails
            .iter()
            .map(|m| Queued {
                kind: m.kind.clone(),
                message_id: m.message_id.clone(),
                to: m.rcpt_to.clone(),
            })
            .collect()
    }
}

impl Done {
    /// The Message-ID of the mail to the client this action queued, if any.
    pub fn mail_to_client(&self) -> Option<&str> {
        self.queued
            .iter()
            .find(|q| {
                matches!(
                    q.kind.as_str(),
                    "reply" | "update" | "document_request" | "closing" | "acknowledgement"
                )
            })
            .map(|q| q.message_id.as_str())
    }
}
