//! Which ticket does a mail continue? The pure half of threading.
//!
//! Reads the clues a mail carries, strongest first: the Message-IDs it
//! answers (In-Reply-To / References, ours are signed), the ticket tag in
//! the subject (`[#T-1042]`, through any "RE:"/"RV:"/"Fwd:" prefixes and
//! mangled spacing), and the keys the rules extracted (`order=75321`). The
//! pipeline looks the clues up in the store, in that order, and asks
//! whether the sender may write to the ticket it found; [`decide`] then
//! says what the mail does with that ticket: continue it, or open a new
//! one linked to it.

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::classify::Automatic;
use crate::parse::ParsedMail;
use crate::ticket::{State, TicketState};

/// A ticket a mail's clues found, and how.
#[derive(Debug, Clone)]
pub struct Found {
    pub ticket: i64,
    pub state: TicketState,
    /// The clue that found it, for the history ("ticket tag in the subject").
    pub via: String,
    /// Found through a signed Message-ID of ours (a reaction to our mail).
    pub via_our_message: bool,
}

impl Found {
    /// Whether the mail is a robot's reaction (an auto-reply, a bounce) to
    /// a mail we sent: such a robot may write to the ticket whoever it is.
    pub fn reacts_to_our_mail(&self, automatic: Option<&Automatic>) -> bool {
        self.via_our_message && automatic.is_some_and(|a| a.kind.is_reaction())
    }
}

/// What threading decided.
#[derive(Debug)]
pub enum Thread {
    /// No ticket found: a new one.
    New,
    /// Append to this ticket.
    Continue(Found),
    /// New ticket linked to this one (not a participant, or closed too long
    /// ago); `review` flags it for a person.
    Linked { found: Found, review: bool },
}

impl Thread {
    /// For a mail that opens a ticket: the ticket it is linked to, and
    /// whether it needs review.
    pub fn into_link(self) -> Option<(Found, bool)> {
        match self {
            Thread::Linked { found, review } => Some((found, review)),
            Thread::New | Thread::Continue(_) => None,
        }
    }
}

/// The mail whose clues found a ticket, as the decision weighs it.
#[derive(Debug, Clone, Copy)]
pub struct FollowUp {
    /// The sender may write to the ticket found: a participant, one of our
    /// addresses, or a robot reacting to a Message-ID we signed (see
    /// [`Found::reacts_to_our_mail`]).
    pub sender_may_join: bool,
    /// The mail is automatic (see `classify`).
    pub automatic: bool,
}

/// What a follow-up does with the ticket its clues found, at `now` (Unix
/// ms). A stranger never joins it: a new ticket, linked and flagged for
/// review. A person writing to a ticket done more than `reopen_days` ago
/// opens a new ticket linked to it; robots are recorded on it whenever it
/// was closed (they never reopen it).
pub fn decide(found: Found, mail: FollowUp, reopen_days: u32, now: i64) -> Thread {
    if !mail.sender_may_join {
        return Thread::Linked {
            found,
            review: true,
        };
    }
    let closed_long_ago = found.state.state == State::Done
        && found
            .state
            .closed_at
            .is_some_and(|at| now - at > i64::from(reopen_days) * 86_400_000);
    if closed_long_ago && !mail.automatic {
        return Thread::Linked {
            found,
            review: false,
        };
    }
    Thread::Continue(found)
}

/// The Message-IDs a mail answers, most direct first, without duplicates.
pub fn referenced_ids(mail: &ParsedMail) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in mail.in_reply_to.iter().chain(mail.references.iter().rev()) {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// Finds a ticket tag such as `[#T-1042]` in a subject, tolerating the
/// spacing and case that mail clients and people introduce (`[# t-1042 ]`,
/// `[#T 1042]`).
pub struct TagMatcher {
    re: Regex,
}

impl TagMatcher {
    pub fn new(prefix: &str) -> Result<TagMatcher, regex::Error> {
        let letters: String = prefix
            .trim_end_matches(['-', ' '])
            .chars()
            .map(|c| regex::escape(&c.to_string()))
            .collect::<Vec<_>>()
            .join(r"\s*");
        let pattern = format!(r"(?i)\[\s*#\s*{letters}\s*[-\s]?\s*(\d{{1,12}})\s*\]");
        Ok(TagMatcher {
            re: Regex::new(&pattern)?,
        })
    }

    /// The subject without any ticket tags, for echoing it in a new
    /// ticket's acknowledgement (a quoted tag of another ticket must not
    /// show up, nor make the answer thread there).
    pub fn strip(&self, subject: &str) -> String {
        crate::parse::collapse_ws(&self.re.replace_all(subject, " "))
    }

    /// The ticket number of the first tag in `subject`.
    pub fn find(&self, subject: &str) -> Option<i64> {
        self.re
            .captures(subject)
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().parse().ok())
    }
}

/// The subject without leading reply/forward markers in the languages our
/// customers' mail clients use ("RE:", "RV:", "Fwd:", "AW:", "R:", "Sv:"),
/// so that a rule's `subject.starts_with` and our answers' subjects mean
/// what people expect on replies too.
pub fn strip_reply_prefixes(subject: &str) -> &str {
    let mut rest = subject.trim_start();
    while let Some(after) = reply_prefix_len(rest).and_then(|n| rest.get(n..)) {
        rest = after.trim_start();
    }
    rest
}

/// Length of a leading reply/forward prefix such as "RE:", "Rv :",
/// "Fwd[2]:", "RE (2):".
pub fn reply_prefix_len(subject: &str) -> Option<usize> {
    const PREFIXES: &[&str] = &[
        "re", "rv", "fw", "fwd", "res", "enc", "tr", "aw", "wg", "rif", "r", "sv", "vs",
    ];
    let word_end = subject
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphabetic())
        .map(|(i, _)| i)?;
    let word = subject.get(..word_end)?;
    if !PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(word)) {
        return None;
    }
    let mut rest = subject.get(word_end..)?;
    // "RE[2]:" and "RE (2):" are how some clients count replies.
    let counted = rest.trim_start();
    if let Some(inner) = counted
        .strip_prefix('[')
        .or_else(|| counted.strip_prefix('('))
    {
        let close = inner.find([']', ')'])?;
        if !inner.get(..close)?.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        rest = inner.get(close + 1..)?;
    }
    let after_spaces = rest.trim_start_matches([' ', '\t']);
    let colon = after_spaces.strip_prefix(':')?;
    Some(subject.len() - colon.len())
}

/// Signs and verifies the Message-IDs buzon sends, so that a reference to
/// one of ours can be told from a made-up one. Format:
/// `buzon.<32 hex random>.<16 hex HMAC>@domain`.
#[derive(Clone)]
pub struct IdSigner {
    key: Vec<u8>,
}

impl IdSigner {
    pub fn new(key: &[u8]) -> IdSigner {
        IdSigner { key: key.to_vec() }
    }

    /// A fresh signed Message-ID (no brackets).
    pub fn new_id(&self, domain: &str) -> String {
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        format!("buzon.{nonce}.{}@{domain}", self.sign(&nonce))
    }

    /// A fresh Message-ID signed for one person (a staff notification):
    /// `buzon.<nonce>.p<hex of the person's key>.<HMAC of both>@domain`.
    /// A reply that references it proves that this person received it.
    pub fn new_id_for(&self, domain: &str, person: &str) -> String {
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        let tag: String = person.bytes().map(|b| format!("{b:02x}")).collect();
        let signed = format!("{nonce}.p{tag}");
        format!("buzon.{signed}.{}@{domain}", self.sign(&signed))
    }

    /// `Some(true)`: ours and genuine; `Some(false)`: claims to be ours but
    /// the signature is wrong (forged or from another deployment); `None`:
    /// not in our format at all.
    pub fn verify(&self, id: &str) -> Option<bool> {
        let (signed, sig) = Self::parts(id)?;
        Some(constant_time_eq(
            self.sign(signed).as_bytes(),
            sig.as_bytes(),
        ))
    }

    /// The person a genuine Message-ID was signed for (see `new_id_for`).
    pub fn signed_for(&self, id: &str) -> Option<String> {
        let (signed, _) = Self::parts(id)?;
        if self.verify(id) != Some(true) {
            return None;
        }
        let hex = signed.split_once(".p")?.1;
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        String::from_utf8(bytes?).ok()
    }

    /// The signed part and the signature of one of our Message-IDs.
    fn parts(id: &str) -> Option<(&str, &str)> {
        let local = id.trim().trim_start_matches('<').split('@').next()?;
        let rest = local.strip_prefix("buzon.")?;
        rest.rsplit_once('.')
    }

    fn sign(&self, nonce: &str) -> String {
        let mac = hmac_sha256(&self.key, nonce.as_bytes());
        mac[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // `ct_eq` answers false at once for slices of different lengths; the
    // length of a signature is no secret.
    a.ct_eq(b).into()
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`: our Message-IDs' and
/// webhooks' signatures.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    // RFC 2104's first step, done here so that the key has the block's
    // size and `new` cannot fail: a longer key is hashed, a shorter one
    // padded with zeros (what `new_from_slice` does behind a `Result`).
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::AutoKind;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_000 * DAY;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sha256_hashes_a_key_longer_than_the_block() {
        // RFC 4231, test case 6.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn message_ids_signed_before_still_verify() {
        // Signed by the hand-written HMAC this replaced: same bytes, so the
        // Message-IDs already in customers' mailboxes keep threading.
        let signer = IdSigner::new(b"clave-de-prueba");
        let id = "buzon.0190a1b2c3d4e5f60718293a4b5c6d7e.SIG@soporte.example";
        let sig = signer.sign("0190a1b2c3d4e5f60718293a4b5c6d7e");
        assert_eq!(signer.verify(&id.replace("SIG", &sig)), Some(true));
        assert_eq!(sig, "64c9f3c54449e9c3");
    }

    fn found(state: State, closed_at: Option<i64>, via_our_message: bool) -> Found {
        Found {
            ticket: 7,
            state: TicketState {
                state,
                closed_at,
                requester: Some("ana@cliente.example".into()),
                subject: "Pedido 75321".into(),
                owner: None,
                pipeline: "Soporte".into(),
                priority: Default::default(),
                mailbox: "soporte".into(),
                deadlines: Default::default(),
                first_response_at: None,
                paused_at: None,
            },
            via: "ticket tag in the subject".into(),
            via_our_message,
        }
    }

    fn person(sender_may_join: bool) -> FollowUp {
        FollowUp {
            sender_may_join,
            automatic: false,
        }
    }

    /// The decision in short: `New`, `Continue`, `Linked` or `Review`.
    fn outcome(thread: Thread) -> &'static str {
        match thread {
            Thread::New => "New",
            Thread::Continue(f) if f.ticket == 7 => "Continue",
            Thread::Linked { found, review } if found.ticket == 7 => {
                if review {
                    "Review"
                } else {
                    "Linked"
                }
            }
            Thread::Continue(_) | Thread::Linked { .. } => "another ticket",
        }
    }

    #[test]
    fn a_participant_continues_an_open_ticket() {
        let open = found(State::WaitingOnContact, None, false);
        assert_eq!(outcome(decide(open, person(true), 7, NOW)), "Continue");
    }

    #[test]
    fn a_stranger_never_joins() {
        let open = found(State::Open, None, false);
        assert_eq!(outcome(decide(open, person(false), 7, NOW)), "Review");
        // Not even a done ticket: review comes before the closing time.
        let old = found(State::Done, Some(NOW - 30 * DAY), false);
        assert_eq!(outcome(decide(old, person(false), 7, NOW)), "Review");
        let robot = FollowUp {
            sender_may_join: false,
            automatic: true,
        };
        let open = found(State::Open, None, false);
        assert_eq!(outcome(decide(open, robot, 7, NOW)), "Review");
    }

    #[test]
    fn a_done_ticket_continues_within_reopen_days_and_links_after() {
        let recent = found(State::Done, Some(NOW - 7 * DAY), false);
        assert_eq!(outcome(decide(recent, person(true), 7, NOW)), "Continue");
        let old = found(State::Done, Some(NOW - 7 * DAY - 1), false);
        assert_eq!(outcome(decide(old, person(true), 7, NOW)), "Linked");
        let old = found(State::Done, Some(NOW - DAY - 1), false);
        assert_eq!(outcome(decide(old, person(true), 1, NOW)), "Linked");
        // Done without a closing time recorded: nothing says how long ago.
        let unknown = found(State::Done, None, false);
        assert_eq!(outcome(decide(unknown, person(true), 7, NOW)), "Continue");
        // Only a done ticket is "closed": an old closing time of a ticket
        // reopened since does not count.
        let reopened = found(State::WaitingOnUs, Some(NOW - 30 * DAY), false);
        assert_eq!(outcome(decide(reopened, person(true), 7, NOW)), "Continue");
    }

    #[test]
    fn robots_stay_on_a_ticket_closed_long_ago() {
        let old = found(State::Done, Some(NOW - 30 * DAY), true);
        let robot = FollowUp {
            sender_may_join: true,
            automatic: true,
        };
        assert_eq!(outcome(decide(old, robot, 7, NOW)), "Continue");
    }

    #[test]
    fn only_a_robot_reacting_to_our_signed_mail_is_let_in_as_such() {
        let auto = |kind| Automatic {
            kind,
            reason: "test".into(),
        };
        let ours = found(State::Open, None, true);
        let theirs = found(State::Open, None, false);
        assert!(ours.reacts_to_our_mail(Some(&auto(AutoKind::Bounce))));
        assert!(ours.reacts_to_our_mail(Some(&auto(AutoKind::AutoReply))));
        assert!(!ours.reacts_to_our_mail(Some(&auto(AutoKind::List))));
        assert!(!ours.reacts_to_our_mail(None));
        assert!(!theirs.reacts_to_our_mail(Some(&auto(AutoKind::Bounce))));
        assert!(Thread::Continue(ours).into_link().is_none());
        let (link, review) = Thread::Linked {
            found: theirs,
            review: true,
        }
        .into_link()
        .unwrap();
        assert_eq!((link.ticket, review), (7, true));
    }

    #[test]
    fn finds_tags_through_prefixes_and_mangling() {
        let m = TagMatcher::new("T-").unwrap();
        assert_eq!(m.find("RE: [#T-1042] Recibimos su solicitud"), Some(1042));
        assert_eq!(m.find("RV: Re:[# t-1042 ] hola"), Some(1042));
        assert_eq!(m.find("AW: [#T 77] x"), Some(77));
        assert_eq!(m.find("Pedido T-1042 sin corchetes"), None);
        assert_eq!(m.find("[#X-1042]"), None);
        assert_eq!(
            m.strip("RE: [#T-1] Recibimos [# t-2 ] x"),
            "RE: Recibimos x"
        );
    }

    #[test]
    fn ids_signed_for_a_person_name_them_and_nobody_else() {
        let s = IdSigner::new(b"clave");
        let id = s.new_id_for("tupatrimonio.example", "alonso");
        assert_eq!(s.verify(&id), Some(true));
        assert_eq!(s.signed_for(&id).as_deref(), Some("alonso"));
        // A plain id is ours but for nobody; a forged person tag fails.
        let plain = s.new_id("tupatrimonio.example");
        assert_eq!(s.verify(&plain), Some(true));
        assert_eq!(s.signed_for(&plain), None);
        let forged = id.replace(".p616c6f6e736f.", ".p6d696c6167726f73.");
        assert_ne!(forged, id);
        assert_eq!(s.verify(&forged), Some(false));
        assert_eq!(s.signed_for(&forged), None);
        // Another deployment's key signs nothing here.
        assert_eq!(IdSigner::new(b"otra").signed_for(&id), None);
        assert_eq!(s.signed_for(&format!("<{id}>")).as_deref(), Some("alonso"));
    }

    #[test]
    fn strips_reply_prefixes() {
        assert_eq!(strip_reply_prefixes("RE: RV: Fwd: Hola"), "Hola");
        assert_eq!(strip_reply_prefixes("Re[2]: AW: Pedido"), "Pedido");
        assert_eq!(strip_reply_prefixes("Rv : R: RE (3): Sv: Pedido"), "Pedido");
        assert_eq!(strip_reply_prefixes("Reclamo: pedido"), "Reclamo: pedido");
        assert_eq!(strip_reply_prefixes("RE : hola"), "hola");
        assert_eq!(
            strip_reply_prefixes("Respuesta automática: x"),
            "Respuesta automática: x"
        );
        assert_eq!(strip_reply_prefixes("RE"), "RE");
        assert_eq!(reply_prefix_len("RV: x"), Some(3));
        assert_eq!(reply_prefix_len("Rvx: x"), None);
        assert_eq!(
            strip_reply_prefixes("Consulta: pedido 1"),
            "Consulta: pedido 1"
        );
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signed_ids_verify_and_forgeries_do_not() {
        let s = IdSigner::new(b"secret");
        let id = s.new_id("tp.example");
        assert_eq!(s.verify(&id), Some(true));
        let forged = id.replacen("buzon.0", "buzon.1", 1);
        // The signature's last digit changed (to another digit: a fixed
        // replacement equals the original one time in sixteen).
        let at = id.find('@').unwrap();
        let other = if &id[at - 1..at] == "0" { "1" } else { "0" };
        let tampered = format!("{}{other}@tp.example", &id[..at - 1]);
        assert_eq!(s.verify(&tampered), Some(false));
        assert!(matches!(s.verify(&forged), Some(false) | None));
        assert_eq!(IdSigner::new(b"other").verify(&id), Some(false));
        assert_eq!(s.verify("abc@cliente.example"), None);
    }
}
