//! Mail from the team: an agent answers a ticket by replying to its
//! notification, from their own mail client.
//!
//! A mail counts as an agent's only when all of these hold (`identify`):
//! its From is the address of a person of `[people]`; it answers a
//! notification whose Message-ID buzon signed for that same person; and,
//! when `[security] trusted_authserv_id` is set, the trusted server's
//! `Authentication-Results` vouches for it (`auth`). The pipeline keeps
//! such a mail on its ticket and queues it as a job (`run` executes it
//! through the action layer, step by step, each step in the transaction of
//! its change). Anything else that answers a signed notification is kept
//! on the ticket as a flagged note and reaches no customer.
//!
//! `words` cuts the quoted notification and the signature; `commands`
//! reads `#nota`, `#cerrar`, `#asignar` … on the first lines.

pub mod auth;
pub mod commands;
pub mod run;
pub mod words;

use crate::config::Config;
use crate::parse::ParsedMail;
use crate::thread::{IdSigner, referenced_ids};

/// What a mail is, as staff mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not an answer to a staff notification: the usual pipeline.
    NotStaff,
    /// An agent answering their notification.
    Agent { person: String },
    /// It answers a notification but cannot be trusted as the agent's
    /// (the reason, for the ticket's history): kept, never forwarded.
    Untrusted { reason: String },
}

/// Decides whether `mail` is an agent's answer to a notification.
pub fn identify(mail: &ParsedMail, config: &Config, signer: &IdSigner) -> Verdict {
    let signed_for: Vec<String> = referenced_ids(mail)
        .iter()
        .filter_map(|id| signer.signed_for(id))
        .collect();
    if signed_for.is_empty() {
        return Verdict::NotStaff;
    }
    let from = mail.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
    let Some(person) = config.person_by_address(from) else {
        return Verdict::Untrusted {
            reason: format!(
                "responde una notificación, pero {from} no es la dirección de nadie en [people]"
            ),
        };
    };
    if !signed_for.iter().any(|p| p == person) {
        return Verdict::Untrusted {
            reason: format!(
                "{from} ({person}) responde una notificación enviada a {}",
                signed_for.join(", ")
            ),
        };
    }
    if let Some(server) = &config.security.trusted_authserv_id {
        let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if !auth::vouched(&mail.headers, server, domain) {
            return Verdict::Untrusted {
                reason: format!(
                    "el Authentication-Results de {server} no avala a {from} (ni dmarc=pass ni dkim=pass alineado)"
                ),
            };
        }
    }
    Verdict::Agent {
        person: person.to_string(),
    }
}
