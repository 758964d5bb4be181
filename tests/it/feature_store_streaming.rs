//! Streaming materialization end to end: a broker, a schema registry, a data hub and a feature store in
//! one process. A stream source on a data-hub topic feeds its online view: records produced through the
//! data hub appear in GetOnlineFeatures, a newer record replaces the value, and a record without an event
//! time is skipped (and counted) without stopping the consumer.

use std::collections::HashMap;
use std::time::Duration;

use plinth_proto::datahub::v1 as hub;
use plinth_proto::featurestore::v1 as pb;
use plinth_proto::ids::{Subject, TopicName};
use plinth_tests::{
    DataHubServer, FeatureStoreServer, RegistryServer, register_json_schema, start_broker,
    unique_name,
};
use serde_json::json;

fn event_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "driver_id": {"type": "integer"},
            "event_timestamp": {"type": "string"},
            "rate": {"type": "number"},
            "trips": {"type": "integer"}
        },
        "required": ["driver_id"]
    })
}

fn definitions(source: &str, topic: &str) -> String {
    format!(
        r#"
entities:
  - name: driver
    join_keys: [{{name: driver_id, type: int64}}]
sources:
  - name: {source}
    stream: {{topic: {topic}}}
    timestamp_field: event_timestamp
    field_mapping: {{rate: conv_rate}}
feature_views:
  - name: driver_live
    entities: [driver]
    source: {source}
    features:
      - {{name: conv_rate, type: float64}}
      - {{name: trips, type: int64}}
"#
    )
}

async fn produce(client: &mut HubClient, topic: &str, values: &[serde_json::Value]) {
    let response = client
        .produce(hub::ProduceRequest {
            batch: Some(hub::ProduceBatch {
                topic: Some(TopicName::new(topic)),
                records: values
                    .iter()
                    .map(|value| hub::ProduceRecord {
                        value: value.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                accept_partial: false,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.written_count as usize,
        values.len(),
        "{response:?}"
    );
}

/// driver_live's (conv_rate, trips) for `driver`, as last served.
async fn online_values(
    server: &FeatureStoreServer,
    driver: i64,
) -> (Option<pb::value::Val>, Option<pb::value::Val>) {
    let mut client = server.client().await;
    let answer = client
        .get_online_features(pb::GetOnlineFeaturesRequest {
            features: Some(pb::FeatureSelection {
                selection: Some(pb::feature_selection::Selection::Features(
                    pb::FeatureList {
                        refs: vec![
                            "driver_live:conv_rate".to_owned(),
                            "driver_live:trips".to_owned(),
                        ],
                    },
                )),
            }),
            entities: HashMap::from([(
                "driver_id".to_owned(),
                pb::RepeatedValue {
                    val: vec![pb::Value {
                        val: Some(pb::value::Val::Int64Val(driver)),
                    }],
                },
            )]),
            full_feature_names: false,
        })
        .await
        .unwrap()
        .into_inner();
    (
        answer.results[1].values[0].val.clone(),
        answer.results[2].values[0].val.clone(),
    )
}

/// Polls until driver_live serves `expected` for `driver` (at most 30 s).
async fn wait_for(
    server: &FeatureStoreServer,
    driver: i64,
    expected: (Option<pb::value::Val>, Option<pb::value::Val>),
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let served = online_values(server, driver).await;
        if served == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "driver {driver}: still {served:?} after 30 s, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

type HubClient =
    hub::data_hub_service_client::DataHubServiceClient<plinth_runtime::client::AuthChannel>;

/// A broker, a registry and a data hub with one topic bound to the driver event schema.
struct Hub {
    _broker: plinth_datahub::local_broker::LocalBroker,
    _registry: RegistryServer,
    datahub: DataHubServer,
    client: HubClient,
    topic: String,
}

async fn start_hub() -> Hub {
    let broker = start_broker().await;
    let registry = RegistryServer::start().await;
    let topic = unique_name("driver-events");
    let subject = format!("{topic}-value");
    register_json_schema(&registry, &subject, &event_schema()).await;
    let datahub = DataHubServer::start(&registry, &broker.bootstrap_servers()).await;
    let mut client = datahub.client().await;
    client
        .create_topic(hub::CreateTopicRequest {
            name: Some(TopicName::new(&topic)),
            value_binding: Some(hub::SchemaBinding {
                subject: Some(Subject::new(&subject)),
                pinned_version: None,
            }),
            partition_count: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    Hub {
        _broker: broker,
        _registry: registry,
        datahub,
        client,
        topic,
    }
}

/// A feature store reading the data hub at `hub_url`, with the stream source applied; the source name.
async fn start_feature_store(hub_url: &str, topic: &str) -> (FeatureStoreServer, String) {
    let server = FeatureStoreServer::start_with(|config| {
        config.datahub.url = hub_url.parse().unwrap();
        config.serving.registry_refresh = Duration::from_millis(300);
    })
    .await;
    let source = unique_name("driver_stream").replace('-', "_");
    let mut client = server.client().await;
    client
        .apply_definitions(pb::ApplyDefinitionsRequest {
            files: vec![pb::DefinitionFile {
                path: "features/stream.yaml".to_owned(),
                content: definitions(&source, topic),
            }],
            prune: false,
        })
        .await
        .unwrap();
    (server, source)
}

fn driver_event(driver: i64, event_timestamp: &str, rate: f64, trips: i64) -> serde_json::Value {
    json!({"driver_id": driver, "event_timestamp": event_timestamp, "rate": rate, "trips": trips})
}

#[tokio::test]
async fn a_stream_source_feeds_its_online_view_from_the_topic() {
    let Hub {
        _broker,
        _registry,
        datahub,
        client: mut hub_client,
        topic,
    } = start_hub().await;

    // Records produced before the definitions exist are read too: a new group starts at the earliest.
    produce(
        &mut hub_client,
        &topic,
        &[json!({"driver_id": 1001, "event_timestamp": "2026-01-01T00:00:00Z", "rate": 0.1, "trips": 3})],
    )
    .await;

    let (server, source) = start_feature_store(&datahub.grpc_url(), &topic).await;

    use pb::value::Val;
    wait_for(
        &server,
        1001,
        (Some(Val::DoubleVal(0.1)), Some(Val::Int64Val(3))),
    )
    .await;

    // A record without an event time is skipped; the records after it still arrive, and a newer event
    // replaces the value while an older one does not.
    produce(
        &mut hub_client,
        &topic,
        &[
            json!({"driver_id": 1001, "rate": 9.9}),
            json!({"driver_id": 1001, "event_timestamp": "2026-01-01T02:00:00Z", "rate": 0.3, "trips": 5}),
            json!({"driver_id": 1001, "event_timestamp": "2026-01-01T01:00:00Z", "rate": 0.2, "trips": 4}),
            json!({"driver_id": 1002, "event_timestamp": "2026-01-01T00:00:00Z", "rate": 0.7}),
        ],
    )
    .await;
    wait_for(&server, 1002, (Some(Val::DoubleVal(0.7)), None)).await;
    assert_eq!(
        online_values(&server, 1001).await,
        (Some(Val::DoubleVal(0.3)), Some(Val::Int64Val(5)))
    );

    let page = reqwest::get(format!("http://{}/metrics", server.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counter = |name: &str| -> f64 {
        page.lines()
            .filter(|line| line.starts_with(name) && line.contains(&format!("source=\"{source}\"")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // At least once: a record read again after a rebalance counts again.
    assert!(
        counter(plinth_feature_store::streaming::STREAM_RECORDS_SKIPPED) >= 1.0,
        "{page}"
    );
    assert!(
        counter(plinth_feature_store::streaming::STREAM_RECORDS) >= 5.0,
        "{page}"
    );

    server.stop().await;
    datahub.stop().await;
}

#[tokio::test]
async fn the_consumer_waits_out_an_unreachable_data_hub_and_a_dropped_stream() {
    let mut hub = start_hub().await;
    // The feature store reaches the data hub only through a link that is down at first.
    let link = plinth_tests::TcpOutage::start().await;
    link.set_up(false);
    link.forward_to(hub.datahub.grpc);
    let (server, _source) = start_feature_store(&format!("http://{}", link.addr), &hub.topic).await;
    produce(
        &mut hub.client,
        &hub.topic,
        &[driver_event(7, "2026-01-01T00:00:00Z", 0.1, 1)],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The service serves (nothing yet) while its consumer retries.
    assert_eq!(online_values(&server, 7).await, (None, None));

    use pb::value::Val;
    link.set_up(true);
    wait_for(
        &server,
        7,
        (Some(Val::DoubleVal(0.1)), Some(Val::Int64Val(1))),
    )
    .await;

    // The link drops the open stream; the consumer reconnects and resumes from its commits.
    link.set_up(false);
    produce(
        &mut hub.client,
        &hub.topic,
        &[driver_event(7, "2026-01-01T01:00:00Z", 0.2, 2)],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    link.set_up(true);
    wait_for(
        &server,
        7,
        (Some(Val::DoubleVal(0.2)), Some(Val::Int64Val(2))),
    )
    .await;

    server.stop().await;
    hub.datahub.stop().await;
}
