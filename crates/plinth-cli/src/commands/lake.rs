//! `plinth lake sink ...`, `plinth lake ls` and `plinth lake scan`: lake sinks and datasets through the
//! data hub, scans through its Arrow Flight endpoint.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::flight_service_client::FlightServiceClient;
use clap::{Args, Subcommand};
use futures::{StreamExt as _, TryStreamExt as _};
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{DatasetName, TopicName};
use serde_json::{Value, json};

use super::ConnectArgs;
use crate::output::Output;

/// `plinth lake ...`
#[derive(Debug, Args)]
pub struct LakeArgs {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The lake command.
    #[command(subcommand)]
    pub command: LakeCommand,
}

/// Lake commands.
#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Create, list, pause, resume and delete lake sinks (a topic landing in a dataset as Parquet).
    Sink {
        /// The sink command.
        #[command(subcommand)]
        command: SinkCommand,
    },
    /// List the lake's datasets, or describe one: its schema (fields) and files.
    ///
    /// Example: plinth lake ls orders
    Ls {
        /// Describe this dataset instead of listing them all.
        dataset: Option<String>,
        /// With no dataset: only datasets starting with this prefix.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Scan a dataset through Arrow Flight and print its rows as JSON lines.
    ///
    /// Example: plinth lake scan orders --columns order_id,amount --limit 5
    Scan {
        /// The dataset.
        dataset: String,
        /// Only rows whose Kafka timestamp is at or after this RFC 3339 instant.
        #[arg(long, value_parser = parse_instant)]
        from: Option<String>,
        /// Only rows whose Kafka timestamp is before this RFC 3339 instant.
        #[arg(long, value_parser = parse_instant)]
        to: Option<String>,
        /// Only these top-level columns, in this order (comma-separated).
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<u64>,
    },
}

/// Lake sink commands.
#[derive(Debug, Subcommand)]
pub enum SinkCommand {
    /// Land a topic in a lake dataset as Parquet files (crash-safe: no record lost or duplicated).
    ///
    /// Example: plinth lake sink create orders --dataset orders
    Create {
        /// The topic to land (bound through the data hub).
        topic: String,
        /// The dataset to write (default: named after the topic).
        #[arg(long)]
        dataset: Option<String>,
        /// The object-store URL prefix, e.g. s3://lake/events or file:///var/lake (default: the data
        /// hub's lake root).
        #[arg(long, default_value = "")]
        url_prefix: String,
    },
    /// List lake sinks with their state and progress.
    ///
    /// Example: plinth lake sink list --topic orders
    List {
        /// Only the sinks reading this topic.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Pause a sink: it finishes its current file and stops reading.
    ///
    /// Example: plinth lake sink pause orders
    Pause {
        /// The dataset the sink writes.
        dataset: String,
    },
    /// Resume a paused or failed sink from the offsets its files record.
    ///
    /// Example: plinth lake sink resume orders
    Resume {
        /// The dataset the sink writes.
        dataset: String,
    },
    /// Delete a sink; the dataset's files stay in the lake.
    ///
    /// Example: plinth lake sink delete orders
    Delete {
        /// The dataset the sink writes.
        dataset: String,
    },
}

fn parse_instant(text: &str) -> Result<String, String> {
    super::parse_timestamp(text).map(|_| text.trim().to_owned())
}

/// Runs a lake command.
pub async fn run(args: LakeArgs) -> anyhow::Result<ExitCode> {
    let output = args.connect.output;
    match args.command {
        LakeCommand::Sink { command } => {
            let mut client = super::datahub(&args.connect).await?;
            sink(&mut client, output, command).await?;
        }
        LakeCommand::Ls {
            dataset: None,
            prefix,
        } => {
            let mut client = super::datahub(&args.connect).await?;
            let request = pb::ListDatasetsRequest {
                name_prefix: prefix,
            };
            let datasets = super::call(client.list_datasets(request).await)?.datasets;
            let body: Vec<Value> = datasets.iter().map(dataset_json).collect();
            output.print(&json!(body), || {
                datasets
                    .iter()
                    .map(|dataset| {
                        format!(
                            "{}  {} rows  {} files  {} bytes  {}",
                            dataset.name.as_ref().map_or("", DatasetName::as_str),
                            dataset.row_count,
                            dataset.file_count,
                            dataset.size_bytes,
                            dataset.url_prefix
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        LakeCommand::Ls {
            dataset: Some(dataset),
            ..
        } => {
            let mut client = super::datahub(&args.connect).await?;
            describe(&mut client, output, dataset).await?;
        }
        LakeCommand::Scan {
            dataset,
            from,
            to,
            columns,
            limit,
        } => {
            let ticket = plinth_datahub::flight::ScanTicket {
                dataset,
                start_time: from,
                end_time: to,
                columns,
                limit,
            };
            scan(&args.connect, &ticket).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn sink(
    client: &mut super::DataHubClient,
    output: Output,
    command: SinkCommand,
) -> anyhow::Result<()> {
    let dataset_name = |name: String| Some(DatasetName::new(name));
    let (verb, sink) = match command {
        SinkCommand::Create {
            topic,
            dataset,
            url_prefix,
        } => {
            let request = pb::CreateLakeSinkRequest {
                topic: Some(TopicName::new(topic)),
                dataset: dataset.map(DatasetName::new),
                url_prefix,
            };
            let sink = super::call(client.create_lake_sink(request).await)?.sink;
            ("created", sink)
        }
        SinkCommand::List { topic } => {
            let request = pb::ListLakeSinksRequest {
                topic: topic.map(TopicName::new),
            };
            let sinks = super::call(client.list_lake_sinks(request).await)?.sinks;
            let body: Vec<Value> = sinks.iter().map(sink_json).collect();
            output.print(&json!(body), || {
                sinks.iter().map(sink_text).collect::<Vec<_>>().join("\n")
            });
            return Ok(());
        }
        SinkCommand::Pause { dataset } => {
            let request = pb::PauseLakeSinkRequest {
                dataset: dataset_name(dataset),
            };
            (
                "paused",
                super::call(client.pause_lake_sink(request).await)?.sink,
            )
        }
        SinkCommand::Resume { dataset } => {
            let request = pb::ResumeLakeSinkRequest {
                dataset: dataset_name(dataset),
            };
            (
                "resumed",
                super::call(client.resume_lake_sink(request).await)?.sink,
            )
        }
        SinkCommand::Delete { dataset } => {
            let request = pb::DeleteLakeSinkRequest {
                dataset: dataset_name(dataset),
            };
            (
                "deleted",
                super::call(client.delete_lake_sink(request).await)?.sink,
            )
        }
    };
    let sink = sink.unwrap_or_default();
    output.print(&sink_json(&sink), || {
        format!("{verb} lake sink {}", sink_text(&sink))
    });
    Ok(())
}

async fn describe(
    client: &mut super::DataHubClient,
    output: Output,
    dataset: String,
) -> anyhow::Result<()> {
    let mut files = Vec::new();
    let mut page_token = String::new();
    let first = loop {
        let request = pb::DescribeDatasetRequest {
            name: Some(DatasetName::new(dataset.clone())),
            page_size: 0,
            page_token: std::mem::take(&mut page_token),
        };
        let mut answer = super::call(client.describe_dataset(request).await)?;
        files.append(&mut answer.files);
        if answer.next_page_token.is_empty() {
            break answer;
        }
        page_token = answer.next_page_token;
    };
    let summary = first.summary.clone().unwrap_or_default();
    let mut body = dataset_json(&summary);
    body["fields"] = first.fields.iter().map(field_json).collect();
    body["files"] = files.iter().map(file_json).collect();
    output.print(&body, || {
        let mut lines = vec![format!(
            "dataset {}  {} rows in {} files ({} bytes) under {}{}",
            dataset,
            summary.row_count,
            summary.file_count,
            summary.size_bytes,
            summary.url_prefix,
            summary
                .source_topic
                .as_ref()
                .map(|topic| format!(", from topic {topic}"))
                .unwrap_or_default()
        )];
        lines.push("fields:".to_owned());
        for field in &first.fields {
            field_lines(field, 1, &mut lines);
        }
        lines.push("files:".to_owned());
        for file in &files {
            lines.push(format!(
                "  {}  {} rows  partition {} offsets {}..={}",
                file.url, file.row_count, file.partition, file.first_offset, file.last_offset
            ));
        }
        lines.join("\n")
    });
    Ok(())
}

/// Scans a dataset through Arrow Flight `DoGet` and prints each row as a JSON line.
async fn scan(
    connect: &ConnectArgs,
    ticket: &plinth_datahub::flight::ScanTicket,
) -> anyhow::Result<()> {
    let channel = super::channel(&connect.datahub, connect).await?;
    let mut client = FlightServiceClient::new(channel).max_decoding_message_size(256 * 1024 * 1024);
    let ticket = arrow_flight::Ticket {
        ticket: serde_json::to_vec(ticket)?.into(),
    };
    let response = super::call(client.do_get(ticket).await)?;
    let flight_data = response.map_err(arrow_flight::error::FlightError::from);
    let mut batches = FlightRecordBatchStream::new_from_flight_data(flight_data).boxed();
    let mut rows = 0usize;
    let stdout = std::io::stdout();
    while let Some(batch) = batches.try_next().await.map_err(|err| match err {
        arrow_flight::error::FlightError::Tonic(status) => super::status_error(&status),
        other => anyhow::anyhow!("the scan failed: {other}"),
    })? {
        rows += batch.num_rows();
        let mut out = stdout.lock();
        let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
        writer
            .write(&batch)
            .context("cannot print the scanned rows as JSON")?;
        writer.finish().context("cannot write to stdout")?;
        drop(writer);
        out.flush().context("cannot write to stdout")?;
    }
    if connect.output == Output::Text {
        eprintln!("({rows} rows)");
    }
    Ok(())
}

fn state_name(state: pb::LakeSinkState) -> String {
    state
        .as_str_name()
        .trim_start_matches("LAKE_SINK_STATE_")
        .to_ascii_lowercase()
}

fn sink_json(sink: &pb::LakeSink) -> Value {
    json!({
        "dataset": sink.dataset.as_ref().map(DatasetName::as_str),
        "topic": sink.topic.as_ref().map(TopicName::as_str),
        "url_prefix": sink.url_prefix,
        "state": state_name(sink.state()),
        "error": sink.error,
        "partitions": sink.partitions.iter().map(|partition| json!({"partition": partition.partition, "next_offset": partition.next_offset})).collect::<Vec<_>>(),
        "last_file": sink.last_file.as_ref().map(file_json),
        "create_time": super::format_timestamp(sink.create_time.as_ref()),
    })
}

fn sink_text(sink: &pb::LakeSink) -> String {
    let progress: Vec<String> = sink
        .partitions
        .iter()
        .map(|partition| format!("{}:{}", partition.partition, partition.next_offset))
        .collect();
    let mut text = format!(
        "{} <- topic {}  {}  next offsets [{}]  {}",
        sink.dataset.as_ref().map_or("", DatasetName::as_str),
        sink.topic.as_ref().map_or("", TopicName::as_str),
        state_name(sink.state()),
        progress.join(" "),
        sink.url_prefix
    );
    if !sink.error.is_empty() {
        text.push_str(&format!("\n  error: {}", sink.error));
    }
    text
}

fn dataset_json(dataset: &pb::DatasetSummary) -> Value {
    json!({
        "name": dataset.name.as_ref().map(DatasetName::as_str),
        "url_prefix": dataset.url_prefix,
        "source_topic": dataset.source_topic.as_ref().map(TopicName::as_str),
        "file_count": dataset.file_count,
        "row_count": dataset.row_count,
        "size_bytes": dataset.size_bytes,
    })
}

fn file_json(file: &pb::LakeFile) -> Value {
    json!({
        "url": file.url,
        "partition": file.partition,
        "first_offset": file.first_offset,
        "last_offset": file.last_offset,
        "event_date": file.event_date,
        "row_count": file.row_count,
        "size_bytes": file.size_bytes,
        "write_time": super::format_timestamp(file.write_time.as_ref()),
    })
}

fn field_json(field: &pb::LakeField) -> Value {
    json!({
        "name": field.name,
        "data_type": field.data_type,
        "nullable": field.nullable,
        "metadata": field.metadata,
        "children": field.children.iter().map(field_json).collect::<Vec<_>>(),
    })
}

fn field_lines(field: &pb::LakeField, depth: usize, lines: &mut Vec<String>) {
    lines.push(format!(
        "{}{}: {}{}",
        "  ".repeat(depth),
        field.name,
        field.data_type,
        if field.nullable { "" } else { " not null" }
    ));
    for child in &field.children {
        field_lines(child, depth + 1, lines);
    }
}
