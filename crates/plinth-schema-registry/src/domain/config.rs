//! Compatibility levels, policies and modes, with Confluent's names.

use std::fmt;
use std::str::FromStr;

/// Compatibility levels, as in Confluent Schema Registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema reads data written with the latest version.
    #[default]
    Backward,
    /// The new schema reads data written with every earlier version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every earlier version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
}

/// Which way a compatibility check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The new schema must read old data: diff(old, new).
    Backward,
    /// Old schemas must read new data: diff(new, old).
    Forward,
}

impl CompatibilityLevel {
    /// All levels, in Confluent's documentation order.
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    /// Confluent's constant name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether every earlier version is checked (rather than the latest only).
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    /// The directions this level checks.
    pub fn directions(self) -> &'static [Direction] {
        match self {
            Self::None => &[],
            Self::Backward | Self::BackwardTransitive => &[Direction::Backward],
            Self::Forward | Self::ForwardTransitive => &[Direction::Forward],
            Self::Full | Self::FullTransitive => &[Direction::Backward, Direction::Forward],
        }
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that is not one of the allowed names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}; valid values are {allowed}")]
pub struct UnknownValue {
    /// What was parsed.
    pub what: &'static str,
    /// The value given.
    pub value: String,
    /// The allowed values, comma separated.
    pub allowed: &'static str,
}

impl FromStr for CompatibilityLevel {
    type Err = UnknownValue;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(value.trim()))
            .ok_or_else(|| UnknownValue {
                what: "compatibility level",
                value: value.to_owned(),
                allowed: "NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE",
            })
    }
}

/// How strictly JSON Schema changes are judged (Confluent's `compatibilityPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompatibilityPolicy {
    /// Confluent's default rules.
    #[default]
    Strict,
    /// Also allows adding and removing optional properties.
    Lenient,
}

impl CompatibilityPolicy {
    /// Confluent's constant name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "STRICT",
            Self::Lenient => "LENIENT",
        }
    }
}

impl FromStr for CompatibilityPolicy {
    type Err = UnknownValue;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_uppercase().as_str() {
            "STRICT" => Ok(Self::Strict),
            "LENIENT" => Ok(Self::Lenient),
            _ => Err(UnknownValue {
                what: "compatibility policy",
                value: value.to_owned(),
                allowed: "STRICT, LENIENT",
            }),
        }
    }
}

/// The compatibility settings of the registry or of one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompatibilityConfig {
    /// The level.
    pub level: CompatibilityLevel,
    /// The JSON Schema policy.
    pub policy: CompatibilityPolicy,
}

/// Registry modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Reads and writes.
    #[default]
    ReadWrite,
    /// Writes refused.
    ReadOnly,
    /// Registration keeps the given ids and versions.
    Import,
}

impl Mode {
    /// Confluent's constant name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadWrite => "READWRITE",
            Self::ReadOnly => "READONLY",
            Self::Import => "IMPORT",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = UnknownValue;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_uppercase().as_str() {
            "READWRITE" => Ok(Self::ReadWrite),
            "READONLY" => Ok(Self::ReadOnly),
            "IMPORT" => Ok(Self::Import),
            _ => Err(UnknownValue {
                what: "mode",
                value: value.to_owned(),
                allowed: "READWRITE, READONLY, IMPORT",
            }),
        }
    }
}
