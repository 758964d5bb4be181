//! Topics bound to schema registry subjects: the binding in SQL ([`Store`]), the topic on the broker
//! (admin client), and a short-lived in-memory cache of bindings for the produce and subscribe paths.
//!
//! Creating a topic checks the subjects first (NOT_FOUND when a subject or pinned version is not
//! registered), then creates it on the broker, then stores the binding; a topic that exists on the broker
//! without a binding is adopted with its partitions as they are.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{Subject, TopicName};
use plinth_runtime::error::ApiError;
use plinth_schema_registry::client::RegistryClient;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::config::KafkaConfig;
use crate::error::topic_not_found;
use crate::kafka::{base_client_config, kafka_error};
use crate::store::{Store, TopicRow};

/// How long a binding read from SQL is trusted by the produce and subscribe paths. Bindings never change
/// after creation; this only bounds how long another replica's DeleteTopic takes to be seen.
const BINDING_TTL: Duration = Duration::from_secs(5);

/// The longest topic name Kafka accepts.
const MAX_TOPIC_NAME: usize = 249;

/// Topic bindings and the broker's admin side.
pub struct Topics {
    store: Store,
    registry: Arc<RegistryClient>,
    admin: Arc<AdminClient<DefaultClientContext>>,
    timeout: Duration,
    cache: RwLock<HashMap<TopicName, (Instant, Arc<TopicRow>)>>,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics").finish_non_exhaustive()
    }
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| {
        ApiError::invalid_argument(
            "INVALID_TOPIC_NAME",
            format!("topic name `{name}` {why}; use 1 to {MAX_TOPIC_NAME} characters from a-z A-Z 0-9 . _ -"),
        )
        .with_field("name", why.to_owned())
    };
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if name == "." || name == ".." {
        return Err(bad("is reserved"));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(bad("is too long"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(bad("has a character Kafka does not allow"));
    }
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds since the epoch as a protobuf timestamp.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// A stored binding as the API's `Topic`.
pub fn topic_message(row: &TopicRow) -> pb::Topic {
    pb::Topic {
        name: Some(row.name.clone()),
        value_binding: Some(pb::SchemaBinding {
            subject: Some(row.value_subject.clone()),
            pinned_version: row.value_version,
        }),
        key_binding: row.key_subject.as_ref().map(|subject| pb::SchemaBinding {
            subject: Some(subject.clone()),
            pinned_version: row.key_version,
        }),
        partition_count: row.partition_count,
        replication_factor: row.replication_factor,
        retention: row.retention_ms.map(|ms| pb::Retention {
            kind: Some(if ms < 0 {
                pb::retention::Kind::Unlimited(true)
            } else {
                pb::retention::Kind::Period(prost_types::Duration {
                    seconds: ms / 1000,
                    nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
                })
            }),
        }),
        create_time: Some(timestamp(row.create_time_ms)),
    }
}

fn binding_parts(
    binding: Option<&pb::SchemaBinding>,
    field: &str,
) -> Result<Option<(Subject, Option<i32>)>, ApiError> {
    let Some(binding) = binding else {
        return Ok(None);
    };
    let subject = binding
        .subject
        .clone()
        .filter(|subject| !subject.as_str().is_empty())
        .ok_or_else(|| {
            ApiError::required(
                &format!("{field}.subject"),
                "name a subject registered in the schema registry",
            )
        })?;
    if let Some(version) = binding.pinned_version
        && version < 1
    {
        return Err(ApiError::invalid_argument(
            "INVALID_PINNED_VERSION",
            format!("`{field}.pinned_version` is {version}; versions start at 1, or leave it unset to follow the latest"),
        )
        .with_field(format!("{field}.pinned_version"), "must be >= 1"));
    }
    Ok(Some((subject, binding.pinned_version)))
}

fn retention_ms(retention: Option<&pb::Retention>) -> Result<Option<i64>, ApiError> {
    match retention.and_then(|retention| retention.kind.as_ref()) {
        None => Ok(None),
        Some(pb::retention::Kind::Unlimited(true)) => Ok(Some(-1)),
        Some(pb::retention::Kind::Unlimited(false)) => Err(ApiError::invalid_argument(
            "INVALID_RETENTION",
            "`retention.unlimited` must be true when set; leave `retention` unset for the broker's default",
        )
        .with_field("retention.unlimited", "must be true")),
        Some(pb::retention::Kind::Period(period)) => {
            let ms = period.seconds.saturating_mul(1000) + i64::from(period.nanos / 1_000_000);
            if ms <= 0 {
                return Err(ApiError::invalid_argument(
                    "INVALID_RETENTION",
                    "`retention.period` must be positive, e.g. 7 days",
                )
                .with_field("retention.period", "must be > 0"));
            }
            Ok(Some(ms))
        }
    }
}

impl Topics {
    /// The admin client is created here; nothing connects until the first call.
    pub fn new(
        store: Store,
        registry: Arc<RegistryClient>,
        kafka: &KafkaConfig,
    ) -> Result<Self, ApiError> {
        let admin: AdminClient<DefaultClientContext> =
            base_client_config(kafka)?.create().map_err(|err| {
                ApiError::failed_precondition(
                    "KAFKA_CONFIG_INVALID",
                    format!("the [kafka] settings are not accepted by librdkafka: {err}"),
                )
            })?;
        Ok(Self {
            store,
            registry,
            admin: Arc::new(admin),
            timeout: kafka.request_timeout,
            cache: RwLock::default(),
        })
    }

    /// The binding of `topic`, from the cache when fresh. NOT_FOUND when the topic is not bound.
    pub async fn binding(&self, topic: &TopicName) -> Result<Arc<TopicRow>, ApiError> {
        if let Some((at, row)) = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(topic)
            && at.elapsed() < BINDING_TTL
        {
            return Ok(row.clone());
        }
        let row = self
            .store
            .topic(topic)
            .await?
            .ok_or_else(|| topic_not_found(topic))?;
        let row = Arc::new(row);
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(topic.clone(), (Instant::now(), row.clone()));
        Ok(row)
    }

    fn forget(&self, topic: &TopicName) {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(topic);
    }

    /// CreateTopic.
    pub async fn create(&self, request: pb::CreateTopicRequest) -> Result<pb::Topic, ApiError> {
        let name = request
            .name
            .clone()
            .ok_or_else(|| ApiError::required("name", "name the topic, e.g. `orders`"))?;
        validate_topic_name(name.as_str())?;
        let (value_subject, value_version) =
            binding_parts(request.value_binding.as_ref(), "value_binding")?.ok_or_else(|| {
                ApiError::required(
                    "value_binding",
                    "bind the topic to the subject its values are validated against",
                )
            })?;
        let key = binding_parts(request.key_binding.as_ref(), "key_binding")?;
        if request.partition_count < 0 || request.replication_factor < 0 {
            return Err(ApiError::invalid_argument(
                "INVALID_TOPIC_SETTINGS",
                "`partition_count` and `replication_factor` must be positive, or 0 for the broker's default",
            )
            .with_field("partition_count", "must be >= 0"));
        }
        let retention_ms = retention_ms(request.retention.as_ref())?;
        if self.store.topic(&name).await?.is_some() {
            return Err(ApiError::already_exists(
                "TOPIC_EXISTS",
                format!("topic `{name}` is already bound; describe it with `plinth topic describe {name}` or delete it first"),
            )
            .with_metadata("topic", name.as_str()));
        }
        // The subjects must exist before anything is created.
        self.registry.resolve(&value_subject, value_version).await?;
        if let Some((subject, version)) = &key {
            self.registry.resolve(subject, *version).await?;
        }

        let mut new_topic = NewTopic::new(
            name.as_str(),
            if request.partition_count == 0 {
                -1
            } else {
                request.partition_count
            },
            if request.replication_factor == 0 {
                TopicReplication::Fixed(-1)
            } else {
                TopicReplication::Fixed(request.replication_factor)
            },
        );
        let retention_text = retention_ms.map(|ms| ms.to_string());
        if let Some(text) = &retention_text {
            new_topic = new_topic.set("retention.ms", text);
        }
        let options = AdminOptions::new()
            .operation_timeout(Some(self.timeout))
            .request_timeout(Some(self.timeout));
        let results = self
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(|err| kafka_error("creating the topic", &err))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((
                    _,
                    RDKafkaErrorCode::InvalidPartitions
                    | RDKafkaErrorCode::InvalidReplicationFactor
                    | RDKafkaErrorCode::InvalidConfig,
                )) => {
                    return Err(ApiError::invalid_argument(
                        "INVALID_TOPIC_SETTINGS",
                        format!(
                            "the broker refused topic `{name}`'s settings (partitions {}, replication {}, retention {:?}); check them against the cluster's brokers",
                            request.partition_count, request.replication_factor, retention_ms
                        ),
                    ));
                }
                Err((_, code)) => {
                    return Err(kafka_error(
                        "creating the topic",
                        &rdkafka::error::KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        let partitions = self.partition_ids(&name).await?;
        let row = TopicRow {
            name: name.clone(),
            value_subject,
            value_version,
            key_subject: key.as_ref().map(|(subject, _)| subject.clone()),
            key_version: key.and_then(|(_, version)| version),
            partition_count: i32::try_from(partitions.len()).unwrap_or(i32::MAX),
            replication_factor: if request.replication_factor == 0 {
                1
            } else {
                request.replication_factor
            },
            retention_ms,
            create_time_ms: now_ms(),
        };
        if !self.store.insert_topic(&row).await? {
            return Err(ApiError::already_exists(
                "TOPIC_EXISTS",
                format!("topic `{name}` was bound by another request at the same time"),
            ));
        }
        tracing::info!(topic = %name, subject = %row.value_subject, partitions = row.partition_count, "topic created");
        Ok(topic_message(&row))
    }

    /// Checks that the Kafka cluster answers a metadata request.
    pub async fn ping(&self) -> Result<(), ApiError> {
        let admin = self.admin.clone();
        let timeout = self.timeout.min(Duration::from_secs(5));
        tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, timeout))
            .await
            .map_err(ApiError::internal)?
            .map_err(|err| kafka_error("a metadata request", &err))?;
        Ok(())
    }

    /// The partition ids of `topic` on the broker, sorted. NOT_FOUND when the broker does not have it.
    pub async fn partition_ids(&self, topic: &TopicName) -> Result<Vec<i32>, ApiError> {
        let admin = self.admin.clone();
        let timeout = self.timeout;
        let name = topic.as_str().to_owned();
        let metadata =
            tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(Some(&name), timeout))
                .await
                .map_err(ApiError::internal)?
                .map_err(|err| kafka_error("reading topic metadata", &err))?;
        let Some(found) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic.as_str())
        else {
            return Err(missing_on_broker(topic));
        };
        if found.error().is_some() || found.partitions().is_empty() {
            return Err(missing_on_broker(topic));
        }
        let mut ids: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// DescribeTopic.
    pub async fn describe(
        &self,
        request: pb::DescribeTopicRequest,
    ) -> Result<pb::DescribeTopicResponse, ApiError> {
        let name = request
            .name
            .ok_or_else(|| ApiError::required("name", "name the topic"))?;
        let row = self
            .store
            .topic(&name)
            .await?
            .ok_or_else(|| topic_not_found(&name))?;
        let value = self
            .registry
            .resolve(&row.value_subject, row.value_version)
            .await?;
        let key = match &row.key_subject {
            Some(subject) => Some(self.registry.resolve(subject, row.key_version).await?),
            None => None,
        };
        let ids = self.partition_ids(&name).await?;
        let admin = self.admin.clone();
        let timeout = self.timeout;
        let topic = name.as_str().to_owned();
        let partitions = tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .map(|id| {
                    admin
                        .inner()
                        .fetch_watermarks(&topic, id, timeout)
                        .map(|(low, high)| pb::PartitionWatermarks {
                            partition: id,
                            low_watermark: low,
                            high_watermark: high,
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(|err| kafka_error("reading watermarks", &err))?;
        let mut topic = topic_message(&row);
        topic.partition_count = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        Ok(pb::DescribeTopicResponse {
            topic: Some(topic),
            value_schema: Some(pb::ResolvedSchema {
                schema_id: Some(value.schema.id),
                version: value.version,
            }),
            key_schema: key.map(|key| pb::ResolvedSchema {
                schema_id: Some(key.schema.id),
                version: key.version,
            }),
            partitions,
        })
    }

    /// ListTopics.
    pub async fn list(&self, request: pb::ListTopicsRequest) -> Result<Vec<pb::Topic>, ApiError> {
        Ok(self
            .store
            .topics(&request.name_prefix)
            .await?
            .iter()
            .map(topic_message)
            .collect())
    }

    /// DeleteTopic: refused while a lake sink reads the topic.
    pub async fn delete(&self, request: pb::DeleteTopicRequest) -> Result<pb::Topic, ApiError> {
        let name = request
            .name
            .ok_or_else(|| ApiError::required("name", "name the topic"))?;
        let row = self
            .store
            .topic(&name)
            .await?
            .ok_or_else(|| topic_not_found(&name))?;
        if let Some(sink) = self
            .store
            .sinks()
            .await?
            .into_iter()
            .find(|sink| sink.topic == name)
        {
            return Err(ApiError::failed_precondition(
                "TOPIC_HAS_LAKE_SINK",
                format!("lake sink `{}` reads topic `{name}`; delete it first with `plinth lake sink delete {}` (the dataset's files stay)", sink.dataset, sink.dataset),
            )
            .with_metadata("dataset", sink.dataset.as_str()));
        }
        let options = AdminOptions::new()
            .operation_timeout(Some(self.timeout))
            .request_timeout(Some(self.timeout));
        let results = self
            .admin
            .delete_topics(&[name.as_str()], &options)
            .await
            .map_err(|err| kafka_error("deleting the topic", &err))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((_, code)) => {
                    return Err(kafka_error(
                        "deleting the topic",
                        &rdkafka::error::KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        self.store.delete_topic(&name).await?;
        self.forget(&name);
        tracing::info!(topic = %name, "topic deleted");
        Ok(topic_message(&row))
    }
}

fn missing_on_broker(topic: &TopicName) -> ApiError {
    ApiError::failed_precondition(
        "TOPIC_MISSING_ON_BROKER",
        format!("topic `{topic}` is bound but the Kafka cluster does not have it (deleted outside the gateway?); delete the binding with `plinth topic delete {topic}` and create it again"),
    )
    .with_metadata("topic", topic.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-west").is_ok());
        for bad in ["", ".", "..", "has space", "slash/no", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn retention_maps_to_retention_ms() {
        assert_eq!(retention_ms(None).ok(), Some(None));
        let unlimited = pb::Retention {
            kind: Some(pb::retention::Kind::Unlimited(true)),
        };
        assert_eq!(retention_ms(Some(&unlimited)).ok(), Some(Some(-1)));
        let week = pb::Retention {
            kind: Some(pb::retention::Kind::Period(prost_types::Duration {
                seconds: 604_800,
                nanos: 0,
            })),
        };
        assert_eq!(retention_ms(Some(&week)).ok(), Some(Some(604_800_000)));
        let zero = pb::Retention {
            kind: Some(pb::retention::Kind::Period(prost_types::Duration::default())),
        };
        assert!(retention_ms(Some(&zero)).is_err());
    }

    #[test]
    fn timestamps_split_into_seconds_and_nanos() {
        let ts = timestamp(1_700_000_000_123);
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_000_000));
    }
}
