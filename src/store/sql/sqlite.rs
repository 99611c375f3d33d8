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
/// SQLite has no `INSERT` inside `WITH`: a new ticket and its first message
/// are two statements (a hop to its worker thread each, no network).
const MESSAGE_WITH_TICKET: bool = false;
const GIVE_BACK_NUMBER: &str =
    "UPDATE sqlite_sequence SET seq = $1 - 1 WHERE name = 'tickets' AND seq = $1";
/// The number the next ticket gets (AUTOINCREMENT: above the counter and
/// every row). Asked once a transaction: under the write lock nobody else
/// takes numbers, so the batch counts on from it, and an explicit number
/// moves the counter as an automatic one would.
const NEXT_TICKET_NUMBER: &str = "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence \
     WHERE name = 'tickets'), 0), COALESCE((SELECT MAX(id) FROM tickets), 0)) + 1";
const TICKET_NUMBERS_COUNTED: bool = true;

/// Locks a ticket's row read inside a transaction until it ends (SQLite's write lock, taken at BEGIN IMMEDIATE, already does).
const ROW_LOCK: &str = "";

/// The search index's document id: FTS5's rowid.
const DOC_ID: &str = "rowid";

/// The FTS5 query of a search: the words in double quotes (letters and
/// digits only, `Query`'s promise). unicode61 does not stem, so a lone
/// word is the prefix of its stem.
fn fts_text(query: &crate::search::Query) -> String {
    fn part(p: &crate::search::Part) -> String {
        match crate::search::stem_prefix(&p.words[0]).filter(|_| p.is_word()) {
            Some(stem) => format!("\"{stem}\"*"),
            None => format!("\"{}\"", p.words.join(" ")),
        }
    }
    let mut text = format!(
        "({})",
        query
            .parts
            .iter()
            .map(part)
            .collect::<Vec<_>>()
            .join(" AND ")
    );
    for p in &query.excluded {
        text = format!("({text} NOT {})", part(p));
    }
    text
}

/// The tickets with a document matching a search (`ticket_id`), all of
/// them: the ticket is the rowid's upper half, no document is read.
fn push_match_ids(q: &mut sqlx::QueryBuilder<Db>, query: &crate::search::Query) {
    q.push("SELECT rowid >> 32 AS ticket_id FROM search_docs WHERE search_docs MATCH ")
        .push_bind(fts_text(query));
}

/// A search's candidates (`doc_id`, `ticket_id`, `updated_at`, `score`:
/// lower is better) among the tickets `filter` keeps: the newest
/// `SEARCH_CANDIDATES` matching documents (FTS5 walks the rowids
/// backwards, newest ticket first, and stops), ranked by bm25 weighing a
/// subject over the contact's words over a text, rounded so that close
/// scores go by activity. A rare word's documents are all candidates; a
/// word in every other mail is ranked among its newest.
fn push_hits(
    q: &mut sqlx::QueryBuilder<Db>,
    query: &crate::search::Query,
    filter: &crate::store::TicketFilter,
    floor: Option<i64>,
) {
    q.push(
        "SELECT search_docs.rowid AS doc_id, t.id AS ticket_id, t.updated_at, \
         ROUND(bm25(search_docs, 0.0, 0.0, 2.0, 3.0, 1.0), 1) AS score \
         FROM search_docs JOIN tickets t ON t.id = search_docs.rowid >> 32",
    );
    listing::push_where(q, filter, true);
    if let Some(floor) = floor {
        q.push(" AND search_docs.rowid >= ").push_bind(floor);
    }
    q.push(" AND search_docs MATCH ")
        .push_bind(fts_text(query))
        .push(format_args!(
            " ORDER BY search_docs.rowid DESC LIMIT {SEARCH_CANDIDATES}"
        ));
}

/// FTS5 hands out a match's documents in rowid order, newest last, and
/// the search reads them backwards and stops: no windows
/// (`search::newest_matches`).
const SEARCH_WINDOWS: &[i64] = &[];

/// One writer at a time already (`BEGIN IMMEDIATE`): one webhook fan-out at a time.
const FANOUT_LOCK: &str = "";

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
#[path = "queue.rs"]
mod queue;
#[path = "search.rs"]
mod search;
#[path = "settings.rs"]
mod settings;
#[path = "staff_mail.rs"]
mod staff_mail;
#[path = "tickets.rs"]
mod tickets;
#[path = "tokens.rs"]
mod tokens;
#[path = "tx.rs"]
mod tx;
#[path = "web.rs"]
mod web;
#[path = "webhooks.rs"]
mod webhooks;

pub(in crate::store) use self::{
    deadlines::*, leases::*, listing::*, messages::*, outbox::*, quarantine::*,
    queue::release_claims, search::*, settings::*, staff_mail::*, tickets::*, tokens::*, tx::*,
    web::*, webhooks::*,
};
