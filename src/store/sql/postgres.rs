//! PostgreSQL: row locks let several instances claim disjoint outbox rows;
//! an advisory lock per address makes the automatic-mail count exact.
//! Identity numbers are never given back (a rolled back insert left the
//! same gap).
//!
//! The queries are the aggregate files beside this one, compiled here for
//! this backend (`sqlite.rs` includes the same files).

pub(in crate::store) type Db = sqlx::Postgres;

/// A plain `BEGIN`: row locks do the rest.
const BEGIN_WRITE: &str = "";
const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";
const LIMIT_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext(a)) \
                          FROM unnest(string_to_array($1, chr(10))) AS a";
/// The search's case folding: LIKE is case-sensitive here.
const FOLD: &str = "LOWER";
const GIVE_BACK_NUMBER: &str = "";

/// Locks a ticket's row read inside a transaction until it ends.
const ROW_LOCK: &str = " FOR UPDATE";

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
