use chrono::DateTime;

use super::*;

fn cron(text: &str, timezone: &str) -> Cron {
    Cron::parse(&Schedule {
        cron: text.to_owned(),
        timezone: timezone.to_owned(),
    })
    .unwrap()
}

fn error(text: &str, timezone: &str) -> String {
    Cron::parse(&Schedule {
        cron: text.to_owned(),
        timezone: timezone.to_owned(),
    })
    .unwrap_err()
}

fn micros(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_micros()
}

fn time(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn next_after_is_strictly_after_and_reads_the_fields_in_the_zone() {
    let weekly = cron("0 3 * * 1", "Europe/Paris");
    // Winter: 03:00 CET is 02:00 UTC; summer: 03:00 CEST is 01:00 UTC.
    let monday = micros("2026-01-05T02:00:00Z");
    assert_eq!(
        weekly.next_after(micros("2026-01-01T00:00:00Z")),
        Some(monday)
    );
    assert_eq!(
        time(weekly.next_after(monday).unwrap()),
        "2026-01-12T02:00:00Z"
    );
    assert_eq!(
        time(weekly.next_after(micros("2026-07-01T00:00:00Z")).unwrap()),
        "2026-07-06T01:00:00Z"
    );
    // A fraction of a second after a tick is after it.
    assert_eq!(
        time(weekly.next_after(monday + 1).unwrap()),
        "2026-01-12T02:00:00Z"
    );
    assert_eq!(
        time(weekly.next_after(monday - 1).unwrap()),
        "2026-01-05T02:00:00Z"
    );
}

#[test]
fn previous_before_is_strictly_before() {
    let daily = cron("@daily", "UTC");
    let midnight = micros("2026-05-10T00:00:00Z");
    assert_eq!(
        time(daily.previous_before(midnight).unwrap()),
        "2026-05-09T00:00:00Z"
    );
    assert_eq!(daily.previous_before(midnight + 1), Some(midnight));
    assert_eq!(
        daily.previous_before(micros("2026-05-10T13:45:00Z")),
        Some(midnight)
    );
}

#[test]
fn a_time_the_clock_skips_runs_right_after_the_gap_in_paris() {
    // 2026-03-29: Paris goes from 02:00 CET to 03:00 CEST; 02:30 does not exist that day.
    let nightly = cron("30 2 * * *", "Europe/Paris");
    let ticks = nightly.ticks(
        micros("2026-03-27T12:00:00Z"),
        micros("2026-03-31T12:00:00Z"),
        10,
    );
    let ticks: Vec<String> = ticks.into_iter().map(time).collect();
    assert_eq!(
        ticks,
        [
            "2026-03-28T01:30:00Z", // 02:30 CET
            "2026-03-29T01:00:00Z", // 03:00 CEST, right after the gap
            "2026-03-30T00:30:00Z", // 02:30 CEST
            "2026-03-31T00:30:00Z",
        ]
    );
    // Hourly ticks stay one hour apart in real time across the gap.
    let hourly = cron("0 * * * *", "Europe/Paris");
    let ticks = hourly.ticks(
        micros("2026-03-28T22:30:00Z"),
        micros("2026-03-29T03:30:00Z"),
        10,
    );
    assert_eq!(ticks.len(), 5);
    assert!(
        ticks
            .windows(2)
            .all(|pair| pair[1] - pair[0] == 3_600_000_000)
    );
}

#[test]
fn a_time_the_clock_repeats_runs_once_and_hourly_runs_each_hour_in_paris() {
    // 2026-10-25: Paris goes back from 03:00 CEST to 02:00 CET; 02:30 happens twice.
    let nightly = cron("30 2 * * *", "Europe/Paris");
    let ticks: Vec<String> = nightly
        .ticks(
            micros("2026-10-24T12:00:00Z"),
            micros("2026-10-26T12:00:00Z"),
            10,
        )
        .into_iter()
        .map(time)
        .collect();
    assert_eq!(ticks, ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]);
    // The previous tick from the day after is the first 02:30, not the repeated one.
    assert_eq!(
        nightly.previous_before(micros("2026-10-26T01:30:00Z")),
        Some(micros("2026-10-25T00:30:00Z"))
    );
    // Every real hour has its tick, including the repeated 02:00.
    let hourly = cron("0 * * * *", "Europe/Paris");
    let ticks = hourly.ticks(
        micros("2026-10-24T23:30:00Z"),
        micros("2026-10-25T02:30:00Z"),
        10,
    );
    let ticks: Vec<String> = ticks.into_iter().map(time).collect();
    assert_eq!(
        ticks,
        [
            "2026-10-25T00:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T02:00:00Z"
        ]
    );
}

#[test]
fn new_york_follows_its_own_daylight_saving_dates() {
    // The United States move on 2026-03-08, three weeks before Europe.
    let morning = cron("0 9 * * *", "America/New_York");
    let ticks: Vec<String> = morning
        .ticks(
            micros("2026-03-07T00:00:00Z"),
            micros("2026-03-09T23:00:00Z"),
            10,
        )
        .into_iter()
        .map(time)
        .collect();
    assert_eq!(
        ticks,
        [
            "2026-03-07T14:00:00Z",
            "2026-03-08T13:00:00Z",
            "2026-03-09T13:00:00Z"
        ]
    );
}

#[test]
fn ticks_stop_at_the_limit_and_the_end() {
    let hourly = cron("@hourly", "UTC");
    let start = micros("2026-01-01T00:00:00Z");
    assert_eq!(hourly.ticks(start, start + 10 * 3_600_000_000, 3).len(), 3);
    assert_eq!(hourly.ticks(start, start + 3_600_000_000, 10).len(), 1);
    assert!(hourly.ticks(start, start, 10).is_empty());
}

#[test]
fn presets_and_names_parse() {
    for preset in PRESETS {
        cron(preset, "UTC");
    }
    cron("@WEEKLY", "UTC");
    cron("*/15 9-17 * * mon-fri", "Asia/Tokyo");
    let yearly = cron("@yearly", "UTC");
    assert_eq!(
        time(yearly.next_after(micros("2026-03-01T00:00:00Z")).unwrap()),
        "2027-01-01T00:00:00Z"
    );
}

#[test]
fn bad_schedules_say_what_is_valid() {
    let message = error("0 3 * *", "UTC");
    assert!(message.contains("has 4 fields, not 5"), "{message}");
    assert!(message.contains("@hourly"), "{message}");
    let message = error("0 3 * * * *", "UTC");
    assert!(message.contains("has 6 fields, not 5"), "{message}");
    let message = error("61 3 * * *", "UTC");
    assert!(message.contains("is not a cron schedule"), "{message}");
    let message = error("@every", "UTC");
    assert!(message.contains("is not a schedule preset"), "{message}");
    let message = error("0 0 30 2 *", "UTC");
    assert!(message.contains("never matches"), "{message}");
    let message = error("@daily", "Europe/Pari");
    assert!(
        message.contains("did you mean `Europe/Paris`?"),
        "{message}"
    );
    let message = error("@daily", "Mars/Olympus");
    assert!(message.contains("is not a time zone"), "{message}");
    assert!(message.contains("IANA"), "{message}");
}

#[test]
fn a_leap_day_schedule_finds_the_next_leap_year() {
    let leap = cron("0 0 29 2 *", "UTC");
    assert_eq!(
        time(leap.next_after(micros("2025-01-01T00:00:00Z")).unwrap()),
        "2028-02-29T00:00:00Z"
    );
    assert_eq!(
        time(
            leap.previous_before(micros("2027-01-01T00:00:00Z"))
                .unwrap()
        ),
        "2024-02-29T00:00:00Z"
    );
}
