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
/// Never run: the transaction counts numbers itself.
const RESERVE_TICKET_NUMBERS: &str = "";

/// Locks a ticket's row read inside a transaction until it ends (SQLite's write lock, taken at BEGIN IMMEDIATE, already does).
const ROW_LOCK: &str = "";

/// The search index's document id: FTS5's rowid.
const DOC_ID: &str = "rowid";

/// The FTS5 query of one part of a search: its words in double quotes
/// (letters and digits only, `Query`'s promise). unicode61 does not
/// stem, so a lone word is any of its forms (`search::word_forms`),
/// digits a prefix.
fn fts_part(p: &crate::search::Part) -> String {
    let word = &p.words[0];
    if p.is_word() && word.chars().all(|c| c.is_ascii_digit()) {
        format!("\"{word}\"*")
    } else if p.is_word() {
        let forms: Vec<String> = crate::search::word_forms(word)
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect();
        format!("({})", forms.join(" OR "))
    } else {
        format!("\"{}\"", p.words.join(" "))
    }
}

/// The FTS5 query of a search: every part, none of the excluded.
fn fts_text(query: &crate::search::Query) -> String {
    let mut text = format!(
        "({})",
        query
            .parts
            .iter()
            .map(fts_part)
            .collect::<Vec<_>>()
            .join(" AND ")
    );
    for p in &query.excluded {
        text = format!("({text} NOT {})", fts_part(p));
    }
    text
}

/// The tickets with a document matching a search (`ticket_id`), all of
/// them: the ticket is the rowid's upper half, no document is read.
fn push_match_ids(q: &mut sqlx::QueryBuilder<Db>, query: &crate::search::Query) {
    q.push("SELECT rowid >> 32 AS ticket_id FROM search_docs WHERE search_docs MATCH ")
        .push_bind(fts_text(query));
}

/// A search's candidates (`doc_id`, `ticket_id`, `updated_at`, and a
/// score of 0, `rank_hits` gives it) among the tickets `filter` keeps:
/// the newest `SEARCH_CANDIDATES` matching documents (FTS5 walks the
/// rowids backwards, newest ticket first, and stops). A rare word's
/// documents are all candidates; a word in every other mail is ranked
/// among its newest. No bm25: its weights count every document holding
/// each word (40–140 ms for a common one at 1,000,000 messages).
fn push_hits(
    q: &mut sqlx::QueryBuilder<Db>,
    query: &crate::search::Query,
    filter: &crate::store::TicketFilter,
    _walk: Option<i64>,
) {
    q.push(
        "SELECT search_docs.rowid AS doc_id, t.id AS ticket_id, t.updated_at, 0.0 AS score \
         FROM search_docs JOIN tickets t ON t.id = search_docs.rowid >> 32",
    );
    listing::push_where(q, filter, true);
    q.push(" AND search_docs MATCH ")
        .push_bind(fts_text(query))
        .push(format_args!(
            " ORDER BY search_docs.rowid DESC LIMIT {SEARCH_CANDIDATES}"
        ));
}

/// FTS5 hands out a match's documents in rowid order, newest last, and
/// the search reads them backwards and stops: no walk of the newest
/// documents first (`search::newest_matches`).
const SEARCH_WALK: Option<i64> = None;

/// The candidates' relevance (lower is better): where each part of the
/// search is in the document, 3 in its subject, 2 in who wrote it (the
/// ticket's contact), 1 elsewhere (the text, the keys), summed over the
/// parts. One FTS5 query per part and column (`{subject} : ...`), over
/// the candidates' rowids only: a millisecond each, where bm25 read every
/// match.
async fn rank_hits(
    pool: &sqlx::Pool<Db>,
    query: &crate::search::Query,
    hits: &mut [(i64, i64, i64, f64)],
) -> crate::store::Result<()> {
    let (Some(low), Some(high)) = (
        hits.iter().map(|h| h.0).min(),
        hits.iter().map(|h| h.0).max(),
    ) else {
        return Ok(());
    };
    let mut score: std::collections::HashMap<i64, f64> = hits.iter().map(|h| (h.0, 0.0)).collect();
    for part in &query.parts {
        let mut best: std::collections::HashMap<i64, f64> = std::collections::HashMap::new();
        for (column, weight) in [("subject", 3.0), ("who", 2.0)] {
            let docs: Vec<i64> = sqlx::query_scalar(
                "SELECT rowid FROM search_docs WHERE search_docs MATCH $1 \
                 AND rowid BETWEEN $2 AND $3",
            )
            .bind(format!("{{{column}}} : {}", fts_part(part)))
            .bind(low)
            .bind(high)
            .fetch_all(pool)
            .await?;
            for doc in docs {
                let b = best.entry(doc).or_insert(weight);
                *b = b.max(weight);
            }
        }
        for (doc, s) in score.iter_mut() {
            *s -= best.get(doc).copied().unwrap_or(1.0);
        }
    }
    for hit in hits.iter_mut() {
        hit.3 = score.get(&hit.0).copied().unwrap_or(0.0);
    }
    Ok(())
}

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
