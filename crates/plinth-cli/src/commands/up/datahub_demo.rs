//! The data hub part of `plinth up --demo`, after the registry steps registered `demo-orders-value`:
//! bind a topic to it, produce valid orders and see an invalid one refused, land the topic in the lake,
//! and read it back. Each step prints the equivalent CLI command.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{DatasetName, Subject, TopicName};

use crate::commands::{DataHubClient, call};

const TOPIC: &str = "demo-orders";
const SUBJECT: &str = "demo-orders-value";
const ORDERS: usize = 3_000;
const BATCH: usize = 500;
/// How long the demo waits for the lake sink to land every order.
const LAKE_WAIT: Duration = Duration::from_secs(120);

/// Runs the data hub demo against the gateway at `grpc`.
pub(super) async fn run(grpc: SocketAddr) -> anyhow::Result<()> {
    let endpoint: url::Url = format!("http://{grpc}").parse()?;
    let channel =
        plinth_runtime::client::connect(&endpoint, None, None, Duration::from_secs(30)).await?;
    let mut client = DataHubClient::new(channel);
    let topic = TopicName::new(TOPIC);

    println!(
        "[demo 5/9] bind a topic to the subject (plinth topic create {TOPIC} --value-subject {SUBJECT} --partitions 3)"
    );
    let created = client
        .create_topic(pb::CreateTopicRequest {
            name: Some(topic.clone()),
            value_binding: Some(pb::SchemaBinding {
                subject: Some(Subject::new(SUBJECT)),
                pinned_version: None,
            }),
            partition_count: 3,
            ..Default::default()
        })
        .await;
    match created {
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            println!("  -> {TOPIC} already exists (state kept from an earlier run)");
        }
        other => {
            let topic = call(other)?.topic.unwrap_or_default();
            println!(
                "  -> {TOPIC}: {} partitions, values validated against {SUBJECT} (latest version)",
                topic.partition_count
            );
        }
    }

    println!(
        "[demo 6/9] produce {ORDERS} valid orders (plinth produce {TOPIC} --file orders.jsonl --key-field order_id)"
    );
    let started = Instant::now();
    let mut written = 0u64;
    for first in (0..ORDERS).step_by(BATCH) {
        let records = (first..(first + BATCH).min(ORDERS))
            .map(|order_id| pb::ProduceRecord {
                key: Some(order_id.to_string().into_bytes()),
                value: serde_json::json!({
                    "order_id": order_id,
                    "amount": (order_id % 97) as f64 + 0.5,
                    "currency": if order_id % 3 == 0 { "EUR" } else { "USD" },
                })
                .to_string(),
                ..Default::default()
            })
            .collect();
        let answer = call(
            client
                .produce(pb::ProduceRequest {
                    batch: Some(pb::ProduceBatch {
                        topic: Some(topic.clone()),
                        records,
                        accept_partial: false,
                    }),
                })
                .await,
        )?;
        written += u64::from(answer.written_count);
    }
    println!(
        "  -> {written} records written and acknowledged in {:.2?}",
        started.elapsed()
    );

    println!(
        "[demo 7/9] an invalid order is refused (echo '{{\"order_id\":\"one\"}}' | plinth produce {TOPIC})"
    );
    let answer = call(
        client
            .produce(pb::ProduceRequest {
                batch: Some(pb::ProduceBatch {
                    topic: Some(topic.clone()),
                    records: vec![pb::ProduceRecord {
                        value: r#"{"order_id": "one"}"#.to_owned(),
                        ..Default::default()
                    }],
                    accept_partial: false,
                }),
            })
            .await,
    )?;
    for result in &answer.results {
        if let Some(pb::record_result::Outcome::Error(error)) = &result.outcome {
            let detail = error
                .violations
                .first()
                .map(|violation| format!("at `{}`: {}", violation.instance_path, violation.message))
                .unwrap_or_default();
            println!(
                "  -> record {} rejected ({}) {detail}",
                error.index,
                error
                    .kind()
                    .as_str_name()
                    .trim_start_matches("RECORD_ERROR_KIND_")
                    .to_ascii_lowercase()
            );
        }
    }

    println!("[demo 8/9] land the topic in the lake as Parquet (plinth lake sink create {TOPIC})");
    let created = client
        .create_lake_sink(pb::CreateLakeSinkRequest {
            topic: Some(topic.clone()),
            dataset: Some(DatasetName::new(TOPIC)),
            url_prefix: String::new(),
        })
        .await;
    match created {
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            println!("  -> the sink for {TOPIC} already exists");
        }
        other => {
            let sink = call(other)?.sink.unwrap_or_default();
            println!("  -> writing under {}", sink.url_prefix);
        }
    }
    wait_for_lake(&mut client, written).await?;

    println!(
        "[demo 9/9] subscribe and read the first records (plinth consume {TOPIC} --group demo-readers --from earliest --max 3)"
    );
    let mut stream = call(
        client
            .subscribe(pb::SubscribeRequest {
                consumer_group: "demo-readers".to_owned(),
                topics: vec![topic.clone()],
                start_position: pb::StartPosition::Earliest.into(),
                max_batch_size: 3,
                ..Default::default()
            })
            .await,
    )?;
    let mut shown = 0;
    while shown < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(30), stream.message()).await;
        let Ok(Ok(Some(batch))) = batch else {
            println!("  -> no records arrived within 30 s");
            break;
        };
        for record in batch.records.iter().take(3 - shown) {
            println!("  -> {}", crate::commands::consume::record_json(record));
            shown += 1;
        }
    }
    drop(stream);
    println!(
        "Scan the lake too: plinth lake scan {TOPIC} --columns order_id,amount,currency --limit 5\n"
    );
    Ok(())
}

/// Polls the sink and its dataset until the lake holds `expected` rows, printing progress.
async fn wait_for_lake(client: &mut DataHubClient, expected: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + LAKE_WAIT;
    let started = Instant::now();
    loop {
        let sinks = call(
            client
                .list_lake_sinks(pb::ListLakeSinksRequest {
                    topic: Some(TopicName::new(TOPIC)),
                })
                .await,
        )?
        .sinks;
        if let Some(failed) = sinks
            .iter()
            .find(|sink| sink.state() == pb::LakeSinkState::Failed)
        {
            anyhow::bail!("the lake sink failed: {}", failed.error);
        }
        let dataset = client
            .describe_dataset(pb::DescribeDatasetRequest {
                name: Some(DatasetName::new(TOPIC)),
                page_size: 1,
                page_token: String::new(),
            })
            .await;
        // The dataset does not exist until the sink wrote its first file.
        let summary = match dataset {
            Err(status) if status.code() == tonic::Code::NotFound => None,
            other => call(other)?.summary,
        };
        let rows = summary.as_ref().map_or(0, |summary| summary.row_count);
        if rows >= expected {
            let summary = summary.unwrap_or_default();
            println!(
                "  -> the lake holds {rows} rows in {} Parquet files after {:.1?} (plinth lake ls {TOPIC})",
                summary.file_count,
                started.elapsed()
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            println!(
                "  -> the lake holds {rows} of {expected} rows after {:.0?}; see `plinth lake sink list`",
                LAKE_WAIT
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
