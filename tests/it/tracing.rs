//! Tracing across the platform: one trace follows a record from Produce through the lake sink and the
//! feature store's streaming materialization to a prediction.
//!
//! The schema registry, the data hub, the feature store (Redis online store) and model serving run as
//! separate processes (`plinth_tests::process`), each exporting spans over OTLP/gRPC to a receiver in
//! this test. A driver record is produced with a fixed W3C `traceparent` in the request metadata; the
//! data hub carries the trace into the record's Kafka headers, from where the lake sink's file span and
//! the feature store's batch span continue it. A prediction for that driver is asked with the same
//! `traceparent`. The trace then holds spans of at least three services, and the materialization
//! span's parent chain reaches the Produce span: the Kafka hop kept the context.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use plinth_proto::datahub::v1 as hub;
use plinth_proto::featurestore::v1 as fs;
use plinth_proto::ids::{Subject, TopicName};
use plinth_proto::schemaregistry::v1 as sr;
use plinth_proto::serving::v1 as pb;
use plinth_tests::process::{OnlineStore, ProcessOptions, ServiceProcess};
use plinth_tests::{serving_models, start_broker, unique_name};
use serde_json::json;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";
const DRIVER: i64 = 4242;
/// How long spans may take to arrive.
const SPAN_WAIT: Duration = Duration::from_secs(30);

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    links: Vec<String>,
}

type Spans = Arc<Mutex<Vec<Span>>>;

/// The OTLP/gRPC trace receiver: keeps every span with its resource's `service.name`.
struct Traces(Spans);

#[tonic::async_trait]
impl TraceService for Traces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(
                    |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                        Value::StringValue(name) => Some(name.clone()),
                        _ => None,
                    },
                )
                .unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                spans.push(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    links: span.links.iter().map(|link| hex(&link.span_id)).collect(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Metrics are exported too; accepted and dropped.
struct Metrics;

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Starts the receiver on a free port; its endpoint URL and what it collects.
async fn start_receiver() -> (String, Spans) {
    let spans = Spans::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Traces(spans.clone())))
            .add_service(MetricsServiceServer::new(Metrics))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (endpoint, spans)
}

/// A request carrying the test's `traceparent`, as a caller inside trace [`TRACE_ID`] would send it.
fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    request
}

fn definitions(topic: &str) -> String {
    format!(
        r#"
entities:
  - name: driver
    join_keys: [{{name: driver_id, type: int64}}]
sources:
  - name: driver_stream
    stream: {{topic: {topic}}}
    timestamp_field: event_timestamp
feature_views:
  - name: driver_hourly
    entities: [driver]
    source: driver_stream
    online: true
    features:
      - {{name: conv_rate, type: float64}}
      - {{name: acc_rate, type: float64}}
      - {{name: avg_daily_trips, type: int64}}
feature_services:
  - name: driver_model_v1
    features: [driver_hourly]
"#
    )
}

/// driver_hourly:conv_rate of [`DRIVER`] as the feature store serves it (no trace context).
async fn served_conv_rate(feature_store: &ServiceProcess) -> Option<fs::value::Val> {
    let mut client = fs::feature_store_service_client::FeatureStoreServiceClient::new(
        feature_store.channel().await,
    );
    let answer = client
        .get_online_features(fs::GetOnlineFeaturesRequest {
            features: Some(fs::FeatureSelection {
                selection: Some(fs::feature_selection::Selection::Features(
                    fs::FeatureList {
                        refs: vec!["driver_hourly:conv_rate".to_owned()],
                    },
                )),
            }),
            entities: HashMap::from([(
                "driver_id".to_owned(),
                fs::RepeatedValue {
                    val: vec![fs::Value {
                        val: Some(fs::value::Val::Int64Val(DRIVER)),
                    }],
                },
            )]),
            full_feature_names: false,
        })
        .await
        .unwrap()
        .into_inner();
    answer.results[1].values[0].val.clone()
}

/// The spans of trace [`TRACE_ID`] received so far.
fn trace_spans(spans: &Spans) -> Vec<Span> {
    spans
        .lock()
        .unwrap()
        .iter()
        .filter(|span| span.trace_id == TRACE_ID)
        .cloned()
        .collect()
}

/// The names `service/span` of `span`'s ancestors within `trace`, nearest first.
fn ancestors(trace: &[Span], span: &Span) -> Vec<String> {
    let mut chain = Vec::new();
    let mut parent = span.parent_span_id.clone();
    while let Some(next) = trace.iter().find(|candidate| candidate.span_id == parent) {
        chain.push(format!("{}/{}", next.service, next.name));
        parent = next.parent_span_id.clone();
        if chain.len() > 32 {
            break;
        }
    }
    chain
}

/// True when `span`'s parent chain within `trace` reaches the data hub's Produce span.
fn reaches_produce(trace: &[Span], span: &Span) -> bool {
    ancestors(trace, span)
        .iter()
        .any(|name| name == "datahub/plinth.datahub.v1.DataHubService/Produce")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_record_from_produce_to_a_prediction() {
    let (endpoint, spans) = start_receiver().await;
    let options = || ProcessOptions::with_otlp(&endpoint);
    let broker = start_broker().await;
    let registry = ServiceProcess::schema_registry(None, options()).await;
    let datahub = ServiceProcess::datahub(
        &registry.grpc_url(),
        &broker.bootstrap_servers(),
        None,
        None,
        options(),
    )
    .await;
    let feature_store = ServiceProcess::feature_store(
        Some(&datahub.grpc_url()),
        OnlineStore::Redis {
            url: "redis://127.0.0.1:6379/0".to_owned(),
            key_prefix: unique_name("tracing"),
        },
        None,
        None,
        options(),
    )
    .await;
    let models = format!("file://{}", serving_models().display());
    let serving = ServiceProcess::serving(
        &models,
        &["driver"],
        Some(&feature_store.grpc_url()),
        options(),
    )
    .await;

    // A topic bound to a JSON schema, and a feature view streaming from it.
    let topic = unique_name("driver-trace").replace('-', "_");
    let subject = format!("{topic}-value");
    let schema = json!({
        "type": "object",
        "properties": {
            "driver_id": {"type": "integer"},
            "event_timestamp": {"type": "string"},
            "conv_rate": {"type": "number"},
            "acc_rate": {"type": "number"},
            "avg_daily_trips": {"type": "integer"}
        },
        "required": ["driver_id", "event_timestamp"]
    });
    sr::schema_registry_service_client::SchemaRegistryServiceClient::new(registry.channel().await)
        .register_schema(sr::RegisterSchemaRequest {
            subject: Some(Subject::new(&subject)),
            schema: Some(sr::Schema {
                schema: schema.to_string(),
                schema_type: sr::SchemaType::Json.into(),
                references: vec![],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut hub_client =
        hub::data_hub_service_client::DataHubServiceClient::new(datahub.channel().await);
    hub_client
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
    fs::feature_store_service_client::FeatureStoreServiceClient::new(feature_store.channel().await)
        .apply_definitions(fs::ApplyDefinitionsRequest {
            files: vec![fs::DefinitionFile {
                path: "features/driver.yaml".to_owned(),
                content: definitions(&topic),
            }],
            prune: false,
        })
        .await
        .unwrap();

    // The record, produced inside the caller's trace.
    let record = json!({
        "driver_id": DRIVER,
        "event_timestamp": chrono::Utc::now().to_rfc3339(),
        "conv_rate": 0.9,
        "acc_rate": 0.5,
        "avg_daily_trips": 12
    });
    let produced = hub_client
        .produce(traced(hub::ProduceRequest {
            batch: Some(hub::ProduceBatch {
                topic: Some(TopicName::new(&topic)),
                records: vec![hub::ProduceRecord {
                    value: record.to_string(),
                    ..Default::default()
                }],
                accept_partial: false,
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(produced.written_count, 1, "{produced:?}");

    // The feature store materializes it from the topic.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let served = served_conv_rate(&feature_store).await;
        if served == Some(fs::value::Val::DoubleVal(0.9)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "driver {DRIVER} is still {served:?} after 30 s; the feature store's output ends with:\n{}",
            feature_store.output_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The lake sink lands it in a file.
    hub_client
        .create_lake_sink(hub::CreateLakeSinkRequest {
            topic: Some(TopicName::new(&topic)),
            ..Default::default()
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sinks = hub_client
            .list_lake_sinks(hub::ListLakeSinksRequest {
                topic: Some(TopicName::new(&topic)),
            })
            .await
            .unwrap()
            .into_inner()
            .sinks;
        if sinks.first().is_some_and(|sink| sink.last_file.is_some()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no lake file after 30 s: {sinks:?}; the data hub's output ends with:\n{}",
            datahub.output_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A prediction for that driver, in the same trace.
    let prediction = pb::serving_service_client::ServingServiceClient::new(serving.channel().await)
        .predict_by_key(traced(pb::PredictByKeyRequest {
            model: "driver".to_owned(),
            entities: HashMap::from([(
                "driver_id".to_owned(),
                fs::RepeatedValue {
                    val: vec![fs::Value {
                        val: Some(fs::value::Val::Int64Val(DRIVER)),
                    }],
                },
            )]),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prediction.predictions.len(), 1, "{prediction:?}");
    assert!(
        prediction.predictions[0].missing_features.is_empty(),
        "{prediction:?}"
    );

    // Every service exports within 100 ms of a span's end; wait until the whole journey is in.
    let deadline = tokio::time::Instant::now() + SPAN_WAIT;
    let trace = loop {
        let trace = trace_spans(&spans);
        let services: BTreeSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
        let has = |service: &str, name: &str| {
            trace
                .iter()
                .any(|span| span.service == service && span.name == name)
        };
        if services.len() >= 3
            && has("datahub", "plinth.datahub.v1.DataHubService/Produce")
            && has("datahub", "lake.write_file")
            && has("feature-store", "materialize.stream_batch")
            && has(
                plinth_serving::SERVICE_NAME,
                "plinth.serving.v1.ServingService/PredictByKey",
            )
            // The feature store exports its GetOnlineFeatures span on its own schedule, possibly
            // after the serving service has exported the PredictByKey span around it.
            && trace.iter().any(|span| {
                span.service == plinth_feature_store::SERVICE_NAME
                    && span.name.ends_with("/GetOnlineFeatures")
            })
        {
            break trace;
        }
        if tokio::time::Instant::now() >= deadline {
            let names: Vec<String> = trace
                .iter()
                .map(|span| format!("{}/{}", span.service, span.name))
                .collect();
            panic!(
                "after {SPAN_WAIT:?} trace {TRACE_ID} holds {names:?}; every span received: {:?}",
                spans
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|span| format!("{}/{} in {}", span.service, span.name, span.trace_id))
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let services: BTreeSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
    assert!(services.len() >= 3, "{services:?}");
    for service in [
        plinth_datahub::SERVICE_NAME,
        plinth_feature_store::SERVICE_NAME,
        plinth_serving::SERVICE_NAME,
    ] {
        assert!(
            services.contains(service),
            "{service} missing from {services:?}"
        );
    }

    // The caller's span is the parent of the Produce span and of the prediction's.
    let produce = trace
        .iter()
        .find(|span| span.name == "plinth.datahub.v1.DataHubService/Produce")
        .unwrap();
    assert_eq!(produce.parent_span_id, CALLER_SPAN_ID);
    let predict = trace
        .iter()
        .find(|span| span.name == "plinth.serving.v1.ServingService/PredictByKey")
        .unwrap();
    assert_eq!(predict.parent_span_id, CALLER_SPAN_ID);

    // Across Kafka: the materialization and the lake file continue the Produce span.
    let materialize = trace
        .iter()
        .find(|span| span.name == plinth_feature_store::streaming::MATERIALIZE_SPAN)
        .unwrap();
    assert!(
        reaches_produce(&trace, materialize),
        "materialize's ancestors: {:?}",
        ancestors(&trace, materialize)
    );
    let lake_file = trace
        .iter()
        .find(|span| span.name == "lake.write_file")
        .unwrap();
    assert!(
        reaches_produce(&trace, lake_file),
        "lake.write_file's ancestors: {:?}",
        ancestors(&trace, lake_file)
    );
    // The prediction read its features from the feature store inside the same trace.
    assert!(
        trace
            .iter()
            .any(|span| span.service == plinth_feature_store::SERVICE_NAME
                && span.name.ends_with("/GetOnlineFeatures")
                && ancestors(&trace, span)
                    .iter()
                    .any(|name| name.ends_with("/PredictByKey"))),
        "no GetOnlineFeatures under PredictByKey in {:?}",
        trace
            .iter()
            .map(|span| format!("{}/{}", span.service, span.name))
            .collect::<Vec<_>>()
    );
    // One record, one context: the batch span has its parent and nothing to link.
    assert!(materialize.links.is_empty(), "{materialize:?}");

    serving.stop().await;
    feature_store.stop().await;
    datahub.stop().await;
    registry.stop().await;
}
