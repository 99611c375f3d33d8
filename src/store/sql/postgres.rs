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
/// A new ticket and its first message in one statement (an `INSERT` inside
/// `WITH`): one round trip a new mail instead of two.
const MESSAGE_WITH_TICKET: bool = true;
const GIVE_BACK_NUMBER: &str = "";
/// The number the next ticket gets, asked for each one: other sessions
/// take numbers from the same sequence meanwhile.
const NEXT_TICKET_NUMBER: &str = "SELECT nextval(pg_get_serial_sequence('tickets', 'id'))";
const TICKET_NUMBERS_COUNTED: bool = false;
/// Several numbers in one round trip (`StoreTx::reserve_numbers`).
const RESERVE_TICKET_NUMBERS: &str =
    "SELECT nextval(pg_get_serial_sequence('tickets', 'id')) FROM generate_series(1, $1)";

/// Locks a ticket's row read inside a transaction until it ends.
const ROW_LOCK: &str = " FOR UPDATE";

/// The search index's document id: a column.
const DOC_ID: &str = "doc_id";

/// The `tsquery` of a search, in the Spanish configuration with accents
/// removed (`buzon_es`, migration 0011): each word bound, never parsed as
/// tsquery syntax. A lone word is stemmed (digits: a prefix), a phrase
/// matched in order.
fn push_tsquery(q: &mut sqlx::QueryBuilder<Db>, query: &crate::search::Query) {
    fn part(q: &mut sqlx::QueryBuilder<Db>, p: &crate::search::Part) {
        let words = p.words.join(" ");
        if p.is_word() && p.words[0].chars().all(|c| c.is_ascii_digit()) {
            q.push("to_tsquery('buzon_es', ")
                .push_bind(words)
                .push(" || ':*')");
        } else if p.is_word() {
            q.push("plainto_tsquery('buzon_es', ")
                .push_bind(words)
                .push(")");
        } else {
            q.push("phraseto_tsquery('buzon_es', ")
                .push_bind(words)
                .push(")");
        }
    }
    for (i, p) in query.parts.iter().enumerate() {
        if i > 0 {
            q.push(" && ");
        }
        part(q, p);
    }
    for p in &query.excluded {
        q.push(" && !! ");
        part(q, p);
    }
}

/// The tickets with a document matching a search (`ticket_id`), all of
/// them (the GIN index).
fn push_match_ids(q: &mut sqlx::QueryBuilder<Db>, query: &crate::search::Query) {
    q.push("SELECT ticket_id FROM search_docs WHERE tsv @@ (");
    push_tsquery(q, query);
    q.push(")");
}

/// A search's candidates (`doc_id`, `ticket_id`, `updated_at`, `score`:
/// lower is better) among the tickets `filter` keeps: the newest
/// `SEARCH_CANDIDATES` matching documents, ranked by `ts_rank` (negated),
/// rounded so that close scores go by activity; the rank is computed for
/// those only. With `walk`, among the newest `walk` documents only, read
/// backwards by their id and each one tested (`SEARCH_WALK`); without,
/// through the GIN index.
fn push_hits(
    q: &mut sqlx::QueryBuilder<Db>,
    query: &crate::search::Query,
    filter: &crate::store::TicketFilter,
    walk: Option<i64>,
) {
    q.push(
        "SELECT c.doc_id, c.ticket_id, c.updated_at, \
         CAST(ROUND(CAST(-ts_rank(c.tsv, c.q) AS NUMERIC), 2) AS DOUBLE PRECISION) AS score \
         FROM (SELECT s.doc_id, s.ticket_id, t.updated_at, s.tsv, w.q FROM ",
    );
    match walk {
        // A LIMIT inside: the planner cannot take the GIN index for it.
        Some(walk) => q
            .push("(SELECT doc_id, ticket_id, tsv FROM search_docs ORDER BY doc_id DESC LIMIT ")
            .push_bind(walk)
            .push(") s"),
        None => q.push("search_docs s"),
    };
    q.push(" JOIN tickets t ON t.id = s.ticket_id, (SELECT ");
    push_tsquery(q, query);
    q.push(" AS q) w");
    listing::push_where(q, filter, true);
    q.push(format_args!(
        " AND s.tsv @@ w.q ORDER BY s.doc_id DESC LIMIT {}) c",
        search::SEARCH_CANDIDATES
    ));
}

/// The GIN index hands out a word's documents in no useful order, and
/// reads all of them first: 40–120 ms for a word or phrase in one mail
/// in twenty at 1,000,000 messages. So the newest 16,000 documents are
/// read backwards and tested first (10–20 ms), and only when they hold
/// fewer than `SEARCH_ENOUGH` matches (a rare word, whose GIN list is
/// short) does the GIN index search them all (`search::newest_matches`).
const SEARCH_WALK: Option<i64> = Some(16_000);

/// `ts_rank` ranks the candidates in the query itself.
async fn rank_hits(
    _pool: &sqlx::Pool<Db>,
    _query: &crate::search::Query,
    _hits: &mut [(i64, i64, i64, f64)],
) -> crate::store::Result<()> {
    Ok(())
}

/// One webhook fan-out at a time, so a ticket's deliveries are created in
/// the order of its events (the two-key form: its key space is not the
/// one-key space of `LIMIT_LOCK`).
const FANOUT_LOCK: &str = "SELECT pg_advisory_xact_lock(16, 12)";

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
