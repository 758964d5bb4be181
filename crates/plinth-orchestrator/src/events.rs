//! Run events: every run and task state change is stored in the database's outbox in the transaction
//! that makes it; [`stream`] follows the outbox for StreamRunEvents, and [`Publisher`] copies it to the
//! Kafka topic `plinth.orchestrator.runs` through the data hub (records validated against a registered
//! JSON Schema, in the Confluent wire format), marking each event published only after the data hub
//! acknowledged it. While the data hub is unreachable the events wait in the outbox: none is lost.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use plinth_proto::common::v1::TopicName;
use plinth_proto::datahub::v1 as datahub;
use plinth_runtime::client::AuthChannel;
use tokio::sync::{Notify, watch};

use crate::domain::state::{RunState, TaskState};
use crate::store::{EventRecord, Store, StoreError};

/// The JSON Schema of the records on the run-events topic (subject `<topic>-value`).
pub const EVENT_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "plinth.orchestrator.RunEvent",
  "description": "A run or task state change of the Plinth orchestrator.",
  "type": "object",
  "properties": {
    "sequence": {"type": "integer", "description": "Increasing per orchestrator database."},
    "time": {"type": "string", "format": "date-time"},
    "pipeline": {"type": "string"},
    "pipeline_version": {"type": "integer"},
    "run_id": {"type": "string"},
    "task": {"type": ["string", "null"], "description": "Null for run events."},
    "try_number": {"type": ["integer", "null"]},
    "run_state": {"type": ["string", "null"], "enum": ["queued", "running", "succeeded", "failed", "cancelled", null]},
    "task_state": {"type": ["string", "null"], "enum": ["pending", "queued", "running", "succeeded", "failed", "up_for_retry", "skipped", "upstream_failed", "cancelled", null]},
    "reason": {"type": "string"}
  },
  "required": ["sequence", "time", "pipeline", "pipeline_version", "run_id", "reason"],
  "additionalProperties": false
}"#;

/// Which events a stream carries.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this pipeline's.
    pub pipeline: Option<String>,
    /// Only this run's.
    pub run_id: Option<String>,
}

impl EventFilter {
    fn accepts(&self, event: &EventRecord) -> bool {
        self.pipeline
            .as_deref()
            .is_none_or(|pipeline| event.pipeline == pipeline)
            && self.run_id.as_deref().is_none_or(|run| event.run_id == run)
    }
}

/// How often a stream looks at the outbox when nothing on this replica woke it (changes made by other
/// replicas).
const STREAM_POLL: Duration = Duration::from_millis(250);

/// Follows the outbox from `after` (exclusive): stored events first, then new ones as they are stored.
/// Ends when the receiver is dropped; a database error is yielded once and the stream goes on polling.
pub fn stream(
    store: Store,
    notify: Arc<Notify>,
    filter: EventFilter,
    after: i64,
) -> impl Stream<Item = Result<EventRecord, StoreError>> {
    futures::stream::unfold(
        (
            store,
            notify,
            filter,
            after,
            std::collections::VecDeque::new(),
        ),
        |(store, notify, filter, mut after, mut pending)| async move {
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((Ok(event), (store, notify, filter, after, pending)));
                }
                // Registered before reading so a change stored in between is not missed.
                let waiter = notify.clone();
                let woken = waiter.notified();
                match store.events_after(after, 500).await {
                    Ok(events) if !events.is_empty() => {
                        if let Some(last) = events.last() {
                            after = last.sequence;
                        }
                        pending.extend(events.into_iter().filter(|event| filter.accepts(event)));
                        continue;
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tokio::time::sleep(STREAM_POLL).await;
                        return Some((Err(err), (store, notify, filter, after, pending)));
                    }
                }
                tokio::select! {
                    () = woken => {}
                    () = tokio::time::sleep(STREAM_POLL) => {}
                }
            }
        },
    )
}

/// The JSON record of an event on the topic.
pub fn event_json(event: &EventRecord) -> serde_json::Value {
    let time = chrono::DateTime::from_timestamp_micros(event.time)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let task = (!event.task.is_empty()).then(|| event.task.clone());
    serde_json::json!({
        "sequence": event.sequence,
        "time": time,
        "pipeline": event.pipeline,
        "pipeline_version": event.pipeline_version,
        "run_id": event.run_id,
        "task": task,
        "try_number": task.as_ref().map(|_| event.try_number),
        "run_state": event.run_state.map(RunState::as_str),
        "task_state": event.task_state.map(TaskState::as_str),
        "reason": event.reason,
    })
}

/// Where events are published.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// The outbox.
    pub store: Store,
    /// The data hub.
    pub datahub: AuthChannel,
    /// The schema registry.
    pub registry: AuthChannel,
    /// The topic.
    pub topic: String,
    /// Wakes the publisher when events were stored on this replica.
    pub notify: Arc<Notify>,
}

/// Why an event batch was not published.
#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Peer(String),
}

impl Publisher {
    /// Publishes the outbox until `stop`, retrying with backoff while the data hub or the registry is
    /// unreachable. With several replicas each publishes; an event may then be published twice (the
    /// topic is at least once; consumers deduplicate by `sequence`).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut ready = false;
        let mut delay = Duration::from_millis(200);
        loop {
            let result = async {
                if !ready {
                    self.ensure_topic().await?;
                    ready = true;
                    tracing::info!(topic = %self.topic, "publishing run events");
                }
                self.publish_batch().await
            }
            .await;
            let pause = match result {
                Ok(0) => {
                    delay = Duration::from_millis(200);
                    Duration::from_secs(1)
                }
                Ok(_) => Duration::ZERO,
                Err(err) => {
                    tracing::warn!(error = %err, topic = %self.topic, "cannot publish run events yet; they wait in the database");
                    delay = (delay * 2).min(Duration::from_secs(30));
                    delay
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                () = self.notify.notified(), if pause == Duration::from_secs(1) => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Registers the event schema and creates the topic bound to it (both idempotent).
    async fn ensure_topic(&self) -> Result<(), PublishError> {
        plinth_runtime::client::ensure_json_topic(
            self.registry.clone(),
            self.datahub.clone(),
            &self.topic,
            EVENT_SCHEMA,
            "the run-event schema",
        )
        .await
        .map_err(PublishError::Peer)
    }

    /// Publishes up to 500 outbox events; answers how many.
    async fn publish_batch(&self) -> Result<usize, PublishError> {
        let events = self.store.unpublished_events(500).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let records = events
            .iter()
            .map(|event| datahub::ProduceRecord {
                key: Some(event.run_id.clone().into_bytes()),
                value: event_json(event).to_string(),
                headers: Vec::new(),
                partition: None,
                timestamp: Some(prost_types::Timestamp {
                    seconds: event.time.div_euclid(1_000_000),
                    nanos: i32::try_from(event.time.rem_euclid(1_000_000) * 1000).unwrap_or(0),
                }),
            })
            .collect();
        let mut hub =
            datahub::data_hub_service_client::DataHubServiceClient::new(self.datahub.clone());
        let response = hub
            .produce(datahub::ProduceRequest {
                batch: Some(datahub::ProduceBatch {
                    topic: Some(TopicName::new(self.topic.clone())),
                    records,
                    accept_partial: false,
                }),
            })
            .await
            .map_err(|status| {
                PublishError::Peer(format!(
                    "producing run events to {}: {}",
                    self.topic,
                    status.message()
                ))
            })?
            .into_inner();
        if usize::try_from(response.written_count).unwrap_or(0) != events.len() {
            return Err(PublishError::Peer(format!(
                "the data hub wrote {} of {} run events",
                response.written_count,
                events.len()
            )));
        }
        let sequences: Vec<i64> = events.iter().map(|event| event.sequence).collect();
        self.store.mark_published(&sequences).await?;
        Ok(events.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_record_matches_its_schema() {
        let schema: serde_json::Value = serde_json::from_str(EVENT_SCHEMA).unwrap();
        let event = EventRecord {
            sequence: 7,
            time: 1_700_000_000_123_456,
            pipeline: "train".to_owned(),
            pipeline_version: 2,
            run_id: "r".to_owned(),
            task: "fit".to_owned(),
            try_number: 1,
            run_state: None,
            task_state: Some(TaskState::UpForRetry),
            reason: "exit code 1".to_owned(),
        };
        let json = event_json(&event);
        assert_eq!(json["task_state"], "up_for_retry");
        assert_eq!(json["time"], "2023-11-14T22:13:20.123456Z");
        let properties = schema["properties"].as_object().unwrap();
        for key in json.as_object().unwrap().keys() {
            assert!(properties.contains_key(key), "{key} is not in the schema");
        }
    }
}
