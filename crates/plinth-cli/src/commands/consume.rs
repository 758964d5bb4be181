//! `plinth consume TOPIC...`: the data hub's `Subscribe` as JSON lines, committing after each batch.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::TopicName;
use serde_json::{Value, json};

use super::ConnectArgs;

/// `plinth consume ...`
#[derive(Debug, Args)]
#[command(after_help = "Each record prints as one JSON line: \
                  {topic, partition, offset, timestamp, key, value, schema_id, schema_version}.\n\
                  It stops after --max records, or when no record arrived for --timeout, and exits 0.\n\n\
                  Examples:\n  plinth consume orders --group reports --from earliest --max 10\n  \
                  plinth consume orders returns --group audit --from 2026-01-02T00:00:00Z --no-commit --timeout 30s")]
pub struct ConsumeArgs {
    /// Connection flags; `--timeout` is also how long it waits for a record before it stops.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The topics to read.
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// The consumer group: its committed offsets say where to resume.
    #[arg(long, short)]
    pub group: String,
    /// Where to start: `committed` (the group's offsets; earliest without one), `earliest`, `latest`,
    /// or an RFC 3339 timestamp such as 2026-01-02T03:04:05Z.
    #[arg(long, default_value = "committed", value_parser = parse_from)]
    pub from: StartFrom,
    /// Stop after this many records.
    #[arg(long)]
    pub max: Option<u64>,
    /// Do not commit offsets (a later run of the group reads the same records again).
    #[arg(long)]
    pub no_commit: bool,
    /// The most records per batch the data hub sends (0: its default).
    #[arg(long, default_value_t = 0)]
    pub batch_size: u32,
}

/// Where a consumer starts.
#[derive(Debug, Clone, PartialEq)]
pub enum StartFrom {
    /// A start position without a timestamp.
    Position(pb::StartPosition),
    /// The first record at or after this instant.
    Timestamp(prost_types::Timestamp),
}

fn parse_from(text: &str) -> Result<StartFrom, String> {
    match text.to_ascii_lowercase().as_str() {
        "committed" => Ok(StartFrom::Position(pb::StartPosition::Committed)),
        "earliest" => Ok(StartFrom::Position(pb::StartPosition::Earliest)),
        "latest" => Ok(StartFrom::Position(pb::StartPosition::Latest)),
        _ => super::parse_timestamp(text)
            .map(StartFrom::Timestamp)
            .map_err(|err| format!("{err}; or committed, earliest, latest")),
    }
}

/// The JSON line a record prints as.
pub fn record_json(record: &pb::ConsumedRecord) -> Value {
    let value = record
        .value
        .as_deref()
        .map(|text| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())));
    json!({
        "topic": record.topic.as_ref().map_or("", TopicName::as_str),
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": super::format_timestamp(record.timestamp.as_ref()),
        "key": record.key.as_deref().map(String::from_utf8_lossy),
        "value": value,
        "schema_id": record.schema_id.as_ref().map(|id| id.value),
        "schema_version": record.schema_version,
    })
}

/// Runs `plinth consume`.
pub async fn run(args: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let idle = args.connect.timeout;
    let mut client = super::datahub(&args.connect).await?;
    let (start_position, start_timestamp) = match &args.from {
        StartFrom::Position(position) => (*position, None),
        StartFrom::Timestamp(timestamp) => (pb::StartPosition::Timestamp, Some(*timestamp)),
    };
    let request = pb::SubscribeRequest {
        consumer_group: args.group.clone(),
        topics: args.topics.iter().cloned().map(TopicName::new).collect(),
        start_position: start_position.into(),
        start_timestamp,
        max_batch_size: args.batch_size,
    };
    let mut stream = super::call(client.subscribe(request).await)?;
    let mut printed: u64 = 0;
    let stdout = std::io::stdout();
    loop {
        let next = tokio::time::timeout(idle, stream.message()).await;
        let batch = match next {
            Err(_idle) => break,
            Ok(Ok(Some(batch))) => batch,
            Ok(Ok(None)) => break,
            Ok(Err(status)) => return Err(super::status_error(&status)),
        };
        let mut next_offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
        {
            let mut out = stdout.lock();
            for record in &batch.records {
                if args.max.is_some_and(|max| printed >= max) {
                    break;
                }
                writeln!(out, "{}", record_json(record)).context("cannot write to stdout")?;
                printed += 1;
                let topic = record
                    .topic
                    .as_ref()
                    .map_or("", TopicName::as_str)
                    .to_owned();
                let next = next_offsets.entry((topic, record.partition)).or_default();
                *next = (*next).max(record.offset + 1);
            }
            out.flush().context("cannot write to stdout")?;
        }
        if !args.no_commit && !next_offsets.is_empty() {
            let request = pb::CommitRequest {
                consumer_group: args.group.clone(),
                offsets: next_offsets
                    .into_iter()
                    .map(|((topic, partition), offset)| pb::TopicPartitionOffset {
                        topic: Some(TopicName::new(topic)),
                        partition,
                        offset,
                    })
                    .collect(),
            };
            super::call(client.commit(request).await)?;
        }
        if args.max.is_some_and(|max| printed >= max) {
            break;
        }
    }
    tracing::debug!(printed, "consume done");
    Ok(ExitCode::SUCCESS)
}
