//! Cron schedules in a time zone: five-field cron or a preset, read in an IANA zone, daylight saving
//! time included (a time the clock skips runs right after the gap; a time the clock repeats runs once,
//! the first time). Times in and out are microseconds since the epoch (UTC).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

use crate::domain::pipeline::Schedule;

/// The presets accepted besides five-field cron.
pub const PRESETS: [&str; 6] = [
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
];

const HOW_TO_WRITE: &str = "write five fields (minute hour day-of-month month day-of-week), such as `0 3 * * 1` for Mondays at 03:00, or one of @hourly, @daily, @weekly, @monthly, @yearly";

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Cron {
    pattern: croner::Cron,
    timezone: Tz,
}

impl Cron {
    /// Parses the schedule's cron text and time zone; the error says what is wrong and what is valid.
    pub fn parse(schedule: &Schedule) -> Result<Cron, String> {
        let timezone = parse_timezone(&schedule.timezone)?;
        let text = schedule.cron.trim();
        if text.starts_with('@') {
            if !PRESETS.contains(&text.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "`{text}` is not a schedule preset; use one of {}, or five cron fields",
                    PRESETS.join(", ")
                ));
            }
        } else {
            let fields = text.split_whitespace().count();
            if fields != 5 {
                return Err(format!(
                    "`{text}` has {fields} field{}, not 5; {HOW_TO_WRITE}",
                    if fields == 1 { "" } else { "s" }
                ));
            }
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let pattern = parser.parse(text).map_err(|error| {
            format!("`{text}` is not a cron schedule ({error}); {HOW_TO_WRITE}")
        })?;
        let cron = Cron { pattern, timezone };
        // A pattern such as `0 0 30 2 *` (February 30th) parses but never runs.
        let probe = DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default(); // 2024-01-01
        if cron
            .pattern
            .find_next_occurrence(&probe.with_timezone(&timezone), false)
            .is_err()
        {
            return Err(format!(
                "`{text}` never matches a date (such as February 30th); fix the day or month fields"
            ));
        }
        Ok(cron)
    }

    /// The time zone the fields are read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first tick strictly after `micros`; `None` past the year 9999 or when none is found.
    pub fn next_after(&self, micros: i64) -> Option<i64> {
        // Ticks fall on whole seconds: searching from the second that holds `micros`, exclusive,
        // finds the first tick after it.
        let start = self.zoned(micros.div_euclid(1_000_000))?;
        let next = self.pattern.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp_micros())
    }

    /// The last tick strictly before `micros` (the start of a scheduled run's data interval).
    pub fn previous_before(&self, micros: i64) -> Option<i64> {
        let seconds = micros.div_euclid(1_000_000);
        let start = self.zoned(seconds)?;
        // A tick on the second that holds `micros` is before it when `micros` has a fraction.
        let inclusive = micros.rem_euclid(1_000_000) != 0;
        let previous = self
            .pattern
            .find_previous_occurrence(&start, inclusive)
            .ok()?;
        Some(previous.timestamp_micros())
    }

    /// The ticks in `(after_exclusive, until_inclusive]`, at most `limit` of them, oldest first.
    pub fn ticks(&self, after_exclusive: i64, until_inclusive: i64, limit: usize) -> Vec<i64> {
        let mut ticks = Vec::new();
        let mut cursor = after_exclusive;
        while ticks.len() < limit {
            match self.next_after(cursor) {
                Some(tick) if tick <= until_inclusive => {
                    ticks.push(tick);
                    cursor = tick;
                }
                _ => break,
            }
        }
        ticks
    }

    fn zoned(&self, seconds: i64) -> Option<DateTime<Tz>> {
        Utc.timestamp_opt(seconds, 0)
            .single()
            .map(|time| time.with_timezone(&self.timezone))
    }
}

/// Reads an IANA time zone name (`UTC`, `Europe/Paris`); the error names the nearest valid one.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    Tz::from_str(name).map_err(|_| {
        let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name()).collect();
        let hint = match plinth_runtime::yaml::nearest(name, &names) {
            Some(near) => format!("did you mean `{near}`? "),
            None => String::new(),
        };
        format!(
            "`{name}` is not a time zone; {hint}use an IANA name such as UTC, Europe/Paris or America/New_York"
        )
    })
}

#[cfg(test)]
mod tests;
