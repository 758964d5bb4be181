//! A batch job's flat dataset (`<dataset>/part-NNNNN.parquet` and `_SUCCESS`, as the feature store's
//! training sets and the orchestrator's batch-score outputs are written) read through the lake RPCs and
//! Arrow Flight: listed and described once complete, scanned with column projection, a time range
//! refused, a Flight write or a lake sink into it refused. No broker and no registry are needed:
//! nothing here reads Kafka or looks a schema up.

#![allow(
    clippy::unwrap_used,
    reason = "tests fail loudly on the first surprise"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightClient, FlightDescriptor, Ticket};
use futures::TryStreamExt;
use parquet::arrow::ArrowWriter;
use plinth_datahub::config::{KafkaConfig, LakeConfig};
use plinth_datahub::flight::{ScanTicket, WriteCommand, flight_service};
use plinth_datahub::lake::{Lake, LakeContext};
use plinth_datahub::store::{Store, TopicRow};
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::{DatasetName, Subject, TopicName};
use plinth_schema_registry::client::RegistryClient;
use plinth_schema_registry::domain::schema::SchemaDraft;

/// A lake directory and a [`Lake`] over it.
struct Harness {
    dir: tempfile::TempDir,
    store: Store,
    lake: Arc<Lake>,
}

impl Harness {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            &format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("datahub.db").display()
            ),
            2,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        // Never called: a scan reads only the lake.
        let registry = plinth_runtime::client::connect_lazy(
            &"http://127.0.0.1:9".parse().unwrap(),
            None,
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        let lake = Lake::new(LakeContext {
            store: store.clone(),
            registry: Arc::new(RegistryClient::new(
                registry,
                SchemaDraft::Draft7,
                Duration::ZERO,
            )),
            kafka: KafkaConfig::default(),
            config: LakeConfig {
                root: format!("file://{}", dir.path().join("lake").display()),
                ..LakeConfig::default()
            },
            replica_id: "flat-datasets-test".to_owned(),
        })
        .unwrap();
        Self { dir, store, lake }
    }

    fn dataset_dir(&self, dataset: &str) -> std::path::PathBuf {
        let path = self.dir.path().join("lake").join(dataset);
        std::fs::create_dir_all(&path).unwrap();
        path
    }
}

/// Driver scores as a batch-score job writes them: ids from `first`, a score, an event time in µs.
fn scores(first: i64, rows: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + rows).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("score", DataType::Float64, true),
        Field::new(
            "event_timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|id| *id as f64 / 10.0),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    ids.iter().map(|id| 1_772_359_200_000_000 + id),
                )
                .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// `driver_scores`, complete: two parts, the marker, and what a job leaves that readers skip.
fn write_driver_scores(harness: &Harness) {
    let dir = harness.dataset_dir("driver_scores");
    write_parquet(&dir.join("part-00000.parquet"), &scores(0, 3));
    write_parquet(&dir.join("part-00001.parquet"), &scores(3, 2));
    write_parquet(
        &dir.join("_temporary/job-1/part-00002.parquet"),
        &scores(5, 9),
    );
    std::fs::write(dir.join(".part-00000.parquet.crc"), b"crc").unwrap();
    std::fs::write(dir.join("_SUCCESS"), b"").unwrap();
}

/// The Flight service on a loopback port.
async fn flight_client(lake: Arc<Lake>) -> FlightClient {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(flight_service(lake))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    FlightClient::new(channel)
}

async fn scan(
    client: &mut FlightClient,
    ticket: &ScanTicket,
) -> Result<Vec<RecordBatch>, tonic::Status> {
    let batches = match client
        .do_get(Ticket::new(serde_json::to_vec(ticket).unwrap()))
        .await
    {
        Ok(stream) => stream.try_collect().await,
        Err(err) => Err(err),
    };
    batches.map_err(|err| match err {
        FlightError::Tonic(status) => *status,
        other => tonic::Status::unknown(other.to_string()),
    })
}

#[tokio::test]
async fn a_complete_flat_dataset_is_listed_and_described() {
    let harness = Harness::start().await;
    write_driver_scores(&harness);
    // A job still writing (or one that failed): parts, no marker.
    write_parquet(
        &harness
            .dataset_dir("pending_scores")
            .join("part-00000.parquet"),
        &scores(0, 1),
    );

    let listed = harness
        .lake
        .list_datasets(pb::ListDatasetsRequest::default())
        .await
        .unwrap();
    let names: Vec<&str> = listed
        .datasets
        .iter()
        .filter_map(|summary| summary.name.as_ref().map(DatasetName::as_str))
        .collect();
    assert_eq!(
        names,
        ["driver_scores"],
        "an unfinished dataset is not listed"
    );
    let summary = &listed.datasets[0];
    assert_eq!((summary.file_count, summary.row_count), (2, 5));
    assert!(summary.source_topic.is_none());

    let described = harness
        .lake
        .describe_dataset(pb::DescribeDatasetRequest {
            name: Some(DatasetName::new("driver_scores")),
            ..pb::DescribeDatasetRequest::default()
        })
        .await
        .unwrap();
    let fields: Vec<&str> = described
        .fields
        .iter()
        .map(|field| field.name.as_str())
        .collect();
    assert_eq!(fields, ["driver_id", "score", "event_timestamp"]);
    let files: Vec<(String, i32, &str, u64, i64)> = described
        .files
        .iter()
        .map(|file| {
            let name = file.url.rsplit('/').next().unwrap().to_owned();
            (
                name,
                file.partition,
                file.event_date.as_str(),
                file.row_count,
                file.last_offset,
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("part-00000.parquet".to_owned(), -1, "", 3, 2),
            ("part-00001.parquet".to_owned(), -1, "", 2, 1),
        ]
    );

    let unfinished = harness
        .lake
        .describe_dataset(pb::DescribeDatasetRequest {
            name: Some(DatasetName::new("pending_scores")),
            ..pb::DescribeDatasetRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unfinished.reason, "DATASET_INCOMPLETE");
    assert!(
        unfinished.message.contains("_SUCCESS"),
        "{}",
        unfinished.message
    );
}

#[tokio::test]
async fn flight_scans_a_flat_dataset_with_projection_and_refuses_a_time_range() {
    let harness = Harness::start().await;
    write_driver_scores(&harness);
    let mut client = flight_client(Arc::clone(&harness.lake)).await;

    let batches = scan(
        &mut client,
        &ScanTicket {
            dataset: "driver_scores".to_owned(),
            columns: vec!["score".to_owned(), "driver_id".to_owned()],
            ..ScanTicket::default()
        },
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    let mut scores_read = Vec::new();
    for batch in &batches {
        let columns: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        assert_eq!(columns, ["score", "driver_id"]);
        scores_read.extend(
            batch
                .column(0)
                .as_primitive::<Float64Type>()
                .values()
                .to_vec(),
        );
        ids.extend(
            batch
                .column(1)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec(),
        );
    }
    assert_eq!(
        ids,
        [0, 1, 2, 3, 4],
        "both parts, in part order; _temporary is not read"
    );
    assert_eq!(scores_read, [0.0, 0.1, 0.2, 0.3, 0.4]);

    let limited = scan(
        &mut client,
        &ScanTicket {
            dataset: "driver_scores".to_owned(),
            limit: Some(4),
            ..ScanTicket::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(limited.iter().map(RecordBatch::num_rows).sum::<usize>(), 4);

    let refused = scan(
        &mut client,
        &ScanTicket {
            dataset: "driver_scores".to_owned(),
            start_time: Some("2026-03-01T00:00:00Z".to_owned()),
            ..ScanTicket::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("without start_time and end_time"),
        "{}",
        refused.message()
    );

    let flights: Vec<_> = client
        .list_flights(Vec::<u8>::new())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(flights.len(), 1);
    assert_eq!(flights[0].total_records, 5);
}

#[tokio::test]
async fn a_second_writer_into_a_flat_dataset_is_refused() {
    let harness = Harness::start().await;
    write_driver_scores(&harness);
    let mut client = flight_client(Arc::clone(&harness.lake)).await;
    let command = WriteCommand {
        dataset: "driver_scores".to_owned(),
        subject: "driver_scores-value".to_owned(),
        url_prefix: None,
    };
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(
            serde_json::to_vec(&command).unwrap(),
        )))
        .build(futures::stream::iter([Ok(scores(10, 1))]));
    let refused = match client.do_put(data).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
        Err(err) => Err(err),
    }
    .unwrap_err();
    let FlightError::Tonic(status) = refused else {
        panic!("not a gRPC status: {refused}");
    };
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status.message().contains("one writer"),
        "{}",
        status.message()
    );
    let names: Vec<String> = std::fs::read_dir(harness.dataset_dir("driver_scores"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(['_', '.']))
        .collect();
    assert_eq!(names.len(), 2, "nothing written: {names:?}");

    // A lake sink into it would mix Kafka files into the job's dataset.
    harness
        .store
        .insert_topic(&TopicRow {
            name: TopicName::new("scores"),
            value_subject: Subject::new("scores-value"),
            value_version: None,
            key_subject: None,
            key_version: None,
            partition_count: 1,
            replication_factor: 1,
            retention_ms: None,
            create_time_ms: 0,
        })
        .await
        .unwrap();
    let refused = harness
        .lake
        .create_sink(pb::CreateLakeSinkRequest {
            topic: Some(TopicName::new("scores")),
            dataset: Some(DatasetName::new("driver_scores")),
            ..pb::CreateLakeSinkRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.reason, "DATASET_WRITTEN_BY_BATCH_JOB");
    assert!(refused.message.contains("--dataset"), "{}", refused.message);
    let sinks = harness
        .lake
        .list_sinks(pb::ListLakeSinksRequest::default())
        .await
        .unwrap();
    assert!(sinks.is_empty(), "{sinks:?}");
}
