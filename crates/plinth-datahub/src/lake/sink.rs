//! One lake sink at work: reads its topic and lands the records in its dataset as Parquet files.
//!
//! The offsets come from the lake, not from Kafka: a session lists the dataset's Kafka files, resumes
//! each partition at [`next_offsets`] (the beginning for a partition without files) with a manual
//! `assign`, and never writes a record whose offset is below where its partition stands, so a consumer
//! that rewinds (an offset reset after a broker restart) cannot duplicate anything. Records are buffered
//! per partition and cut into files when a buffer reaches `max_file_rows` or `max_file_bytes` (JSON
//! bytes) or its first record is `max_file_age` old; [`split_into_files`] splits a buffer by event date.
//! While a buffer fills, each quarter file's worth of records (at most [`DECODE_CHUNK_BYTES`]) is decoded
//! into Arrow on a blocking thread; a full buffer is then encoded on a blocking thread while the sink
//! reads on (at most [`MAX_PENDING_FLUSHES`] at a time; a chunk decoded before the dataset's schema
//! evolved is decoded again), and the files are written one at a time in the order the buffers were
//! cut, so each partition's in offset order, each with one atomic put. A crash leaves a
//! prefix of that sequence in the lake, and the next session starts right after it (see
//! `domain::lake_path`). Offsets are also committed to Kafka after each file, only as a hint for tools
//! that show consumer-group lag.
//!
//! Bad records stop the sink (FAILED, with the partition and offset in the error) instead of being
//! skipped, so the lake never silently misses a record: a value that is not in the Confluent wire format,
//! a payload that is not JSON, a schema id the registry does not know, a schema that has no lake schema
//! or cannot evolve the dataset's, a record that does not fit. Records without a value (tombstones) hold
//! no data and are skipped. Everything else (broker, registry or object store unavailable, the lease
//! lost) ends the session; the sink starts a new one after a backoff, from the lake's offsets again.
//!
//! Each file written is one [`WRITE_FILE_SPAN`] span, parented by the trace context (`traceparent`
//! header) of the file's first record that carries one and linked to the other records' contexts, so a
//! trace follows a record from its producer into the lake; only when traces are exported.
//!
//! Memory: at most one file's worth of records per partition (`max_file_rows`/`max_file_bytes`; the text,
//! and the Arrow form of the chunks decoded, which is smaller), plus the [`MAX_PENDING_FLUSHES`] buffers
//! being encoded, plus librdkafka's fetch queue.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::FutureExt as _;
use object_store::{ObjectStoreExt, PutPayload};
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{SchemaId, TopicName};
use plinth_runtime::error::{ApiError, ErrorCode};
use plinth_runtime::telemetry::TracedRecords;
use plinth_schema_registry::client::RegistryClient;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Headers as _;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::config::{KafkaConfig, LakeConfig};
use crate::domain::lake_file::encode_parquet;
use crate::domain::lake_path::{DatasetName, LakeFile, next_offsets, split_into_files};
use crate::domain::lake_schema::derive_lake_schema;
use crate::domain::records::{KafkaMetadata, TextRecords, text_to_record_batch};
use crate::domain::schema_evolution::evolve;
use crate::domain::wire_format;
use crate::kafka::consumer_config;
use crate::lake::dataset::{DatasetFile, Footer, FooterCache, list_files};
use crate::lake::metric_names;
use plinth_runtime::storage::Location;

/// The first pause after a failed session; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between sessions.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A session that ran this long resets the backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);
/// How often buffers are checked against `max_file_age`.
const AGE_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// A file is put only while the lease holds at least this much longer.
const LEASE_SAFETY_MS: i64 = 5_000;
/// The most records taken from librdkafka's queue in a row without checking for a stop or a finished
/// encoding.
const DRAIN_MAX_RECORDS: usize = 1_000;
/// Buffers encoding on blocking threads while the sink reads on; one more waits for the oldest.
const MAX_PENDING_FLUSHES: usize = 2;
/// A partition buffer hands its newest records to a blocking thread to be decoded into Arrow once they
/// hold a quarter of a file's limits (`max_file_rows`, `max_file_bytes`), at most this much JSON text
/// or [`DECODE_CHUNK_ROWS`] records, so decoding runs beside reading instead of all at once when the
/// file is cut.
const DECODE_CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// See [`DECODE_CHUNK_BYTES`].
const DECODE_CHUNK_ROWS: usize = 65_536;
/// How long closing a consumer may take before it is left to finish in the background.
const CONSUMER_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The span of one lake file's write, parented by its first traced record's producer span.
pub(crate) const WRITE_FILE_SPAN: &str = "lake.write_file";

/// The group id of a sink's consumer (used for the offset hint only; partitions are assigned).
pub(crate) fn consumer_group(dataset: &DatasetName) -> String {
    format!("plinth-lake-{dataset}")
}

/// Lake schemas by registry id: ids are immutable, so entries never go stale.
#[derive(Debug, Default)]
pub(crate) struct SchemaCache {
    by_id: Mutex<HashMap<u32, SchemaRef>>,
}

impl SchemaCache {
    /// The lake schema of schema `id`: NOT_FOUND when the registry does not know it, FAILED_PRECONDITION
    /// when it has no lake schema.
    pub(crate) async fn lake_schema(
        &self,
        registry: &RegistryClient,
        id: u32,
    ) -> Result<SchemaRef, ApiError> {
        if let Some(found) = self
            .by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            return Ok(Arc::clone(found));
        }
        let registered = registry.by_id(SchemaId::new(id)).await?;
        let schema = Arc::new(derive_lake_schema(&registered.schema).map_err(|err| {
            ApiError::failed_precondition(
                "NO_LAKE_SCHEMA",
                format!("schema id {id} cannot be stored in the lake: {err}"),
            )
        })?);
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&schema));
        Ok(schema)
    }
}

/// A sink's progress as the API shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SinkProgress {
    /// Per partition, the offset written next.
    pub(crate) next_offsets: BTreeMap<i32, i64>,
    /// The last file written (or found, at start).
    pub(crate) last_file: Option<pb::LakeFile>,
}

/// Everything one sink task needs.
#[derive(Debug, Clone)]
pub(crate) struct SinkTask {
    pub(crate) dataset: DatasetName,
    pub(crate) topic: TopicName,
    pub(crate) location: Location,
    pub(crate) kafka: KafkaConfig,
    pub(crate) config: LakeConfig,
    pub(crate) registry: Arc<RegistryClient>,
    pub(crate) schemas: Arc<SchemaCache>,
    pub(crate) footers: Arc<FooterCache>,
    pub(crate) progress: Arc<Mutex<SinkProgress>>,
    /// Until when this replica's lease holds, in ms since the epoch (renewed by the supervisor).
    pub(crate) lease_until_ms: Arc<AtomicI64>,
}

/// How a sink task ended.
#[derive(Debug)]
pub(crate) enum SinkExit {
    /// Asked to stop; what it had consumed is in the lake.
    Stopped,
    /// An error it does not retry; the message says what and what to do.
    Failed(String),
}

#[derive(Debug)]
enum SessionError {
    /// Stop the sink: FAILED with this message.
    Fatal(String),
    /// Start a new session after a backoff.
    Transient(String),
}

/// The current time in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The proto view of a Kafka file.
pub(crate) fn lake_file_message(
    location: &Location,
    dataset: &DatasetName,
    file: &LakeFile,
    row_count: u64,
    size_bytes: u64,
    write_time_ms: i64,
) -> pb::LakeFile {
    pb::LakeFile {
        url: location.url_of(&file.path(dataset)),
        partition: file.partition(),
        first_offset: file.first_offset(),
        last_offset: file.last_offset(),
        event_date: file.event_date().format("%Y-%m-%d").to_string(),
        row_count,
        size_bytes,
        write_time: Some(timestamp(write_time_ms)),
    }
}

/// A protobuf timestamp of ms since the epoch.
pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// The progress the lake's files record: next offsets and the newest Kafka file (by write time).
pub(crate) fn progress_from_files(
    location: &Location,
    dataset: &DatasetName,
    files: &[DatasetFile],
) -> SinkProgress {
    let kafka_files: Vec<&LakeFile> = files.iter().filter_map(DatasetFile::kafka).collect();
    let last = files
        .iter()
        .filter(|file| file.kafka().is_some())
        .max_by_key(|file| (file.last_modified, file.relative.clone()));
    SinkProgress {
        next_offsets: next_offsets(kafka_files.iter().copied()),
        last_file: last.and_then(|file| {
            let kafka = file.kafka()?;
            Some(lake_file_message(
                location,
                dataset,
                kafka,
                u64::try_from(kafka.last_offset() - kafka.first_offset() + 1).unwrap_or(0),
                file.size,
                file.last_modified.timestamp_millis(),
            ))
        }),
    }
}

impl SinkTask {
    /// Runs sessions until `stop` turns true or an error it does not retry.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) -> SinkExit {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if *stop.borrow() {
                return SinkExit::Stopped;
            }
            let started = Instant::now();
            match self.session(&mut stop).await {
                Ok(()) => return SinkExit::Stopped,
                Err(SessionError::Fatal(message)) => {
                    tracing::error!(dataset = %self.dataset, error = %message, "lake sink failed");
                    return SinkExit::Failed(message);
                }
                Err(SessionError::Transient(message)) => {
                    if started.elapsed() >= HEALTHY_SESSION {
                        backoff = FIRST_BACKOFF;
                    }
                    tracing::warn!(
                        dataset = %self.dataset,
                        error = %message,
                        retry_in_ms = backoff.as_millis(),
                        "lake sink session ended; resuming from the lake's offsets"
                    );
                    metrics::counter!(metric_names::SINK_RETRIES, "dataset" => self.dataset.to_string())
                        .increment(1);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop_requested(&mut stop) => return SinkExit::Stopped,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn session(&self, stop: &mut watch::Receiver<bool>) -> Result<(), SessionError> {
        let files = list_files(&self.location, &self.dataset)
            .await
            .map_err(|err| SessionError::Transient(err.message))?;
        let start = progress_from_files(&self.location, &self.dataset, &files);
        let lake_offsets = start.next_offsets.clone();
        {
            let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
            let last_file = progress.last_file.take().or(start.last_file.clone());
            *progress = SinkProgress {
                next_offsets: start.next_offsets.clone(),
                last_file,
            };
        }
        let consumer = Arc::new(self.consumer()?);
        let assigned = self.assign(&consumer, &lake_offsets).await;
        let result = match assigned {
            Ok(()) => {
                let mut state = SessionState {
                    next_offsets: lake_offsets,
                    buffers: BTreeMap::new(),
                    pending: VecDeque::new(),
                    dataset_schema: None,
                    seen_schema_ids: HashSet::new(),
                };
                self.consume(&consumer, &mut state, stop).await
            }
            Err(err) => Err(err),
        };
        close_consumer(consumer).await;
        result
    }

    fn consumer(&self) -> Result<StreamConsumer, SessionError> {
        let mut config = consumer_config(&self.kafka, &consumer_group(&self.dataset))
            .map_err(|err| SessionError::Transient(err.message))?;
        // A sink reads its partitions in full: keep librdkafka's prefetch queue modest.
        config.set("queued.max.messages.kbytes", "16384");
        config
            .create::<StreamConsumer>()
            .map_err(|err| SessionError::Transient(format!("creating the consumer: {err}")))
    }

    async fn assign(
        &self,
        consumer: &Arc<StreamConsumer>,
        lake_offsets: &BTreeMap<i32, i64>,
    ) -> Result<(), SessionError> {
        let topic = self.topic.as_str().to_owned();
        let timeout = self.kafka.request_timeout;
        let metadata_consumer = Arc::clone(consumer);
        let partitions = tokio::task::spawn_blocking(move || {
            let metadata = metadata_consumer.fetch_metadata(Some(&topic), timeout)?;
            Ok::<_, rdkafka::error::KafkaError>(
                metadata
                    .topics()
                    .iter()
                    .filter(|found| found.name() == topic && found.error().is_none())
                    .flat_map(|found| found.partitions().iter().map(|partition| partition.id()))
                    .collect::<Vec<i32>>(),
            )
        })
        .await
        .map_err(|err| SessionError::Transient(format!("metadata task: {err}")))?
        .map_err(|err| {
            SessionError::Transient(format!(
                "reading the partitions of topic `{}`: {err}",
                self.topic
            ))
        })?;
        if partitions.is_empty() {
            return Err(SessionError::Transient(format!(
                "topic `{}` has no partitions on the broker (yet)",
                self.topic
            )));
        }
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            let offset = lake_offsets
                .get(&partition)
                .map_or(Offset::Beginning, |next| Offset::Offset(*next));
            assignment
                .add_partition_offset(self.topic.as_str(), partition, offset)
                .map_err(|err| SessionError::Transient(format!("assignment: {err}")))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|err| SessionError::Transient(format!("assigning partitions: {err}")))?;
        tracing::info!(dataset = %self.dataset, topic = %self.topic, offsets = ?lake_offsets, "lake sink reading");
        Ok(())
    }

    async fn consume(
        &self,
        consumer: &StreamConsumer,
        state: &mut SessionState,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), SessionError> {
        let mut age_check = tokio::time::interval(AGE_CHECK_INTERVAL);
        age_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut consecutive_errors: u32 = 0;
        let mut pause: Option<Duration> = None;
        loop {
            tokio::select! {
                biased;
                () = stop_requested(stop) => {
                    // Pause, delete or shutdown: land what was consumed, then stop reading.
                    self.flush_all(consumer, state).await?;
                    return Ok(());
                }
                encoded = async {
                    match state.pending.front_mut() {
                        Some(pending) => (&mut pending.encoding).await,
                        None => std::future::pending().await,
                    }
                }, if !state.pending.is_empty() => {
                    if let Some(pending) = state.pending.pop_front() {
                        self.write_pending(consumer, pending, encoded).await?;
                    }
                }
                _ = age_check.tick() => {
                    let max_age = self.config.max_file_age;
                    let due: Vec<i32> = state
                        .buffers
                        .iter()
                        .filter(|(_, buffer)| buffer.started.elapsed() >= max_age)
                        .map(|(partition, _)| *partition)
                        .collect();
                    for partition in due {
                        self.flush(consumer, state, partition).await?;
                    }
                }
                received = consumer.recv() => {
                    // After a record that had to be waited for, the records librdkafka already holds
                    // are taken without going through the select (bounded, so a stop or a pending
                    // file is seen soon).
                    let mut next = Some(received);
                    let mut taken = 0;
                    while let Some(received) = next.take() {
                        match received {
                            Ok(message) => {
                                consecutive_errors = 0;
                                let partition = message.partition();
                                let accepted = self.accept(&message, state).await;
                                drop(message);
                                match accepted {
                                    Ok(true) => self.flush(consumer, state, partition).await?,
                                    Ok(false) => {}
                                    Err(SessionError::Fatal(reason)) => {
                                        // Land the records before the bad one, so the sink stands at
                                        // its offset.
                                        let _ = self.flush_all(consumer, state).await;
                                        return Err(SessionError::Fatal(reason));
                                    }
                                    Err(transient) => return Err(transient),
                                }
                                taken += 1;
                                if taken < DRAIN_MAX_RECORDS {
                                    next = consumer.recv().now_or_never();
                                }
                            }
                            Err(err) => {
                                consecutive_errors = consecutive_errors.saturating_add(1);
                                tracing::warn!(dataset = %self.dataset, error = %err, "lake sink consumer error; librdkafka retries");
                                pause = Some(Duration::from_millis(100 * u64::from(consecutive_errors.min(50))));
                            }
                        }
                    }
                }
            }
            if let Some(pause) = pause.take() {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop_requested(stop) => {}
                }
            }
        }
    }

    /// Buffers one record; `true` when its partition's buffer is full.
    async fn accept(
        &self,
        message: &rdkafka::message::BorrowedMessage<'_>,
        state: &mut SessionState,
    ) -> Result<bool, SessionError> {
        let partition = message.partition();
        let offset = message.offset();
        if let Some(next) = state.next_offsets.get(&partition)
            && offset < *next
        {
            // Already in the lake or in the buffer: a consumer that rewound.
            metrics::counter!(metric_names::RECORDS_SKIPPED_DUPLICATE, "dataset" => self.dataset.to_string()).increment(1);
            return Ok(false);
        }
        if let Some(next) = state.next_offsets.get(&partition)
            && offset > *next
        {
            // Offsets the broker no longer holds (retention, compaction, a broker that lost data): the
            // lake cannot have those records. Say so loudly; the operator decides whether it matters.
            let missing = offset - *next;
            tracing::warn!(dataset = %self.dataset, topic = %self.topic, partition, from = *next, to = offset - 1, "the broker no longer holds {missing} offsets the lake has not landed; they are missing from the dataset");
            metrics::counter!(metric_names::OFFSETS_MISSING, "dataset" => self.dataset.to_string())
                .increment(u64::try_from(missing).unwrap_or(0));
        }
        let Some(payload) = message.payload() else {
            state.next_offsets.insert(partition, offset + 1);
            return Ok(false);
        };
        let at = || {
            format!(
                "partition {partition} offset {offset} of topic `{}`",
                self.topic
            )
        };
        let (schema_id, json) = wire_format::decode(payload).map_err(|err| {
            SessionError::Fatal(format!(
                "the record at {} is not in the Confluent wire format: {err}; the lake sink stops rather than skip it: write only framed records to the topic (through the gateway or a Confluent JSON Schema serializer), then resume the sink",
                at()
            ))
        })?;
        // Checked here, so that the record is named; it is parsed into Arrow when its file is written.
        serde_json::from_slice::<serde::de::IgnoredAny>(json).map_err(|err| {
            SessionError::Fatal(format!(
                "the value of the record at {} is not JSON ({err}); the lake sink stops rather than skip it: write only JSON values to the topic, then resume the sink",
                at()
            ))
        })?;
        if !state.seen_schema_ids.contains(&schema_id) {
            let lake_schema = self
                .schemas
                .lake_schema(&self.registry, schema_id)
                .await
                .map_err(|err| match err.code {
                    ErrorCode::NotFound | ErrorCode::FailedPrecondition => {
                        SessionError::Fatal(format!(
                            "the record at {} has schema id {schema_id}: {}",
                            at(),
                            err.message
                        ))
                    }
                    _ => SessionError::Transient(err.message),
                })?;
            let evolved = match &state.dataset_schema {
                None => lake_schema,
                Some(current) => Arc::new(evolve(current, &lake_schema).map_err(|err| {
                    SessionError::Fatal(format!(
                        "schema id {schema_id} of the record at {} cannot evolve the dataset's schema: {err}",
                        at()
                    ))
                })?),
            };
            state.dataset_schema = Some(evolved);
            state.seen_schema_ids.insert(schema_id);
        }
        let timestamp_ms = message.timestamp().to_millis().unwrap_or_else(now_ms);
        let buffer = state
            .buffers
            .entry(partition)
            .or_insert_with(PartitionBuffer::new);
        if buffer.traces.is_collecting()
            && let Some(headers) = message.headers()
        {
            buffer.traces.push(
                buffer.len(),
                headers
                    .iter()
                    .map(|header| (header.key, header.value.unwrap_or_default())),
            );
        }
        buffer.records.push(
            json,
            KafkaMetadata {
                partition,
                offset,
                timestamp_ms,
                schema_id: i32::try_from(schema_id).unwrap_or(i32::MAX),
            },
        );
        state.next_offsets.insert(partition, offset + 1);
        let full = buffer.len() >= self.config.max_file_rows
            || buffer.json_bytes() >= self.config.max_file_bytes;
        if !full
            && (buffer.records.json_bytes()
                >= (self.config.max_file_bytes / 4).clamp(1, DECODE_CHUNK_BYTES)
                || buffer.records.len()
                    >= (self.config.max_file_rows / 4).clamp(1, DECODE_CHUNK_ROWS))
            && let Some(schema) = &state.dataset_schema
        {
            buffer.decode_newest(schema);
        }
        Ok(full)
    }

    /// Hands a partition's buffer to a blocking thread to be encoded while the sink reads on; the
    /// files are written in the order buffers were handed off (so each partition's in offset order).
    /// With more than [`MAX_PENDING_FLUSHES`] buffers encoding, waits for the oldest and writes it.
    async fn flush(
        &self,
        consumer: &StreamConsumer,
        state: &mut SessionState,
        partition: i32,
    ) -> Result<(), SessionError> {
        let Some(buffer) = state.buffers.remove(&partition) else {
            return Ok(());
        };
        let Some(schema) = state.dataset_schema.clone() else {
            return Ok(());
        };
        if buffer.len() == 0 {
            return Ok(());
        }
        let PartitionBuffer {
            decoding,
            records,
            traces,
            ..
        } = buffer;
        state.pending.push_back(PendingFlush {
            partition,
            traces,
            encoding: tokio::spawn(async move {
                let mut chunks = Vec::with_capacity(decoding.len() + 1);
                for chunk in decoding {
                    let decoded = chunk
                        .await
                        .map_err(|err| SessionError::Transient(format!("decoding task: {err}")))?;
                    chunks.push(decoded);
                }
                chunks.push(DecodedChunk {
                    records,
                    schema: None,
                    batch: None,
                });
                tokio::task::spawn_blocking(move || encode_files(&schema, chunks))
                    .await
                    .map_err(|err| SessionError::Transient(format!("encoding task: {err}")))?
            }),
        });
        while state.pending.len() > MAX_PENDING_FLUSHES {
            self.write_oldest(consumer, state).await?;
        }
        Ok(())
    }

    /// Flushes every buffer and writes every pending flush.
    async fn flush_all(
        &self,
        consumer: &StreamConsumer,
        state: &mut SessionState,
    ) -> Result<(), SessionError> {
        let partitions: Vec<i32> = state.buffers.keys().copied().collect();
        for partition in partitions {
            self.flush(consumer, state, partition).await?;
        }
        while !state.pending.is_empty() {
            self.write_oldest(consumer, state).await?;
        }
        Ok(())
    }

    /// Waits for the oldest pending flush's encoding and writes its files.
    async fn write_oldest(
        &self,
        consumer: &StreamConsumer,
        state: &mut SessionState,
    ) -> Result<(), SessionError> {
        let Some(mut pending) = state.pending.pop_front() else {
            return Ok(());
        };
        let encoded = (&mut pending.encoding).await;
        self.write_pending(consumer, pending, encoded).await
    }

    /// Writes the files of a pending flush whose encoding has finished with `encoded`.
    async fn write_pending(
        &self,
        consumer: &StreamConsumer,
        pending: PendingFlush,
        encoded: Result<Result<Vec<EncodedFile>, SessionError>, tokio::task::JoinError>,
    ) -> Result<(), SessionError> {
        let encoded =
            encoded.map_err(|err| SessionError::Transient(format!("encoding task: {err}")))??;
        self.write_files(consumer, pending.partition, &pending.traces, encoded)
            .await
    }

    /// Writes a partition's encoded files, one at a time in offset order, then commits the offset hint.
    async fn write_files(
        &self,
        consumer: &StreamConsumer,
        partition: i32,
        traces: &TracedRecords,
        encoded: Vec<EncodedFile>,
    ) -> Result<(), SessionError> {
        let mut next = None;
        for encoded_file in encoded {
            if now_ms() + LEASE_SAFETY_MS >= self.lease_until_ms.load(Ordering::Acquire) {
                return Err(SessionError::Transient(
                    "the sink's lease is about to expire; not writing until it is renewed"
                        .to_owned(),
                ));
            }
            let relative = encoded_file.file.path(&self.dataset);
            let size = u64::try_from(encoded_file.bytes.len()).unwrap_or(u64::MAX);
            let url = self.location.url_of(&relative);
            let span = if traces.is_collecting() {
                let file_traces = traces.batch(encoded_file.range.clone());
                let span = tracing::info_span!(
                    WRITE_FILE_SPAN,
                    dataset = %self.dataset,
                    topic = %self.topic,
                    partition,
                    first_offset = encoded_file.file.first_offset(),
                    last_offset = encoded_file.file.last_offset(),
                    rows = encoded_file.row_count,
                    bytes = size,
                    trace_links = file_traces.links().len(),
                );
                file_traces.apply_to(&span);
                span
            } else {
                // Traces are not exported: no span, nothing paid.
                tracing::Span::none()
            };
            self.location
                .store
                .put(
                    &self.location.path(&relative),
                    PutPayload::from(encoded_file.bytes),
                )
                .instrument(span)
                .await
                .map_err(|err| SessionError::Transient(format!("writing `{url}`: {err}")))?;
            let dataset = self.dataset.to_string();
            metrics::counter!(metric_names::FILES_WRITTEN, "dataset" => dataset.clone())
                .increment(1);
            metrics::counter!(metric_names::RECORDS_WRITTEN, "dataset" => dataset.clone())
                .increment(encoded_file.row_count);
            metrics::counter!(metric_names::BYTES_WRITTEN, "dataset" => dataset).increment(size);
            self.footers.insert(
                url,
                size,
                Footer {
                    schema: Arc::clone(&encoded_file.schema),
                    row_count: encoded_file.row_count,
                },
            );
            let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
            next = Some(encoded_file.file.last_offset() + 1);
            progress
                .next_offsets
                .insert(partition, encoded_file.file.last_offset() + 1);
            progress.last_file = Some(lake_file_message(
                &self.location,
                &self.dataset,
                &encoded_file.file,
                encoded_file.row_count,
                size,
                now_ms(),
            ));
        }
        self.commit_hint(consumer, partition, next);
        Ok(())
    }

    /// Commits the partition's position to Kafka for lag tools; the lake's names stay the truth.
    fn commit_hint(&self, consumer: &StreamConsumer, partition: i32, next: Option<i64>) {
        let Some(next) = next else {
            return;
        };
        let mut offsets = TopicPartitionList::new();
        if offsets
            .add_partition_offset(self.topic.as_str(), partition, Offset::Offset(next))
            .is_ok()
            && let Err(err) = consumer.commit(&offsets, CommitMode::Async)
        {
            tracing::debug!(dataset = %self.dataset, error = %err, "offset hint not committed");
        }
    }
}

/// One partition's records on their way to a file: the older ones in chunks being decoded into Arrow
/// on blocking threads, the newest as text.
struct PartitionBuffer {
    /// Chunks handed off to be decoded, oldest first.
    decoding: Vec<tokio::task::JoinHandle<DecodedChunk>>,
    /// The records after the chunks.
    records: TextRecords,
    /// Records and JSON bytes in `decoding`.
    decoding_rows: usize,
    decoding_bytes: usize,
    started: Instant,
    /// The records' trace contexts by position in the buffer (chunks, then `records`).
    traces: TracedRecords,
}

impl PartitionBuffer {
    fn new() -> Self {
        Self {
            decoding: Vec::new(),
            records: TextRecords::new(),
            decoding_rows: 0,
            decoding_bytes: 0,
            started: Instant::now(),
            traces: TracedRecords::new(),
        }
    }

    /// The number of records buffered.
    fn len(&self) -> usize {
        self.decoding_rows + self.records.len()
    }

    /// The JSON bytes buffered.
    fn json_bytes(&self) -> usize {
        self.decoding_bytes + self.records.json_bytes()
    }

    /// Hands the text records to a blocking thread that decodes them with `schema`.
    fn decode_newest(&mut self, schema: &SchemaRef) {
        let records = std::mem::take(&mut self.records);
        self.decoding_rows += records.len();
        self.decoding_bytes += records.json_bytes();
        let schema = Arc::clone(schema);
        self.decoding.push(tokio::task::spawn_blocking(move || {
            let batch = text_to_record_batch(&schema, &records, 0..records.len());
            DecodedChunk {
                records,
                schema: Some(schema),
                batch: batch.ok(),
            }
        }));
    }
}

/// A chunk of a partition buffer with its Arrow batch, when decoding it succeeded.
struct DecodedChunk {
    /// The chunk's records, kept to decode them again when the dataset's schema evolved after the
    /// chunk was decoded, or to name the record that does not fit.
    records: TextRecords,
    /// The schema `batch` was decoded with.
    schema: Option<SchemaRef>,
    batch: Option<RecordBatch>,
}

/// A partition's buffer handed to a blocking thread to be encoded.
struct PendingFlush {
    partition: i32,
    /// The records' trace contexts by position in the buffer.
    traces: TracedRecords,
    encoding: tokio::task::JoinHandle<Result<Vec<EncodedFile>, SessionError>>,
}

struct SessionState {
    /// Per partition, the first offset not yet in the lake, a buffer or a pending flush.
    next_offsets: BTreeMap<i32, i64>,
    buffers: BTreeMap<i32, PartitionBuffer>,
    /// Buffers being encoded, oldest first: written in this order.
    pending: VecDeque<PendingFlush>,
    dataset_schema: Option<SchemaRef>,
    seen_schema_ids: HashSet<u32>,
}

struct EncodedFile {
    file: LakeFile,
    /// The positions of the file's records in the partition buffer.
    range: Range<usize>,
    bytes: Vec<u8>,
    row_count: u64,
    schema: SchemaRef,
}

/// Encodes a partition buffer's chunks, in order, as its files: a chunk decoded with another schema than
/// `schema` (the dataset's evolved since) or not decoded is decoded again, from its text, with `schema`.
fn encode_files(
    schema: &SchemaRef,
    chunks: Vec<DecodedChunk>,
) -> Result<Vec<EncodedFile>, SessionError> {
    let mut batches = Vec::with_capacity(chunks.len());
    let mut metadata: Vec<KafkaMetadata> = Vec::new();
    for chunk in chunks {
        if chunk.records.is_empty() {
            continue;
        }
        let batch = match (chunk.batch, chunk.schema) {
            (Some(batch), Some(decoded_with)) if decoded_with == *schema => batch,
            _ => text_to_record_batch(schema, &chunk.records, 0..chunk.records.len())
                .map_err(|err| SessionError::Fatal(err.to_string()))?,
        };
        metadata.extend_from_slice(chunk.records.metadata());
        batches.push(batch);
    }
    let files = split_into_files(&metadata).map_err(|err| SessionError::Fatal(err.to_string()))?;
    let mut encoded = Vec::with_capacity(files.len());
    for (file, range) in files {
        let row_count = u64::try_from(range.len()).unwrap_or(u64::MAX);
        let bytes = encode_parquet(schema, &slices(&batches, range.clone()))
            .map_err(|err| SessionError::Fatal(err.to_string()))?;
        encoded.push(EncodedFile {
            file,
            range,
            bytes,
            row_count,
            schema: Arc::clone(schema),
        });
    }
    Ok(encoded)
}

/// The rows `range` of `batches` taken as one sequence, as slices of the batches they fall in.
fn slices(batches: &[RecordBatch], range: Range<usize>) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut start = 0;
    for batch in batches {
        let end = start + batch.num_rows();
        let from = range.start.max(start);
        let to = range.end.min(end);
        if from < to {
            out.push(batch.slice(from - start, to - from));
        }
        start = end;
    }
    out
}

/// Closes a consumer off the async threads, bounded: librdkafka's close can block (see
/// shared/recipes/kafka.md); one that hangs is left to finish on its blocking thread.
async fn close_consumer(consumer: Arc<StreamConsumer>) {
    let closing = tokio::task::spawn_blocking(move || {
        let _ = consumer.unassign();
        drop(consumer);
    });
    if tokio::time::timeout(CONSUMER_CLOSE_TIMEOUT, closing)
        .await
        .is_err()
    {
        tracing::warn!("a lake sink consumer did not close in time; it finishes in the background");
    }
}

/// Resolves once the sink is asked to stop (or its owner is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not across the caller's awaits.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

#[cfg(test)]
mod tests;
