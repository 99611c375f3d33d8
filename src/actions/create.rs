//! Tickets opened by hand: a request that came by phone or in person (seed
//! 001's "Nuevo ingreso" with its "Medio de ingreso"; seed 003's phone
//! protocol: register it, then mail the ticket number). It goes through the
//! same rules as mail, with its channel as a condition they can use, and
//! the requester gets the acknowledgement with the number when they have
//! an address.

use super::{Action, ActionError, Agent, Change, Done, people, permission};
use crate::pipeline::{ByHand, Outcome, Pipeline, domain_of};
use crate::ticket::Channel;

/// What an agent writes down.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    pub channel: Channel,
    /// The `[mailboxes.NAME]` the request belongs to; unset: the only one.
    pub mailbox: Option<String>,
    /// The requester's mail address, if they gave one.
    pub requester: Option<String>,
    pub name: Option<String>,
    pub subject: String,
    /// What the contact asked, in the agent's words.
    pub body: String,
    /// A person to own it, over the rules' choice.
    pub owner: Option<String>,
}

impl Agent<'_> {
    /// Opens a ticket for a request written down by hand.
    pub async fn create(&self, request: &NewRequest) -> Result<Done, ActionError> {
        let subject = one_line(&request.subject);
        if subject.is_empty() {
            return Err(ActionError::Invalid(
                "falta el asunto: --subject \"...\"".into(),
            ));
        }
        let name = request
            .name
            .as_deref()
            .map(one_line)
            .filter(|n| !n.is_empty());
        let requester = request
            .requester
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        if requester.is_none() && name.is_none() {
            return Err(ActionError::Invalid(
                "¿quién lo pide? indique --requester CORREO o --name \"Nombre\"".into(),
            ));
        }
        if let Some(address) = requester {
            crate::outbound::compose::check_address(address).map_err(ActionError::Invalid)?;
        }
        let mailbox = self.mailbox_for(request.mailbox.as_deref())?;
        let owner = match &request.owner {
            Some(o) => Some(
                people::find(self.config, o)
                    .map_err(ActionError::UnknownPerson)?
                    .id,
            ),
            None => None,
        };
        let address = &self
            .config
            .mailbox(&mailbox)
            .map_err(ActionError::Invalid)?
            .address;
        let now = self.now();
        let message_id = self.signer.new_id(domain_of(address));
        let raw = request_mail(&RequestMail {
            from: requester.map(|a| (a, name.as_deref())),
            to: address,
            subject: &subject,
            body: &request_text(request, name.as_deref(), requester),
            message_id: &message_id,
            at: now,
        });
        let me = self.me.clone();
        let authorize = move |route: &crate::route::Route| {
            let on = permission::Subject {
                number: "el ticket nuevo",
                owner: None,
                pipeline: &route.pipeline,
            };
            permission::check(&me, Action::Create, &on).map_err(|d| d.to_string())
        };
        let hand = ByHand {
            channel: request.channel,
            by: &self.me.id,
            owner: owner.as_deref(),
            authorize: &authorize,
        };
        let pipeline = Pipeline::from_parts(
            self.config,
            self.store,
            self.signer.clone(),
            self.templates.clone(),
            self.rules.clone(),
        )?;
        let Outcome::Created {
            ticket,
            acknowledged,
        } = pipeline.open_by_hand(&raw, &mailbox, &hand, now).await?
        else {
            return Err(ActionError::Invalid(
                "the request did not open a ticket".into(),
            ));
        };
        let t = self.store.ticket(ticket).await?.ticket;
        Ok(Done {
            ticket,
            number: self.number(ticket),
            changes: vec![Change::Created {
                channel: request.channel,
                pipeline: t.pipeline,
                owner: t.owner,
                acknowledged,
            }],
            queued: Vec::new(),
        })
    }

    /// The mailbox named, or the only one there is.
    fn mailbox_for(&self, named: Option<&str>) -> Result<String, ActionError> {
        let known: Vec<&str> = self.config.mailboxes.keys().map(String::as_str).collect();
        match (named, known.as_slice()) {
            (Some(name), _) => {
                self.config.mailbox(name).map_err(ActionError::Invalid)?;
                Ok(name.to_string())
            }
            (None, [only]) => Ok(only.to_string()),
            (None, _) => Err(ActionError::Invalid(format!(
                "¿de qué buzón es la solicitud? indique --mailbox, uno de {}",
                super::words::quoted(&known)
            ))),
        }
    }
}

/// The request as a mail, so that it is stored, shown and routed like
/// every other: what the agent wrote is its text.
struct RequestMail<'a> {
    from: Option<(&'a str, Option<&'a str>)>,
    to: &'a str,
    subject: &'a str,
    body: &'a str,
    message_id: &'a str,
    at: i64,
}

fn request_mail(m: &RequestMail<'_>) -> Vec<u8> {
    let date = jiff::Timestamp::from_millisecond(m.at)
        .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default();
    let mut out = String::new();
    if let Some((address, name)) = m.from {
        match name {
            Some(n) => out.push_str(&format!(
                "From: \"{}\" <{address}>\r\n",
                n.replace(['"', '\\'], "")
            )),
            None => out.push_str(&format!("From: <{address}>\r\n")),
        }
    }
    out.push_str(&format!(
        "To: <{}>\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        m.to, m.subject, m.message_id
    ));
    for line in m.body.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// The agent's words, with who asked when they left no address.
fn request_text(request: &NewRequest, name: Option<&str>, requester: Option<&str>) -> String {
    let mut text = request.body.trim().to_string();
    if requester.is_none()
        && let Some(name) = name
    {
        text.push_str(&format!("\n\nContacto: {name} (sin correo)"));
    }
    text
}

/// Header text on one line: what an agent typed must not add headers.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
