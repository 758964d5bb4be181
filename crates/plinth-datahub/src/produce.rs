//! Validated produce: every record is checked against its topic's subject with the registry client's
//! cached validators, framed in the Confluent wire format, and written by one idempotent `acks=all`
//! producer. A call answers only after the broker acknowledged every record it wrote.
//!
//! The hot path is per record: validate the text in place, frame it into one reused buffer (librdkafka
//! copies the payload when it enqueues it), and count its acknowledgement into the batch's
//! `BatchAcks`; the task waiting for a batch is woken once, when the last record is acknowledged,
//! not once per record.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{SchemaId, TopicName};
use plinth_runtime::error::ApiError;
use plinth_schema_registry::client::{RegistryClient, SubjectSchema};
use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use tokio::sync::Notify;

use crate::config::{KafkaConfig, ProduceConfig};
use crate::domain::wire_format;
use crate::kafka::{kafka_error, producer_config};
use crate::store::TopicRow;
use crate::topics::Topics;

/// Records the broker acknowledged (counter, label `topic`).
pub const RECORDS_PRODUCED: &str = "plinth_datahub_records_produced_total";
/// Records not written (counter, labels `topic` and `kind`: the `RecordErrorKind`).
pub const RECORDS_REJECTED: &str = "plinth_datahub_records_rejected_total";

/// The most errors a ProduceStream summary lists.
const MAX_STREAM_ERRORS: usize = 1000;
/// Records a ProduceStream may have in flight before it waits for the oldest batch's acknowledgements.
const MAX_STREAM_IN_FLIGHT: usize = 200_000;

/// The produce side of the gateway.
pub struct Producer {
    producer: ThreadedProducer<AckContext>,
    topics: Arc<Topics>,
    registry: Arc<RegistryClient>,
    limits: ProduceConfig,
    timeout: Duration,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

/// The producer's librdkafka context: each delivery report lands in its batch's [`BatchAcks`].
struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((err, _)) => Err(err.clone()),
        };
        pending.batch.record(pending.index, outcome);
    }
}

/// What librdkafka hands back with a delivery report: the record's batch and its index there.
struct Pending {
    batch: Arc<BatchAcks>,
    index: u32,
}

/// The acknowledgements of one batch, filled by delivery reports on librdkafka's polling thread. Lock
/// free on the per-record path: a count, and each record's partition and offset in its own slots.
struct BatchAcks {
    /// Records enqueued and not yet reported, plus one while the batch is still being enqueued, so
    /// the count cannot reach zero before the last record is handed over.
    outstanding: AtomicUsize,
    /// Partition by record index; [`NOT_ACKED`] until acknowledged.
    partitions: Vec<AtomicI32>,
    /// Offset by record index, valid where the partition is.
    offsets: Vec<AtomicI64>,
    written: AtomicUsize,
    failure: Mutex<Option<KafkaError>>,
    settled: Notify,
}

/// The partition slot of a record not (yet) acknowledged.
const NOT_ACKED: i32 = -1;

/// A batch's acknowledgements once every report is in.
struct Settled {
    /// Partition and offset by record index; `None` where the record was not written.
    acks: Vec<Option<(i32, i64)>>,
    written: usize,
    failure: Option<KafkaError>,
}

impl BatchAcks {
    fn new(count: usize) -> Arc<Self> {
        Arc::new(Self {
            outstanding: AtomicUsize::new(1),
            partitions: (0..count).map(|_| AtomicI32::new(NOT_ACKED)).collect(),
            offsets: (0..count).map(|_| AtomicI64::new(0)).collect(),
            written: AtomicUsize::new(0),
            failure: Mutex::new(None),
            settled: Notify::new(),
        })
    }

    /// Counts one more record handed to librdkafka (before the hand-over, so a fast report finds it).
    fn enqueue(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes back a record librdkafka refused to enqueue: no report will come for it.
    fn refused(&self) {
        self.settle_one();
    }

    /// Every record is handed over: drops the hand-over's own count.
    fn enqueued_all(&self) {
        self.settle_one();
    }

    fn record(&self, index: u32, outcome: Result<(i32, i64), KafkaError>) {
        match outcome {
            Ok((partition, offset)) => {
                if let (Some(partition_slot), Some(offset_slot)) = (
                    self.partitions.get(index as usize),
                    self.offsets.get(index as usize),
                ) {
                    offset_slot.store(offset, Ordering::Relaxed);
                    partition_slot.store(partition, Ordering::Relaxed);
                }
                self.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
            }
        }
        self.settle_one();
    }

    fn settle_one(&self) {
        // Release: the slots written before this count are visible to whoever sees it reach zero.
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            // `notify_one` keeps a permit when nobody waits yet, so the wake-up is never lost.
            self.settled.notify_one();
        }
    }

    /// Waits until every enqueued record has its delivery report, then takes the outcome.
    async fn wait(&self) -> Settled {
        while self.outstanding.load(Ordering::Acquire) > 0 {
            self.settled.notified().await;
        }
        let acks = self
            .partitions
            .iter()
            .zip(&self.offsets)
            .map(|(partition, offset)| {
                let partition = partition.load(Ordering::Relaxed);
                (partition != NOT_ACKED).then(|| (partition, offset.load(Ordering::Relaxed)))
            })
            .collect();
        Settled {
            acks,
            written: self.written.load(Ordering::Relaxed),
            failure: self
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        }
    }
}

/// A batch validated: its records, which of them to write, and the errors of the others.
struct Checked {
    topic: TopicName,
    schema_id: SchemaId,
    /// The schema id framing record keys, when the topic validates keys.
    key_schema_id: Option<u32>,
    records: Vec<pb::ProduceRecord>,
    /// Indices into `records` of the records to write, in order.
    accepted: Vec<u32>,
    errors: Vec<pb::RecordError>,
    /// Trace context headers added to records that carry no `traceparent` of their own.
    trace: Vec<(String, String)>,
    rejected_whole: bool,
}

/// A batch whose records are handed to the producer; waiting on `acks` yields the acknowledgements.
struct InFlight {
    checked_errors: Vec<pb::RecordError>,
    count: usize,
    enqueued: usize,
    rejected_whole: bool,
    schema_id: SchemaId,
    topic: TopicName,
    acks: Arc<BatchAcks>,
}

fn violation(
    instance_path: &str,
    schema_path: &str,
    message: impl Into<String>,
) -> pb::RecordViolation {
    pb::RecordViolation {
        instance_path: instance_path.to_owned(),
        schema_path: schema_path.to_owned(),
        message: message.into(),
    }
}

fn record_error(
    index: usize,
    kind: pb::RecordErrorKind,
    violations: Vec<pb::RecordViolation>,
) -> pb::RecordError {
    pb::RecordError {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        kind: kind.into(),
        violations,
    }
}

/// Parses `text` as JSON and validates it; the error kind names key or value.
fn check_json(
    text: &str,
    schema: &SubjectSchema,
    invalid_json: pb::RecordErrorKind,
    violation_kind: pb::RecordErrorKind,
) -> Result<(), (pb::RecordErrorKind, Vec<pb::RecordViolation>)> {
    // The fast path validates the text without building a `Value`; only an invalid or malformed record
    // is parsed again, to say precisely what is wrong.
    if let Ok(true) = schema.schema.validator.is_valid_text(text) {
        return Ok(());
    }
    let document: serde_json::Value = serde_json::from_str(text).map_err(|err| {
        (
            invalid_json,
            vec![violation(
                "",
                "",
                format!(
                    "not JSON text: {err} (line {}, column {})",
                    err.line(),
                    err.column()
                ),
            )],
        )
    })?;
    let errors = schema.schema.validator.validate(&document);
    if errors.is_empty() {
        return Ok(());
    }
    Err((
        violation_kind,
        errors
            .into_iter()
            .map(|err| violation(&err.instance_path, &err.schema_path, err.message))
            .collect(),
    ))
}

/// The Kafka headers of `record`: its own, plus the trace context unless it carries a `traceparent`;
/// `None` when there are none, so a record without headers costs no allocation.
fn record_headers(record: &pb::ProduceRecord, trace: &[(String, String)]) -> Option<OwnedHeaders> {
    let own_trace = record.headers.iter().any(|h| h.key == "traceparent");
    let extra: &[(String, String)] = if own_trace { &[] } else { trace };
    if record.headers.is_empty() && extra.is_empty() {
        return None;
    }
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + extra.len());
    for header in &record.headers {
        headers = headers.insert(Header {
            key: &header.key,
            value: Some(&header.value),
        });
    }
    for (key, value) in extra {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    Some(headers)
}

impl Producer {
    /// Creates the idempotent producer; it connects on first use.
    pub fn new(
        kafka: &KafkaConfig,
        limits: ProduceConfig,
        topics: Arc<Topics>,
        registry: Arc<RegistryClient>,
    ) -> Result<Self, ApiError> {
        let producer =
            ThreadedProducer::from_config_and_context(&producer_config(kafka)?, AckContext)
                .map_err(|err| {
                    ApiError::failed_precondition(
                        "KAFKA_CONFIG_INVALID",
                        format!("the [kafka] settings are not accepted by librdkafka: {err}"),
                    )
                })?;
        Ok(Self {
            producer,
            topics,
            registry,
            limits,
            timeout: kafka.request_timeout,
        })
    }

    /// Produce: validates the batch, writes the valid records (all or, with `accept_partial`, those that
    /// passed) and answers with one result per record after the broker acknowledged them.
    pub async fn produce(&self, batch: pb::ProduceBatch) -> Result<pb::ProduceResponse, ApiError> {
        let checked = self.check(batch).await?;
        let in_flight = self.send(checked).await?;
        let (results, written) = self.settle(in_flight).await?;
        Ok(pb::ProduceResponse {
            results,
            written_count: u32::try_from(written).unwrap_or(u32::MAX),
        })
    }

    /// ProduceStream: each batch with Produce's rules; batches are written without waiting for the
    /// previous one's acknowledgements, and the summary comes after all of them.
    pub async fn produce_stream(
        &self,
        mut batches: impl futures::Stream<Item = Result<pb::ProduceStreamRequest, tonic::Status>>
        + Unpin,
    ) -> Result<pb::ProduceStreamResponse, ApiError> {
        use futures::StreamExt as _;
        let mut summary = pb::ProduceStreamResponse::default();
        let mut ranges: BTreeMap<(TopicName, i32), (i64, i64)> = BTreeMap::new();
        let mut pending: VecDeque<(u32, InFlight)> = VecDeque::new();
        let mut pending_records = 0usize;
        let mut batch_index: u32 = 0;
        while let Some(message) = batches.next().await {
            let message = message.map_err(|status| ApiError::from_status(&status))?;
            let batch = message
                .batch
                .ok_or_else(|| ApiError::required("batch", "send one batch per stream message"))?;
            summary.batch_count += 1;
            let index = batch_index;
            batch_index = batch_index.saturating_add(1);
            let checked = self.check(batch).await?;
            let in_flight = self.send(checked).await?;
            pending_records += in_flight.enqueued;
            pending.push_back((index, in_flight));
            while pending_records > MAX_STREAM_IN_FLIGHT
                && let Some((index, oldest)) = pending.pop_front()
            {
                pending_records -= oldest.enqueued;
                self.settle_into(index, oldest, &mut summary, &mut ranges)
                    .await?;
            }
        }
        while let Some((index, oldest)) = pending.pop_front() {
            self.settle_into(index, oldest, &mut summary, &mut ranges)
                .await?;
        }
        summary.written = ranges
            .into_iter()
            .map(|((topic, partition), (first, last))| pb::WrittenRange {
                topic: Some(topic),
                partition,
                first_offset: first,
                last_offset: last,
            })
            .collect();
        Ok(summary)
    }

    async fn settle_into(
        &self,
        batch_index: u32,
        in_flight: InFlight,
        summary: &mut pb::ProduceStreamResponse,
        ranges: &mut BTreeMap<(TopicName, i32), (i64, i64)>,
    ) -> Result<(), ApiError> {
        let topic = in_flight.topic.clone();
        let rejected_whole = in_flight.rejected_whole;
        let (results, written) = self.settle(in_flight).await?;
        // The batch's offset range per partition (a topic has few), merged into `ranges` once each.
        let mut batch_ranges: Vec<(i32, i64, i64)> = Vec::new();
        for result in results {
            match result.outcome {
                Some(pb::record_result::Outcome::Ack(ack)) => {
                    match batch_ranges
                        .iter_mut()
                        .find(|(partition, _, _)| *partition == ack.partition)
                    {
                        Some((_, first, last)) => {
                            *first = (*first).min(ack.offset);
                            *last = (*last).max(ack.offset);
                        }
                        None => batch_ranges.push((ack.partition, ack.offset, ack.offset)),
                    }
                }
                Some(pb::record_result::Outcome::Error(error)) => {
                    summary.rejected_count += 1;
                    if error.kind() == pb::RecordErrorKind::BatchRejected {
                        continue;
                    }
                    if summary.errors.len() < MAX_STREAM_ERRORS {
                        summary.errors.push(pb::BatchRecordError {
                            batch_index,
                            error: Some(error),
                        });
                    } else {
                        summary.errors_truncated = true;
                    }
                }
                None => {}
            }
        }
        for (partition, first, last) in batch_ranges {
            let range = ranges
                .entry((topic.clone(), partition))
                .or_insert((first, last));
            range.0 = range.0.min(first);
            range.1 = range.1.max(last);
        }
        if rejected_whole {
            summary.rejected_batches.push(batch_index);
        }
        summary.written_count += written as u64;
        Ok(())
    }

    /// Looks up the binding and schemas and validates every record.
    async fn check(&self, batch: pb::ProduceBatch) -> Result<Checked, ApiError> {
        let topic = batch
            .topic
            .clone()
            .filter(|topic| !topic.as_str().is_empty())
            .ok_or_else(|| ApiError::required("batch.topic", "name the topic to write to"))?;
        if batch.records.is_empty() {
            return Err(ApiError::required(
                "batch.records",
                "send at least one record in a batch",
            ));
        }
        if batch.records.len() > self.limits.max_batch_records {
            return Err(ApiError::resource_exhausted(
                "BATCH_TOO_LARGE",
                format!(
                    "the batch holds {} records, more than the gateway's limit of {} (produce.max_batch_records); split it",
                    batch.records.len(),
                    self.limits.max_batch_records
                ),
            )
            .with_field("batch.records", "too many records"));
        }
        let binding = self.topics.binding(&topic).await?;
        let value_schema = self
            .registry
            .resolve(&binding.value_subject, binding.value_version)
            .await?;
        let key_schema = match &binding.key_subject {
            Some(subject) => Some(self.registry.resolve(subject, binding.key_version).await?),
            None => None,
        };
        let trace =
            plinth_runtime::telemetry::context_pairs(&plinth_runtime::telemetry::current_context());
        let mut accepted = Vec::with_capacity(batch.records.len());
        let mut errors = Vec::new();
        for (index, record) in batch.records.iter().enumerate() {
            match self.check_record(index, record, &binding, &value_schema, key_schema.as_ref()) {
                Ok(()) => accepted.push(u32::try_from(index).unwrap_or(u32::MAX)),
                Err(error) => errors.push(error),
            }
        }
        let rejected_whole = !errors.is_empty() && !batch.accept_partial;
        if rejected_whole {
            for index in accepted.drain(..) {
                errors.push(record_error(
                    index as usize,
                    pb::RecordErrorKind::BatchRejected,
                    Vec::new(),
                ));
            }
        }
        Ok(Checked {
            topic,
            schema_id: value_schema.schema.id,
            key_schema_id: key_schema.map(|schema| schema.schema.id.value),
            records: batch.records,
            accepted,
            errors,
            trace,
            rejected_whole,
        })
    }

    /// Checks one record's size, partition, value and key; the record is framed later, when sent.
    fn check_record(
        &self,
        index: usize,
        record: &pb::ProduceRecord,
        binding: &TopicRow,
        value_schema: &SubjectSchema,
        key_schema: Option<&SubjectSchema>,
    ) -> Result<(), pb::RecordError> {
        let size = record.value.len()
            + record.key.as_ref().map_or(0, Vec::len)
            + record
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.len())
                .sum::<usize>();
        if size > self.limits.max_record_bytes {
            return Err(record_error(
                index,
                pb::RecordErrorKind::TooLarge,
                vec![violation(
                    "",
                    "",
                    format!(
                        "the record is {size} bytes, more than the gateway's limit of {} bytes (produce.max_record_bytes)",
                        self.limits.max_record_bytes
                    ),
                )],
            ));
        }
        if let Some(partition) = record.partition
            && (partition < 0 || partition >= binding.partition_count)
        {
            return Err(record_error(
                index,
                pb::RecordErrorKind::UnknownPartition,
                vec![violation(
                    "",
                    "",
                    format!(
                        "partition {partition} does not exist; topic `{}` has partitions 0 to {}",
                        binding.name,
                        binding.partition_count - 1
                    ),
                )],
            ));
        }
        check_json(
            &record.value,
            value_schema,
            pb::RecordErrorKind::InvalidValueJson,
            pb::RecordErrorKind::ValueSchemaViolation,
        )
        .map_err(|(kind, violations)| record_error(index, kind, violations))?;
        match (key_schema, &record.key) {
            (Some(schema), Some(key)) => {
                let text = std::str::from_utf8(key).map_err(|_| {
                    record_error(
                        index,
                        pb::RecordErrorKind::InvalidKeyJson,
                        vec![violation("", "", "the key is not UTF-8 JSON text")],
                    )
                })?;
                check_json(
                    text,
                    schema,
                    pb::RecordErrorKind::InvalidKeyJson,
                    pb::RecordErrorKind::KeySchemaViolation,
                )
                .map_err(|(kind, violations)| record_error(index, kind, violations))?;
                Ok(())
            }
            (Some(_), None) => Err(record_error(
                index,
                pb::RecordErrorKind::InvalidKeyJson,
                vec![violation(
                    "",
                    "",
                    format!(
                        "topic `{}` validates keys against subject `{}`; give the record a JSON key",
                        binding.name,
                        binding
                            .key_subject
                            .as_ref()
                            .map(|s| s.as_str())
                            .unwrap_or_default()
                    ),
                )],
            )),
            (None, _) => Ok(()),
        }
    }

    /// Frames every accepted record and hands it to the producer, waiting for queue space when it is
    /// full. librdkafka copies payload, key and headers when it enqueues a record, so one framing buffer
    /// serves the whole batch.
    async fn send(&self, checked: Checked) -> Result<InFlight, ApiError> {
        let acks = BatchAcks::new(checked.records.len());
        let sent = self.send_records(&checked, &acks).await;
        // Whatever happened, the hand-over is over: the reports of the enqueued records settle the batch.
        acks.enqueued_all();
        let enqueued = sent?;
        Ok(InFlight {
            checked_errors: checked.errors,
            count: checked.records.len(),
            enqueued,
            rejected_whole: checked.rejected_whole,
            schema_id: checked.schema_id,
            topic: checked.topic,
            acks,
        })
    }

    async fn send_records(
        &self,
        checked: &Checked,
        acks: &Arc<BatchAcks>,
    ) -> Result<usize, ApiError> {
        let topic = checked.topic.as_str();
        let mut value = Vec::new();
        let mut framed_key = Vec::new();
        let mut enqueued = 0usize;
        for &index in &checked.accepted {
            let Some(record) = checked.records.get(index as usize) else {
                continue;
            };
            value.clear();
            wire_format::encode_into(checked.schema_id.value, record.value.as_bytes(), &mut value);
            let key: Option<&[u8]> = match (checked.key_schema_id, &record.key) {
                (Some(schema_id), Some(key)) => {
                    framed_key.clear();
                    wire_format::encode_into(schema_id, key, &mut framed_key);
                    Some(&framed_key)
                }
                (None, Some(key)) => Some(key),
                (_, None) => None,
            };
            let mut base: BaseRecord<'_, [u8], [u8], Box<Pending>> = BaseRecord::with_opaque_to(
                topic,
                Box::new(Pending {
                    batch: Arc::clone(acks),
                    index,
                }),
            )
            .payload(value.as_slice());
            if let Some(headers) = record_headers(record, &checked.trace) {
                base = base.headers(headers);
            }
            if let Some(key) = key {
                base = base.key(key);
            }
            if let Some(partition) = record.partition {
                base = base.partition(partition);
            }
            if let Some(ts) = &record.timestamp {
                base = base.timestamp(ts.seconds * 1000 + i64::from(ts.nanos / 1_000_000));
            }
            let mut started: Option<tokio::time::Instant> = None;
            loop {
                acks.enqueue();
                match self.producer.send(base) {
                    Ok(()) => {
                        enqueued += 1;
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        acks.refused();
                        let since = *started.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() > self.timeout {
                            return Err(ApiError::unavailable(
                                "PRODUCER_QUEUE_FULL",
                                "the gateway's producer queue stayed full: the Kafka cluster is not keeping up or is down; retry with backoff",
                            ));
                        }
                        base = back;
                        // Delivery reports arrive on librdkafka's thread; the queue drains as acks arrive.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((err, _)) => {
                        acks.refused();
                        return Err(kafka_error("writing a record", &err));
                    }
                }
            }
        }
        Ok(enqueued)
    }

    /// Waits for every acknowledgement and builds the per-record results. Any failed delivery fails the
    /// whole call with UNAVAILABLE: nothing is reported written that the broker did not acknowledge.
    async fn settle(
        &self,
        in_flight: InFlight,
    ) -> Result<(Vec<pb::RecordResult>, usize), ApiError> {
        let Settled {
            acks,
            written,
            failure,
        } = in_flight.acks.wait().await;
        if let Some(err) = failure {
            let mut error = kafka_error("acknowledging the batch", &err);
            error.message = format!(
                "{} ({written} of the batch's records were acknowledged before the failure; a retry may write those again)",
                error.message
            );
            return Err(error);
        }
        let mut results: Vec<pb::RecordResult> = vec![pb::RecordResult::default(); in_flight.count];
        for (slot, ack) in results.iter_mut().zip(acks) {
            if let Some((partition, offset)) = ack {
                slot.outcome = Some(pb::record_result::Outcome::Ack(pb::RecordAck {
                    partition,
                    offset,
                    schema_id: Some(in_flight.schema_id),
                }));
            }
        }
        metrics::counter!(RECORDS_PRODUCED, "topic" => in_flight.topic.as_str().to_owned())
            .increment(written as u64);
        for error in in_flight.checked_errors {
            metrics::counter!(
                RECORDS_REJECTED,
                "topic" => in_flight.topic.as_str().to_owned(),
                "kind" => error.kind().as_str_name()
            )
            .increment(1);
            let index = error.index as usize;
            if let Some(slot) = results.get_mut(index) {
                slot.outcome = Some(pb::record_result::Outcome::Error(error));
            }
        }
        Ok((results, written))
    }

    /// Waits until every record handed to the producer is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}
