//! `buzon report`: counts and times over the tickets created in a date
//! range, optionally grouped. Pure: the store reads the rows
//! ([`crate::store::Store::report_rows`]), `view` renders the result.
//!
//! Definitions (also in the README, "Reports"):
//! - the range is local dates in the deployment's time zone, `to`
//!   inclusive: [start of `from`, start of the day after `to`);
//! - first response: from creation to the first answer to the client
//!   (`tickets reply`, and what `deadlines.first_response_met_by` adds;
//!   automatic mail does not count); tickets without one are "no response";
//! - resolution: `closed_at - created_at` of done tickets;
//! - overdue: `due_at` before now, or before `closed_at` for done tickets;
//!   or the first answer later than `first_response_due_at` (or missing);
//! - median and 90th percentile interpolate between the closest ranks
//!   (spreadsheets' `PERCENTILE.INC`), so the numbers can be checked there.

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::ToSpan;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::ticket::{ReportRow, State};

/// What can be wrong with a report's arguments.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("'{0}' is not a date: write it as YYYY-MM-DD, e.g. 2026-11-01")]
    BadDate(String),
    #[error("--to {to} is before --from {from}: the range would be empty")]
    Reversed { from: Date, to: Date },
    #[error("{date} cannot be placed in the time zone {tz}: {detail}")]
    OutOfRange {
        date: Date,
        tz: String,
        detail: String,
    },
    #[error("cannot group by '{0}': write pipeline, owner, type or mailbox")]
    BadGroup(String),
}

/// `YYYY-MM-DD` as a local date.
pub fn parse_date(text: &str) -> Result<Date, ReportError> {
    text.trim()
        .parse::<Date>()
        .map_err(|_| ReportError::BadDate(text.to_string()))
}

/// The Unix-millisecond range [from, to) of local dates `from..=to` in `tz`.
/// A day starts at its first existing instant: where a DST change skips
/// midnight (America/Santiago in September) the day starts at 01:00.
pub fn range_ms(from: Date, to: Date, tz: &TimeZone) -> Result<(i64, i64), ReportError> {
    if to < from {
        return Err(ReportError::Reversed { from, to });
    }
    let start_of = |date: Date| -> Result<i64, ReportError> {
        date.to_zoned(tz.clone())
            .and_then(|z| z.start_of_day())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| ReportError::OutOfRange {
                date,
                tz: tz.iana_name().unwrap_or("the configured zone").to_string(),
                detail: e.to_string(),
            })
    };
    let next = to
        .checked_add(1.day())
        .map_err(|e| ReportError::OutOfRange {
            date: to,
            tz: tz.iana_name().unwrap_or("the configured zone").to_string(),
            detail: e.to_string(),
        })?;
    Ok((start_of(from)?, start_of(next)?))
}

/// How tickets are grouped; `None` makes one group, "all".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    #[default]
    None,
    Pipeline,
    Owner,
    Type,
    Mailbox,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::None => "none",
            GroupBy::Pipeline => "pipeline",
            GroupBy::Owner => "owner",
            GroupBy::Type => "type",
            GroupBy::Mailbox => "mailbox",
        }
    }

    /// The group a ticket falls in; a missing owner or type is "(none)".
    fn key_of(self, row: &ReportRow) -> String {
        let t = &row.ticket;
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| NO_VALUE.to_string());
        match self {
            GroupBy::None => "all".to_string(),
            GroupBy::Pipeline => t.pipeline.clone(),
            GroupBy::Owner => or_none(&t.owner),
            GroupBy::Type => or_none(&t.ticket_type),
            GroupBy::Mailbox => t.mailbox.clone(),
        }
    }
}

/// The group of tickets without an owner (or type).
pub const NO_VALUE: &str = "(none)";

impl FromStr for GroupBy {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(GroupBy::None),
            "pipeline" => Ok(GroupBy::Pipeline),
            "owner" => Ok(GroupBy::Owner),
            "type" => Ok(GroupBy::Type),
            "mailbox" => Ok(GroupBy::Mailbox),
            _ => Err(ReportError::BadGroup(s.to_string())),
        }
    }
}

/// What the report measures on one ticket (the extra CSV columns).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    pub first_response_minutes: Option<f64>,
    pub resolution_hours: Option<f64>,
    pub overdue: bool,
}

const MS_PER_MINUTE: f64 = 60_000.0;
const MS_PER_HOUR: f64 = 3_600_000.0;

/// One ticket's first response, resolution and overdue flag at `now`.
pub fn metrics(row: &ReportRow, now: i64) -> Metrics {
    let t = &row.ticket;
    let done = t.state == State::Done;
    let first_response_minutes = row
        .first_response_at
        .map(|at| (at - t.created_at) as f64 / MS_PER_MINUTE);
    let resolution_hours = match (done, row.closed_at) {
        (true, Some(closed)) => Some((closed - t.created_at) as f64 / MS_PER_HOUR),
        _ => None,
    };
    // A done ticket is judged by when it was closed, not by today: closing
    // late stays late, closing in time stays in time.
    // A paused clock (waiting on the contact) is judged at the pause: its
    // due date moves when the clock runs again.
    let deadline_check = if done {
        row.closed_at.unwrap_or(now)
    } else {
        t.paused_at.unwrap_or(now)
    };
    Metrics {
        first_response_minutes,
        resolution_hours,
        // Late on either promise: the resolution, or a first answer that
        // came (or has not come) after its deadline.
        overdue: t.due_at.is_some_and(|due| due < deadline_check)
            || t.first_response_due_at
                .is_some_and(|due| due < row.first_response_at.unwrap_or(deadline_check)),
    }
}

/// The `p`-th percentile (0..=100) of sorted values, interpolating between
/// the closest ranks (`PERCENTILE.INC`); `None` for no values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (p / 100.0).clamp(0.0, 1.0) * last as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    let (lo, hi) = (*sorted.get(below)?, *sorted.get(above)?);
    Some(lo + (hi - lo) * (rank - below as f64))
}

/// One decimal is plenty for minutes and hours and keeps the JSON readable.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstResponse {
    /// Tickets with an agent reply.
    pub count: u64,
    /// Tickets nobody has answered yet.
    pub no_response: u64,
    pub median_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    /// Done tickets.
    pub count: u64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

/// The numbers for one group of tickets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub key: String,
    pub tickets: u64,
    /// Every state, zeros included, so columns line up across groups.
    pub by_state: BTreeMap<String, u64>,
    pub first_response: FirstResponse,
    pub resolution: Resolution,
    pub overdue: u64,
    pub by_channel: BTreeMap<String, u64>,
    pub by_mailbox: BTreeMap<String, u64>,
}

/// The whole report, as `--format json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub time_zone: String,
    pub by: &'static str,
    pub groups: Vec<Group>,
}

/// Groups the rows (sorted by key) and computes each group's numbers. With
/// `GroupBy::None` there is always one group, "all", even when empty, so a
/// quiet month still prints zeros rather than nothing.
pub fn groups(rows: &[ReportRow], by: GroupBy, now: i64) -> Vec<Group> {
    let mut buckets: BTreeMap<String, Vec<&ReportRow>> = BTreeMap::new();
    if by == GroupBy::None {
        buckets.insert("all".to_string(), Vec::new());
    }
    for row in rows {
        buckets.entry(by.key_of(row)).or_default().push(row);
    }
    buckets
        .into_iter()
        .map(|(key, rows)| group(key, &rows, now))
        .collect()
}

fn group(key: String, rows: &[&ReportRow], now: i64) -> Group {
    let mut by_state: BTreeMap<String, u64> = State::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    let mut by_channel = BTreeMap::new();
    let mut by_mailbox = BTreeMap::new();
    let mut responses = Vec::new();
    let mut resolutions = Vec::new();
    let mut overdue = 0;
    for row in rows {
        *by_state.entry(row.ticket.state.to_string()).or_default() += 1;
        *by_channel.entry(row.channel.to_string()).or_default() += 1;
        *by_mailbox.entry(row.ticket.mailbox.clone()).or_default() += 1;
        let m = metrics(row, now);
        responses.extend(m.first_response_minutes);
        resolutions.extend(m.resolution_hours);
        overdue += u64::from(m.overdue);
    }
    responses.sort_by(f64::total_cmp);
    resolutions.sort_by(f64::total_cmp);
    let stat = |values: &[f64], p: f64| percentile(values, p).map(round1);
    Group {
        key,
        tickets: rows.len() as u64,
        by_state,
        first_response: FirstResponse {
            count: responses.len() as u64,
            no_response: (rows.len() - responses.len()) as u64,
            median_minutes: stat(&responses, 50.0),
            p90_minutes: stat(&responses, 90.0),
        },
        resolution: Resolution {
            count: resolutions.len() as u64,
            median_hours: stat(&resolutions, 50.0),
            p90_hours: stat(&resolutions, 90.0),
        },
        overdue,
        by_channel,
        by_mailbox,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::TicketRow;

    const HOUR: i64 = 3_600_000;

    fn row(n: i64, state: &str, created: i64) -> ReportRow {
        ReportRow {
            ticket: TicketRow {
                number: n,
                subject: format!("ticket {n}"),
                state: state.parse().unwrap(),
                outcome: None,
                pipeline: "Soporte".into(),
                owner: None,
                priority: crate::ticket::Priority::Medium,
                ticket_type: None,
                category: None,
                area: None,
                tags: vec![],
                fields: Default::default(),
                keys: vec![],
                requester: None,
                requester_name: None,
                mailbox: "soporte".into(),
                needs_review: false,
                internal: false,
                linked_ticket: None,
                due_at: None,
                first_response_due_at: None,
                first_response_at: None,
                paused_at: None,
                created_at: created,
                updated_at: created,
                message_count: 1,
            },
            channel: crate::ticket::Channel::Email,
            closed_at: None,
            first_response_at: None,
        }
    }

    #[test]
    fn a_late_or_missing_first_answer_is_overdue() {
        let mut answered_in_time = row(1, "open", 0);
        answered_in_time.ticket.first_response_due_at = Some(2 * HOUR);
        answered_in_time.first_response_at = Some(HOUR);
        assert!(!metrics(&answered_in_time, 10 * HOUR).overdue);
        let mut answered_late = answered_in_time.clone();
        answered_late.first_response_at = Some(3 * HOUR);
        assert!(metrics(&answered_late, 10 * HOUR).overdue);
        let mut unanswered = row(2, "new", 0);
        unanswered.ticket.first_response_due_at = Some(2 * HOUR);
        assert!(!metrics(&unanswered, HOUR).overdue, "not yet due");
        assert!(metrics(&unanswered, 3 * HOUR).overdue);
    }

    #[test]
    fn a_paused_clock_is_judged_at_the_pause() {
        let mut waiting = row(1, "waiting_on_contact", 0);
        waiting.ticket.due_at = Some(5 * HOUR);
        waiting.ticket.paused_at = Some(HOUR);
        assert!(!metrics(&waiting, 10 * HOUR).overdue);
        waiting.ticket.paused_at = Some(6 * HOUR);
        assert!(
            metrics(&waiting, 10 * HOUR).overdue,
            "late before it paused"
        );
    }

    #[test]
    fn median_and_p90_interpolate_between_ranks() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 50.0), Some(5.5));
        assert!((percentile(&ten, 90.0).unwrap_or_default() - 9.1).abs() < 1e-9);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[7.0], 90.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0, 3.0], 0.0), Some(1.0));
        assert_eq!(percentile(&[1.0, 3.0], 100.0), Some(3.0));
    }

    #[test]
    fn groups_count_states_responses_resolutions_and_overdue() {
        let now = 1_000 * HOUR;
        let mut answered = row(1, "waiting_on_contact", 0);
        answered.first_response_at = Some(30 * 60_000);
        let mut closed = row(2, "done", 0);
        closed.closed_at = Some(10 * HOUR);
        closed.ticket.due_at = Some(5 * HOUR); // closed after it was due
        let mut in_time = row(3, "done", 0);
        in_time.closed_at = Some(2 * HOUR);
        in_time.ticket.due_at = Some(5 * HOUR);
        in_time.first_response_at = Some(90 * 60_000);
        let mut late = row(4, "new", 0);
        late.ticket.due_at = Some(now - 1);
        let mut later = row(5, "new", 0);
        later.ticket.due_at = Some(now + 1);
        let rows = [answered, closed, in_time, late, later];

        let all = groups(&rows, GroupBy::None, now);
        assert_eq!(all.len(), 1);
        let g = &all[0];
        assert_eq!(g.key, "all");
        assert_eq!(g.tickets, 5);
        assert_eq!(g.by_state["new"], 2);
        assert_eq!(g.by_state["done"], 2);
        assert_eq!(g.by_state["waiting_on_contact"], 1);
        assert_eq!(g.by_state["open"], 0);
        assert_eq!(g.first_response.count, 2);
        assert_eq!(g.first_response.no_response, 3);
        assert_eq!(g.first_response.median_minutes, Some(60.0));
        assert_eq!(g.first_response.p90_minutes, Some(84.0));
        assert_eq!(g.resolution.count, 2);
        assert_eq!(g.resolution.median_hours, Some(6.0));
        assert_eq!(g.resolution.p90_hours, Some(9.2));
        assert_eq!(g.overdue, 2, "the late closing and the open late one");
        assert_eq!(g.by_channel["email"], 5);
        assert_eq!(g.by_mailbox["soporte"], 5);
    }

    #[test]
    fn empty_range_is_one_zero_group_or_no_groups() {
        let all = groups(&[], GroupBy::None, 0);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].tickets, 0);
        assert_eq!(all[0].first_response.median_minutes, None);
        assert_eq!(all[0].resolution.p90_hours, None);
        assert_eq!(all[0].by_state.values().sum::<u64>(), 0);
        assert!(groups(&[], GroupBy::Owner, 0).is_empty());
    }

    #[test]
    fn grouping_by_owner_sorts_keys_and_names_the_unassigned() {
        let mut a = row(1, "new", 0);
        a.ticket.owner = Some("camila".into());
        let b = row(2, "open", 0);
        let mut c = row(3, "open", 0);
        c.ticket.owner = Some("alonso".into());
        let g = groups(&[a, b, c], GroupBy::Owner, 0);
        let keys: Vec<&str> = g.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["(none)", "alonso", "camila"]);
        assert!(g.iter().all(|g| g.tickets == 1));
    }

    #[test]
    fn group_names_parse() {
        assert_eq!("Pipeline".parse::<GroupBy>().ok(), Some(GroupBy::Pipeline));
        assert_eq!("type".parse::<GroupBy>().ok(), Some(GroupBy::Type));
        assert!("priority".parse::<GroupBy>().is_err());
    }

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn santiago() -> TimeZone {
        TimeZone::get("America/Santiago").unwrap_or_else(|e| panic!("tzdata: {e}"))
    }

    fn date(s: &str) -> Date {
        parse_date(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn range_is_local_days_with_to_inclusive() {
        // November is summer time in Chile (UTC-3).
        let (from, to) = range_ms(date("2026-11-01"), date("2026-11-30"), &santiago())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from, ms("2026-11-01T03:00:00Z"));
        assert_eq!(to, ms("2026-12-01T03:00:00Z"));
        // A single day.
        let (from, to) = range_ms(date("2026-06-15"), date("2026-06-15"), &santiago())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(to - from, 24 * HOUR);
        assert_eq!(from, ms("2026-06-15T04:00:00Z"));
    }

    #[test]
    fn range_edges_follow_santiago_dst_changes() {
        let tz = santiago();
        // 2026-09-06: clocks jump from 00:00 to 01:00 (UTC-4 → UTC-3); the
        // day has no midnight and starts at 01:00 local = 04:00Z.
        let (from, to) =
            range_ms(date("2026-09-06"), date("2026-09-06"), &tz).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from, ms("2026-09-06T04:00:00Z"));
        assert_eq!(to, ms("2026-09-07T03:00:00Z"));
        assert_eq!(to - from, 23 * HOUR);
        // 2026-04-05: clocks go back from 00:00 to 23:00 the evening before
        // (UTC-3 → UTC-4), so the 4th lasts 25 hours.
        let (from, to) =
            range_ms(date("2026-04-04"), date("2026-04-04"), &tz).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from, ms("2026-04-04T03:00:00Z"));
        assert_eq!(to, ms("2026-04-05T04:00:00Z"));
        assert_eq!(to - from, 25 * HOUR);
    }

    #[test]
    fn bad_ranges_are_refused_with_a_hint() {
        assert!(matches!(
            range_ms(date("2026-11-30"), date("2026-11-01"), &santiago()),
            Err(ReportError::Reversed { .. })
        ));
        let err = parse_date("30/11/2026").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("YYYY-MM-DD")));
    }
}
