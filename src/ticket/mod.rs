//! The ticket domain: its vocabulary (states, outcomes, priorities, the
//! human number) here, its records in the submodules: the ticket as read
//! ([`record`]), its history ([`event`]) and the mail it sends
//! ([`outgoing`]).
//!
//! Pure types with their text forms; no I/O, and nothing of the store: the
//! store reads and writes these records and decodes their text columns into
//! these types. The store keeps the vocabulary as its canonical English
//! names (`waiting_on_us`), each deployment shows its own labels ("En
//! ejecución", "Doing").

/// For an enum kept in the database as fixed texts: `ALL`, `as_str` (the
/// stored text), `Display`, an exact `FromStr` (what the store decodes
/// with) and `Serialize` as the same text, so the JSON of the CLI and the
/// database can never disagree.
macro_rules! stored_text {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &[$ty] = &[$($ty::$variant),+];

            /// The stored text (also the JSON value).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(format!(concat!("unknown ", $what, " '{}'"), s)),
                }
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub mod event;
pub mod outgoing;
pub mod record;
pub mod webhook;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use event::{Actor, EventKind, EventView, NewEvent};
pub use outgoing::{OutboxRow, OutboxStatus, OutgoingMail};
pub use record::{
    AlertRow, AttachmentView, Breach, Classification, ClockChange, Deadlines, DocumentRequest,
    MessageView, Participant, ReportRow, Target, TicketDetail, TicketRow, TicketState,
};
pub use webhook::{HookDelivery, HookEvent, HookKind, HookTicket, NewHookEvent};

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Just arrived, nobody has acted yet.
    #[default]
    New,
    /// Someone is working on it.
    Open,
    /// We asked the contact something and wait for the answer.
    WaitingOnContact,
    /// The contact answered; the next move is ours.
    WaitingOnUs,
    /// Finished, with an [`Outcome`].
    Done,
}

impl State {
    pub const ALL: [State; 5] = [
        State::New,
        State::Open,
        State::WaitingOnContact,
        State::WaitingOnUs,
        State::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Open => "open",
            State::WaitingOnContact => "waiting_on_contact",
            State::WaitingOnUs => "waiting_on_us",
            State::Done => "done",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| {
                format!(
                    "unknown state '{s}': write one of new, open, waiting_on_contact, waiting_on_us, done"
                )
            })
    }
}

/// How a done ticket ended ("finalizada con éxito / sin éxito").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            _ => Err(format!("unknown outcome '{s}': write success or failure")),
        }
    }
}

/// How a request reached the team (seed 001's "Medio de ingreso"): by
/// mail, which buzon reads itself, or by phone or in person, which an agent
/// records by hand (`buzon tickets new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Email,
    Phone,
    InPerson,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Phone, Channel::InPerson];

    /// The stored name, and the value of the rules' `channel` condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Phone => "phone",
            Channel::InPerson => "in_person",
        }
    }

    /// The word people read.
    pub fn label(self) -> &'static str {
        match self {
            Channel::Email => "correo",
            Channel::Phone => "teléfono",
            Channel::InPerson => "presencial",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;
    /// The stored name or the Spanish word, in any case, with or without
    /// accents ("teléfono", "telefono", "presencial", "correo").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = crate::rules::fold_text(s.trim()).replace(['-', ' '], "_");
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == norm || crate::rules::fold_text(c.label()) == norm)
            .or(match norm.as_str() {
                "mail" | "e_mail" => Some(Channel::Email),
                _ => None,
            })
            .ok_or_else(|| {
                format!("unknown channel '{s}': write one of email, phone, in_person (correo, teléfono, presencial)")
            })
    }
}

/// How urgent a ticket is. Labels per deployment (baja/media/alta/urgente).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase();
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == norm)
            .ok_or_else(|| {
                format!("unknown priority '{s}': write one of low, medium, high, urgent")
            })
    }
}

impl TryFrom<String> for Priority {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A ticket's human number as shown to people: prefix + number (`T-1042`).
pub fn display_number(prefix: &str, number: i64) -> String {
    format!("{prefix}{number}")
}

/// Parses `T-1042`, `1042` or `#T-1042` back to the number.
pub fn parse_number(prefix: &str, text: &str) -> Option<i64> {
    let t = text.trim().trim_start_matches('#');
    let t = t.strip_prefix(prefix).unwrap_or(t);
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_and_lenient_spelling() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
        }
        assert_eq!(
            "Waiting on us".parse::<State>().unwrap(),
            State::WaitingOnUs
        );
        assert!("cerrado".parse::<State>().is_err());
    }

    #[test]
    fn priority_orders_by_urgency() {
        assert!(Priority::Urgent > Priority::High);
        assert!(Priority::Low < Priority::Medium);
        assert!("ALTA".parse::<Priority>().is_err());
    }

    #[test]
    fn channels_read_in_either_language() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), c);
            assert_eq!(c.label().parse::<Channel>().unwrap(), c);
        }
        assert_eq!("Telefono".parse::<Channel>().unwrap(), Channel::Phone);
        assert_eq!("in-person".parse::<Channel>().unwrap(), Channel::InPerson);
        assert!("fax".parse::<Channel>().is_err());
    }

    #[test]
    fn numbers_round_trip() {
        assert_eq!(display_number("T-", 1042), "T-1042");
        assert_eq!(parse_number("T-", "#T-1042"), Some(1042));
        assert_eq!(parse_number("T-", "77"), Some(77));
        assert_eq!(parse_number("T-", "abc"), None);
    }
}
