//! Subscribe streams and commit routing. Each Subscribe stream is one member of its Kafka consumer group
//! (a librdkafka consumer of its own), reads the partitions the group assigns it, decodes records from
//! the Confluent wire format, and sends batches through a bounded channel: a slow client stops the
//! consumer from polling, and librdkafka's prefetch queue is capped, so memory stays bounded.
//!
//! Offsets are committed only by Commit (at least once). Commit goes to a member of the group open on
//! this replica, which commits as that member; Kafka refuses commits of a group with live members from
//! anyone else. A client sends Commit on the channel its Subscribe stream uses, so it reaches the same
//! replica.
//!
//! When the process exports traces, each batch sent is a [`DELIVER_SPAN`] span continuing its records'
//! producer trace (their `traceparent` headers, delivered to the client too).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{SchemaId, TopicName};
use plinth_runtime::error::ApiError;
use plinth_runtime::telemetry::RecordTraces;
use plinth_schema_registry::client::RegistryClient;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::config::{KafkaConfig, SubscribeConfig};
use crate::domain::wire_format;
use crate::kafka::{consumer_config, kafka_error};
use crate::topics::{Topics, timestamp};

/// Records read from Kafka by Subscribe streams (counter, label `topic`).
pub const RECORDS_CONSUMED: &str = "plinth_datahub_records_consumed_total";
/// The span of one batch handed to a Subscribe stream (only when traces are exported): parented by the
/// first traced record's producer span, linked to the others'.
pub const DELIVER_SPAN: &str = "subscribe.deliver_batch";
/// Open Subscribe streams (gauge).
pub const OPEN_STREAMS: &str = "plinth_datahub_subscribe_streams";

/// How long a new stream waits for streams of its group that are still leaving on this replica.
const LEAVE_WAIT: Duration = Duration::from_secs(5);

/// Where a stream starts on the partitions first assigned to it.
#[derive(Debug, Clone, Copy)]
enum Start {
    Committed,
    Earliest,
    Latest,
    Timestamp(i64),
}

/// The librdkafka context of one stream: positions newly assigned partitions and tracks the assignment.
struct StreamContext {
    start: Start,
    timeout: Duration,
    positioned: Mutex<HashSet<(String, i32)>>,
    assignment: Mutex<HashSet<(String, i32)>>,
    /// Partitions positioned by timestamp whose first record at or after it has not arrived yet. The
    /// broker's offset lookup may answer an earlier offset (some brokers answer the partition's start),
    /// so records before the timestamp are skipped until then, which gives Kafka's semantics either way.
    before_timestamp: Mutex<HashSet<(String, i32)>>,
    /// The offset after the last record this stream delivered, per partition: when the group gives a
    /// partition back to this stream (after a broker outage expired its session, say), it continues
    /// there instead of at the group's committed offset, so its client does not see records twice.
    delivered: Mutex<HashMap<(String, i32), i64>>,
}

impl StreamContext {
    /// Records where this stream stands after handing `batch` to its client.
    fn remember_delivered(&self, batch: &[pb::ConsumedRecord]) {
        // The batch's highest offset per partition first (a batch spans few partitions), then one map
        // update per partition.
        let mut highest: Vec<(&str, i32, i64)> = Vec::new();
        for record in batch {
            let topic = record.topic.as_ref().map_or("", TopicName::as_str);
            let next = record.offset + 1;
            match highest
                .iter_mut()
                .find(|(name, partition, _)| *partition == record.partition && *name == topic)
            {
                Some((_, _, offset)) => *offset = (*offset).max(next),
                None => highest.push((topic, record.partition, next)),
            }
        }
        let Ok(mut delivered) = self.delivered.lock() else {
            return;
        };
        for (topic, partition, next) in highest {
            match delivered.get_mut(&(topic.to_owned(), partition)) {
                Some(offset) => *offset = (*offset).max(next),
                None => {
                    delivered.insert((topic.to_owned(), partition), next);
                }
            }
        }
    }

    /// Whether a record at `timestamp_ms` of `topic`/`partition` is delivered under the start rule.
    fn deliver(&self, topic: &str, partition: i32, timestamp_ms: Option<i64>) -> bool {
        let Start::Timestamp(start) = self.start else {
            return true;
        };
        let Ok(mut pending) = self.before_timestamp.lock() else {
            return true;
        };
        let key = (topic.to_owned(), partition);
        if !pending.contains(&key) {
            return true;
        }
        if timestamp_ms.is_some_and(|ts| ts < start) {
            return false;
        }
        pending.remove(&key);
        true
    }
}

impl ClientContext for StreamContext {}

impl ConsumerContext for StreamContext {
    fn rebalance(
        &self,
        base_consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let lock = |m: &Mutex<HashSet<(String, i32)>>| {
            m.lock()
                .map(|mut set| std::mem::take(&mut *set))
                .unwrap_or_default()
        };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            let _ = lock(&self.assignment);
            if let Err(err) = base_consumer.unassign() {
                tracing::warn!(error = %err, "unassigning partitions failed");
            }
            return;
        }
        let mut positioned = lock(&self.positioned);
        let fresh: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|elem| (elem.topic().to_owned(), elem.partition()))
            .filter(|key| !positioned.contains(key))
            .collect();
        match self.start {
            Start::Committed => {}
            Start::Earliest | Start::Latest => {
                let offset = if matches!(self.start, Start::Earliest) {
                    Offset::Beginning
                } else {
                    Offset::End
                };
                for (topic, partition) in &fresh {
                    let _ = tpl.set_partition_offset(topic, *partition, offset);
                }
            }
            Start::Timestamp(ms) => {
                if let Ok(mut pending) = self.before_timestamp.lock() {
                    pending.extend(fresh.iter().cloned());
                }
                let mut query = TopicPartitionList::new();
                for (topic, partition) in &fresh {
                    let _ = query.add_partition_offset(topic, *partition, Offset::Offset(ms));
                }
                match base_consumer.offsets_for_times(query, self.timeout) {
                    Ok(found) => {
                        for elem in found.elements() {
                            let offset = match elem.offset() {
                                Offset::Offset(offset) => Offset::Offset(offset),
                                _ => Offset::End,
                            };
                            let _ =
                                tpl.set_partition_offset(elem.topic(), elem.partition(), offset);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "looking up offsets by timestamp failed; starting at the committed offsets");
                    }
                }
            }
        }
        if let Ok(delivered) = self.delivered.lock() {
            let resumed: Vec<((String, i32), i64)> = tpl
                .elements()
                .iter()
                .map(|elem| (elem.topic().to_owned(), elem.partition()))
                .filter(|key| !fresh.contains(key))
                .filter_map(|key| delivered.get(&key).map(|next| (key, *next)))
                .collect();
            for ((topic, partition), next) in resumed {
                let _ = tpl.set_partition_offset(&topic, partition, Offset::Offset(next));
            }
        }
        positioned.extend(fresh);
        if let Ok(mut set) = self.positioned.lock() {
            *set = positioned;
        }
        if let Ok(mut set) = self.assignment.lock() {
            *set = tpl
                .elements()
                .iter()
                .map(|elem| (elem.topic().to_owned(), elem.partition()))
                .collect();
        }
        if let Err(err) = base_consumer.assign(tpl) {
            tracing::warn!(error = %err, "assigning partitions failed");
        }
    }
}

type GroupConsumer = StreamConsumer<StreamContext>;

/// What one stream remembers while it reads: bindings by topic and schema versions by (subject, id),
/// so that a record is decoded without locks or lookups.
#[derive(Default)]
struct StreamState {
    bindings: HashMap<String, Arc<crate::store::TopicRow>>,
    versions: HashMap<(String, u32), i32>,
    /// The binding and schema version of the previous record: most records share both, and then no
    /// map is hashed.
    last: Option<LastRecord>,
}

/// What [`StreamState::last`] remembers.
struct LastRecord {
    binding: Arc<crate::store::TopicRow>,
    schema_id: Option<u32>,
    schema_version: i32,
}

/// Counts a batch's records per topic in the consumed-records metric (once per topic per batch).
fn count_consumed(batch: &[pb::ConsumedRecord]) {
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for record in batch {
        let topic = record.topic.as_ref().map_or("", TopicName::as_str);
        match counts.iter_mut().find(|(name, _)| *name == topic) {
            Some((_, count)) => *count += 1,
            None => counts.push((topic, 1)),
        }
    }
    for (topic, count) in counts {
        metrics::counter!(RECORDS_CONSUMED, "topic" => topic.to_owned()).increment(count);
    }
}

/// A [`DELIVER_SPAN`] span for a batch about to be sent, parented by its first traced record's producer
/// span and linked to the others; a disabled span (no cost) unless the process exports traces.
fn delivery_span(batch: &[pb::ConsumedRecord]) -> tracing::Span {
    let traces = RecordTraces::of_consumed(batch);
    if !traces.is_collecting() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        DELIVER_SPAN,
        topic = batch
            .first()
            .and_then(|record| record.topic.as_ref())
            .map_or("", TopicName::as_str),
        records = batch.len(),
        trace_links = traces.links().len(),
    );
    traces.apply_to(&span);
    span
}

/// One open stream, as a group member that Commit can use.
struct Member {
    id: u64,
    consumer: Arc<GroupConsumer>,
    /// Closed once the client went away: the member is about to leave.
    client: mpsc::Sender<Result<pb::SubscribeResponse, tonic::Status>>,
}

/// The Subscribe side of the gateway.
pub struct Subscriptions {
    kafka: KafkaConfig,
    limits: SubscribeConfig,
    topics: Arc<Topics>,
    registry: Arc<RegistryClient>,
    groups: Mutex<HashMap<String, Vec<Member>>>,
    /// Members per group whose consumer is still leaving the group.
    leaving: Mutex<HashMap<String, usize>>,
    next_id: std::sync::atomic::AtomicU64,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions").finish_non_exhaustive()
    }
}

/// The response stream of one Subscribe call.
pub type SubscribeStream =
    tokio_stream::wrappers::ReceiverStream<Result<pb::SubscribeResponse, tonic::Status>>;

impl Subscriptions {
    /// Streams end when `shutdown` turns true.
    pub fn new(
        kafka: KafkaConfig,
        limits: SubscribeConfig,
        topics: Arc<Topics>,
        registry: Arc<RegistryClient>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            kafka,
            limits,
            topics,
            registry,
            groups: Mutex::new(HashMap::new()),
            leaving: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
            shutdown,
        }
    }

    /// Subscribe: checks the request, joins the group and starts the stream's reader task.
    pub async fn subscribe(
        self: &Arc<Self>,
        request: pb::SubscribeRequest,
    ) -> Result<SubscribeStream, ApiError> {
        let group = request.consumer_group.trim().to_owned();
        if group.is_empty() {
            return Err(ApiError::required(
                "consumer_group",
                "name the consumer group, e.g. `fraud-scorer`",
            ));
        }
        if request.topics.is_empty() {
            return Err(ApiError::required(
                "topics",
                "name at least one topic to read",
            ));
        }
        for topic in &request.topics {
            self.topics.binding(topic).await?;
        }
        let start = match request.start_position() {
            pb::StartPosition::Unspecified | pb::StartPosition::Committed => Start::Committed,
            pb::StartPosition::Earliest => Start::Earliest,
            pb::StartPosition::Latest => Start::Latest,
            pb::StartPosition::Timestamp => {
                let ts = request.start_timestamp.ok_or_else(|| {
                    ApiError::required(
                        "start_timestamp",
                        "START_POSITION_TIMESTAMP needs the earliest Kafka timestamp to deliver",
                    )
                })?;
                Start::Timestamp(ts.seconds * 1000 + i64::from(ts.nanos / 1_000_000))
            }
        };
        let batch_size = match request.max_batch_size {
            0 => self.limits.default_batch_size,
            n if n > self.limits.max_batch_size => {
                return Err(ApiError::invalid_argument(
                    "BATCH_SIZE_TOO_LARGE",
                    format!(
                        "`max_batch_size` {n} is above the gateway's limit of {} (subscribe.max_batch_size)",
                        self.limits.max_batch_size
                    ),
                )
                .with_field("max_batch_size", "too large"));
            }
            n => n,
        } as usize;

        self.wait_for_leavers(&group).await;
        let mut config = consumer_config(&self.kafka, &group)?;
        // A bounded prefetch: with a slow client the consumer stops polling and this is all it holds.
        let prefetch_kb = (self.limits.prefetch_bytes / 1024).max(1);
        config
            .set("queued.max.messages.kbytes", prefetch_kb.to_string())
            // librdkafka requires fetch.max.bytes >= message.max.bytes (1 MB by default).
            .set(
                "fetch.max.bytes",
                self.limits.prefetch_bytes.max(1_048_576).to_string(),
            )
            .set("max.poll.interval.ms", "600000");
        let context = StreamContext {
            start,
            timeout: self.kafka.request_timeout,
            positioned: Mutex::default(),
            assignment: Mutex::default(),
            before_timestamp: Mutex::default(),
            delivered: Mutex::default(),
        };
        let consumer: GroupConsumer = config.create_with_context(context).map_err(|err| {
            ApiError::failed_precondition(
                "KAFKA_CONFIG_INVALID",
                format!("the [kafka] settings are not accepted by librdkafka: {err}"),
            )
        })?;
        let names: Vec<&str> = request.topics.iter().map(TopicName::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|err| kafka_error("subscribing", &err))?;
        let consumer = Arc::new(consumer);
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(self.limits.buffered_batches);
        self.lock_groups()
            .entry(group.clone())
            .or_default()
            .push(Member {
                id,
                consumer: consumer.clone(),
                client: sender.clone(),
            });
        metrics::gauge!(OPEN_STREAMS).increment(1);
        let this = self.clone();
        let max_wait = self.limits.max_wait;
        tokio::spawn(async move {
            let outcome = this
                .read_loop(&consumer, &sender, batch_size, max_wait)
                .await;
            if let Err(error) = outcome {
                let _ = sender.send(Err(error.into())).await;
            }
            this.leave(&group, id, consumer).await;
        });
        Ok(SubscribeStream::new(receiver))
    }

    /// Waits (bounded) until the streams of `group` that ended on this replica have left the group, so a
    /// client that reconnects joins after its old member left: one rebalance instead of two, and brokers
    /// that mishandle a leave during a join (tansu keeps the departed member as leader) are not hit.
    async fn wait_for_leavers(&self, group: &str) {
        let deadline = tokio::time::Instant::now() + LEAVE_WAIT;
        while tokio::time::Instant::now() < deadline {
            let closing = self.lock_groups().get(group).map_or(0, |members| {
                members
                    .iter()
                    .filter(|member| member.client.is_closed())
                    .count()
            });
            let leaving = closing
                + self
                    .leaving
                    .lock()
                    .map(|leaving| leaving.get(group).copied().unwrap_or(0))
                    .unwrap_or(0);
            if leaving == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock_groups(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Member>>> {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads records into batches until the client goes away or the gateway stops. After each record
    /// that had to be waited for, the records librdkafka already holds are taken without waiting, so
    /// the per-record cost is the decode alone.
    async fn read_loop(
        &self,
        consumer: &GroupConsumer,
        sender: &mpsc::Sender<Result<pb::SubscribeResponse, tonic::Status>>,
        batch_size: usize,
        max_wait: Duration,
    ) -> Result<(), ApiError> {
        use futures::FutureExt as _;
        let mut shutdown = self.shutdown.clone();
        let mut state = StreamState::default();
        let mut batch: Vec<pb::ConsumedRecord> = Vec::with_capacity(batch_size);
        let mut deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let flush = tokio::select! {
                _ = async { shutdown.wait_for(|stop| *stop).await.map(|_| ()) } => return Ok(()),
                () = sender.closed() => return Ok(()),
                () = async {
                    match deadline.as_mut() {
                        Some(sleep) => sleep.await,
                        None => std::future::pending().await,
                    }
                } => true,
                message = consumer.recv() => {
                    self.take(consumer, message, &mut state, &mut batch).await?;
                    while batch.len() < batch_size {
                        let Some(message) = consumer.recv().now_or_never() else {
                            break;
                        };
                        self.take(consumer, message, &mut state, &mut batch).await?;
                    }
                    if !batch.is_empty() && deadline.is_none() {
                        deadline = Some(Box::pin(tokio::time::sleep(max_wait)));
                    }
                    batch.len() >= batch_size
                }
            };
            if flush {
                deadline = None;
                if batch.is_empty() {
                    continue;
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                count_consumed(&full);
                consumer.context().remember_delivered(&full);
                let span = delivery_span(&full);
                if sender
                    .send(Ok(pb::SubscribeResponse { records: full }))
                    .instrument(span)
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
    }

    /// Decodes one received record into the batch, unless the start rule skips it.
    async fn take(
        &self,
        consumer: &GroupConsumer,
        message: rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>,
        state: &mut StreamState,
        batch: &mut Vec<pb::ConsumedRecord>,
    ) -> Result<(), ApiError> {
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                // Transient broker trouble: librdkafka reconnects by itself; keep reading.
                tracing::warn!(error = %err, "consumer error");
                return Ok(());
            }
        };
        if consumer.context().deliver(
            message.topic(),
            message.partition(),
            message.timestamp().to_millis(),
        ) {
            batch.push(self.decode(&message, state).await?);
        }
        Ok(())
    }

    /// Decodes one record: strips the wire-format prefix and names the value schema's version.
    async fn decode(
        &self,
        message: &rdkafka::message::BorrowedMessage<'_>,
        state: &mut StreamState,
    ) -> Result<pb::ConsumedRecord, ApiError> {
        let last = state
            .last
            .take()
            .filter(|last| last.binding.name.as_str() == message.topic());
        let binding = match (&last, state.bindings.get(message.topic())) {
            (Some(last), _) => Arc::clone(&last.binding),
            (None, Some(binding)) => binding.clone(),
            (None, None) => {
                let binding = self
                    .topics
                    .binding(&TopicName::new(message.topic()))
                    .await?;
                state
                    .bindings
                    .insert(message.topic().to_owned(), binding.clone());
                binding
            }
        };
        let topic = &binding.name;
        let mut record = pb::ConsumedRecord {
            topic: Some(topic.clone()),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis().map(timestamp),
            ..Default::default()
        };
        record.key = message.key().map(|key| {
            if binding.key_subject.is_some()
                && let Ok((_, payload)) = wire_format::decode(key)
            {
                return payload.to_vec();
            }
            key.to_vec()
        });
        if let Some(payload) = message.payload() {
            let (id, body) = match wire_format::decode(payload) {
                Ok((id, body)) => (Some(SchemaId::new(id)), body),
                // Written by a client that does not frame records: delivered as written, without an id.
                Err(_) => (None, payload),
            };
            let text = std::str::from_utf8(body).map_err(|_| {
                ApiError::failed_precondition(
                    "RECORD_NOT_JSON",
                    format!(
                        "the record at {topic}/{}@{} is not UTF-8 JSON text; it was not written through the gateway or a Confluent JSON serializer. Skip it by committing offset {} for that partition",
                        message.partition(),
                        message.offset(),
                        message.offset() + 1
                    ),
                )
            })?;
            record.value = Some(text.to_owned());
            if let Some(id) = id {
                record.schema_id = Some(id);
                let remembered = last
                    .as_ref()
                    .filter(|last| last.schema_id == Some(id.value))
                    .map(|last| last.schema_version);
                let key = || (binding.value_subject.as_str().to_owned(), id.value);
                record.schema_version =
                    match remembered.or_else(|| state.versions.get(&key()).copied()) {
                        Some(version) => version,
                        None => {
                            let version = self
                                .registry
                                .version_of(&binding.value_subject, id)
                                .await
                                .unwrap_or(None)
                                .unwrap_or(0);
                            if version > 0 {
                                state.versions.insert(key(), version);
                            }
                            version
                        }
                    };
            }
        }
        if let Some(headers) = message.headers() {
            record.headers = headers
                .iter()
                .map(|header| pb::Header {
                    key: header.key.to_owned(),
                    value: header.value.map(<[u8]>::to_vec).unwrap_or_default(),
                })
                .collect();
        }
        if record.schema_version > 0 || record.schema_id.is_none() {
            state.last = Some(LastRecord {
                binding,
                schema_id: record.schema_id.map(|id| id.value),
                schema_version: record.schema_version,
            });
        }
        Ok(record)
    }

    /// Removes a member and closes its consumer off the async runtime (closing leaves the group).
    async fn leave(&self, group: &str, id: u64, consumer: Arc<GroupConsumer>) {
        metrics::gauge!(OPEN_STREAMS).decrement(1);
        {
            let mut groups = self.lock_groups();
            if let Some(members) = groups.get_mut(group) {
                members.retain(|member| member.id != id);
                if members.is_empty() {
                    groups.remove(group);
                }
            }
        }
        if let Ok(mut leaving) = self.leaving.lock() {
            *leaving.entry(group.to_owned()).or_default() += 1;
        }
        let closing = tokio::task::spawn_blocking(move || {
            consumer.unsubscribe();
            drop(consumer);
        });
        if tokio::time::timeout(Duration::from_secs(10), closing)
            .await
            .is_err()
        {
            tracing::warn!(group, "a consumer did not close within 10 s");
        }
        if let Ok(mut leaving) = self.leaving.lock()
            && let Some(count) = leaving.get_mut(group)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                leaving.remove(group);
            }
        }
    }

    /// Commit: commits the offsets as a member of the group open on this replica.
    pub async fn commit(&self, request: pb::CommitRequest) -> Result<pb::CommitResponse, ApiError> {
        let group = request.consumer_group.trim().to_owned();
        if group.is_empty() {
            return Err(ApiError::required(
                "consumer_group",
                "name the consumer group",
            ));
        }
        if request.offsets.is_empty() {
            return Err(ApiError::required("offsets", "list the offsets to commit"));
        }
        let mut tpl = TopicPartitionList::new();
        for (index, offset) in request.offsets.iter().enumerate() {
            let topic = offset
                .topic
                .as_ref()
                .filter(|t| !t.as_str().is_empty())
                .ok_or_else(|| {
                    ApiError::required(&format!("offsets[{index}].topic"), "name the topic")
                })?;
            if offset.partition < 0 || offset.offset < 0 {
                return Err(ApiError::invalid_argument(
                    "INVALID_OFFSET",
                    format!("offsets[{index}]: partition and offset must be >= 0; commit the last processed record's offset + 1"),
                )
                .with_field(format!("offsets[{index}]"), "negative"));
            }
            tpl.add_partition_offset(
                topic.as_str(),
                offset.partition,
                Offset::Offset(offset.offset),
            )
            .map_err(|err| ApiError::invalid_argument("INVALID_OFFSET", err.to_string()))?;
        }
        let consumer = {
            let groups = self.lock_groups();
            groups
                .get(&group)
                .and_then(|members| members.first())
                .map(|member| member.consumer.clone())
        };
        let Some(consumer) = consumer else {
            return Err(ApiError::failed_precondition(
                "NO_OPEN_STREAM",
                format!("no Subscribe stream of group `{group}` is open on this gateway replica; commit while the stream is open, on the same channel (connection) as the stream"),
            )
            .with_metadata("consumer_group", group));
        };
        let timeout = self.kafka.request_timeout;
        let committing =
            tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync));
        let committed = tokio::time::timeout(timeout, committing)
            .await
            .map_err(|_| {
                ApiError::unavailable(
                    "COMMIT_TIMED_OUT",
                    format!(
                        "the Kafka cluster did not confirm the commit within {}; the offsets may or may not be committed: commit again",
                        plinth_runtime::config::duration::format(timeout)
                    ),
                )
            })?
            .map_err(ApiError::internal)?;
        committed.map_err(|err| match err.rdkafka_error_code() {
            Some(
                rdkafka::types::RDKafkaErrorCode::RebalanceInProgress
                | rdkafka::types::RDKafkaErrorCode::IllegalGeneration
                | rdkafka::types::RDKafkaErrorCode::UnknownMemberId,
            ) => ApiError::conflict(
                "GROUP_REBALANCING",
                format!("group `{group}` is rebalancing, so the commit was refused ({err}); the partitions may have moved to another member: keep reading and commit again"),
            ),
            _ => kafka_error("committing offsets", &err),
        })?;
        Ok(pb::CommitResponse {
            offsets: request.offsets,
        })
    }
}
