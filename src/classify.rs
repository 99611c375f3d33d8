//! Is this mail from a robot? Pure detection of automatic mail.
//!
//! Follows RFC 3834 and what help desks learned the hard way: auto-replies,
//! delivery reports, feedback reports, mailing lists, bulk mail and no-reply
//! senders are stored like any mail but never acknowledged, and never change
//! a ticket's state. The result carries the reason, which goes into the
//! ticket history so an agent can see why no answer was sent.

use serde::Serialize;

use crate::parse::ParsedMail;

/// What kind of automatic mail this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoKind {
    /// Out of office, vacation, "we received your mail".
    AutoReply,
    /// Delivery failure or delay report (DSN), read receipt.
    Bounce,
    /// Abuse/spam feedback report (ARF).
    Complaint,
    /// Mailing-list traffic.
    List,
    /// Other machine-generated mail (bulk, notifications).
    Generated,
    /// Sent from an address that does not read replies.
    NoReply,
    /// From one of our own addresses (a loop in the making).
    Ours,
}

impl AutoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoKind::AutoReply => "autoreply",
            AutoKind::Bounce => "bounce",
            AutoKind::Complaint => "complaint",
            AutoKind::List => "list",
            AutoKind::Generated => "generated",
            AutoKind::NoReply => "noreply",
            AutoKind::Ours => "ours",
        }
    }

    /// Whether this kind of mail is a reaction to something we sent (and so
    /// belongs on that ticket without changing it).
    pub fn is_reaction(self) -> bool {
        matches!(self, AutoKind::AutoReply | AutoKind::Bounce)
    }
}

/// The verdict: which kind and the evidence that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Automatic {
    pub kind: AutoKind,
    pub reason: String,
}

fn found(kind: AutoKind, reason: impl Into<String>) -> Option<Automatic> {
    Some(Automatic {
        kind,
        reason: reason.into(),
    })
}

/// Classifies a mail. `is_own` says whether an address is one of ours.
pub fn classify(mail: &ParsedMail, is_own: &dyn Fn(&str) -> bool) -> Option<Automatic> {
    report(mail)
        .or_else(|| auto_submitted(mail))
        .or_else(|| null_sender(mail))
        .or_else(|| robot_sender(mail))
        .or_else(|| list_headers(mail))
        .or_else(|| precedence(mail))
        .or_else(|| vendor_headers(mail))
        .or_else(|| subject_wording(mail))
        .or_else(|| own_sender(mail, is_own))
}

fn report(mail: &ParsedMail) -> Option<Automatic> {
    let has_part = |t: &str| mail.part_types.iter().any(|p| p == t);
    if has_part("message/feedback-report") || mail.report_type.as_deref() == Some("feedback-report")
    {
        return found(AutoKind::Complaint, "ARF feedback report (RFC 5965)");
    }
    if has_part("message/delivery-status") || has_part("message/global-delivery-status") {
        return found(AutoKind::Bounce, "message/delivery-status part (RFC 3464)");
    }
    if has_part("message/disposition-notification") {
        return found(AutoKind::Bounce, "read receipt (RFC 8098)");
    }
    if mail.content_type == "multipart/report" {
        return found(AutoKind::Bounce, "multipart/report (RFC 6522)");
    }
    if mail.header("X-Failed-Recipients").is_some() {
        return found(AutoKind::Bounce, "X-Failed-Recipients header");
    }
    None
}

fn auto_submitted(mail: &ParsedMail) -> Option<Automatic> {
    let value = mail.header("Auto-Submitted")?.to_ascii_lowercase();
    let token = value
        .split(['(', ';'])
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if token == "no" || token.is_empty() {
        return None;
    }
    let kind = if token == "auto-replied" {
        AutoKind::AutoReply
    } else {
        AutoKind::Generated
    };
    found(kind, format!("Auto-Submitted: {token} (RFC 3834)"))
}

fn null_sender(mail: &ParsedMail) -> Option<Automatic> {
    let rp = mail.header("Return-Path")?;
    let inner = rp
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if inner.is_empty() {
        return found(AutoKind::Bounce, "null Return-Path <> (RFC 5321)");
    }
    None
}

/// Local parts that mark delivery software or unattended senders.
fn robot_sender(mail: &ParsedMail) -> Option<Automatic> {
    let from = mail.from.as_ref()?;
    let local = from.local_part().to_ascii_lowercase();
    let name = from.name.as_deref().unwrap_or("").to_ascii_lowercase();
    if local == "mailer-daemon" || local == "mdaemon" || name.contains("mail delivery s") {
        return found(
            AutoKind::Bounce,
            format!("sender {} is a mailer daemon", from.address),
        );
    }
    if local == "postmaster" || local == "post_master" {
        return found(
            AutoKind::Bounce,
            format!("sender {} is postmaster", from.address),
        );
    }
    if is_no_reply_local(&local) {
        return found(
            AutoKind::NoReply,
            format!("sender {} does not read replies", from.address),
        );
    }
    None
}

fn is_no_reply_local(local: &str) -> bool {
    let squashed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const NO_REPLY: &[&str] = &[
        "noreply",
        "donotreply",
        "noresponder",
        "norespondas",
        "norespondaestecorreo",
        "nocontestar",
        "notreply",
        "bounce",
        "bounces",
    ];
    NO_REPLY
        .iter()
        .any(|p| squashed == *p || squashed.starts_with(p))
}

/// Whether an address we would answer (a `Reply-To` that differs from
/// `From`) belongs to a robot: a mailer daemon, postmaster or a no-reply
/// sender. Returns the reason for the history.
pub fn unattended_address(address: &str) -> Option<String> {
    let local = address
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(address)
        .to_ascii_lowercase();
    if matches!(
        local.as_str(),
        "mailer-daemon" | "mdaemon" | "postmaster" | "post_master"
    ) {
        return Some(format!("{address}, una dirección del sistema de correo"));
    }
    is_no_reply_local(&local).then(|| format!("{address}, que no lee respuestas"))
}

fn list_headers(mail: &ParsedMail) -> Option<Automatic> {
    for h in [
        "List-Id",
        "List-Unsubscribe",
        "List-Post",
        "Mailing-List",
        "X-BeenThere",
        // fml, the Japanese list manager, marks its mail (and its loop
        // alerts) with these instead of List-*.
        "X-MLServer",
        "X-ML-Name",
    ] {
        if mail.header(h).is_some() {
            return found(AutoKind::List, format!("{h} header (mailing list)"));
        }
    }
    None
}

fn precedence(mail: &ParsedMail) -> Option<Automatic> {
    let value = mail.header("Precedence")?.trim().to_ascii_lowercase();
    match value.as_str() {
        "bulk" | "junk" => found(AutoKind::Generated, format!("Precedence: {value}")),
        "list" => found(AutoKind::List, "Precedence: list"),
        "auto_reply" | "auto-reply" => found(AutoKind::AutoReply, "Precedence: auto_reply"),
        _ => None,
    }
}

fn vendor_headers(mail: &ParsedMail) -> Option<Automatic> {
    for h in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if mail.header(h).is_some() {
            return found(AutoKind::AutoReply, format!("{h} header"));
        }
    }
    if let Some(v) = mail.header("X-Auto-Response-Suppress") {
        // Exchange sets this on its own automatic mail; on a person's mail it
        // is usually absent. "None" is an explicit opt-out of the signal.
        if !v.trim().eq_ignore_ascii_case("none") {
            return found(
                AutoKind::Generated,
                format!("X-Auto-Response-Suppress: {v}"),
            );
        }
    }
    if mail.header("X-Autogenerated").is_some() {
        return found(AutoKind::Generated, "X-Autogenerated header");
    }
    // Challenge-response filters answer every mail with "click here to be
    // allowed"; answering them back is a loop by design.
    if mail.header("X-Bluebottle-Request").is_some() {
        return found(
            AutoKind::AutoReply,
            "challenge-response (X-Bluebottle-Request header)",
        );
    }
    if mail.header("x-amz-sns-message-id").is_some() {
        return found(AutoKind::Bounce, "Amazon SNS notification");
    }
    if mail.header("X-Loop").is_some() {
        return found(AutoKind::Generated, "X-Loop header");
    }
    None
}

/// Last resort for responders that set no header at all.
fn subject_wording(mail: &ParsedMail) -> Option<Automatic> {
    let s = mail.subject.to_lowercase();
    const AUTO_REPLY: &[&str] = &[
        "respuesta automática",
        "respuesta automatica",
        "fuera de la oficina",
        "fuera de oficina",
        "automatic reply",
        "auto reply",
        "autoreply",
        "auto-reply",
        "out of office",
        "out of the office",
        "abwesenheitsnotiz",
        "réponse automatique",
        "resposta automática",
    ];
    if let Some(w) = AUTO_REPLY.iter().find(|w| s.contains(*w)) {
        return found(AutoKind::AutoReply, format!("subject says \"{w}\""));
    }
    const BOUNCE: &[&str] = &[
        "undelivered mail",
        "undeliverable",
        "delivery status notification",
        "returned mail",
        "failure notice",
        "delivery failure",
        "mail delivery failed",
        "no se puede entregar",
        "no entregado",
        "unzustellbar",
    ];
    if let Some(w) = BOUNCE.iter().find(|w| s.contains(*w)) {
        return found(AutoKind::Bounce, format!("subject says \"{w}\""));
    }
    // Hotmail/Outlook.com's junk-mail reporting program (JMRP) sends its
    // complaints as plain mail with this subject and no report MIME type.
    if s.contains("complaint about message from") {
        return found(
            AutoKind::Complaint,
            "subject says \"complaint about message from\"",
        );
    }
    None
}

fn own_sender(mail: &ParsedMail, is_own: &dyn Fn(&str) -> bool) -> Option<Automatic> {
    let from = mail.from.as_ref()?;
    if is_own(&from.address) {
        return found(
            AutoKind::Ours,
            format!("sender {} is one of our addresses", from.address),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn kind(raw: &str) -> Option<AutoKind> {
        let mail = parse(raw.as_bytes(), 1 << 20).unwrap();
        classify(&mail, &|a: &str| a.ends_with("@buzon.example")).map(|a| a.kind)
    }

    #[test]
    fn a_person_is_not_automatic() {
        assert_eq!(
            kind("From: ana@cliente.example\nSubject: Pedido 75321\n\nhola\n"),
            None
        );
        assert_eq!(
            kind("From: ana@cliente.example\nAuto-Submitted: no\nSubject: x\n\nhola\n"),
            None
        );
    }

    #[test]
    fn rfc3834_and_friends() {
        assert_eq!(
            kind("From: a@x.example\nAuto-Submitted: auto-replied\nSubject: x\n\n.\n"),
            Some(AutoKind::AutoReply)
        );
        assert_eq!(
            kind("From: a@x.example\nAuto-Submitted: auto-generated (failure)\nSubject: x\n\n.\n"),
            Some(AutoKind::Generated)
        );
        assert_eq!(
            kind("From: a@x.example\nPrecedence: bulk\nSubject: x\n\n.\n"),
            Some(AutoKind::Generated)
        );
        assert_eq!(
            kind("From: a@x.example\nList-Id: <l.x.example>\nSubject: x\n\n.\n"),
            Some(AutoKind::List)
        );
        assert_eq!(
            kind("From: a@x.example\nReturn-Path: <>\nSubject: x\n\n.\n"),
            Some(AutoKind::Bounce)
        );
        assert_eq!(
            kind("From: MAILER-DAEMON@x.example\nSubject: x\n\n.\n"),
            Some(AutoKind::Bounce)
        );
        assert_eq!(
            kind("From: no-reply@sunat.example\nSubject: x\n\n.\n"),
            Some(AutoKind::NoReply)
        );
        assert_eq!(
            kind("From: postmaster@x.example\nSubject: x\n\n.\n"),
            Some(AutoKind::Bounce)
        );
        assert_eq!(
            kind("From: a@x.example\nX-Auto-Response-Suppress: All\nSubject: x\n\n.\n"),
            Some(AutoKind::Generated)
        );
        assert_eq!(
            kind("From: a@x.example\nX-Autorespond: yes\nSubject: x\n\n.\n"),
            Some(AutoKind::AutoReply)
        );
        assert_eq!(
            kind("From: a@x.example\nList-Unsubscribe: <mailto:u@x.example>\nSubject: x\n\n.\n"),
            Some(AutoKind::List)
        );
        for p in ["junk", "list", "auto_reply"] {
            let raw = format!("From: a@x.example\nPrecedence: {p}\nSubject: x\n\n.\n");
            assert!(kind(&raw).is_some(), "Precedence: {p}");
        }
        assert_eq!(
            super::unattended_address("No_Reply@banco.example").as_deref(),
            Some("No_Reply@banco.example, que no lee respuestas")
        );
        assert!(super::unattended_address("ana@cliente.example").is_none());
        assert_eq!(
            kind("From: a@x.example\nX-MLServer: fml [fml 4.0.3]\nSubject: Loop Alert\n\n.\n"),
            Some(AutoKind::List)
        );
        assert_eq!(
            kind("From: a@x.example\nX-Bluebottle-Request: <1>\nSubject: RE: hola\n\n.\n"),
            Some(AutoKind::AutoReply)
        );
        assert_eq!(
            kind("From: staff@hotmail.com\nSubject: complaint about message from 192.0.2.1\n\n.\n"),
            Some(AutoKind::Complaint)
        );
        assert_eq!(
            kind("From: Ana <ana@cliente.example>\nSubject: Respuesta automática: Pedido\n\n.\n"),
            Some(AutoKind::AutoReply)
        );
        assert_eq!(
            kind("From: soporte@buzon.example\nSubject: x\n\n.\n"),
            Some(AutoKind::Ours)
        );
    }

    #[test]
    fn delivery_report_structure() {
        let raw = "From: x@y.example\nSubject: hola\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: text/plain\n\nfailed\n--b\nContent-Type: message/delivery-status\n\nStatus: 5.1.1\n--b--\n";
        assert_eq!(kind(raw), Some(AutoKind::Bounce));
    }
}
