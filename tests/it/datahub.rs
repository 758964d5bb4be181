//! The data hub gateway end to end against a real tansu broker and a real registry: topics bound to
//! subjects, validated produce (unary and streaming), subscribe with commits, bad input, the broker down,
//! and interoperability with Python's confluent-kafka serializers.

use std::time::Duration;

use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{Subject, TopicName};
use plinth_tests::{DataHubServer, RegistryServer, register_json_schema, start_broker};
use serde_json::json;
use tokio_stream::StreamExt as _;

fn order_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "order_id": {"type": "integer"},
            "amount": {"type": "number"},
            "placed_at": {"type": "string", "format": "date-time"}
        },
        "required": ["order_id", "amount"],
        "additionalProperties": false
    })
}

fn binding(subject: &str) -> Option<pb::SchemaBinding> {
    Some(pb::SchemaBinding {
        subject: Some(Subject::new(subject)),
        pinned_version: None,
    })
}

fn record(value: &str) -> pb::ProduceRecord {
    pb::ProduceRecord {
        value: value.to_owned(),
        ..Default::default()
    }
}

type Client =
    pb::data_hub_service_client::DataHubServiceClient<plinth_runtime::client::AuthChannel>;

async fn create_topic(
    client: &mut Client,
    topic: &str,
    subject: &str,
    partitions: i32,
) -> pb::Topic {
    client
        .create_topic(pb::CreateTopicRequest {
            name: Some(TopicName::new(topic)),
            value_binding: binding(subject),
            partition_count: partitions,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("create topic: {status:?}"))
        .into_inner()
        .topic
        .unwrap()
}

fn batch(topic: &str, records: Vec<pb::ProduceRecord>, accept_partial: bool) -> pb::ProduceRequest {
    pb::ProduceRequest {
        batch: Some(pb::ProduceBatch {
            topic: Some(TopicName::new(topic)),
            records,
            accept_partial,
        }),
    }
}

/// The error kind of every record of a response in which no record was written.
fn error_kinds(response: &pb::ProduceResponse) -> Vec<pb::RecordErrorKind> {
    response
        .results
        .iter()
        .map(|r| match &r.outcome {
            Some(pb::record_result::Outcome::Error(e)) => e.kind(),
            other => panic!("expected an error, got {other:?}"),
        })
        .collect()
}

/// Reads from a Subscribe stream until `count` records arrived (bounded wait).
async fn read_records(
    stream: &mut tonic::Streaming<pb::SubscribeResponse>,
    count: usize,
) -> Vec<pb::ConsumedRecord> {
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while records.len() < count {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records arrived", records.len()));
        let response = next.expect("stream open").expect("stream ok");
        records.extend(response.records);
    }
    records
}

#[tokio::test]
async fn topics_are_bound_to_registered_subjects() {
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    register_json_schema(&registry, "orders-value", &order_schema()).await;
    let hub = DataHubServer::start(&registry, &broker.bootstrap_servers()).await;
    let mut client = hub.client().await;

    let topic = create_topic(&mut client, "orders", "orders-value", 3).await;
    assert_eq!(topic.partition_count, 3);

    let unknown = client
        .create_topic(pb::CreateTopicRequest {
            name: Some(TopicName::new("payments")),
            value_binding: binding("no-such-subject"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(unknown.message().contains("no-such-subject"), "{unknown:?}");

    let duplicate = client
        .create_topic(pb::CreateTopicRequest {
            name: Some(TopicName::new("orders")),
            value_binding: binding("orders-value"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), tonic::Code::AlreadyExists);

    let bad_name = client
        .create_topic(pb::CreateTopicRequest {
            name: Some(TopicName::new("bad name/")),
            value_binding: binding("orders-value"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_name.code(), tonic::Code::InvalidArgument);

    let no_binding = client
        .create_topic(pb::CreateTopicRequest {
            name: Some(TopicName::new("unbound")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(no_binding.code(), tonic::Code::InvalidArgument);

    client
        .produce(batch(
            "orders",
            vec![record(r#"{"order_id":1,"amount":2.5}"#)],
            false,
        ))
        .await
        .unwrap();
    let described = client
        .describe_topic(pb::DescribeTopicRequest {
            name: Some(TopicName::new("orders")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.partitions.len(), 3);
    let total: i64 = described
        .partitions
        .iter()
        .map(|p| p.high_watermark - p.low_watermark)
        .sum();
    assert_eq!(total, 1);
    let value_schema = described.value_schema.unwrap();
    assert_eq!(value_schema.version, 1);

    let listed = client
        .list_topics(pb::ListTopicsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.topics.len(), 1);

    // A topic a lake sink reads cannot be deleted; the sink goes first, its dataset stays.
    client
        .create_lake_sink(pb::CreateLakeSinkRequest {
            topic: Some(TopicName::new("orders")),
            ..Default::default()
        })
        .await
        .unwrap();
    let held = client
        .delete_topic(pb::DeleteTopicRequest {
            name: Some(TopicName::new("orders")),
        })
        .await
        .unwrap_err();
    assert_eq!(held.code(), tonic::Code::FailedPrecondition);
    assert!(
        held.message().contains("plinth lake sink delete"),
        "{held:?}"
    );
    client
        .delete_lake_sink(pb::DeleteLakeSinkRequest {
            dataset: Some(plinth_proto::ids::DatasetName::new("orders")),
        })
        .await
        .unwrap();
    client
        .delete_topic(pb::DeleteTopicRequest {
            name: Some(TopicName::new("orders")),
        })
        .await
        .unwrap();
    let gone = client
        .describe_topic(pb::DescribeTopicRequest {
            name: Some(TopicName::new("orders")),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn produce_validates_every_record_and_reports_each_error() {
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    let schema_id = register_json_schema(&registry, "orders-value", &order_schema()).await;
    let hub = DataHubServer::start_with(&registry, &broker.bootstrap_servers(), |config| {
        config.produce.max_record_bytes = 200;
    })
    .await;
    let mut client = hub.client().await;
    create_topic(&mut client, "orders", "orders-value", 2).await;

    // All valid: every record acknowledged with partition, offset and schema id.
    let ok = client
        .produce(batch(
            "orders",
            (0..10)
                .map(|i| record(&format!(r#"{{"order_id":{i},"amount":1.5}}"#)))
                .collect(),
            false,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.written_count, 10);
    for result in &ok.results {
        let Some(pb::record_result::Outcome::Ack(ack)) = &result.outcome else {
            panic!("not acked: {result:?}");
        };
        assert!(ack.partition == 0 || ack.partition == 1);
        assert_eq!(ack.schema_id.unwrap().value, schema_id);
    }

    // One bad record rejects the batch whole, by default.
    let records = vec![
        record(r#"{"order_id":1,"amount":1}"#),
        record(r#"{"order_id":"two","amount":1}"#),
        record("{not json"),
        record(&format!(
            r#"{{"order_id":3,"amount":1,"note":"{}"}}"#,
            "x".repeat(300)
        )),
        pb::ProduceRecord {
            partition: Some(7),
            ..record(r#"{"order_id":4,"amount":1}"#)
        },
    ];
    let rejected = client
        .produce(batch("orders", records.clone(), false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.written_count, 0);
    let kinds = error_kinds(&rejected);
    assert_eq!(
        kinds,
        vec![
            pb::RecordErrorKind::BatchRejected,
            pb::RecordErrorKind::ValueSchemaViolation,
            pb::RecordErrorKind::InvalidValueJson,
            pb::RecordErrorKind::TooLarge,
            pb::RecordErrorKind::UnknownPartition,
        ]
    );
    let Some(pb::record_result::Outcome::Error(violation)) = &rejected.results[1].outcome else {
        unreachable!()
    };
    assert_eq!(violation.index, 1);
    assert_eq!(violation.violations[0].instance_path, "/order_id");
    assert!(
        violation.violations[0].message.contains("integer"),
        "{violation:?}"
    );

    // accept_partial writes the valid record and reports the rest.
    let partial = client
        .produce(batch("orders", records, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(partial.written_count, 1);
    assert!(matches!(
        partial.results[0].outcome,
        Some(pb::record_result::Outcome::Ack(_))
    ));

    // Unknown topic and an empty batch are request errors.
    let unknown = client
        .produce(batch("nope", vec![record("{}")], false))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().contains("plinth topic create"),
        "{unknown:?}"
    );
    let empty = client
        .produce(batch("orders", vec![], false))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    // The stream summary counts what was written and lists the errors per batch.
    let requests = vec![
        pb::ProduceStreamRequest {
            batch: batch(
                "orders",
                vec![record(r#"{"order_id":20,"amount":1}"#)],
                false,
            )
            .batch,
        },
        pb::ProduceStreamRequest {
            batch: batch(
                "orders",
                vec![
                    record(r#"{"order_id":21,"amount":1}"#),
                    record(r#"{"amount":1}"#),
                ],
                false,
            )
            .batch,
        },
        pb::ProduceStreamRequest {
            batch: batch(
                "orders",
                vec![record(r#"{"order_id":22,"amount":1}"#)],
                false,
            )
            .batch,
        },
    ];
    let summary = client
        .produce_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.batch_count, 3);
    assert_eq!(summary.written_count, 2);
    assert_eq!(summary.rejected_count, 2);
    assert_eq!(summary.rejected_batches, vec![1]);
    assert_eq!(summary.errors.len(), 1);
    assert_eq!(summary.errors[0].batch_index, 1);
    assert!(!summary.written.is_empty());
}

#[tokio::test]
async fn subscribe_decodes_records_and_resumes_from_commits() {
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    let schema_id = register_json_schema(&registry, "clicks-value", &order_schema()).await;
    let hub = DataHubServer::start(&registry, &broker.bootstrap_servers()).await;
    let mut client = hub.client().await;
    create_topic(&mut client, "clicks", "clicks-value", 1).await;
    client
        .produce(batch(
            "clicks",
            (0..20)
                .map(|i| pb::ProduceRecord {
                    key: Some(format!("k{i}").into_bytes()),
                    headers: vec![pb::Header {
                        key: "source".into(),
                        value: b"test".to_vec(),
                    }],
                    ..record(&format!(r#"{{"order_id":{i},"amount":1}}"#))
                })
                .collect(),
            false,
        ))
        .await
        .unwrap();

    let subscribe = |position: pb::StartPosition| pb::SubscribeRequest {
        consumer_group: "readers".into(),
        topics: vec![TopicName::new("clicks")],
        start_position: position.into(),
        max_batch_size: 7,
        ..Default::default()
    };
    let mut stream = client
        .subscribe(subscribe(pb::StartPosition::Committed))
        .await
        .unwrap()
        .into_inner();
    let first = read_records(&mut stream, 10).await;
    assert_eq!(first[0].offset, 0);
    assert_eq!(
        first[0].value.as_deref(),
        Some(r#"{"order_id":0,"amount":1}"#)
    );
    assert_eq!(first[0].schema_id.unwrap().value, schema_id);
    assert_eq!(first[0].schema_version, 1);
    assert_eq!(first[0].key.as_deref(), Some(&b"k0"[..]));
    assert!(first[0].headers.iter().any(|h| h.key == "source"));
    // Commit after the tenth record, then leave.
    client
        .commit(pb::CommitRequest {
            consumer_group: "readers".into(),
            offsets: vec![pb::TopicPartitionOffset {
                topic: Some(TopicName::new("clicks")),
                partition: 0,
                offset: first[9].offset + 1,
            }],
        })
        .await
        .unwrap();
    drop(stream);

    // A new stream of the group resumes at the commit: no gap, no record before it.
    let mut again = client
        .subscribe(subscribe(pb::StartPosition::Committed))
        .await
        .unwrap()
        .into_inner();
    let rest = read_records(&mut again, 10).await;
    assert_eq!(rest[0].offset, 10);
    drop(again);

    // EARLIEST reads from the start whatever was committed.
    let mut earliest = client
        .subscribe(subscribe(pb::StartPosition::Earliest))
        .await
        .unwrap()
        .into_inner();
    let all = read_records(&mut earliest, 20).await;
    assert_eq!(all[0].offset, 0);
    drop(earliest);

    // Bad requests.
    let no_group = client
        .subscribe(pb::SubscribeRequest {
            topics: vec![TopicName::new("clicks")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(no_group.code(), tonic::Code::InvalidArgument);
    let unknown = client
        .subscribe(pb::SubscribeRequest {
            consumer_group: "g".into(),
            topics: vec![TopicName::new("nope")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let no_stream = client
        .commit(pb::CommitRequest {
            consumer_group: "nobody".into(),
            offsets: vec![pb::TopicPartitionOffset {
                topic: Some(TopicName::new("clicks")),
                partition: 0,
                offset: 1,
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(no_stream.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn a_broker_that_is_down_gives_unavailable_and_acks_nothing() {
    let mut broker = start_broker().await;
    let registry = RegistryServer::start().await;
    register_json_schema(&registry, "orders-value", &order_schema()).await;
    let hub = DataHubServer::start_with(&registry, &broker.bootstrap_servers(), |config| {
        config.kafka.request_timeout = Duration::from_secs(3);
    })
    .await;
    let mut client = hub.client().await;
    create_topic(&mut client, "orders", "orders-value", 1).await;
    client
        .produce(batch(
            "orders",
            vec![record(r#"{"order_id":1,"amount":1}"#)],
            false,
        ))
        .await
        .unwrap();

    broker.kill().await.unwrap();
    let down = client
        .produce(batch(
            "orders",
            vec![record(r#"{"order_id":2,"amount":1}"#)],
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(down.code(), tonic::Code::Unavailable, "{down:?}");
    assert!(down.message().contains("Kafka"), "{down:?}");
}

/// Python confluent-kafka: reads the gateway's records with `JSONDeserializer` against Plinth's registry,
/// then writes one record with `JSONSerializer` (the schema is already registered, so it is looked up).
const CONFLUENT_INTEROP: &str = r#"
import json, sys
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer, JSONDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField

bootstrap, registry_url, topic, schema_str = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
client = SchemaRegistryClient({"url": registry_url})
ctx = SerializationContext(topic, MessageField.VALUE)
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "python-interop",
    "auto.offset.reset": "earliest", "session.timeout.ms": 2000, "heartbeat.interval.ms": 500})
consumer.subscribe([topic])
deserialize = JSONDeserializer(None, schema_registry_client=client)
read = []
for _ in range(120):
    message = consumer.poll(0.5)
    if message is None or message.error():
        if read:
            break
        continue
    read.append({"id": int.from_bytes(message.value()[1:5], "big"), "value": deserialize(message.value(), ctx)})
consumer.close()
serialize = JSONSerializer(schema_str, client, conf={"auto.register.schemas": False, "use.latest.version": True})
producer = Producer({"bootstrap.servers": bootstrap})
producer.produce(topic, value=serialize({"order_id": 99, "amount": 9.5}, ctx))
producer.flush(10)
print(json.dumps({"read": read}))
"#;

#[tokio::test]
async fn confluent_kafka_clients_read_and_write_what_the_gateway_does() {
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    let schema_id = register_json_schema(&registry, "interop-value", &order_schema()).await;
    let hub = DataHubServer::start(&registry, &broker.bootstrap_servers()).await;
    let mut client = hub.client().await;
    create_topic(&mut client, "interop", "interop-value", 1).await;
    client
        .produce(batch(
            "interop",
            vec![record(r#"{"order_id":1,"amount":2.5}"#)],
            false,
        ))
        .await
        .unwrap();

    let output = tokio::process::Command::new(plinth_tests::python())
        .arg("-c")
        .arg(CONFLUENT_INTEROP)
        .arg(broker.bootstrap_servers())
        .arg(registry.rest_url())
        .arg("interop")
        .arg(order_schema().to_string())
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("python prints JSON");
    assert_eq!(
        result["read"],
        json!([{"id": schema_id, "value": {"order_id": 1, "amount": 2.5}}])
    );

    // The record Python wrote is accepted by Subscribe, decoded with its schema id and version.
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            consumer_group: "plinth-reader".into(),
            topics: vec![TopicName::new("interop")],
            start_position: pb::StartPosition::Earliest.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let records = read_records(&mut stream, 2).await;
    let from_python = &records[1];
    assert_eq!(from_python.schema_id.unwrap().value, schema_id);
    assert_eq!(from_python.schema_version, 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(from_python.value.as_deref().unwrap()).unwrap(),
        json!({"order_id": 99, "amount": 9.5})
    );
}

#[tokio::test]
async fn keys_are_validated_against_the_key_subject_and_timestamps_pick_the_start() {
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    register_json_schema(&registry, "users-value", &order_schema()).await;
    register_json_schema(
        &registry,
        "users-key",
        &json!({"type": "object", "properties": {"user": {"type": "string"}}, "required": ["user"]}),
    )
    .await;
    let hub = DataHubServer::start(&registry, &broker.bootstrap_servers()).await;
    let mut client = hub.client().await;
    client
        .create_topic(pb::CreateTopicRequest {
            name: Some(TopicName::new("users")),
            value_binding: binding("users-value"),
            key_binding: binding("users-key"),
            partition_count: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let keyed = |key: Option<&str>, ms: i64, id: i64| pb::ProduceRecord {
        key: key.map(|k| k.as_bytes().to_vec()),
        timestamp: Some(prost_types::Timestamp {
            seconds: ms / 1000,
            nanos: 0,
        }),
        ..record(&format!(r#"{{"order_id":{id},"amount":1}}"#))
    };
    let bad = client
        .produce(batch(
            "users",
            vec![
                keyed(None, 0, 0),
                keyed(Some("not json"), 0, 0),
                keyed(Some(r#"{"user":1}"#), 0, 0),
            ],
            true,
        ))
        .await
        .unwrap()
        .into_inner();
    let kinds = error_kinds(&bad);
    assert_eq!(
        kinds,
        vec![
            pb::RecordErrorKind::InvalidKeyJson,
            pb::RecordErrorKind::InvalidKeyJson,
            pb::RecordErrorKind::KeySchemaViolation,
        ]
    );

    let day = 86_400_000_i64;
    let base = 1_767_225_600_000_i64; // 2026-01-01T00:00:00Z
    client
        .produce(batch(
            "users",
            (0..4)
                .map(|i| keyed(Some(r#"{"user":"ada"}"#), base + i * day, i))
                .collect(),
            false,
        ))
        .await
        .unwrap();
    // Keys come back without the wire-format prefix; TIMESTAMP starts at the first record at or after it.
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            consumer_group: "from-day-two".into(),
            topics: vec![TopicName::new("users")],
            start_position: pb::StartPosition::Timestamp.into(),
            start_timestamp: Some(prost_types::Timestamp {
                seconds: (base + 2 * day) / 1000,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let records = read_records(&mut stream, 2).await;
    assert_eq!(records[0].offset, 2);
    assert_eq!(records[0].key.as_deref(), Some(&br#"{"user":"ada"}"#[..]));
    assert_eq!(
        records[0].timestamp.unwrap().seconds,
        (base + 2 * day) / 1000
    );
    let missing_ts = client
        .subscribe(pb::SubscribeRequest {
            consumer_group: "g".into(),
            topics: vec![TopicName::new("users")],
            start_position: pb::StartPosition::Timestamp.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing_ts.code(), tonic::Code::InvalidArgument);
}

/// The value of a counter with `topic="<topic>"` in a Prometheus text page (0 when absent).
fn counter(page: &str, name: &str, topic: &str) -> f64 {
    page.lines()
        .filter(|line| line.starts_with(name) && line.contains(&format!("topic=\"{topic}\"")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_slow_subscriber_holds_the_consumer_back_and_still_gets_everything() {
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    let padded = json!({
        "type": "object",
        "properties": {"n": {"type": "integer"}, "pad": {"type": "string"}},
        "required": ["n", "pad"]
    });
    register_json_schema(&registry, "slow-value", &padded).await;
    let hub = DataHubServer::start_with(&registry, &broker.bootstrap_servers(), |config| {
        config.subscribe.prefetch_bytes = 16 * 1024;
        config.subscribe.buffered_batches = 2;
        config.subscribe.default_batch_size = 10;
    })
    .await;
    let mut client = hub.client().await;
    create_topic(&mut client, "slow", "slow-value", 1).await;
    // 40 000 records of ~500 bytes: 20 MB, far more than every buffer on the way (the stream's prefetch
    // and batches, and HTTP/2's flow-control windows, a few MB) holds.
    const TOTAL: usize = 40_000;
    let pad = "p".repeat(480);
    for chunk in 0..40 {
        let ok = client
            .produce(batch(
                "slow",
                (0..1000)
                    .map(|i| record(&format!(r#"{{"n":{},"pad":"{pad}"}}"#, chunk * 1000 + i)))
                    .collect(),
                false,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ok.written_count, 1000);
    }
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            consumer_group: "slow-reader".into(),
            topics: vec![TopicName::new("slow")],
            start_position: pb::StartPosition::Earliest.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = read_records(&mut stream, 1).await;
    // The client stops reading; the gateway fills its bounded buffers and then stops reading Kafka.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics_url = format!("http://{}/metrics", hub.http);
    let page = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consumed = counter(&page, "plinth_datahub_records_consumed_total", "slow");
    assert!(consumed >= 1.0, "the stream read something: {consumed}");
    assert!(
        consumed < (TOTAL * 3 / 4) as f64,
        "a stalled client must hold the consumer back, but {consumed} of {TOTAL} records were read"
    );
    // Reading again delivers every record, in order, once.
    let rest = read_records(&mut stream, TOTAL - first.len()).await;
    let offsets: Vec<i64> = first.iter().chain(&rest).map(|r| r.offset).collect();
    assert_eq!(offsets, (0..TOTAL as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_pinned_topic_keeps_its_version_and_an_unpinned_one_follows_the_latest() {
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    register_json_schema(&registry, "pay-value", &order_schema()).await;
    let hub = DataHubServer::start_with(&registry, &broker.bootstrap_servers(), |config| {
        config.registry.latest_ttl = Duration::from_millis(1);
    })
    .await;
    let mut client = hub.client().await;
    create_topic(&mut client, "pay-latest", "pay-value", 1).await;
    client
        .create_topic(pb::CreateTopicRequest {
            name: Some(TopicName::new("pay-pinned")),
            value_binding: Some(pb::SchemaBinding {
                subject: Some(Subject::new("pay-value")),
                pinned_version: Some(1),
            }),
            partition_count: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let pinned_to_missing = client
        .create_topic(pb::CreateTopicRequest {
            name: Some(TopicName::new("pay-nine")),
            value_binding: Some(pb::SchemaBinding {
                subject: Some(Subject::new("pay-value")),
                pinned_version: Some(9),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(pinned_to_missing.code(), tonic::Code::NotFound);

    // Version 2 adds an optional field (compatible under BACKWARD for a closed model).
    let mut v2 = order_schema();
    v2["properties"]["currency"] = json!({"type": "string"});
    let v2_id = register_json_schema(&registry, "pay-value", &v2).await;
    let with_currency = r#"{"order_id":1,"amount":1,"currency":"EUR"}"#;

    let latest = client
        .produce(batch("pay-latest", vec![record(with_currency)], false))
        .await
        .unwrap()
        .into_inner();
    let Some(pb::record_result::Outcome::Ack(ack)) = &latest.results[0].outcome else {
        panic!("the unpinned topic validates against version 2: {latest:?}");
    };
    assert_eq!(ack.schema_id.unwrap().value, v2_id);

    let pinned = client
        .produce(batch("pay-pinned", vec![record(with_currency)], false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        pinned.written_count, 0,
        "version 1 is closed: `currency` is not allowed"
    );
    let described = client
        .describe_topic(pb::DescribeTopicRequest {
            name: Some(TopicName::new("pay-pinned")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.value_schema.unwrap().version, 1);
}

#[tokio::test]
async fn a_subscribe_stream_rides_out_a_broker_outage() {
    let (broker, proxy) = plinth_tests::start_broker_behind_proxy().await;
    let registry = RegistryServer::start().await;
    register_json_schema(&registry, "outage-value", &order_schema()).await;
    let hub = DataHubServer::start(&registry, &broker.bootstrap_servers()).await;
    let mut client = hub.client().await;
    create_topic(&mut client, "outage", "outage-value", 1).await;
    let produce = |from: i64| {
        batch(
            "outage",
            (from..from + 10)
                .map(|i| record(&format!(r#"{{"order_id":{i},"amount":1}}"#)))
                .collect(),
            false,
        )
    };
    client.produce(produce(0)).await.unwrap();
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            consumer_group: "through-outage".into(),
            topics: vec![TopicName::new("outage")],
            start_position: pb::StartPosition::Earliest.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let before = read_records(&mut stream, 10).await;

    proxy.set_up(false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set_up(true);
    // The producer may need a moment to reconnect: retry UNAVAILABLE a bounded number of times.
    let mut produced = false;
    for _ in 0..10 {
        match client.produce(produce(10)).await {
            Ok(_) => {
                produced = true;
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    assert!(produced, "the gateway writes again once the broker is back");
    let after = read_records(&mut stream, 10).await;
    let offsets: Vec<i64> = before.iter().chain(&after).map(|r| r.offset).collect();
    assert_eq!(offsets, (0..20).collect::<Vec<_>>(), "no gap, no repeat");
}
