//! Where mail comes from. The CLI (`buzon ingest`) reads files or stdin;
//! the daemon reads shared mailboxes over IMAP ([`imap`]). Every source
//! hands raw bytes to `pipeline::Pipeline::ingest` and touches the mailbox
//! only after that committed.

pub mod imap;
pub mod tls;
