//! Search latency (issue 14): the store's search, as the tray, the
//! command line and the API call it, over a database `benches/search.sh`
//! filled. Prints p50 / p95 / max per kind of query and over all.
//!
//! `BENCH_DATABASE_URL` is the database; `BENCH_QUERIES` a file of
//! `kind<TAB>query` lines (written by `benches/search.py`). Each query runs
//! once after a warm-up of the first ten, one after another, like one
//! agent's searches: the first page (50 tickets) over every state, as the
//! tray asks for it. Without `BENCH_DATABASE_URL` (`cargo test
//! --all-targets`) it says so and ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use buzon::store::{Store, TicketFilter};

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64) * q) as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn line(label: &str, times: &mut [Duration], found: usize) {
    times.sort();
    println!(
        "  {label:<10} p50 {:7.1} ms   p95 {:7.1} ms   max {:7.1} ms   ({} queries, {found} finding nothing)",
        percentile(times, 0.50),
        percentile(times, 0.95),
        times[times.len() - 1].as_secs_f64() * 1000.0,
        times.len(),
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (Ok(url), Ok(file)) = (
        std::env::var("BENCH_DATABASE_URL"),
        std::env::var("BENCH_QUERIES"),
    ) else {
        println!("search bench: set BENCH_DATABASE_URL and BENCH_QUERIES (bash benches/search.sh)");
        return;
    };
    let text = std::fs::read_to_string(&file).unwrap();
    let queries: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('\t')).collect();
    let store = Store::open(&url, 2).await.unwrap();
    let filter = |q: &str| TicketFilter {
        search: Some(q.to_string()),
        limit: Some(51),
        ..TicketFilter::default()
    };
    for (_, q) in queries.iter().take(10) {
        store.search(&filter(q)).await.unwrap();
    }
    let mut by_kind: BTreeMap<&str, (Vec<Duration>, usize)> = BTreeMap::new();
    let mut all = (Vec::new(), 0);
    for (kind, q) in &queries {
        let start = Instant::now();
        let hits = store.search(&filter(q)).await.unwrap();
        let took = start.elapsed();
        let entry = by_kind.entry(kind).or_default();
        entry.0.push(took);
        all.0.push(took);
        if hits.is_empty() {
            entry.1 += 1;
            all.1 += 1;
        }
    }
    println!(
        "search, {} ({} queries):",
        store.backend_name(),
        queries.len()
    );
    for (kind, (times, none)) in &mut by_kind {
        line(kind, times, *none);
    }
    line("all", &mut all.0, all.1);
    store.close().await;
}
