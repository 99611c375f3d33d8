//! Outgoing mail: composing acknowledgements and delivering the outbox.
//!
//! - [`compose`]: ticket + customer mail → a complete RFC 5322 message with
//!   our Message-ID, threading and loop-protection headers. Pure.
//! - [`deliver`]: claims due outbox rows with a lease and hands them to a
//!   transport (a directory of `.eml` files, or SMTP), outside any database
//!   transaction; failures are rescheduled.

pub mod compose;
pub mod deliver;
