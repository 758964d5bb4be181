//! `plinth produce TOPIC`: JSON lines in, validated records out, in batches through the data hub's
//! `Produce`.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::TopicName;
use serde_json::{Value, json};

use super::ConnectArgs;

/// `plinth produce ...`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  plinth produce orders --file orders.jsonl\n  \
                  printf '{\"order_id\":1,\"amount\":9.5}\\n' | plinth produce orders --key-field order_id\n\n\
                  Exit code 1 when any record was rejected; each error names the record (line index from 0), \
                  the kind, the JSON pointer and the message."
)]
pub struct ProduceArgs {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The topic to write to.
    pub topic: String,
    /// The records: one JSON value per line (`-` or no --file: stdin). Blank lines are skipped.
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// Take each record's key from this top-level field of its value, as JSON text.
    #[arg(long, conflicts_with = "key")]
    pub key_field: Option<String>,
    /// Use this constant key for every record.
    #[arg(long)]
    pub key: Option<String>,
    /// Records per Produce request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Write the valid records of a batch and report the invalid ones. Default: a batch with an
    /// invalid record is rejected whole, and nothing after it is sent.
    #[arg(long)]
    pub accept_partial: bool,
}

/// One record read from the input.
struct Line {
    /// Its position among the non-blank input lines, from 0.
    index: usize,
    record: pb::ProduceRecord,
}

/// Reads the input into records; keys come from `--key` or `--key-field`.
fn read_records(args: &ProduceArgs) -> anyhow::Result<Vec<Line>> {
    let reader: Box<dyn std::io::BufRead> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(path) if path == std::path::Path::new("-") => Box::new(std::io::stdin().lock()),
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
        )),
    };
    let mut records = Vec::new();
    for line in reader.lines() {
        let line = line.context("cannot read the input")?;
        let value = line.trim();
        if value.is_empty() {
            continue;
        }
        let key = record_key(value, args.key.as_deref(), args.key_field.as_deref());
        records.push(Line {
            index: records.len(),
            record: pb::ProduceRecord {
                key,
                value: value.to_owned(),
                ..Default::default()
            },
        });
    }
    Ok(records)
}

/// The key of a record: the constant `--key`, or `--key-field`'s value as JSON text (none when the
/// line is not a JSON object with that field: the data hub then reports the line itself).
fn record_key(value: &str, key: Option<&str>, key_field: Option<&str>) -> Option<Vec<u8>> {
    match (key, key_field) {
        (Some(key), _) => Some(key.as_bytes().to_vec()),
        (None, Some(field)) => serde_json::from_str::<Value>(value)
            .ok()
            .and_then(|parsed| parsed.get(field).map(Value::to_string))
            .map(String::into_bytes),
        (None, None) => None,
    }
}

/// A record the data hub did not write, with its position in the whole input.
struct Rejected {
    index: usize,
    kind: String,
    violations: Vec<pb::RecordViolation>,
}

/// What the whole run did.
#[derive(Default)]
struct Summary {
    written: u64,
    rejected: Vec<Rejected>,
    /// Valid records not written because their batch was rejected whole.
    batch_rejected: u64,
    /// Records never sent, after a batch was rejected whole.
    not_sent: u64,
    /// Records written per partition.
    partitions: BTreeMap<i32, u64>,
}

/// The error kind as a short lowercase name, e.g. `value_schema_violation`.
fn kind_name(kind: pb::RecordErrorKind) -> String {
    kind.as_str_name()
        .trim_start_matches("RECORD_ERROR_KIND_")
        .to_ascii_lowercase()
}

/// Runs `plinth produce`.
pub async fn run(args: ProduceArgs) -> anyhow::Result<ExitCode> {
    let output = args.connect.output;
    let records = read_records(&args)?;
    let mut client = super::datahub(&args.connect).await?;
    let topic = TopicName::new(args.topic.clone());
    let mut summary = Summary::default();
    let batch_size = usize::try_from(args.batch_size).unwrap_or(500);
    let mut batches = records.chunks(batch_size);
    for batch in batches.by_ref() {
        let request = pb::ProduceRequest {
            batch: Some(pb::ProduceBatch {
                topic: Some(topic.clone()),
                records: batch.iter().map(|line| line.record.clone()).collect(),
                accept_partial: args.accept_partial,
            }),
        };
        let answer = super::call(client.produce(request).await)?;
        let mut batch_had_errors = false;
        for (line, result) in batch.iter().zip(&answer.results) {
            match &result.outcome {
                Some(pb::record_result::Outcome::Ack(ack)) => {
                    summary.written += 1;
                    *summary.partitions.entry(ack.partition).or_default() += 1;
                }
                Some(pb::record_result::Outcome::Error(error)) => {
                    batch_had_errors = true;
                    if error.kind() == pb::RecordErrorKind::BatchRejected {
                        summary.batch_rejected += 1;
                    } else {
                        summary.rejected.push(Rejected {
                            index: line.index,
                            kind: kind_name(error.kind()),
                            violations: error.violations.clone(),
                        });
                    }
                }
                None => {}
            }
        }
        if batch_had_errors && !args.accept_partial {
            break;
        }
    }
    summary.not_sent = batches.map(|batch| batch.len() as u64).sum();
    print_summary(output, &args.topic, records.len(), &summary);
    let failed = !summary.rejected.is_empty() || summary.batch_rejected > 0;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(output: crate::output::Output, topic: &str, total: usize, summary: &Summary) {
    let errors: Vec<Value> = summary
        .rejected
        .iter()
        .flat_map(|rejected| {
            let violations: Vec<Option<&pb::RecordViolation>> = if rejected.violations.is_empty() {
                vec![None]
            } else {
                rejected.violations.iter().map(Some).collect()
            };
            violations.into_iter().map(move |violation| {
                json!({
                    "index": rejected.index,
                    "kind": rejected.kind,
                    "instance_path": violation.map(|v| v.instance_path.as_str()).unwrap_or(""),
                    "message": violation.map(|v| v.message.as_str()).unwrap_or(""),
                })
            })
        })
        .collect();
    let body = json!({
        "topic": topic,
        "records": total,
        "written": summary.written,
        "rejected": summary.rejected.len(),
        "batch_rejected": summary.batch_rejected,
        "not_sent": summary.not_sent,
        "partitions": summary.partitions.iter().map(|(partition, count)| (partition.to_string(), json!(count))).collect::<serde_json::Map<_, _>>(),
        "errors": errors,
    });
    output.print(&body, || {
        let mut lines = vec![format!(
            "wrote {} of {total} records to {topic}; {} invalid",
            summary.written,
            summary.rejected.len()
        )];
        if summary.batch_rejected > 0 || summary.not_sent > 0 {
            lines.push(format!(
                "  not written: {} valid records of the rejected batch, {} records after it \
                 (fix the invalid records, or pass --accept-partial to write the valid ones)",
                summary.batch_rejected, summary.not_sent
            ));
        }
        for error in &errors {
            let path = error["instance_path"].as_str().unwrap_or("");
            lines.push(format!(
                "  record {}: {}{}: {}",
                error["index"],
                error["kind"].as_str().unwrap_or(""),
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" at `{path}`")
                },
                error["message"].as_str().unwrap_or("")
            ));
        }
        lines.join("\n")
    });
}

#[cfg(test)]
mod tests {
    use super::record_key;

    #[test]
    fn keys_come_from_the_flag_or_the_field_as_json_text() {
        let line = r#"{"order_id": 7, "customer": "ada"}"#;
        assert_eq!(record_key(line, Some("k"), None), Some(b"k".to_vec()));
        assert_eq!(
            record_key(line, None, Some("order_id")),
            Some(b"7".to_vec())
        );
        assert_eq!(
            record_key(line, None, Some("customer")),
            Some(br#""ada""#.to_vec())
        );
        assert_eq!(record_key(line, None, Some("missing")), None);
        assert_eq!(record_key("not json", None, Some("order_id")), None);
        assert_eq!(record_key(line, None, None), None);
    }
}
