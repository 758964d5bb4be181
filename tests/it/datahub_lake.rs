//! The data lake end to end: a real tansu broker, a real schema registry, lake sinks writing Parquet to a
//! local directory and to the s3rver S3 test server, crashes and broker outages, schema evolution, and
//! Arrow Flight scans and writes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, TimestampMillisecondType};
use arrow_flight::{FlightClient, FlightDescriptor, Ticket};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use plinth_datahub::config::{KafkaConfig, LakeConfig};
use plinth_datahub::domain::lake_path::LakeFile;
use plinth_datahub::domain::wire_format;
use plinth_datahub::flight::{ScanTicket, WriteCommand, flight_service};
use plinth_datahub::lake::{Lake, LakeContext};
use plinth_datahub::local_broker::{LocalBroker, Storage};
use plinth_datahub::store::{Store, TopicRow};
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{DatasetName, Subject, TopicName};
use plinth_proto::schemaregistry::v1 as registry_pb;
use plinth_schema_registry::client::RegistryClient;
use plinth_schema_registry::domain::schema::SchemaDraft;
use plinth_tests::s3::S3Server;
use plinth_tests::{RegistryServer, TempDir, unique_name};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

/// The longest a test waits for the lake to reach a state.
const WAIT: Duration = Duration::from_secs(90);
/// 2026-03-01T10:00:00Z and the next day, in ms.
const DAY_ONE_MS: i64 = 1_772_359_200_000;
const DAY_TWO_MS: i64 = DAY_ONE_MS + 86_400_000;

fn order_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "customer": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "vip": {"type": "boolean"}},
                "required": ["name"]
            },
            "items": {"type": "array", "items": {"type": "string"}},
            "placed_at": {"type": "string", "format": "date-time"}
        },
        "required": ["id", "customer", "placed_at"],
        // A closed content model, so that adding an optional property is a compatible change.
        "additionalProperties": false
    })
}

fn order(id: i64) -> Value {
    json!({
        "id": id,
        "customer": {"name": format!("customer-{id}"), "vip": id % 2 == 0},
        "items": ["a", format!("item-{id}")],
        "placed_at": "2026-03-01T09:30:00.250+01:00"
    })
}

/// A registry, a broker, the gateway's database and a lake directory for one test.
struct Harness {
    registry: RegistryServer,
    registry_client: Arc<RegistryClient>,
    broker: LocalBroker,
    store: Store,
    dir: TempDir,
    producer: FutureProducer,
}

impl Harness {
    async fn start() -> Self {
        let binary = plinth_datahub::local_broker::find_tansu()
            .expect("tansu is missing: run `bash deploy/scripts/tools.sh kafka` (make test does)");
        let broker = LocalBroker::start(&binary, "127.0.0.1:0".parse().unwrap(), Storage::Memory)
            .await
            .unwrap();
        Self::with_broker(broker).await
    }

    /// A harness whose broker is reached only through a proxy that can cut every connection.
    async fn start_behind_proxy() -> (Self, plinth_tests::TcpOutage) {
        let (broker, proxy) = plinth_tests::start_broker_behind_proxy().await;
        (Self::with_broker(broker).await, proxy)
    }

    async fn with_broker(broker: LocalBroker) -> Self {
        let registry = RegistryServer::start().await;
        let channel = plinth_runtime::client::connect(
            &registry.grpc_url().parse().unwrap(),
            None,
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let registry_client = Arc::new(RegistryClient::new(
            channel,
            SchemaDraft::Draft7,
            Duration::ZERO,
        ));
        let dir = TempDir::new("plinth-lake-test");
        let store = Store::connect(
            &format!("sqlite://{}?mode=rwc", dir.0.join("datahub.db").display()),
            4,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let producer = producer(&broker.bootstrap_servers());
        Self {
            registry,
            registry_client,
            broker,
            store,
            dir,
            producer,
        }
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: self.broker.bootstrap_servers(),
            session_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            ..KafkaConfig::default()
        }
    }

    fn file_lake(&self) -> LakeConfig {
        LakeConfig {
            root: format!("file://{}", self.dir.0.join("lake").display()),
            max_file_rows: 7,
            max_file_age: Duration::from_millis(300),
            ..LakeConfig::default()
        }
    }

    fn lake(&self, config: LakeConfig, replica_id: &str) -> Arc<Lake> {
        Lake::new(LakeContext {
            store: self.store.clone(),
            registry: Arc::clone(&self.registry_client),
            kafka: self.kafka(),
            config,
            replica_id: replica_id.to_owned(),
        })
        .unwrap()
    }

    async fn register(&self, subject: &str, schema: &Value) -> u32 {
        let mut client = self.registry.grpc_client(None).await;
        let response = client
            .register_schema(registry_pb::RegisterSchemaRequest {
                subject: Some(Subject::new(subject)),
                schema: Some(registry_pb::Schema {
                    schema: schema.to_string(),
                    schema_type: registry_pb::SchemaType::Json.into(),
                    references: vec![],
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        response.registered.unwrap().id.unwrap().value
    }

    /// Creates the topic on the broker and binds it in the gateway's store.
    async fn topic(&self, subject: &str, partitions: i32) -> TopicName {
        let name = unique_name("lake");
        self.create_topic_on_broker(&name, partitions).await;
        self.store
            .insert_topic(&TopicRow {
                name: TopicName::new(name.clone()),
                value_subject: Subject::new(subject),
                value_version: None,
                key_subject: None,
                key_version: None,
                partition_count: partitions,
                replication_factor: 1,
                retention_ms: None,
                create_time_ms: 0,
            })
            .await
            .unwrap();
        TopicName::new(name)
    }

    async fn create_topic_on_broker(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.broker.bootstrap_servers())
            .create()
            .unwrap();
        let results = admin
            .create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap();
        for result in results {
            result.unwrap();
        }
    }

    async fn produce(
        &self,
        topic: &TopicName,
        partition: i32,
        timestamp_ms: i64,
        payload: Vec<u8>,
    ) -> i64 {
        let delivery = self
            .producer
            .send(
                FutureRecord::<(), _>::to(topic.as_str())
                    .partition(partition)
                    .timestamp(timestamp_ms)
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(err, _)| err)
            .unwrap();
        delivery.offset
    }

    async fn produce_json(
        &self,
        topic: &TopicName,
        partition: i32,
        timestamp_ms: i64,
        schema_id: u32,
        value: &Value,
    ) -> i64 {
        let framed = wire_format::encode(schema_id, value.to_string().as_bytes());
        self.produce(topic, partition, timestamp_ms, framed).await
    }
}

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .unwrap()
}

async fn create_sink(lake: &Lake, topic: &TopicName) -> DatasetName {
    let sink = lake
        .create_sink(pb::CreateLakeSinkRequest {
            topic: Some(topic.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    sink.dataset.unwrap()
}

/// One row of the lake: where it came from and its value columns.
#[derive(Debug, Clone)]
struct LakeRow {
    partition: i32,
    offset: i64,
    id: Option<i64>,
    file: String,
}

/// Reads every Parquet file of `dataset` under `prefix` in `store`, with the file it came from.
async fn read_lake(
    store: &dyn ObjectStore,
    prefix: &Path,
    dataset: &str,
) -> (Vec<LakeRow>, Vec<(String, RecordBatch)>) {
    let dataset_prefix = Path::from_iter(prefix.parts().chain([dataset.into()]));
    let listed: Vec<_> = store
        .list(Some(&dataset_prefix))
        .try_collect()
        .await
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut batches = Vec::new();
    for meta in listed {
        let relative: String = meta
            .location
            .prefix_match(prefix)
            .unwrap()
            .map(|part| part.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join("/");
        let bytes = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let partitions = batch
                .column_by_name("_kafka_partition")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int32Type>()
                .clone();
            let offsets = batch
                .column_by_name("_kafka_offset")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            let ids = batch
                .column_by_name("id")
                .map(|ids| ids.as_primitive::<Int64Type>().clone());
            for row in 0..batch.num_rows() {
                rows.push(LakeRow {
                    partition: partitions.value(row),
                    offset: offsets.value(row),
                    id: ids
                        .as_ref()
                        .and_then(|ids| (!ids.is_null(row)).then(|| ids.value(row))),
                    file: relative.clone(),
                });
            }
            batches.push((relative.clone(), batch));
        }
    }
    (rows, batches)
}

fn local_store(harness: &Harness) -> (Arc<dyn ObjectStore>, Path) {
    let root = harness.dir.0.join("lake");
    std::fs::create_dir_all(&root).unwrap();
    let store = object_store::local::LocalFileSystem::new_with_prefix(root).unwrap();
    (Arc::new(store), Path::default())
}

/// Polls `read_lake` until it holds `expected` rows (or more), at most [`WAIT`].
async fn wait_for_rows(
    store: &dyn ObjectStore,
    prefix: &Path,
    dataset: &str,
    expected: usize,
) -> Vec<LakeRow> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (rows, _) = read_lake(store, prefix, dataset).await;
        if rows.len() >= expected {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lake holds {} of {expected} rows of {dataset} after {WAIT:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every (partition, offset) is in the lake exactly once and each file's name matches its rows.
fn assert_exactly_once(rows: &[LakeRow], expected: &BTreeSet<(i32, i64)>) {
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for row in rows {
        *seen.entry((row.partition, row.offset)).or_default() += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        duplicates.is_empty(),
        "records in the lake more than once: {duplicates:?}"
    );
    let keys: BTreeSet<(i32, i64)> = seen.keys().copied().collect();
    assert_eq!(
        &keys, expected,
        "the lake holds exactly the produced records"
    );
    for row in rows {
        let (_, file) =
            LakeFile::parse(&row.file).unwrap_or_else(|err| panic!("{}: {err}", row.file));
        assert_eq!(file.partition(), row.partition, "{}", row.file);
        assert!(
            (file.first_offset()..=file.last_offset()).contains(&row.offset),
            "{} holds offset {}",
            row.file,
            row.offset
        );
    }
}

#[tokio::test]
async fn lake_sink_lands_json_schema_records_as_parquet_by_partition_and_event_date() {
    let harness = Harness::start().await;
    let subject = unique_name("orders-value");
    let schema_id = harness.register(&subject, &order_schema()).await;
    let topic = harness.topic(&subject, 2).await;
    let mut expected = BTreeSet::new();
    for id in 0..20 {
        let partition = i32::try_from(id % 2).unwrap();
        let timestamp = if id < 10 { DAY_ONE_MS } else { DAY_TWO_MS };
        let offset = harness
            .produce_json(&topic, partition, timestamp + id, schema_id, &order(id))
            .await;
        expected.insert((partition, offset));
    }
    let lake = harness.lake(harness.file_lake(), "replica-a");
    lake.start().await;
    let dataset = create_sink(&lake, &topic).await;
    let (store, prefix) = local_store(&harness);
    let rows = wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 20).await;
    assert_exactly_once(&rows, &expected);

    let (_, batches) = read_lake(store.as_ref(), &prefix, dataset.as_str()).await;
    let dates: BTreeSet<String> = batches
        .iter()
        .map(|(file, _)| file.split('/').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        dates,
        BTreeSet::from([
            "event_date=2026-03-01".to_owned(),
            "event_date=2026-03-02".to_owned()
        ])
    );
    let (_, batch) = &batches[0];
    let schema = batch.schema();
    assert!(matches!(
        schema.field_with_name("customer").unwrap().data_type(),
        DataType::Struct(_)
    ));
    assert!(matches!(
        schema.field_with_name("items").unwrap().data_type(),
        DataType::List(_)
    ));
    assert_eq!(
        schema.field_with_name("placed_at").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        schema
            .field_with_name("_kafka_timestamp")
            .unwrap()
            .data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    let customers = batch.column_by_name("customer").unwrap().as_struct();
    let names = customers.column_by_name("name").unwrap().as_string::<i32>();
    let ids = batch
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(names.value(0), format!("customer-{}", ids.value(0)));
    let placed = batch
        .column_by_name("placed_at")
        .unwrap()
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    // 09:30:00.250+01:00 is 08:30:00.250 UTC.
    assert_eq!(placed.value(0), 1_772_353_800_250_000);
    let items = batch.column_by_name("items").unwrap().as_list::<i32>();
    assert_eq!(items.value(0).as_string::<i32>().value(0), "a");

    // Progress is visible: every partition stands after its last record.
    let sinks = lake
        .list_sinks(pb::ListLakeSinksRequest {
            topic: Some(topic.clone()),
        })
        .await
        .unwrap();
    let next: BTreeMap<i32, i64> = sinks[0]
        .partitions
        .iter()
        .map(|p| (p.partition, p.next_offset))
        .collect();
    assert_eq!(next, BTreeMap::from([(0, 10), (1, 10)]));
    assert!(sinks[0].last_file.is_some());
    let described = lake
        .describe_dataset(pb::DescribeDatasetRequest {
            name: Some(dataset.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(described.summary.unwrap().row_count, 20);
    assert!(
        described
            .fields
            .iter()
            .any(|field| field.name == "customer" && field.children.len() == 2)
    );
    assert!(!described.arrow_schema.is_empty());

    // Paused: a produced record stays out of the lake; resumed: it lands.
    lake.pause_sink(&dataset).await.unwrap();
    let offset = harness
        .produce_json(&topic, 0, DAY_TWO_MS, schema_id, &order(100))
        .await;
    expected.insert((0, offset));
    lake.resume_sink(&dataset).await.unwrap();
    let rows = wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 21).await;
    assert_exactly_once(&rows, &expected);
    assert!(lake.topic_has_sink(&topic).await.unwrap());
    let duplicate = lake
        .create_sink(pb::CreateLakeSinkRequest {
            topic: Some(topic.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        duplicate.code,
        plinth_runtime::error::ErrorCode::AlreadyExists
    );
    lake.shutdown().await;
}

#[test]
fn lake_sink_killed_mid_way_resumes_with_every_record_exactly_once() {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let harness = main.block_on(Harness::start());
    let subject = unique_name("orders-value");
    let (schema_id, topic) = main.block_on(async {
        let schema_id = harness.register(&subject, &order_schema()).await;
        (schema_id, harness.topic(&subject, 3).await)
    });
    let mut expected = BTreeSet::new();
    main.block_on(async {
        for id in 0..600 {
            let partition = i32::try_from(id % 3).unwrap();
            let offset = harness
                .produce_json(&topic, partition, DAY_ONE_MS + id, schema_id, &order(id))
                .await;
            expected.insert((partition, offset));
        }
    });
    let (store, prefix) = local_store(&harness);

    // The first gateway runs in a runtime of its own, killed (dropped without shutdown) once some files
    // are in the lake: tasks stop wherever they are, mid-buffer or mid-write.
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let lake = harness.lake(harness.file_lake(), "replica-a");
    let dataset = first.block_on(async {
        lake.start().await;
        create_sink(&lake, &topic).await
    });
    main.block_on(wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 8));
    first.shutdown_background();
    drop(lake);
    let (before_restart, _) = main.block_on(read_lake(store.as_ref(), &prefix, dataset.as_str()));
    eprintln!(
        "killed with {} of 600 records in the lake",
        before_restart.len()
    );

    main.block_on(async {
        for id in 600..700 {
            let partition = i32::try_from(id % 3).unwrap();
            let offset = harness
                .produce_json(&topic, partition, DAY_ONE_MS + id, schema_id, &order(id))
                .await;
            expected.insert((partition, offset));
        }
        // The same replica comes back (its lease is its own), and so does the sink.
        let lake = harness.lake(harness.file_lake(), "replica-a");
        lake.start().await;
        let rows = wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 700).await;
        assert_exactly_once(&rows, &expected);
        lake.shutdown().await;
        let (after_shutdown, _) = read_lake(store.as_ref(), &prefix, dataset.as_str()).await;
        assert_eq!(after_shutdown.len(), 700);
    });
}

#[tokio::test]
async fn lake_schema_evolution_adds_a_column_and_old_files_still_read() {
    let harness = Harness::start().await;
    let subject = unique_name("orders-value");
    let v1 = harness.register(&subject, &order_schema()).await;
    let topic = harness.topic(&subject, 1).await;
    for id in 0..5 {
        harness
            .produce_json(&topic, 0, DAY_ONE_MS, v1, &order(id))
            .await;
    }
    let lake = harness.lake(harness.file_lake(), "replica-a");
    lake.start().await;
    let dataset = create_sink(&lake, &topic).await;
    let (store, prefix) = local_store(&harness);
    wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 5).await;

    let mut v2_schema = order_schema();
    v2_schema["properties"]["coupon"] = json!({"type": "string"});
    let v2 = harness.register(&subject, &v2_schema).await;
    assert_ne!(v1, v2);
    for id in 5..10 {
        let mut value = order(id);
        value["coupon"] = json!(format!("coupon-{id}"));
        harness
            .produce_json(&topic, 0, DAY_ONE_MS, v2, &value)
            .await;
    }
    wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 10).await;

    let described = lake
        .describe_dataset(pb::DescribeDatasetRequest {
            name: Some(dataset.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let coupon = described
        .fields
        .iter()
        .find(|field| field.name == "coupon")
        .expect("the new column");
    assert!(coupon.nullable);

    let flight = FlightServer::start(Arc::clone(&lake)).await;
    let batches = flight
        .scan(&ScanTicket {
            dataset: dataset.to_string(),
            columns: vec!["id".into(), "coupon".into()],
            ..Default::default()
        })
        .await;
    let mut coupons: BTreeMap<i64, Option<String>> = BTreeMap::new();
    for batch in &batches {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let values = batch.column(1).as_string::<i32>();
        for row in 0..batch.num_rows() {
            coupons.insert(
                ids.value(row),
                (!values.is_null(row)).then(|| values.value(row).to_owned()),
            );
        }
    }
    assert_eq!(coupons.len(), 10);
    assert_eq!(
        coupons[&0], None,
        "old files read with nulls in the new column"
    );
    assert_eq!(coupons[&7].as_deref(), Some("coupon-7"));
    lake.shutdown().await;
}

#[tokio::test]
async fn lake_sink_writes_to_an_s3_server() {
    let harness = Harness::start().await;
    let s3 = S3Server::start(&harness.dir).await;
    let subject = unique_name("orders-value");
    let schema_id = harness.register(&subject, &order_schema()).await;
    let topic = harness.topic(&subject, 2).await;
    let mut expected = BTreeSet::new();
    for id in 0..30 {
        let partition = i32::try_from(id % 2).unwrap();
        let offset = harness
            .produce_json(&topic, partition, DAY_ONE_MS + id, schema_id, &order(id))
            .await;
        expected.insert((partition, offset));
    }
    let config = LakeConfig {
        root: "s3://lake/plinth".to_owned(),
        options: s3.options(),
        ..harness.file_lake()
    };
    let lake = harness.lake(config, "replica-a");
    lake.start().await;
    let dataset = create_sink(&lake, &topic).await;
    let store = s3.store();
    let prefix = Path::from("plinth");
    let rows = wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 30).await;
    assert_exactly_once(&rows, &expected);
    let listed = lake
        .list_datasets(pb::ListDatasetsRequest::default())
        .await
        .unwrap();
    let summary = listed
        .datasets
        .iter()
        .find(|summary| summary.name.as_ref() == Some(&dataset))
        .unwrap();
    assert_eq!(summary.row_count, 30);
    assert!(summary.url_prefix.starts_with("s3://lake/plinth"));
    lake.shutdown().await;
}

#[tokio::test]
async fn lake_sink_rides_out_a_broker_outage_exactly_once() {
    let (mut harness, proxy) = Harness::start_behind_proxy().await;
    let subject = unique_name("orders-value");
    let schema_id = harness.register(&subject, &order_schema()).await;
    let topic = harness.topic(&subject, 1).await;
    for id in 0..20 {
        harness
            .produce_json(&topic, 0, DAY_ONE_MS, schema_id, &order(id))
            .await;
    }
    let lake = harness.lake(harness.file_lake(), "replica-a");
    lake.start().await;
    let dataset = create_sink(&lake, &topic).await;
    let (store, prefix) = local_store(&harness);
    wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 14).await;

    // The broker becomes unreachable under the running sink (every connection dropped, new ones
    // refused), then comes back with its records: the sink continues where the lake stands.
    proxy.set_up(false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set_up(true);
    harness.producer = producer(&harness.broker.bootstrap_servers());
    for id in 20..40 {
        harness
            .produce_json(&topic, 0, DAY_ONE_MS, schema_id, &order(id))
            .await;
    }
    let rows = wait_for_rows(store.as_ref(), &prefix, dataset.as_str(), 40).await;
    let expected: BTreeSet<(i32, i64)> = (0..40).map(|offset| (0, offset)).collect();
    assert_exactly_once(&rows, &expected);
    let ids: BTreeSet<i64> = rows.iter().filter_map(|row| row.id).collect();
    assert_eq!(ids, (0..40).collect(), "every record, none twice");
    let sinks = lake
        .list_sinks(pb::ListLakeSinksRequest::default())
        .await
        .unwrap();
    let sink = sinks
        .iter()
        .find(|sink| sink.dataset.as_ref() == Some(&dataset))
        .unwrap();
    assert_eq!(
        sink.state,
        pb::LakeSinkState::Running as i32,
        "{}",
        sink.error
    );
    lake.shutdown().await;
}

#[tokio::test]
async fn lake_sink_fails_on_a_record_not_in_the_wire_format_naming_its_offset() {
    let harness = Harness::start().await;
    let subject = unique_name("orders-value");
    let schema_id = harness.register(&subject, &order_schema()).await;
    let topic = harness.topic(&subject, 1).await;
    for id in 0..3 {
        harness
            .produce_json(&topic, 0, DAY_ONE_MS, schema_id, &order(id))
            .await;
    }
    let bad_offset = harness
        .produce(&topic, 0, DAY_ONE_MS, order(3).to_string().into_bytes())
        .await;
    let lake = harness.lake(harness.file_lake(), "replica-a");
    lake.start().await;
    let dataset = create_sink(&lake, &topic).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let sink = loop {
        let sinks = lake
            .list_sinks(pb::ListLakeSinksRequest::default())
            .await
            .unwrap();
        let sink = sinks
            .into_iter()
            .find(|sink| sink.dataset.as_ref() == Some(&dataset))
            .unwrap();
        if sink.state == pb::LakeSinkState::Failed as i32 {
            break sink;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sink did not fail"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        sink.error
            .contains(&format!("partition 0 offset {bad_offset}"))
            && sink.error.contains("wire format"),
        "{}",
        sink.error
    );
    // The records before the bad one are in the lake; the sink stands at the bad one.
    let (store, prefix) = local_store(&harness);
    let (rows, _) = read_lake(store.as_ref(), &prefix, dataset.as_str()).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(sink.partitions[0].next_offset, bad_offset);
    lake.shutdown().await;
}

#[tokio::test]
async fn flight_put_validates_rows_and_scan_filters_time_and_projects_columns() {
    let harness = Harness::start().await;
    let subject = unique_name("readings-value");
    harness
        .register(
            &subject,
            &json!({
                "type": "object",
                "properties": {"sensor": {"type": "string"}, "value": {"type": "integer", "minimum": 0}},
                "required": ["sensor", "value"]
            }),
        )
        .await;
    let lake = harness.lake(harness.file_lake(), "replica-a");
    let flight = FlightServer::start(Arc::clone(&lake)).await;
    let dataset = unique_name("readings");
    let command = WriteCommand {
        dataset: dataset.clone(),
        subject: subject.clone(),
        url_prefix: None,
    };

    let schema = Arc::new(Schema::new(vec![
        Field::new("sensor", DataType::Utf8, false),
        Field::new("value", DataType::Int64, true),
        Field::new(
            "_kafka_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ]));
    let valid = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["s1", "s2", "s3", "s4"])),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(
                arrow::array::TimestampMillisecondArray::from(vec![
                    DAY_ONE_MS,
                    DAY_ONE_MS + 1,
                    DAY_TWO_MS,
                    DAY_TWO_MS + 1,
                ])
                .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap();
    let summary = flight.put(&command, vec![valid]).await.unwrap();
    assert_eq!(summary["rows"], 4);
    assert_eq!(
        summary["files"].as_array().unwrap().len(),
        2,
        "one file per event date: {summary}"
    );

    let invalid = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["s5", "s6"])),
            Arc::new(Int64Array::from(vec![Some(5), Some(-6)])),
            Arc::new(
                arrow::array::TimestampMillisecondArray::from(vec![DAY_ONE_MS, DAY_ONE_MS])
                    .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap();
    let status = flight.put(&command, vec![invalid]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("row 1") && status.message().contains("/value"),
        "{}",
        status.message()
    );

    // Day two only, two columns, in the asked order.
    let batches = flight
        .scan(&ScanTicket {
            dataset: dataset.clone(),
            start_time: Some("2026-03-02T00:00:00Z".into()),
            end_time: Some("2026-03-03T00:00:00Z".into()),
            columns: vec!["value".into(), "_kafka_timestamp".into()],
            limit: None,
        })
        .await;
    let values: Vec<i64> = batches
        .iter()
        .flat_map(|batch| {
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(
        values,
        vec![3, 4],
        "only day two, the invalid put wrote nothing"
    );
    let columns: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect();
    assert_eq!(columns, vec!["value", "_kafka_timestamp"]);
    let times = batches[0]
        .column(1)
        .as_primitive::<TimestampMillisecondType>();
    assert_eq!(times.value(0), DAY_TWO_MS);

    let limited = flight
        .scan(&ScanTicket {
            dataset: dataset.clone(),
            limit: Some(3),
            ..Default::default()
        })
        .await;
    assert_eq!(limited.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    let partitions = limited[0]
        .column_by_name("_kafka_partition")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int32Type>()
        .clone();
    assert_eq!(partitions, Int32Array::from(vec![-1; partitions.len()]));

    let described = lake
        .describe_dataset(pb::DescribeDatasetRequest {
            name: Some(DatasetName::new(dataset.clone())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(described.summary.unwrap().row_count, 4);
    assert!(
        described
            .files
            .iter()
            .all(|file| file.partition == -1 && file.url.contains("/written/"))
    );
}

/// The Flight service on a loopback port with a client.
struct FlightServer {
    channel: tonic::transport::Channel,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FlightServer {
    async fn start(lake: Arc<Lake>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(flight_service(lake))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            channel,
            _stop: stop,
        }
    }

    async fn scan(&self, ticket: &ScanTicket) -> Vec<RecordBatch> {
        let mut client = FlightClient::new(self.channel.clone());
        let stream = client
            .do_get(Ticket::new(serde_json::to_vec(ticket).unwrap()))
            .await
            .unwrap();
        stream.try_collect().await.unwrap()
    }

    async fn put(
        &self,
        command: &WriteCommand,
        batches: Vec<RecordBatch>,
    ) -> Result<Value, tonic::Status> {
        let mut client = FlightClient::new(self.channel.clone());
        let descriptor = FlightDescriptor::new_cmd(serde_json::to_vec(command).unwrap());
        let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
            .with_flight_descriptor(Some(descriptor))
            .build(futures::stream::iter(batches.into_iter().map(Ok)));
        let results: Vec<_> = match client.do_put(data).await {
            Ok(stream) => stream.try_collect().await,
            Err(err) => Err(err),
        }
        .map_err(|err| match err {
            arrow_flight::error::FlightError::Tonic(status) => *status,
            other => tonic::Status::unknown(other.to_string()),
        })?;
        Ok(serde_json::from_slice(&results[0].app_metadata).unwrap())
    }
}
