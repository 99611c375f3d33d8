//! Resolution targets: "within N hours" or "within N business hours".
//!
//! The rules only say how long; [`BusinessHours::due_at_ms`] turns that into
//! a due time in the deployment's time zone. Pure (the caller passes "now").
//! Holidays are not modelled: a desk that needs them moves the due date by
//! hand, which the seed teams already do today.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::Serialize;

/// How long a ticket may take to be resolved.
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

/// When the desk works (`[business_hours]`); Monday to Friday 09:00–18:00
/// unless a rule file says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusinessHours {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after midnight.
    pub start: u16,
    pub end: u16,
}

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours {
            days: [true, true, true, true, true, false, false],
            start: 9 * 60,
            end: 18 * 60,
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

const MS_PER_MINUTE: i64 = 60_000;
/// Ten years of days: no real SLA gets near, but a calendar with no working
/// time cannot loop forever.
const MAX_DAYS: usize = 3660;

impl BusinessHours {
    /// The due time, in Unix milliseconds, of a ticket opened at `now_ms`.
    pub fn due_at_ms(&self, now_ms: i64, sla: Sla, tz: &TimeZone) -> i64 {
        let plain = now_ms.saturating_add(i64::from(sla.hours) * 60 * MS_PER_MINUTE);
        if !sla.business {
            return plain;
        }
        self.business_due(now_ms, i64::from(sla.hours) * 60 * MS_PER_MINUTE, tz)
            .unwrap_or(plain)
    }

    fn business_due(&self, now_ms: i64, mut remaining: i64, tz: &TimeZone) -> Option<i64> {
        let mut date = Timestamp::from_millisecond(now_ms)
            .ok()?
            .to_zoned(tz.clone())
            .date();
        for _ in 0..MAX_DAYS {
            if let Some((open, close)) = self.window(date, tz) {
                // Later days start at opening time; today may start mid-window.
                let from = now_ms.max(open);
                if from < close {
                    if remaining <= close - from {
                        return Some(from + remaining);
                    }
                    remaining -= close - from;
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// Opening and closing time of a working day, in Unix milliseconds.
    fn window(&self, date: Date, tz: &TimeZone) -> Option<(i64, i64)> {
        let weekday = usize::try_from(date.weekday().to_monday_zero_offset()).ok()?;
        if !self.days.get(weekday).copied().unwrap_or(false) || self.start >= self.end {
            return None;
        }
        let at = |minutes: u16| -> Option<i64> {
            let time = if minutes >= 24 * 60 {
                Time::new(23, 59, 59, 999_999_999).ok()?
            } else {
                Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()?
            };
            let zoned = date.to_datetime(time).to_zoned(tz.clone()).ok()?;
            Some(zoned.timestamp().as_millisecond())
        };
        Some((at(self.start)?, at(self.end)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn plain_hours_ignore_the_calendar() {
        let bh = BusinessHours::default();
        let sla = Sla {
            hours: 48,
            business: false,
        };
        let start = ms("2025-10-17T20:00:00Z");
        assert_eq!(
            bh.due_at_ms(start, sla, &TimeZone::UTC),
            start + 48 * 3_600_000
        );
    }

    #[test]
    fn business_hours_skip_nights_and_weekends() {
        let bh = BusinessHours::default();
        let tz = TimeZone::get("America/Santiago").unwrap();
        // Friday 17:00 in Santiago (UTC-3 in October): one hour left on
        // Friday, the remaining 8 on Monday from 09:00, due Monday 17:00.
        let start = ms("2025-10-17T20:00:00Z");
        let due = bh.due_at_ms(
            start,
            Sla {
                hours: 9,
                business: true,
            },
            &tz,
        );
        assert_eq!(due, ms("2025-10-20T20:00:00Z"));
        // Saturday: starts counting Monday 09:00.
        let due = bh.due_at_ms(
            ms("2025-10-18T15:00:00Z"),
            Sla {
                hours: 2,
                business: true,
            },
            &tz,
        );
        assert_eq!(due, ms("2025-10-20T14:00:00Z"));
    }

    #[test]
    fn a_calendar_without_working_days_falls_back_to_plain_hours() {
        let bh = BusinessHours {
            days: [false; 7],
            start: 540,
            end: 1080,
        };
        let start = ms("2025-10-17T20:00:00Z");
        let due = bh.due_at_ms(
            start,
            Sla {
                hours: 5,
                business: true,
            },
            &TimeZone::UTC,
        );
        assert_eq!(due, start + 5 * 3_600_000);
    }

    #[test]
    fn clocks_parse() {
        assert_eq!(parse_clock("09:00"), Some(540));
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(parse_clock("9"), None);
        assert_eq!(parse_clock("25:00"), None);
    }
}
