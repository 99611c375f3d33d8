//! SQLite: take the write lock up front so two writers queue on the busy
//! timeout instead of deadlocking on a read→write upgrade (which also makes
//! the count behind the limit on automatic mail exact). AUTOINCREMENT keeps
//! its counter in `sqlite_sequence`, where a number taken back is given
//! back.
//!
//! The queries are the aggregate files beside this one, compiled here for
//! this backend (`postgres.rs` includes the same files).

pub(in crate::store) type Db = sqlx::Sqlite;

const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// One writer at a time already: nothing to lock.
const CLAIM_LOCK: &str = "";
/// Idem: the write lock taken at `BEGIN IMMEDIATE` covers the count.
const LIMIT_LOCK: &str = "";
/// The search's case folding: SQLite's LIKE already ignores the case of
/// ASCII letters, and its LOWER folds only those, so the columns are
/// compared as they are (LOWER on every subject was half a search's time).
const FOLD: &str = "";
const GIVE_BACK_NUMBER: &str =
    "UPDATE sqlite_sequence SET seq = $1 - 1 WHERE name = 'tickets' AND seq = $1";

/// Locks a ticket's row read inside a transaction until it ends (SQLite's write lock, taken at BEGIN IMMEDIATE, already does).
const ROW_LOCK: &str = "";

/// A connection inside the caller's transaction.
type Conn = <Db as sqlx::Database>::Connection;

#[path = "deadlines.rs"]
mod deadlines;
#[path = "events.rs"]
mod events;
#[path = "leases.rs"]
mod leases;
#[path = "listing.rs"]
mod listing;
#[path = "messages.rs"]
mod messages;
#[path = "outbox.rs"]
mod outbox;
#[path = "quarantine.rs"]
mod quarantine;
#[path = "settings.rs"]
mod settings;
#[path = "staff_mail.rs"]
mod staff_mail;
#[path = "tickets.rs"]
mod tickets;
#[path = "tx.rs"]
mod tx;
#[path = "web.rs"]
mod web;

pub(in crate::store) use self::{
    deadlines::*, leases::*, listing::*, messages::*, outbox::*, quarantine::*, settings::*,
    staff_mail::*, tickets::*, tx::*, web::*,
};
