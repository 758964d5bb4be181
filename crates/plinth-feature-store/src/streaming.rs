//! Streaming materialization: every stream source (`stream: {topic: T}`) with online views is fed from
//! its data-hub topic into the online store.
//!
//! Per source, one consumer joins the data hub's consumer group `plinth-feature-store.<source>` through
//! `DataHubService/Subscribe` (from the group's committed offsets; earliest without any), turns each
//! batch of records into online rows (`streaming/rows.rs`), writes them, and only then commits the batch's offsets.
//! Delivery is at least once; a replayed record writes the same `(event_ts, created_ts)` again, which
//! the online write rule (newer or equal wins) makes harmless. Records that cannot be read are counted
//! ([`STREAM_RECORDS_SKIPPED`]) and logged, and never stop the consumer.
//!
//! [`run`] keeps the set of consumers equal to the applied project's stream sources, re-checked every
//! registry refresh period: a new source starts a consumer, a deleted one (or one whose topic changed)
//! stops it. A data hub (or an online store) that fails ends the consumer's stream; it reconnects with
//! a growing backoff and resumes from the committed offsets. Nothing here takes the service down.
//!
//! When the process exports traces, each batch is one [`MATERIALIZE_SPAN`] span, parented by the
//! `traceparent` header its producer left on the first record (see
//! `plinth_runtime::telemetry::RecordTraces`), so a trace follows a record from Produce to the online
//! store; the Commit call inside it carries the same trace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use plinth_proto::datahub::v1 as pb;
use plinth_proto::datahub::v1::data_hub_service_client::DataHubServiceClient;
use plinth_proto::ids::TopicName;
use plinth_runtime::client::AuthChannel;
use plinth_runtime::telemetry::RecordTraces;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::domain::definitions::{Project, SourceKind};
use crate::feature_store::FeatureStore;

pub(crate) mod rows;

/// Records read from a stream source's topic, labelled `source` (skipped ones included).
pub const STREAM_RECORDS: &str = "plinth_feature_store_stream_records_total";
/// Records of a stream source that could not be read (no valid event time or key, a mistyped feature,
/// not a JSON object) and were left out, labelled `source`.
pub const STREAM_RECORDS_SKIPPED: &str = "plinth_feature_store_stream_records_skipped_total";

/// The span of one consumed batch (when traces are exported): its online writes and its commit. Its
/// parent is the trace context of the batch's first record that carries one (the producer's span),
/// with links to the other records'.
pub const MATERIALIZE_SPAN: &str = "materialize.stream_batch";

/// The consumer-group prefix; the group of a source is `plinth-feature-store.<source>`.
pub const CONSUMER_GROUP_PREFIX: &str = "plinth-feature-store.";

/// The most records the data hub sends per batch (and so per online write and commit).
const MAX_BATCH_SIZE: u32 = 500;
/// The first wait before reconnecting after a failure.
const BACKOFF_START: Duration = Duration::from_millis(250);
/// The longest wait between reconnects.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The consumer group of stream source `source`.
pub fn consumer_group(source: &str) -> String {
    format!("{CONSUMER_GROUP_PREFIX}{source}")
}

/// The stream sources of `project` that feed at least one online view, with their topics.
pub fn stream_sources(project: &Project) -> BTreeMap<String, String> {
    project
        .sources
        .values()
        .filter_map(|source| match &source.kind {
            SourceKind::Stream { topic, .. }
                if !rows::online_views(project, &source.name).is_empty() =>
            {
                Some((source.name.clone(), topic.clone()))
            }
            _ => None,
        })
        .collect()
}

/// One running consumer.
#[derive(Debug)]
struct Consumer {
    topic: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Keeps one consumer per stream source of the applied project until `stop` turns true, then stops them
/// all and waits for them. `datahub` is a (lazily connecting) channel to the data hub.
pub async fn run(store: Arc<FeatureStore>, datahub: AuthChannel, mut stop: watch::Receiver<bool>) {
    let mut consumers: BTreeMap<String, Consumer> = BTreeMap::new();
    let period = store.refresh_period();
    loop {
        reconcile(&store, &datahub, &mut consumers);
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            () = tokio::time::sleep(period) => {}
        }
    }
    let stopping: Vec<Consumer> = std::mem::take(&mut consumers).into_values().collect();
    for consumer in &stopping {
        let _ = consumer.stop.send(true);
    }
    for consumer in stopping {
        let _ = consumer.task.await;
    }
}

/// Starts consumers for new stream sources and stops those of sources that left or changed topic.
fn reconcile(
    store: &Arc<FeatureStore>,
    datahub: &AuthChannel,
    consumers: &mut BTreeMap<String, Consumer>,
) {
    let wanted = stream_sources(&store.project());
    consumers.retain(|source, consumer| {
        let keep = wanted.get(source) == Some(&consumer.topic) && !consumer.task.is_finished();
        if !keep {
            tracing::info!(source = %source, topic = %consumer.topic, "stream source consumer stops");
            let _ = consumer.stop.send(true);
        }
        keep
    });
    for (source, topic) in wanted {
        if consumers.contains_key(&source) {
            continue;
        }
        tracing::info!(source = %source, topic = %topic, group = %consumer_group(&source), "stream source consumer starts");
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(consume(
            store.clone(),
            DataHubServiceClient::new(datahub.clone()),
            source.clone(),
            topic.clone(),
            stopped,
        ));
        consumers.insert(source, Consumer { topic, stop, task });
    }
}

/// How one Subscribe stream ended.
enum Ended {
    /// Stop was asked.
    Stopped,
    /// The data hub closed the stream, or something failed; reconnect. `progressed`: at least one batch
    /// was handled, so the backoff starts over.
    Reconnect { progressed: bool, reason: String },
}

/// One source's consumer: subscribe, handle batches, reconnect with backoff, until stopped.
async fn consume(
    store: Arc<FeatureStore>,
    mut client: DataHubServiceClient<AuthChannel>,
    source: String,
    topic: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_START;
    loop {
        match subscribe_once(&store, &mut client, &source, &topic, &mut stop).await {
            Ended::Stopped => return,
            Ended::Reconnect { progressed, reason } => {
                if progressed {
                    backoff = BACKOFF_START;
                }
                tracing::warn!(source = %source, topic = %topic, retry_in = ?backoff, reason = %reason, "stream source consumer reconnects");
            }
        }
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn subscribe_once(
    store: &FeatureStore,
    client: &mut DataHubServiceClient<AuthChannel>,
    source: &str,
    topic: &str,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let group = consumer_group(source);
    let request = pb::SubscribeRequest {
        consumer_group: group.clone(),
        topics: vec![TopicName::new(topic)],
        start_position: pb::StartPosition::Committed.into(),
        start_timestamp: None,
        max_batch_size: MAX_BATCH_SIZE,
    };
    let subscribed = tokio::select! {
        _ = stop.wait_for(|stopped| *stopped) => return Ended::Stopped,
        subscribed = client.subscribe(request) => subscribed,
    };
    let mut stream = match subscribed {
        Ok(response) => response.into_inner(),
        Err(status) => {
            return Ended::Reconnect {
                progressed: false,
                reason: format!(
                    "Subscribe to topic `{topic}` failed: {} ({:?}); check that the data hub runs and the topic exists",
                    status.message(),
                    status.code()
                ),
            };
        }
    };
    let mut progressed = false;
    loop {
        let message = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return Ended::Stopped,
            message = stream.message() => message,
        };
        let batch = match message {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                return Ended::Reconnect {
                    progressed,
                    reason: "the data hub closed the stream".to_owned(),
                };
            }
            Err(status) => {
                return Ended::Reconnect {
                    progressed,
                    reason: format!(
                        "the stream failed: {} ({:?})",
                        status.message(),
                        status.code()
                    ),
                };
            }
        };
        if let Err(reason) = handle_batch(store, client, source, &group, batch.records).await {
            return Ended::Reconnect { progressed, reason };
        }
        progressed = true;
    }
}

/// Writes one batch's rows to the online store, then commits its offsets, in a [`MATERIALIZE_SPAN`]
/// span that continues the trace of the first record carrying a `traceparent` header and links the
/// others'. An error (the online store failed) leaves the offsets uncommitted, so the records come
/// again after the reconnect.
async fn handle_batch(
    store: &FeatureStore,
    client: &mut DataHubServiceClient<AuthChannel>,
    source_name: &str,
    group: &str,
    records: Vec<pb::ConsumedRecord>,
) -> Result<(), String> {
    if records.is_empty() {
        return Ok(());
    }
    let traces = RecordTraces::of_consumed(&records);
    // No span at all unless traces are exported: logs stay as they are and nothing is paid.
    let span = if traces.is_collecting() {
        let span = tracing::info_span!(
            MATERIALIZE_SPAN,
            source = %source_name,
            topic = records
                .first()
                .and_then(|record| record.topic.as_ref())
                .map_or("", TopicName::as_str),
            records = records.len(),
            skipped = tracing::field::Empty,
            trace_links = traces.links().len(),
        );
        traces.apply_to(&span);
        span
    } else {
        tracing::Span::none()
    };
    write_batch(store, client, source_name, group, records)
        .instrument(span)
        .await
}

/// [`handle_batch`] inside its span.
async fn write_batch(
    store: &FeatureStore,
    client: &mut DataHubServiceClient<AuthChannel>,
    source_name: &str,
    group: &str,
    records: Vec<pb::ConsumedRecord>,
) -> Result<(), String> {
    let project = store.project();
    let total = records.len();
    let mut skipped = 0_u64;
    let mut batch = rows::BatchRows::default();
    let Some(source) = project.sources.get(source_name) else {
        // The source left the project since this batch was asked for; the consumer stops at the next
        // check. Nothing is committed, so a source applied again under this name reads these records.
        return Ok(());
    };
    let views = rows::online_views(&project, source_name);
    for record in &records {
        let kafka_ts = record.timestamp.as_ref().and_then(timestamp_micros);
        match rows::record_rows(&project, source, &views, record.value.as_deref(), kafka_ts) {
            Ok(rows) => {
                for (view, key, row) in rows {
                    batch.add(&view, key, row);
                }
            }
            Err(skip) => {
                skipped += 1;
                tracing::warn!(source = %source_name, partition = record.partition, offset = record.offset, reason = %skip, "stream record skipped");
            }
        }
    }
    for (view, rows) in batch.views {
        let rows = rows.into_rows();
        store
            .online()
            .write(&view, rows)
            .await
            .map_err(|err| format!("writing view `{view}` to the online store failed: {err}"))?;
    }
    tracing::Span::current().record("skipped", skipped);
    metrics::counter!(STREAM_RECORDS, "source" => source_name.to_owned()).increment(total as u64);
    if skipped > 0 {
        metrics::counter!(STREAM_RECORDS_SKIPPED, "source" => source_name.to_owned())
            .increment(skipped);
    }
    let offsets = next_offsets(&records);
    if let Err(status) = client
        .commit(pb::CommitRequest {
            consumer_group: group.to_owned(),
            offsets,
        })
        .await
    {
        // The rows are written; a lost commit only means they may be read again (and rewritten).
        tracing::warn!(source = %source_name, group = %group, error = %status.message(), code = ?status.code(), "stream offsets not committed; the records may be read again");
    }
    Ok(())
}

/// Per (topic, partition), the offset after the batch's last record.
fn next_offsets(records: &[pb::ConsumedRecord]) -> Vec<pb::TopicPartitionOffset> {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for record in records {
        let topic = record
            .topic
            .as_ref()
            .map(|topic| topic.value.clone())
            .unwrap_or_default();
        let offset = next.entry((topic, record.partition)).or_insert(0);
        *offset = (*offset).max(record.offset.saturating_add(1));
    }
    next.into_iter()
        .map(|((topic, partition), offset)| pb::TopicPartitionOffset {
            topic: Some(TopicName::new(&topic)),
            partition,
            offset,
        })
        .collect()
}

/// UTC microseconds of a protobuf timestamp.
fn timestamp_micros(timestamp: &prost_types::Timestamp) -> Option<i64> {
    timestamp
        .seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(timestamp.nanos / 1_000))
}

#[cfg(test)]
mod tests;
