//! Full-text search (`tickets search`, `tickets list --search`, the
//! tray's box): the tickets whose documents match a [`Query`], best first,
//! each with where it matched. The index (`search_docs`, migration 0011)
//! is kept by triggers; what differs between FTS5 and `tsvector` is the
//! backend's `push_hits` (in `sqlite.rs` / `postgres.rs`), which turns the
//! parsed words into its own query, binding or quoting every word, and its
//! `rank_hits` (SQLite ranks the candidates after the query, PostgreSQL in
//! it).

use std::collections::HashMap;

use sqlx::{Pool, QueryBuilder};

use super::listing::{StoredTicket, TICKET_COLUMNS, push_where, with_keys};
use super::{DOC_ID, Db, SEARCH_WALK, push_hits, push_match_ids, rank_hits};
use crate::search::{Excerpt, Place, Query, SearchHit, excerpt};
use crate::store::{Result, TicketFilter};

/// Most documents a search ranks (see each backend's `push_hits`): the
/// newest matches of a common word, all those of a rare one.
pub(super) const SEARCH_CANDIDATES: i64 = 2000;

/// Matches among the newest documents (`SEARCH_WALK`) that are enough to
/// rank: a word found fewer times there is rare, and looked for in all.
pub(super) const SEARCH_ENOUGH: usize = 200;

/// The tickets matching `query` or numbered `number`, as a subquery of
/// `ticket_id` (a list's filter and the counts per state: every match).
pub(super) fn push_matches(q: &mut QueryBuilder<Db>, query: &Query, number: Option<i64>) {
    if query.parts.is_empty() {
        q.push("SELECT CAST(NULL AS BIGINT) AS ticket_id WHERE 1 = 0");
    } else {
        push_match_ids(q, query);
    }
    if let Some(number) = number {
        q.push(" UNION ALL SELECT t.id FROM tickets t WHERE t.id = ")
            .push_bind(number);
    }
}

/// The search of a filter, parsed: `None` when it has none or nothing
/// to look for.
pub(super) fn query_of(filter: &TicketFilter) -> Option<(Query, Option<i64>)> {
    let query = Query::parse(filter.search.as_deref()?);
    let number = filter.search_number.or(query.number);
    (!query.parts.is_empty() || number.is_some()).then_some((query, number))
}

/// A matched document, as stored.
#[derive(sqlx::FromRow)]
struct StoredDoc {
    doc_id: i64,
    kind: String,
    who: String,
    subject: String,
    body: String,
}

/// A candidate: a matching document (none for the ticket of the number
/// searched), its ticket, the ticket's activity and the score (lower is
/// better).
type Candidate = (Option<i64>, i64, i64, f64);

pub async fn search(pool: &Pool<Db>, filter: &TicketFilter) -> Result<Vec<SearchHit>> {
    let Some((query, number)) = query_of(filter) else {
        return Ok(Vec::new());
    };
    // The candidates among the tickets the filter's other conditions keep
    // (the ticket of that number first); each ticket once, by its best
    // document; relevance, then the most recent activity.
    let unsearched = TicketFilter {
        search: None,
        ..filter.clone()
    };
    let mut candidates = Vec::new();
    if !query.parts.is_empty() {
        candidates = newest_matches(pool, &query, &unsearched).await?;
    }
    if let Some(number) = number {
        let mut q = QueryBuilder::<Db>::new("SELECT t.id, t.updated_at FROM tickets t");
        push_where(&mut q, &unsearched, true);
        q.push(" AND t.id = ").push_bind(number);
        if let Some((id, updated_at)) = q
            .build_query_as::<(i64, i64)>()
            .fetch_optional(pool)
            .await?
        {
            candidates.push((None, id, updated_at, f64::NEG_INFINITY));
        }
    }
    // Each ticket by its best document (the first, by score then id).
    candidates.sort_by(|a, b| a.1.cmp(&b.1).then(a.3.total_cmp(&b.3)).then(a.0.cmp(&b.0)));
    candidates.dedup_by_key(|c| c.1);
    candidates.sort_by(|a, b| a.3.total_cmp(&b.3).then(b.2.cmp(&a.2)).then(a.1.cmp(&b.1)));
    let offset = usize::try_from(filter.offset.unwrap_or(0)).unwrap_or(0);
    let limit = filter
        .limit
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(usize::MAX);
    let found: Vec<(i64, Option<i64>)> = candidates
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(doc, ticket, _, _)| (ticket, doc))
        .collect();
    if found.is_empty() {
        return Ok(Vec::new());
    }

    let mut q = QueryBuilder::<Db>::new(format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id IN ("
    ));
    let mut list = q.separated(", ");
    for (ticket, _) in &found {
        list.push_bind(*ticket);
    }
    q.push(")");
    let stored: Vec<StoredTicket> = q.build_query_as().fetch_all(pool).await?;
    let mut tickets: HashMap<i64, _> = with_keys(pool, stored)
        .await?
        .into_iter()
        .map(|t| (t.number, t))
        .collect();

    let mut docs = HashMap::new();
    if found.iter().any(|(_, d)| d.is_some()) {
        let mut q = QueryBuilder::<Db>::new(format!(
            "SELECT {DOC_ID} AS doc_id, kind, who, subject, body FROM search_docs \
             WHERE {DOC_ID} IN ("
        ));
        let mut list = q.separated(", ");
        for doc in found.iter().filter_map(|(_, d)| *d) {
            list.push_bind(doc);
        }
        q.push(")");
        let stored: Vec<StoredDoc> = q.build_query_as().fetch_all(pool).await?;
        docs = stored.into_iter().map(|d| (d.doc_id, d)).collect();
    }

    let mut hits = Vec::with_capacity(found.len());
    for (number, doc) in found {
        // A ticket deleted since (a duplicate given back) is not found.
        let Some(ticket) = tickets.remove(&number) else {
            continue;
        };
        let (place, excerpt) = match doc.and_then(|d| docs.get(&d)) {
            Some(doc) => where_matched(doc, &query),
            None => (Place::Number, excerpt(&ticket.subject, &query)),
        };
        hits.push(SearchHit {
            ticket,
            place,
            excerpt,
        });
    }
    Ok(hits)
}

/// The newest `SEARCH_CANDIDATES` matching documents with their scores
/// (each backend's `push_hits` and `rank_hits`). Where an index cannot
/// hand out matches newest first (`SEARCH_WALK`: PostgreSQL's GIN), the
/// newest documents are read and tested first, and they are the
/// candidates when they hold `SEARCH_ENOUGH` matches: a common word is
/// ranked among its matches in them, without reading every match; a
/// rarer one among all its newest.
async fn newest_matches(
    pool: &Pool<Db>,
    query: &Query,
    filter: &TicketFilter,
) -> Result<Vec<Candidate>> {
    let mut hits = Vec::new();
    for walk in [SEARCH_WALK, None] {
        let mut q = QueryBuilder::<Db>::new("");
        push_hits(&mut q, query, filter, walk);
        // Planned for these words each time: how many documents hold
        // them decides the plan (a generic plan reads every match).
        hits = q
            .build_query_as::<(i64, i64, i64, f64)>()
            .persistent(false)
            .fetch_all(pool)
            .await?;
        if walk.is_none() || hits.len() >= SEARCH_ENOUGH {
            break;
        }
    }
    rank_hits(pool, query, &mut hits).await?;
    Ok(hits
        .into_iter()
        // + 0.0: a rounded -0.0 ties with 0.0, as in SQL.
        .map(|(doc, ticket, updated_at, score)| (Some(doc), ticket, updated_at, score + 0.0))
        .collect())
}

/// Where in a document the search matched, and the words around: the
/// first of its texts holding a searched word.
fn where_matched(doc: &StoredDoc, query: &Query) -> (Place, Excerpt) {
    let texts = match doc.kind.as_str() {
        "ticket" => [
            (Place::Keys, &doc.body),
            (Place::Contact, &doc.who),
            (Place::Subject, &doc.subject),
        ],
        kind => {
            let place = match kind {
                "out" => Place::Reply,
                "comment" => Place::Comment,
                _ => Place::Incoming,
            };
            [(place, &doc.body), (place, &doc.subject), (place, &doc.who)]
        }
    };
    texts
        .iter()
        .map(|(place, text)| (*place, excerpt(text, query)))
        .find(|(_, e)| e.has_hit())
        .unwrap_or_else(|| {
            let (place, text) = texts[if doc.kind == "ticket" { 2 } else { 0 }];
            (place, excerpt(text, query))
        })
}

/// The messages an upgrade will index when migration 0011 (the search
/// index) is still to run on a database that holds some; `None`
/// otherwise, or when it cannot tell (a new database).
pub async fn search_index_pending(pool: &Pool<Db>) -> Option<i64> {
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 11")
            .fetch_one(pool)
            .await
            .ok()?;
    if applied > 0 {
        return None;
    }
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(pool)
        .await
        .ok()?;
    (messages > 0).then_some(messages)
}
