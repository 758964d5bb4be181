//! Human-readable durations for configuration: `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1h30m"`.
//!
//! Use it on a field with `#[serde(with = "plinth_runtime::config::duration")]`. A bare number is
//! rejected because its unit would be a guess.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// What a duration must look like, for error messages.
const EXPECTED: &str = "a number with a unit (ns, us, ms, s, m, h, d), e.g. 500ms, 30s, 2m, 1h";

/// Serializes a duration as the shortest exact human string (`30s`, `500ms`, `2m`).
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

/// Deserializes a duration from a human string.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
        parse(value).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "a bare number is ambiguous: add a unit, e.g. \"{value}s\" or \"{value}ms\""
        )))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "a bare number is ambiguous: add a unit, e.g. \"{value}s\" or \"{value}ms\""
        )))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "a bare number is ambiguous: add a unit, e.g. \"{value}s\""
        )))
    }
}

/// Parses `"1h30m"`, `"500ms"`, `"0"`: one or more integer-unit pairs, optionally separated by spaces.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: expected {EXPECTED}");
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.is_empty() {
        return Err(invalid());
    }
    if trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!(
            "invalid duration {text:?}: a bare number is ambiguous, add a unit, e.g. \"{trimmed}s\" or \"{trimmed}ms\""
        ));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(invalid());
        }
        let amount: u64 = rest[..digits_end].parse().map_err(|_| invalid())?;
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_end] {
            "ns" => Some(Duration::from_nanos(amount)),
            "us" | "µs" => Some(Duration::from_micros(amount)),
            "ms" => Some(Duration::from_millis(amount)),
            "s" => Some(Duration::from_secs(amount)),
            "m" => amount.checked_mul(60).map(Duration::from_secs),
            "h" => amount.checked_mul(3600).map(Duration::from_secs),
            "d" => amount.checked_mul(86_400).map(Duration::from_secs),
            _ => return Err(invalid()),
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
        rest = rest[unit_end..].trim_start();
    }
    Ok(total)
}

/// Formats a duration in the largest unit that represents it exactly.
pub fn format(duration: Duration) -> String {
    let nanos = duration.subsec_nanos();
    let secs = duration.as_secs();
    if !nanos.is_multiple_of(1_000_000) {
        if nanos.is_multiple_of(1_000) {
            return format!("{}us", duration.as_micros());
        }
        return format!("{}ns", duration.as_nanos());
    }
    if nanos != 0 {
        return format!("{}ms", duration.as_millis());
    }
    match secs {
        0 => "0s".to_owned(),
        secs if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        secs if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        secs => format!("{secs}s"),
    }
}
