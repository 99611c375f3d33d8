//! Deadlines: "within N hours" or "within N business hours", and the
//! working calendar they are counted in.
//!
//! The rules only say how long (a first-response target and a resolution
//! target, each a [`Sla`]); [`BusinessHours`] turns that into instants in
//! the deployment's time zone: the due time of a new ticket, the working
//! time between two instants and the instant a given working time after
//! another (what pausing the clock needs). Pure: the caller passes every
//! instant, in Unix milliseconds, and the time zone.
//!
//! Business time is the real time elapsed inside the working windows
//! (`start`..`end` of each working day that is not a holiday), so a window
//! on a day when the clocks change is an hour shorter or longer, as it is
//! for the people working it.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::Serialize;

/// A time target: how long a ticket may take to get its first response, or
/// to be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sla {
    pub hours: u32,
    /// Count only the hours of [`BusinessHours`].
    pub business: bool,
}

impl std::fmt::Display for Sla {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.business {
            write!(f, "{} business hours", self.hours)
        } else {
            write!(f, "{} hours", self.hours)
        }
    }
}

impl Sla {
    /// The target in milliseconds (of working time when `business`).
    pub fn ms(self) -> i64 {
        i64::from(self.hours) * MS_PER_HOUR
    }
}

/// When the desk works (`[business_hours]`); Monday to Friday 09:00–18:00,
/// no holidays, unless a rule file says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusinessHours {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after midnight.
    pub start: u16,
    /// Minutes after midnight; 1440 is the end of the day.
    pub end: u16,
    /// Days with no working time, as dates in the deployment's time zone.
    pub holidays: BTreeSet<Date>,
}

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours {
            days: [true, true, true, true, true, false, false],
            start: 9 * 60,
            end: 18 * 60,
            holidays: BTreeSet::new(),
        }
    }
}

pub const DAY_NAMES: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Parses "09:00" into minutes after midnight.
pub fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

/// Parses an ISO date, "2026-12-25", and nothing else (no time, no week
/// dates, no two-digit years).
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let year: i16 = text.get(0..4)?.parse().ok()?;
    let month: i8 = text.get(5..7)?.parse().ok()?;
    let day: i8 = text.get(8..10)?.parse().ok()?;
    Date::new(year, month, day).ok()
}

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
/// Ten years of days: no real target gets near, but a calendar with (almost)
/// no working time cannot loop forever.
const MAX_DAYS: usize = 3660;

impl BusinessHours {
    /// The due time, in Unix milliseconds, of a ticket opened at `now_ms`.
    pub fn due_at_ms(&self, now_ms: i64, sla: Sla, tz: &TimeZone) -> i64 {
        self.add_work_ms(now_ms, sla.ms(), sla.business, tz)
    }

    /// Whether some day of the week has working time. A calendar without
    /// any counts business hours as plain hours, rather than never.
    pub fn has_working_time(&self) -> bool {
        self.start < self.end && self.days.iter().any(|d| *d)
    }

    /// Whether `date` is a working day: its weekday is, and it is no holiday.
    pub fn is_working_day(&self, date: Date) -> bool {
        let weekday = usize::try_from(date.weekday().to_monday_zero_offset()).ok();
        weekday.is_some_and(|w| self.days.get(w).copied().unwrap_or(false))
            && !self.holidays.contains(&date)
    }

    /// The instant `ms` of working time after `from_ms`. Calendar time
    /// (`business = false`) is a plain addition. A business-time instant
    /// falls inside a working window (at its close when the time runs out
    /// exactly there). `ms <= 0` gives `from_ms`. A sum out of reach of the
    /// calendar (more than ten years of days) falls back to plain time.
    pub fn add_work_ms(&self, from_ms: i64, ms: i64, business: bool, tz: &TimeZone) -> i64 {
        if ms <= 0 {
            return from_ms;
        }
        let plain = from_ms.saturating_add(ms);
        if !business || !self.has_working_time() {
            return plain;
        }
        self.walk_forward(from_ms, ms, tz).unwrap_or(plain)
    }

    /// The working time, in milliseconds, from `from_ms` to `to_ms`: all of
    /// it in calendar time, only what falls inside working windows in
    /// business time (over at most ten years of days). Zero when
    /// `to_ms <= from_ms`.
    pub fn work_ms_between(&self, from_ms: i64, to_ms: i64, business: bool, tz: &TimeZone) -> i64 {
        if to_ms <= from_ms {
            return 0;
        }
        if !business || !self.has_working_time() {
            return to_ms.saturating_sub(from_ms);
        }
        self.sum_windows(from_ms, to_ms, tz)
            .unwrap_or_else(|| to_ms.saturating_sub(from_ms))
    }

    fn walk_forward(&self, from_ms: i64, mut remaining: i64, tz: &TimeZone) -> Option<i64> {
        let mut date = local_date(from_ms, tz)?;
        for _ in 0..MAX_DAYS {
            if let Some((open, close)) = self.window(date, tz) {
                // Later days start at opening time; the first may start mid-window.
                let start = from_ms.max(open);
                if start < close {
                    if remaining <= close - start {
                        return Some(start + remaining);
                    }
                    remaining -= close - start;
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    fn sum_windows(&self, from_ms: i64, to_ms: i64, tz: &TimeZone) -> Option<i64> {
        let mut date = local_date(from_ms, tz)?;
        let last = local_date(to_ms, tz)?;
        let mut total = 0i64;
        for _ in 0..MAX_DAYS {
            if date > last {
                return Some(total);
            }
            if let Some((open, close)) = self.window(date, tz) {
                let (start, end) = (from_ms.max(open), to_ms.min(close));
                if start < end {
                    total += end - start;
                }
            }
            date = date.tomorrow().ok()?;
        }
        // Ten years of days counted; what lies further is not counted.
        Some(total)
    }

    /// Opening and closing time of a working day, in Unix milliseconds;
    /// `None` on weekends, holidays and days the zone cannot place.
    fn window(&self, date: Date, tz: &TimeZone) -> Option<(i64, i64)> {
        if !self.is_working_day(date) || self.start >= self.end {
            return None;
        }
        let open = instant(date, self.start, tz)?;
        let close = instant(date, self.end, tz)?;
        (open < close).then_some((open, close))
    }
}

/// The civil date of an instant in `tz`.
fn local_date(ms: i64, tz: &TimeZone) -> Option<Date> {
    Some(
        Timestamp::from_millisecond(ms)
            .ok()?
            .to_zoned(tz.clone())
            .date(),
    )
}

/// `minutes` after the start of `date` (1440: the next midnight), in Unix
/// milliseconds. A time skipped by a clock change moves forward by the gap;
/// a repeated time is its first occurrence.
fn instant(date: Date, minutes: u16, tz: &TimeZone) -> Option<i64> {
    let (date, minutes) = if minutes >= 24 * 60 {
        (date.tomorrow().ok()?, 0)
    } else {
        (date, minutes)
    };
    let hour = i8::try_from(minutes / 60).ok()?;
    let minute = i8::try_from(minutes % 60).ok()?;
    let time = Time::new(hour, minute, 0, 0).ok()?;
    let zoned = date.to_datetime(time).to_zoned(tz.clone()).ok()?;
    Some(zoned.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = MS_PER_HOUR;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn business(hours: u32) -> Sla {
        Sla {
            hours,
            business: true,
        }
    }

    fn with_holidays(dates: &[&str]) -> BusinessHours {
        BusinessHours {
            holidays: dates.iter().map(|d| parse_date(d).unwrap()).collect(),
            ..BusinessHours::default()
        }
    }

    #[test]
    fn plain_hours_ignore_the_calendar() {
        let bh = with_holidays(&["2025-10-20"]);
        let sla = Sla {
            hours: 48,
            business: false,
        };
        let start = ms("2025-10-17T20:00:00Z");
        assert_eq!(bh.due_at_ms(start, sla, &TimeZone::UTC), start + 48 * HOUR);
        let end = ms("2025-10-21T08:30:00Z");
        assert_eq!(
            bh.work_ms_between(start, end, false, &TimeZone::UTC),
            end - start
        );
        assert_eq!(
            bh.add_work_ms(start, 5 * HOUR, false, &TimeZone::UTC),
            start + 5 * HOUR
        );
    }

    #[test]
    fn business_hours_skip_nights_and_weekends() {
        let bh = BusinessHours::default();
        let tz = tz("America/Santiago");
        // Friday 17:00 in Santiago (UTC-3 in October): one hour left on
        // Friday, the remaining 8 on Monday from 09:00, due Monday 17:00.
        let start = ms("2025-10-17T20:00:00Z");
        assert_eq!(
            bh.due_at_ms(start, business(9), &tz),
            ms("2025-10-20T20:00:00Z")
        );
        // Saturday: starts counting Monday 09:00.
        let due = bh.due_at_ms(ms("2025-10-18T15:00:00Z"), business(2), &tz);
        assert_eq!(due, ms("2025-10-20T14:00:00Z"));
    }

    #[test]
    fn santiago_skips_a_weekend_and_its_holidays() {
        let bh = with_holidays(&["2026-09-18", "2026-09-19", "2026-12-25"]);
        let tz = tz("America/Santiago");
        // Thursday 24 December 16:00 (UTC-3): 2 hours that day, Christmas
        // Friday and the weekend off, 7 more on Monday 28 from 09:00.
        let start = ms("2026-12-24T19:00:00Z");
        let due = bh.due_at_ms(start, business(9), &tz);
        assert_eq!(due, ms("2026-12-28T19:00:00Z"));
        assert_eq!(bh.work_ms_between(start, due, true, &tz), 9 * HOUR);
        // Thursday 17 September 17:00: Fiestas Patrias on Friday and
        // Saturday, then Sunday; the second hour is Monday 21 at 09:00-10:00.
        let due = bh.due_at_ms(ms("2026-09-17T20:00:00Z"), business(2), &tz);
        assert_eq!(due, ms("2026-09-21T13:00:00Z"));
        // Without the holidays Christmas is a working Friday.
        let plain = BusinessHours::default().due_at_ms(start, business(9), &tz);
        assert_eq!(plain, ms("2026-12-25T19:00:00Z"));
    }

    #[test]
    fn lima_skips_a_weekend_and_fiestas_patrias() {
        let bh = with_holidays(&["2026-07-23", "2026-07-28", "2026-07-29"]);
        let tz = tz("America/Lima");
        // Friday 24 July 17:00 (UTC-5, no daylight saving): 1 hour on
        // Friday, 9 on Monday 27, Tuesday 28 and Wednesday 29 are holidays,
        // the last 8 on Thursday 30: due 17:00.
        let start = ms("2026-07-24T22:00:00Z");
        let due = bh.due_at_ms(start, business(18), &tz);
        assert_eq!(due, ms("2026-07-30T22:00:00Z"));
        assert_eq!(bh.work_ms_between(start, due, true, &tz), 18 * HOUR);
        // A ticket opened on the holiday starts counting the next working day.
        let due = bh.due_at_ms(ms("2026-07-28T15:00:00Z"), business(1), &tz);
        assert_eq!(due, ms("2026-07-30T15:00:00Z"));
    }

    #[test]
    fn pausing_and_resuming_keeps_the_working_time_left() {
        let bh = with_holidays(&["2026-12-08", "2026-12-09"]);
        let tz = tz("America/Lima");
        // Opened Friday 4 December 10:00 with 27 business hours: 8 on
        // Friday, 9 on Monday 7, the two holidays, 9 on Thursday 10, the
        // last one on Friday 11: due 10:00.
        let opened = ms("2026-12-04T15:00:00Z");
        let due = bh.due_at_ms(opened, business(27), &tz);
        assert_eq!(due, ms("2026-12-11T15:00:00Z"));
        // Paused Monday 7 at 12:00: 8 (Friday) + 3 (Monday) hours used.
        let paused_at = ms("2026-12-07T17:00:00Z");
        let remaining = bh.work_ms_between(paused_at, due, true, &tz);
        assert_eq!(remaining, 16 * HOUR);
        assert_eq!(bh.add_work_ms(paused_at, remaining, true, &tz), due);
        // Resumed Thursday 10 at 17:00: 1 hour that day, 9 on Friday 11,
        // 6 on Monday 14: due 15:00.
        let resumed = ms("2026-12-10T22:00:00Z");
        let new_due = bh.add_work_ms(resumed, remaining, true, &tz);
        assert_eq!(new_due, ms("2026-12-14T20:00:00Z"));
        assert_eq!(bh.work_ms_between(resumed, new_due, true, &tz), remaining);
        // Calendar time pauses the same way.
        let remaining = bh.work_ms_between(paused_at, due, false, &tz);
        assert_eq!(
            bh.add_work_ms(resumed, remaining, false, &tz),
            resumed + (due - paused_at)
        );
    }

    #[test]
    fn working_time_between_instants() {
        let bh = BusinessHours::default();
        let tz = tz("America/Lima");
        let friday_noon = ms("2026-03-06T17:00:00Z");
        let monday_ten = ms("2026-03-09T15:00:00Z");
        assert_eq!(
            bh.work_ms_between(friday_noon, monday_ten, true, &tz),
            7 * HOUR
        );
        assert_eq!(bh.work_ms_between(monday_ten, friday_noon, true, &tz), 0);
        assert_eq!(bh.work_ms_between(friday_noon, friday_noon, false, &tz), 0);
        // Entirely outside working time: nothing.
        let saturday = ms("2026-03-07T15:00:00Z");
        let sunday = ms("2026-03-08T15:00:00Z");
        assert_eq!(bh.work_ms_between(saturday, sunday, true, &tz), 0);
        // Time that ends outside a window comes back as that window's close.
        let used = bh.work_ms_between(friday_noon, saturday, true, &tz);
        assert_eq!(used, 6 * HOUR);
        assert_eq!(
            bh.add_work_ms(friday_noon, used, true, &tz),
            ms("2026-03-06T23:00:00Z")
        );
        assert_eq!(bh.add_work_ms(saturday, 0, true, &tz), saturday);
    }

    #[test]
    fn a_calendar_without_working_time_counts_plain_hours() {
        let start = ms("2025-10-17T20:00:00Z");
        for bh in [
            BusinessHours {
                days: [false; 7],
                ..BusinessHours::default()
            },
            BusinessHours {
                start: 600,
                end: 600,
                ..BusinessHours::default()
            },
        ] {
            assert!(!bh.has_working_time());
            let due = bh.due_at_ms(start, business(5), &TimeZone::UTC);
            assert_eq!(due, start + 5 * HOUR);
            assert_eq!(
                bh.work_ms_between(start, due, true, &TimeZone::UTC),
                5 * HOUR
            );
        }
    }

    #[test]
    fn a_target_beyond_ten_years_of_days_ends_instead_of_looping() {
        // One working minute a week: 8784 hours would take ten thousand years.
        let bh = BusinessHours {
            days: [true, false, false, false, false, false, false],
            start: 540,
            end: 541,
            holidays: BTreeSet::new(),
        };
        let start = ms("2026-01-05T12:00:00Z");
        let due = bh.due_at_ms(start, business(8784), &TimeZone::UTC);
        assert_eq!(due, start + 8784 * HOUR);
        let far = start + 20 * 366 * 24 * HOUR;
        let counted = bh.work_ms_between(start, far, true, &TimeZone::UTC);
        assert!(counted > 0 && counted < 1000 * MS_PER_MINUTE, "{counted}");
    }

    #[test]
    fn santiago_clock_changes() {
        let tz = tz("America/Santiago");
        // The clocks go forward at Saturday 5 September 2026, 24:00 (UTC-4)
        // to Sunday 01:00 (UTC-3): Friday 17:00 is 21:00Z, Monday 10:00 is
        // 13:00Z, two business hours apart.
        let bh = BusinessHours::default();
        let friday = ms("2026-09-04T21:00:00Z");
        let due = bh.due_at_ms(friday, business(2), &tz);
        assert_eq!(due, ms("2026-09-07T13:00:00Z"));
        assert_eq!(bh.work_ms_between(friday, due, true, &tz), 2 * HOUR);
        // A desk that also works Sundays 00:00-12:00 has an 11-hour window
        // on the day midnight does not exist ...
        let every_day = BusinessHours {
            days: [true; 7],
            start: 0,
            end: 12 * 60,
            holidays: BTreeSet::new(),
        };
        let sunday_open = ms("2026-09-06T04:00:00Z");
        let sunday_close = ms("2026-09-06T15:00:00Z");
        assert_eq!(
            every_day.work_ms_between(
                ms("2026-09-05T16:00:00Z"),
                ms("2026-09-06T16:00:00Z"),
                true,
                &tz
            ),
            11 * HOUR
        );
        assert_eq!(
            every_day.add_work_ms(sunday_open, 11 * HOUR, true, &tz),
            sunday_close
        );
        // ... and on Saturday 4 April, when 23:00-24:00 happens twice, a
        // 12:00-24:00 window lasts 13 hours.
        let evenings = BusinessHours {
            days: [true; 7],
            start: 12 * 60,
            end: 24 * 60,
            holidays: BTreeSet::new(),
        };
        let saturday_noon = ms("2026-04-04T15:00:00Z");
        let sunday_midnight = ms("2026-04-05T04:00:00Z");
        assert_eq!(
            evenings.work_ms_between(saturday_noon, sunday_midnight, true, &tz),
            13 * HOUR
        );
        assert_eq!(
            evenings.add_work_ms(saturday_noon, 13 * HOUR, true, &tz),
            sunday_midnight
        );
    }

    #[test]
    fn clocks_parse() {
        assert_eq!(parse_clock("09:00"), Some(540));
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(parse_clock("9"), None);
        assert_eq!(parse_clock("25:00"), None);
    }

    #[test]
    fn dates_parse_only_as_iso_days() {
        assert_eq!(parse_date("2026-12-08"), Date::new(2026, 12, 8).ok());
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "08-12-2026",
            "2026/12/08",
            "2026-12-8",
            "2026-12-08T00:00",
            " 2026-12-08",
            "+026-12-08",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
