//! Outgoing mail: what buzon writes and how it leaves.
//!
//! - [`templates`]: the words of every mail, from files beside the rules
//!   (checked at load, `file:line` errors) or built-in Spanish defaults.
//! - [`compose`]: envelope + words → a complete RFC 5322 message with our
//!   Message-ID, threading and loop-protection headers. Pure.
//! - [`plan`]: which automatic mails an event sends (acknowledgement,
//!   owner and extra notifications), to whom, and why not. Pure.
//! - [`deliver`]: claims due outbox rows with a lease and hands them to a
//!   transport (a directory of `.eml` files, or SMTP), outside any database
//!   transaction; failures are rescheduled on the retry schedule.
//! - [`smtp`]: the SMTP client (lettre, pooled, TLS) and what a server's
//!   answer means (permanent or transient).
//!
//! The per-recipient limit on automatic mail is enforced where the mail is
//! queued, inside the ticket's transaction (`store`), so a loop is stopped
//! before anything is written to the outbox.

pub mod compose;
pub mod deliver;
pub mod plan;
pub mod smtp;
pub mod templates;
