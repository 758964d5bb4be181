//! The lake's file names, which are also the sink's progress record.
//!
//! A file is `<dataset>/event_date=YYYY-MM-DD/partition=<p>/<first_offset:020>-<last_offset:020>.parquet`:
//! the records of one Kafka partition, consecutive in offset order, all of one event date (the UTC date
//! of their Kafka timestamp), from `first_offset` to `last_offset` inclusive. Zero-padded offsets make
//! names sort in offset order.
//!
//! Why a crash and restart neither duplicates nor loses a record: the sink cuts what it consumed from a
//! partition into files with [`split_into_files`] and writes them one at a time, in offset order, each
//! with one atomic put. Whatever a crash interrupts, the lake holds a prefix of that sequence. On start
//! the sink lists the dataset, parses every name with [`LakeFile::parse`] and resumes each partition at
//! [`next_offsets`]: the highest `last_offset` + 1. Everything before it is in the lake once, nothing
//! after it is. The offsets the sink commits to Kafka are only a hint; the lake's names are the truth.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, NaiveDate};

use crate::domain::records::KafkaMetadata;

/// A dataset's name in the lake: its topic's name, so the characters Kafka allows in a topic name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatasetName(String);

impl DatasetName {
    /// Checks `name` against Kafka's topic name rules: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
    pub fn new(name: &str) -> Result<Self, LakePathError> {
        let valid_characters = name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
        if name.is_empty() || name.len() > 249 || !valid_characters || name == "." || name == ".." {
            return Err(LakePathError::InvalidDatasetName {
                name: name.to_owned(),
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as written in paths.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// One file of a dataset: which records it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LakeFile {
    event_date: NaiveDate,
    partition: i32,
    first_offset: i64,
    last_offset: i64,
}

/// Why a lake file name could not be made or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LakePathError {
    /// Not a Kafka topic name.
    #[error(
        "`{name}` is not a dataset name: use 1 to 249 characters of a-z, A-Z, 0-9, `.`, `_` and `-`, as \
         in a Kafka topic name"
    )]
    InvalidDatasetName {
        /// The name given.
        name: String,
    },
    /// Negative partition or offsets, or `first_offset` after `last_offset`.
    #[error(
        "partition {partition} offsets {first_offset}..={last_offset} do not name a lake file: the \
         partition and offsets must be non-negative and the first offset not after the last"
    )]
    InvalidRange {
        /// The partition.
        partition: i32,
        /// The first offset.
        first_offset: i64,
        /// The last offset.
        last_offset: i64,
    },
    /// The path is not in the lake's naming scheme.
    #[error(
        "`{path}` is not a lake file path; expected \
         `<dataset>/event_date=YYYY-MM-DD/partition=<p>/<first_offset:020>-<last_offset:020>.parquet`"
    )]
    NotALakePath {
        /// The path given.
        path: String,
    },
    /// Records handed to [`split_into_files`] are not one partition in increasing offset order.
    #[error(
        "records at index {index} are out of order: a lake file holds one partition's records in \
         increasing offset order; split the batch by partition and keep the consumer's order"
    )]
    RecordsOutOfOrder {
        /// The index of the first record that breaks the order.
        index: usize,
    },
    /// A Kafka timestamp outside the dates chrono can represent.
    #[error(
        "record at index {index} has Kafka timestamp {timestamp_ms} ms, which has no calendar date"
    )]
    TimestampOutOfRange {
        /// The record's index.
        index: usize,
        /// Its timestamp.
        timestamp_ms: i64,
    },
}

impl LakeFile {
    /// A file holding `partition`'s records from `first_offset` to `last_offset`, inclusive.
    pub fn new(
        event_date: NaiveDate,
        partition: i32,
        first_offset: i64,
        last_offset: i64,
    ) -> Result<Self, LakePathError> {
        if partition < 0 || first_offset < 0 || first_offset > last_offset {
            return Err(LakePathError::InvalidRange {
                partition,
                first_offset,
                last_offset,
            });
        }
        Ok(Self {
            event_date,
            partition,
            first_offset,
            last_offset,
        })
    }

    /// The UTC date of the records' Kafka timestamps.
    pub fn event_date(&self) -> NaiveDate {
        self.event_date
    }

    /// The Kafka partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The offset of the file's first record.
    pub fn first_offset(&self) -> i64 {
        self.first_offset
    }

    /// The offset of the file's last record.
    pub fn last_offset(&self) -> i64 {
        self.last_offset
    }

    /// The file's path relative to the lake's root.
    pub fn path(&self, dataset: &DatasetName) -> String {
        format!(
            "{dataset}/event_date={}/partition={}/{:020}-{:020}.parquet",
            self.event_date.format("%Y-%m-%d"),
            self.partition,
            self.first_offset,
            self.last_offset,
        )
    }

    /// Reads a path written by [`LakeFile::path`] back. Only the exact form is accepted (no missing
    /// padding, no extra segments), so every file the lake holds has one name.
    pub fn parse(path: &str) -> Result<(DatasetName, Self), LakePathError> {
        let not_a_lake_path = || LakePathError::NotALakePath {
            path: path.to_owned(),
        };
        let segments: Vec<&str> = path.split('/').collect();
        let [dataset, date, partition, file_name] = segments.as_slice() else {
            return Err(not_a_lake_path());
        };
        let dataset = DatasetName::new(dataset).map_err(|_| not_a_lake_path())?;
        let event_date = date
            .strip_prefix("event_date=")
            .and_then(|date| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok())
            .ok_or_else(not_a_lake_path)?;
        let partition = partition
            .strip_prefix("partition=")
            .and_then(|partition| partition.parse::<i32>().ok())
            .ok_or_else(not_a_lake_path)?;
        let (first_offset, last_offset) = file_name
            .strip_suffix(".parquet")
            .and_then(|range| range.split_once('-'))
            .and_then(|(first, last)| Some((first.parse::<i64>().ok()?, last.parse::<i64>().ok()?)))
            .ok_or_else(not_a_lake_path)?;
        let file = Self::new(event_date, partition, first_offset, last_offset)
            .map_err(|_| not_a_lake_path())?;
        if file.path(&dataset) != path {
            return Err(not_a_lake_path());
        }
        Ok((dataset, file))
    }
}

/// The offset the sink resumes each partition from: the highest `last_offset` + 1 among `files`.
/// Partitions without files are absent; the sink starts those from the consumer group's position.
pub fn next_offsets<'a>(files: impl IntoIterator<Item = &'a LakeFile>) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for file in files {
        let resume_at = file.last_offset + 1;
        next.entry(file.partition)
            .and_modify(|offset: &mut i64| *offset = (*offset).max(resume_at))
            .or_insert(resume_at);
    }
    next
}

/// The UTC date of a Kafka timestamp, the lake's event date.
pub fn event_date(timestamp_ms: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(timestamp_ms).map(|date_time| date_time.date_naive())
}

/// Cuts records consumed from one partition, in offset order, into the files that hold them: one file
/// per run of consecutive records with the same event date, with the range of `records` each holds.
/// The sink writes the files in the order returned.
pub fn split_into_files(
    records: &[KafkaMetadata],
) -> Result<Vec<(LakeFile, Range<usize>)>, LakePathError> {
    let mut files = Vec::new();
    let mut run_start = 0;
    for (index, record) in records.iter().enumerate() {
        if let Some(previous) = index.checked_sub(1).map(|previous| records[previous])
            && (record.partition != previous.partition || record.offset <= previous.offset)
        {
            return Err(LakePathError::RecordsOutOfOrder { index });
        }
        let date_of = |index: usize| {
            let timestamp_ms = records[index].timestamp_ms;
            event_date(timestamp_ms).ok_or(LakePathError::TimestampOutOfRange {
                index,
                timestamp_ms,
            })
        };
        let is_last = index + 1 == records.len();
        if is_last || date_of(index + 1)? != date_of(index)? {
            let first = records[run_start];
            files.push((
                LakeFile::new(
                    date_of(index)?,
                    first.partition,
                    first.offset,
                    record.offset,
                )?,
                run_start..index + 1,
            ));
            run_start = index + 1;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
