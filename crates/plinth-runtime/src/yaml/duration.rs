//! Human durations of hand-written files (`0`, `30s`, `15m`, `2h`, `1d`, `1w`, `1h30m`) and their
//! canonical spelling.

use std::time::Duration;

const UNITS: [(char, u64); 5] = [
    ('w', 7 * 24 * 3600),
    ('d', 24 * 3600),
    ('h', 3600),
    ('m', 60),
    ('s', 1),
];

/// Parses `0` or one or more `<number><unit>` parts with units `w`, `d`, `h`, `m`, `s` (`1h30m`).
/// The error says what is wrong, for a message that starts with the field name.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let help = "write a number and a unit (s, m, h, d, w), such as 30s, 15m, 2h, 1d, 1h30m, or 0";
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(format!("an empty duration; {help}"));
    }
    if text.chars().all(|character| character.is_ascii_digit()) {
        return Err(format!(
            "`{text}` has no unit; write it with one, such as {text}s, {text}m or {text}h"
        ));
    }
    let mut seconds: u64 = 0;
    let mut digits = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let Some((_, unit_seconds)) = UNITS.iter().find(|(unit, _)| *unit == character) else {
            return Err(format!(
                "`{text}` has `{character}` where a digit or a unit goes; {help}"
            ));
        };
        if digits.is_empty() {
            return Err(format!(
                "`{text}` has a unit `{character}` without a number before it; {help}"
            ));
        }
        let count: u64 = digits
            .parse()
            .map_err(|_| format!("`{text}` is too long a duration"))?;
        digits.clear();
        seconds = count
            .checked_mul(*unit_seconds)
            .and_then(|part| seconds.checked_add(part))
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "`{text}` ends with a number without a unit; {help}"
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// The canonical spelling of a duration: `0`, or its parts from weeks down to seconds (`1d2h`); a
/// fraction of a second is dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0".to_owned();
    }
    let mut text = String::new();
    for (unit, unit_seconds) in UNITS {
        let count = seconds / unit_seconds;
        if count > 0 {
            text.push_str(&count.to_string());
            text.push(unit);
            seconds -= count * unit_seconds;
        }
    }
    text
}
