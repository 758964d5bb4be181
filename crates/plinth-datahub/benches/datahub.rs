//! The data hub gateway against raw librdkafka and raw Parquet: `cargo bench -p plinth-datahub --bench
//! datahub` (or `make bench`). Arguments after `--` narrow the run: `produce`, `subscribe`, `lake`.
//! `PLINTH_BENCH_RECORDS` sets the records per measurement (default 200,000).
//!
//! One run starts a tansu broker in memory (`LocalBroker::start_found`), a schema registry on SQLite
//! in a temp dir and the gateway (`plinth_datahub::bind`), both serving in this process on loopback, and
//! registers a JSON Schema of an order event with ten properties; every record is a 1,024-byte JSON
//! document valid against it. Three cases, each a fixed number of records after a warmup:
//!
//! - **produce**: concurrent gRPC `ProduceStream` clients sending batches, beside a raw rdkafka
//!   `FutureProducer` with the gateway's producer settings (`kafka::producer_config`: idempotent,
//!   `acks=all`, lz4, `linger.ms=2`) writing the same framed bytes from as many tasks. The gRPC clients
//!   each have their own connection and run on the gateway's runtime;
//!   `PLINTH_BENCH_CLIENT=child-process` runs them in a child process (this binary again, with
//!   `--produce-client`), as separate clients of a gateway would.
//! - **subscribe**: a gRPC `Subscribe` stream from EARLIEST in a fresh group reading N records, beside a
//!   raw `StreamConsumer` with the gateway's group settings (`kafka::consumer_config`, the same prefetch
//!   bounds) reading the same N records. Then the batches the gateway delivered are replayed by a
//!   server without Kafka (the runtime's server stack, the same client): the gRPC hop alone. The
//!   machine's busy CPU per record in each phase (`/proc/stat`) gives the best ratio the gateway could
//!   reach on this machine, raw's reading plus the hop with every core busy.
//! - **lake**: a lake sink created through the gateway API landing a topic of N records as Parquet,
//!   timed from `CreateLakeSink` until `ListLakeSinks` reports every record landed, beside a plain loop
//!   over the same framed records, one thread per partition's file (the sink encodes two full buffers
//!   at once): JSON text into Arrow with `domain::records::text_to_record_batch` (what the sink uses),
//!   Parquet with `domain::lake_file::encode_parquet`, files written to a local dir.
//!
//! Each figure is printed with its ratio and PASS/MISS against the goal, followed by
//! machine-readable `BENCH_RESULT` lines. A miss is reported, never asserted; only a failed request or
//! a lost record makes the exit code non-zero. docs/benchmarks.md records the figures.

// The same allocator as the shipped binaries, so the bench measures what ships.
#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use arrow::datatypes::SchemaRef;
use futures::StreamExt as _;
use plinth_datahub::config::KafkaConfig;
use plinth_datahub::domain::lake_file::encode_parquet;
use plinth_datahub::domain::lake_schema::derive_lake_schema;
use plinth_datahub::domain::records::{KafkaMetadata, TextRecords, text_to_record_batch};
use plinth_datahub::domain::wire_format;
use plinth_datahub::kafka::{consumer_config, producer_config};
use plinth_datahub::local_broker::{LocalBroker, Storage};
use plinth_proto::datahub::v1 as pb;
use plinth_proto::datahub::v1::data_hub_service_client::DataHubServiceClient;
use plinth_proto::ids::{Subject, TopicName};
use plinth_runtime::client::AuthChannel;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Records per measurement unless `PLINTH_BENCH_RECORDS` says otherwise.
const DEFAULT_RECORDS: usize = 200_000;
/// The size of every JSON document, in bytes.
const RECORD_BYTES: usize = 1_024;
/// Records per gRPC batch, and per batch of the raw producer's tasks.
const BATCH: usize = 500;
/// Concurrent gRPC produce streams, and raw producer tasks.
const CLIENTS: usize = 4;
/// Partitions of the produce topics.
const PRODUCE_PARTITIONS: i32 = 4;
/// Partitions of the lake topic: each lands as one file of `records / LAKE_PARTITIONS` rows.
const LAKE_PARTITIONS: i32 = 2;
/// Group session timeout of both consumers (a fresh group joins in about half of it on tansu).
const SESSION_TIMEOUT: Duration = Duration::from_secs(2);
/// Gives up on a measurement that has not finished after this long.
const CASE_TIMEOUT: Duration = Duration::from_secs(300);
const SUBJECT: &str = "bench-order-value";

/// The hidden argument that makes this binary the produce case's gRPC load (see [`produce_client`]).
const PRODUCE_CLIENT_FLAG: &str = "--produce-client";
/// What the child process prints before its JSON result.
const PRODUCE_CLIENT_RESULT: &str = "PRODUCE_CLIENT_RESULT ";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|arg| arg == PRODUCE_CLIENT_FLAG) {
        return produce_client(&args[at + 1..]);
    }
    if !args.iter().any(|arg| arg == "--bench") {
        // `cargo test --benches` runs bench binaries without `--bench`: a benchmark is not a test.
        println!("datahub bench: run it with `cargo bench -p plinth-datahub --bench datahub`");
        return Ok(());
    }
    let named = |key: &str| args.iter().any(|arg| arg == key);
    let mut cases: Vec<Case> = Case::ALL.into_iter().filter(|c| named(c.key())).collect();
    if cases.is_empty() {
        cases = Case::ALL.to_vec();
    }
    let records = match std::env::var("PLINTH_BENCH_RECORDS") {
        Ok(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 2 * BATCH)
            .with_context(|| {
                format!(
                    "PLINTH_BENCH_RECORDS={value} is not a number >= {}",
                    2 * BATCH
                )
            })?,
        Err(_) => DEFAULT_RECORDS,
    };
    // Whole batches per client, and an even split over the lake partitions.
    let records = records / (CLIENTS * BATCH) * (CLIENTS * BATCH);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run(&cases, records))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Produce,
    Subscribe,
    Lake,
}

impl Case {
    const ALL: [Case; 3] = [Case::Produce, Case::Subscribe, Case::Lake];

    fn key(self) -> &'static str {
        match self {
            Case::Produce => "produce",
            Case::Subscribe => "subscribe",
            Case::Lake => "lake",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Case::Produce => "produce (ProduceStream vs FutureProducer)",
            Case::Subscribe => "subscribe (Subscribe vs StreamConsumer)",
            Case::Lake => "lake (sink vs text_to_record_batch+Parquet)",
        }
    }

    fn goal(self) -> f64 {
        match self {
            Case::Produce | Case::Lake => 0.70,
            Case::Subscribe => 0.80,
        }
    }
}

/// One side of a case: how many records (of how many JSON bytes) in how long.
#[derive(Debug, Clone, Copy)]
struct Side {
    records: usize,
    bytes: usize,
    elapsed: Duration,
}

impl Side {
    fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

struct Report {
    case: Case,
    gateway: Side,
    raw: Side,
    notes: Vec<String>,
}

impl Report {
    fn ratio(&self) -> f64 {
        self.gateway.records_per_second() / self.raw.records_per_second()
    }

    fn met(&self) -> bool {
        self.ratio() >= self.case.goal()
    }
}

// ---- the services -----------------------------------------------------------------------------------

/// The broker, the registry and the gateway of one run, and the temp dir they write to.
struct Services {
    broker: LocalBroker,
    gateway_grpc: SocketAddr,
    kafka: KafkaConfig,
    client: DataHubServiceClient<AuthChannel>,
    lake_dir: PathBuf,
    schema_id: u32,
    schema: Value,
    stop: Vec<oneshot::Sender<()>>,
    dir: tempfile::TempDir,
}

impl Services {
    async fn start(records: usize) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("plinth-datahub-bench")
            .tempdir()
            .context("cannot create the temp dir")?;
        let broker = LocalBroker::start_found("127.0.0.1:0".parse()?, Storage::Memory)
            .await
            .context("the tansu broker did not start")?;
        let mut stop = Vec::new();

        let mut registry_config = plinth_schema_registry::Config::default();
        registry_config.server.grpc.listen = "127.0.0.1:0".parse()?;
        registry_config.server.http.listen = "127.0.0.1:0".parse()?;
        registry_config.database.url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("registry.db").display()
        );
        let registry = plinth_schema_registry::bind(&registry_config)
            .await
            .map_err(|err| anyhow::anyhow!("the registry did not start: {err}"))?;
        let registry_grpc: SocketAddr = registry.grpc_addr();
        let (registry_stop, registry_stopped) = oneshot::channel::<()>();
        tokio::spawn(registry.serve(async move {
            let _ = registry_stopped.await;
        }));
        stop.push(registry_stop);

        let schema = order_schema();
        let schema_id = register(registry_grpc, &schema).await?;

        let lake_dir = dir.path().join("lake");
        let mut config = plinth_datahub::Config::default();
        config.server.grpc.listen = "127.0.0.1:0".parse()?;
        config.server.http.listen = "127.0.0.1:0".parse()?;
        config.server.shutdown_grace_period = Duration::from_secs(5);
        config.database.url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("datahub.db").display()
        );
        config.kafka.bootstrap_servers = broker.bootstrap_servers();
        config.kafka.session_timeout = SESSION_TIMEOUT;
        config.kafka.request_timeout = Duration::from_secs(30);
        config.registry.url = format!("http://{registry_grpc}").parse()?;
        config.lake.root = format!("file://{}", lake_dir.display());
        // One file per partition: the sink cuts at the row count, never at the byte or age limit.
        config.lake.max_file_rows = (records / LAKE_PARTITIONS as usize).max(1);
        config.lake.max_file_bytes = 1 << 30;
        config.lake.max_file_age = Duration::from_secs(1);
        let kafka = config.kafka.clone();
        let gateway = plinth_datahub::bind(&config)
            .await
            .map_err(|err| anyhow::anyhow!("the gateway did not start: {err}"))?;
        let gateway_grpc = gateway.grpc_addr();
        let (gateway_stop, gateway_stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = gateway
                .serve(async move {
                    let _ = gateway_stopped.await;
                })
                .await;
        });
        stop.push(gateway_stop);
        let client = connect(gateway_grpc).await?;
        Ok(Self {
            broker,
            gateway_grpc,
            kafka,
            client,
            lake_dir,
            schema_id,
            schema,
            stop,
            dir,
        })
    }

    async fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        self.client
            .clone()
            .create_topic(pb::CreateTopicRequest {
                name: Some(TopicName::new(name)),
                value_binding: Some(pb::SchemaBinding {
                    subject: Some(Subject::new(SUBJECT)),
                    pinned_version: None,
                }),
                partition_count: partitions,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create topic {name}"))?;
        Ok(())
    }

    async fn stop(self) {
        for stop in self.stop {
            let _ = stop.send(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = self.broker.stop().await;
        drop(self.dir);
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<DataHubServiceClient<AuthChannel>> {
    let channel = plinth_runtime::client::connect(
        &format!("http://{addr}").parse()?,
        None,
        None,
        CASE_TIMEOUT,
    )
    .await
    .context("cannot connect to the gateway")?;
    Ok(DataHubServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

async fn register(registry: SocketAddr, schema: &Value) -> anyhow::Result<u32> {
    use plinth_proto::schemaregistry::v1 as rpb;
    let channel = plinth_runtime::client::connect(
        &format!("http://{registry}").parse()?,
        None,
        None,
        Duration::from_secs(10),
    )
    .await
    .context("cannot connect to the registry")?;
    let mut client = rpb::schema_registry_service_client::SchemaRegistryServiceClient::new(channel);
    let response = client
        .register_schema(rpb::RegisterSchemaRequest {
            subject: Some(Subject::new(SUBJECT)),
            schema: Some(rpb::Schema {
                schema: schema.to_string(),
                schema_type: rpb::SchemaType::Json.into(),
                references: vec![],
            }),
            ..Default::default()
        })
        .await
        .context("cannot register the schema")?
        .into_inner();
    response
        .registered
        .and_then(|version| version.id)
        .map(|id| id.value)
        .context("the registry answered no schema id")
}

// ---- the records --------------------------------------------------------------------------------

/// An order event with ten properties: a nested object, an array of objects, enums, patterns,
/// `date-time` and `email` formats, a closed content model.
fn order_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "OrderEvent",
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
            "customer_id": {"type": "integer", "minimum": 1},
            "created_at": {"type": "string", "format": "date-time"},
            "amount": {"type": "number", "minimum": 0},
            "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "JPY"]},
            "status": {"type": "string", "enum": ["pending", "paid", "shipped", "cancelled"]},
            "email": {"type": "string", "format": "email"},
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                        "quantity": {"type": "integer", "minimum": 1},
                        "unit_price": {"type": "number", "minimum": 0}
                    },
                    "required": ["sku", "quantity", "unit_price"],
                    "additionalProperties": false
                }
            },
            "shipping_address": {
                "type": "object",
                "properties": {
                    "street": {"type": "string"},
                    "city": {"type": "string"},
                    "postal_code": {"type": "string"},
                    "country": {"type": "string", "minLength": 2, "maxLength": 2}
                },
                "required": ["street", "city", "postal_code", "country"],
                "additionalProperties": false
            },
            "note": {"type": "string", "maxLength": 2000}
        },
        "required": ["order_id", "customer_id", "created_at", "amount", "currency", "status", "email", "items", "shipping_address"],
        "additionalProperties": false
    })
}

/// `count` distinct order documents of exactly `RECORD_BYTES` bytes, deterministic, all valid.
fn documents(count: usize, salt: u64) -> Vec<String> {
    let mut seed: u64 = 0x5eed_1e55_c0ff_ee00 ^ salt;
    let mut next = move || {
        // SplitMix64: deterministic, no dependency.
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = seed;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    };
    let currencies = ["EUR", "USD", "GBP", "JPY"];
    let statuses = ["pending", "paid", "shipped", "cancelled"];
    let filler = "please leave the parcel at the door and ring twice; fragile, keep upright. ";
    (0..count)
        .map(|index| {
            let random = next();
            let items: Vec<Value> = (0..4)
                .map(|item| {
                    json!({
                        "sku": format!("ABC-{:04}", (random >> (item * 8)) % 10_000),
                        "quantity": 1 + (random >> (16 + item)) % 5,
                        "unit_price": ((random >> (24 + item)) % 10_000) as f64 / 100.0,
                    })
                })
                .collect();
            let mut document = json!({
                "order_id": format!("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", random as u32, (random >> 32) as u16, (random >> 48) as u16, index as u16, random & 0xffff_ffff_ffff),
                "customer_id": 1 + random % 100_000,
                "created_at": format!("2026-{:02}-{:02}T{:02}:{:02}:{:02}Z", 1 + random % 12, 1 + (random >> 8) % 28, (random >> 16) % 24, (random >> 24) % 60, (random >> 32) % 60),
                "amount": ((random >> 40) % 100_000) as f64 / 100.0,
                "currency": currencies[(random >> 4) as usize % currencies.len()],
                "status": statuses[(random >> 6) as usize % statuses.len()],
                "email": format!("customer{}@example.com", random % 100_000),
                "items": items,
                "shipping_address": {"street": format!("{} Main Street", 1 + random % 200), "city": "Lyon", "postal_code": "69001", "country": "FR"},
                "note": "",
            });
            let short = document.to_string().len();
            let pad = RECORD_BYTES.saturating_sub(short);
            document["note"] = Value::String(filler.chars().cycle().skip(index % filler.len()).take(pad).collect());
            let text = document.to_string();
            debug_assert_eq!(text.len(), RECORD_BYTES);
            text
        })
        .collect()
}

// ---- produce --------------------------------------------------------------------------------------

/// The gateway's requests: per client, its share of `documents` in ProduceStream messages.
fn produce_requests(topic: &str, documents: &[String]) -> Vec<Vec<pb::ProduceStreamRequest>> {
    let share = documents.len().div_ceil(CLIENTS);
    documents
        .chunks(share)
        .map(|part| {
            part.chunks(BATCH)
                .map(|batch| pb::ProduceStreamRequest {
                    batch: Some(pb::ProduceBatch {
                        topic: Some(TopicName::new(topic)),
                        records: batch
                            .iter()
                            .map(|value| pb::ProduceRecord {
                                value: value.clone(),
                                ..Default::default()
                            })
                            .collect(),
                        accept_partial: false,
                    }),
                })
                .collect()
        })
        .collect()
}

/// Connects one channel per client: the streams are independent clients, each on its own HTTP/2
/// connection, as separate producers of a real gateway are.
async fn connect_clients(
    addr: SocketAddr,
) -> anyhow::Result<Vec<DataHubServiceClient<AuthChannel>>> {
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(connect(addr).await?);
    }
    Ok(clients)
}

/// Runs the clients' streams concurrently, one client per share; returns the records the gateway
/// reports written.
async fn gateway_produce(
    clients: Vec<DataHubServiceClient<AuthChannel>>,
    requests: Vec<Vec<pb::ProduceStreamRequest>>,
) -> anyhow::Result<usize> {
    let tasks: Vec<_> = requests
        .into_iter()
        .zip(clients)
        .map(|(messages, mut client)| {
            tokio::spawn(async move {
                let expected: usize = messages
                    .iter()
                    .map(|m| m.batch.as_ref().map_or(0, |b| b.records.len()))
                    .sum();
                let summary = client
                    .produce_stream(tokio_stream::iter(messages))
                    .await
                    .context("ProduceStream failed")?
                    .into_inner();
                ensure!(
                    summary.written_count as usize == expected && summary.rejected_count == 0,
                    "ProduceStream wrote {} of {expected} records, rejected {}: {:?}",
                    summary.written_count,
                    summary.rejected_count,
                    summary.errors.first()
                );
                Ok(expected)
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += task.await??;
    }
    Ok(written)
}

/// Where the produce case's gRPC clients run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientPlacement {
    /// A child process: this binary with `--produce-client` (`PLINTH_BENCH_CLIENT=child-process`).
    ChildProcess,
    /// Tasks on the gateway's own tokio runtime (the default).
    InProcess,
}

impl ClientPlacement {
    fn from_env() -> anyhow::Result<Self> {
        match std::env::var("PLINTH_BENCH_CLIENT").as_deref() {
            Err(_) | Ok("in-process") => Ok(Self::InProcess),
            Ok("child-process") => Ok(Self::ChildProcess),
            Ok(other) => {
                bail!("PLINTH_BENCH_CLIENT={other} is not `child-process` or `in-process`")
            }
        }
    }
}

/// The child process's side: `--produce-client ADDR TOPIC COUNT SALT`. Builds the same documents as
/// the parent (`documents(COUNT, SALT)` is deterministic), connects, then times only the streams and
/// prints one `PRODUCE_CLIENT_RESULT {json}` line.
fn produce_client(args: &[String]) -> anyhow::Result<()> {
    let [addr, topic, count, salt] = args else {
        bail!("usage: {PRODUCE_CLIENT_FLAG} ADDR TOPIC COUNT SALT");
    };
    let addr: SocketAddr = addr.parse().context("ADDR is not host:port")?;
    let count: usize = count.parse().context("COUNT is not a number")?;
    let salt: u64 = salt.parse().context("SALT is not a number")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the client's tokio runtime")?;
    runtime.block_on(async move {
        let requests = produce_requests(topic, &documents(count, salt));
        let clients = connect_clients(addr).await?;
        let started = Instant::now();
        let written = gateway_produce(clients, requests).await?;
        let elapsed = started.elapsed();
        println!(
            "{PRODUCE_CLIENT_RESULT}{}",
            json!({"written": written, "elapsed_s": elapsed.as_secs_f64()})
        );
        Ok(())
    })
}

/// Runs `documents(count, salt)` through the gateway's `ProduceStream` from a child process; returns
/// the records written and the child's own timing of the streams.
async fn gateway_produce_in_child(
    addr: SocketAddr,
    topic: &str,
    count: usize,
    salt: u64,
) -> anyhow::Result<(usize, Duration)> {
    let exe = std::env::current_exe().context("cannot find the bench binary to run the client")?;
    let output = tokio::process::Command::new(exe)
        .args([
            PRODUCE_CLIENT_FLAG,
            &addr.to_string(),
            topic,
            &count.to_string(),
            &salt.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .context("cannot run the produce client process")?;
    ensure!(
        output.status.success(),
        "the produce client process failed: {}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(PRODUCE_CLIENT_RESULT))
        .context("the produce client printed no result")?;
    let result: Value = serde_json::from_str(line).context("the produce client's result")?;
    let written = result["written"]
        .as_u64()
        .context("the produce client's result has no `written`")?;
    let elapsed = result["elapsed_s"]
        .as_f64()
        .context("the produce client's result has no `elapsed_s`")?;
    Ok((usize::try_from(written)?, Duration::from_secs_f64(elapsed)))
}

/// The raw peer: `CLIENTS` tasks share one producer (as the gateway's streams do), each sends its share
/// of the framed records in batches without waiting for acknowledgements, then awaits them all.
async fn raw_produce(
    producer: &Arc<FutureProducer>,
    topic: &str,
    framed: &Arc<Vec<Vec<u8>>>,
    partition_of: Option<fn(usize) -> i32>,
    timestamp_ms: Option<i64>,
) -> anyhow::Result<usize> {
    let share = framed.len().div_ceil(CLIENTS);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let producer = Arc::clone(producer);
            let framed = Arc::clone(framed);
            let topic = topic.to_owned();
            tokio::spawn(async move {
                let range = client * share..((client + 1) * share).min(framed.len());
                let mut deliveries: VecDeque<DeliveryFuture> = VecDeque::with_capacity(range.len());
                for index in range {
                    let mut record: FutureRecord<'_, (), Vec<u8>> =
                        FutureRecord::to(&topic).payload(&framed[index]);
                    if let Some(partition_of) = partition_of {
                        record = record.partition(partition_of(index));
                    }
                    if let Some(timestamp_ms) = timestamp_ms {
                        record = record.timestamp(timestamp_ms);
                    }
                    loop {
                        match producer.send_result(record) {
                            Ok(delivery) => {
                                deliveries.push_back(delivery);
                                break;
                            }
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                back,
                            )) => {
                                // The gateway's own back-off when librdkafka's queue is full.
                                record = back;
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                            Err((err, _)) => bail!("raw produce failed: {err}"),
                        }
                    }
                }
                let count = deliveries.len();
                for delivery in deliveries {
                    match delivery.await {
                        Ok(Ok(_)) => {}
                        Ok(Err((err, _))) => bail!("raw delivery failed: {err}"),
                        Err(_) => bail!("raw delivery canceled"),
                    }
                }
                Ok(count)
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += task.await??;
    }
    Ok(written)
}

async fn bench_produce(
    services: &Services,
    documents: &[String],
    warmup: &[String],
    salts: (u64, u64),
) -> anyhow::Result<Report> {
    let placement = ClientPlacement::from_env()?;
    let topic = "bench-produce-gateway";
    services.create_topic(topic, PRODUCE_PARTITIONS).await?;
    services
        .create_topic("bench-produce-raw", PRODUCE_PARTITIONS)
        .await?;
    let producer: Arc<FutureProducer> = Arc::new(
        producer_config(&services.kafka)
            .map_err(|err| anyhow::anyhow!("{err:?}"))?
            .create()
            .context("cannot create the raw producer")?,
    );
    let framed = |docs: &[String]| -> Arc<Vec<Vec<u8>>> {
        Arc::new(
            docs.iter()
                .map(|doc| wire_format::encode(services.schema_id, doc.as_bytes()))
                .collect(),
        )
    };
    let (framed_warm, framed_all) = (framed(warmup), framed(documents));
    // The gateway side: `salt` names the documents, which the child process builds again.
    let gateway = |docs: &[String], salt: u64| {
        let requests =
            (placement == ClientPlacement::InProcess).then(|| produce_requests(topic, docs));
        let (addr, count) = (services.gateway_grpc, docs.len());
        async move {
            match placement {
                ClientPlacement::ChildProcess => {
                    gateway_produce_in_child(addr, topic, count, salt).await
                }
                ClientPlacement::InProcess => {
                    let requests = requests.unwrap_or_default();
                    let clients = connect_clients(addr).await?;
                    let started = Instant::now();
                    let written = gateway_produce(clients, requests).await?;
                    Ok((written, started.elapsed()))
                }
            }
        }
    };

    eprintln!("== produce: warmup ({} records each side)", warmup.len());
    gateway(warmup, salts.1).await?;
    raw_produce(&producer, "bench-produce-raw", &framed_warm, None, None).await?;

    eprintln!(
        "== produce: raw FutureProducer, {} records",
        documents.len()
    );
    let started = Instant::now();
    let raw_written = raw_produce(&producer, "bench-produce-raw", &framed_all, None, None).await?;
    let raw = side(raw_written, started.elapsed());
    eprintln!(
        "== produce: gateway ProduceStream, {} records",
        documents.len()
    );
    let (written, elapsed) = gateway(documents, salts.0).await?;
    let gateway = side(written, elapsed);
    ensure!(
        raw_written == documents.len() && written == documents.len(),
        "records lost"
    );
    let clients = match placement {
        ClientPlacement::ChildProcess => "in a child process",
        ClientPlacement::InProcess => "on the gateway's runtime",
    };
    Ok(Report {
        case: Case::Produce,
        gateway,
        raw,
        notes: vec![format!(
            "{CLIENTS} concurrent ProduceStream clients ({clients}, one connection each) / raw tasks, batches of {BATCH}, {PRODUCE_PARTITIONS} partitions, {RECORD_BYTES}-byte JSON values; the gateway validates every record"
        )],
    })
}

fn side(records: usize, elapsed: Duration) -> Side {
    Side {
        records,
        bytes: records * RECORD_BYTES,
        elapsed,
    }
}

// ---- subscribe ------------------------------------------------------------------------------------

/// One subscribe measurement: times from the start to the first record and to the last, and the
/// machine's busy CPU seconds between them.
struct Reading {
    first: Duration,
    all: Duration,
    busy: f64,
}

impl Reading {
    /// The reading of a measurement that ends now, `elapsed` after its start; `first` holds the time
    /// and [`busy_seconds`] at its first record (none: the end).
    fn ended(first: Option<(Duration, f64)>, elapsed: Duration) -> Self {
        let (first, busy_at_first) = first.unwrap_or((elapsed, busy_seconds()));
        Reading {
            first,
            all: elapsed,
            busy: busy_seconds() - busy_at_first,
        }
    }
}

/// Reads `count` records through `Subscribe` from EARLIEST in a fresh group, keeping the responses in
/// `keep` when given.
async fn gateway_subscribe(
    client: &DataHubServiceClient<AuthChannel>,
    topic: &str,
    count: usize,
    mut keep: Option<&mut Vec<pb::SubscribeResponse>>,
) -> anyhow::Result<Reading> {
    let started = Instant::now();
    let mut stream = client
        .clone()
        .subscribe(pb::SubscribeRequest {
            consumer_group: format!("bench-gateway-{}", uuid::Uuid::now_v7().simple()),
            topics: vec![TopicName::new(topic)],
            start_position: pb::StartPosition::Earliest.into(),
            ..Default::default()
        })
        .await
        .context("Subscribe failed")?
        .into_inner();
    let mut first = None;
    let mut received = 0;
    let mut bytes = 0usize;
    while received < count {
        let response = tokio::time::timeout(CASE_TIMEOUT, stream.next())
            .await
            .context("Subscribe stalled")?
            .context("Subscribe ended early")?
            .context("Subscribe failed")?;
        if !response.records.is_empty() && first.is_none() {
            first = Some((started.elapsed(), busy_seconds()));
        }
        received += response.records.len();
        bytes += response
            .records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, String::len))
            .sum::<usize>();
        if let Some(kept) = keep.as_mut() {
            kept.push(response);
        }
    }
    let elapsed = started.elapsed();
    std::hint::black_box(bytes);
    drop(stream);
    Ok(Reading::ended(first, elapsed))
}

/// Reads `count` records with a raw `StreamConsumer` with the gateway's group and prefetch settings.
async fn raw_subscribe(kafka: &KafkaConfig, topic: &str, count: usize) -> anyhow::Result<Reading> {
    let started = Instant::now();
    let group = format!("bench-raw-{}", uuid::Uuid::now_v7().simple());
    let mut config = consumer_config(kafka, &group).map_err(|err| anyhow::anyhow!("{err:?}"))?;
    config
        .set("queued.max.messages.kbytes", "8192")
        .set("fetch.max.bytes", "8388608")
        .set("max.poll.interval.ms", "600000");
    let consumer: StreamConsumer = config.create().context("cannot create the raw consumer")?;
    consumer.subscribe(&[topic])?;
    let mut first = None;
    let mut bytes = 0usize;
    for _ in 0..count {
        let message = tokio::time::timeout(CASE_TIMEOUT, consumer.recv())
            .await
            .context("raw consumer stalled")??;
        if first.is_none() {
            first = Some((started.elapsed(), busy_seconds()));
        }
        // What a client does at least: strip the wire-format prefix and look at the JSON text.
        let payload = message.payload().context("a record without a value")?;
        let (_, json) = wire_format::decode(payload)?;
        bytes += std::str::from_utf8(json)?.len();
    }
    let elapsed = started.elapsed();
    std::hint::black_box(bytes);
    tokio::task::spawn_blocking(move || {
        let _ = consumer.unassign();
        drop(consumer);
    });
    Ok(Reading::ended(first, elapsed))
}

async fn bench_subscribe(services: &Services, count: usize) -> anyhow::Result<Report> {
    // The produce case's gateway topic, else fill it now through the raw producer.
    let topic = "bench-produce-gateway";
    let low_high = watermarks(services, topic).await?;
    if low_high < count + count / 10 {
        services.create_topic(topic, PRODUCE_PARTITIONS).await.ok();
        let producer: Arc<FutureProducer> = Arc::new(
            producer_config(&services.kafka)
                .map_err(|err| anyhow::anyhow!("{err:?}"))?
                .create()?,
        );
        let framed: Arc<Vec<Vec<u8>>> = Arc::new(
            documents(count + count / 10, 1)
                .iter()
                .map(|doc| wire_format::encode(services.schema_id, doc.as_bytes()))
                .collect(),
        );
        raw_produce(&producer, topic, &framed, None, None).await?;
    }
    let warm = (count / 10).max(BATCH);
    eprintln!("== subscribe: warmup ({warm} records each side)");
    gateway_subscribe(&services.client, topic, warm, None).await?;
    raw_subscribe(&services.kafka, topic, warm).await?;
    eprintln!("== subscribe: raw StreamConsumer, {count} records");
    let raw_reading = raw_subscribe(&services.kafka, topic, count).await?;
    eprintln!("== subscribe: gateway Subscribe, {count} records");
    let mut delivered = Vec::new();
    let gateway_reading =
        gateway_subscribe(&services.client, topic, count, Some(&mut delivered)).await?;
    eprintln!("== subscribe: the gRPC hop alone, the same {count} records replayed");
    let replay = replay_subscribe(delivered, count).await?;
    let per_record = |reading: &Reading| reading.busy * 1e6 / count as f64;
    let (cpu_raw, cpu_gateway, cpu_replay) = (
        per_record(&raw_reading),
        per_record(&gateway_reading),
        per_record(&replay),
    );
    let raw = side(count, raw_reading.all - raw_reading.first);
    // A gateway reads Kafka as the raw consumer does and then makes the hop: with every core busy
    // all the time it could at best reach this share of the raw rate.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let bound = cores as f64 / (cpu_raw + cpu_replay) * 1e6 / raw.records_per_second();
    // Both wait for the group join before the first record: the rate is taken after it.
    Ok(Report {
        case: Case::Subscribe,
        gateway: side(count, gateway_reading.all - gateway_reading.first),
        raw,
        notes: vec![
            format!(
                "the gRPC hop alone (the delivered batches replayed by a server without Kafka, same server stack and client): {:.0} records/s",
                count as f64 / (replay.all - replay.first).as_secs_f64()
            ),
            format!(
                "machine CPU per record from the first record to the last (all processes, /proc/stat): raw {cpu_raw:.2} µs, gateway {cpu_gateway:.2} µs, hop alone {cpu_replay:.2} µs; with raw's reading plus the hop on {cores} busy cores the ratio could reach at most {bound:.2}"
            ),
            format!(
                "fresh group from EARLIEST, session.timeout.ms {}; rate from the first record to the last (group join excluded)",
                SESSION_TIMEOUT.as_millis()
            ),
            format!(
                "first record after: gateway {:.2} s, raw {:.2} s; all {count} records after: gateway {:.2} s, raw {:.2} s",
                gateway_reading.first.as_secs_f64(),
                raw_reading.first.as_secs_f64(),
                gateway_reading.all.as_secs_f64(),
                raw_reading.all.as_secs_f64()
            ),
        ],
    })
}

/// CPU seconds the machine spent busy since boot (all cores), from /proc/stat in Linux's 100 ticks per
/// second (0 where it cannot be read).
fn busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: f64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle) / 100.0
}

/// A server that answers Subscribe by replaying batches it holds (no Kafka), and nothing else.
struct Replay {
    batches: std::sync::Mutex<Vec<pb::SubscribeResponse>>,
}

type Unary<T> = Result<tonic::Response<T>, tonic::Status>;

fn only_subscribe<T>() -> Unary<T> {
    Err(tonic::Status::unimplemented(
        "the replay server answers Subscribe only",
    ))
}

#[tonic::async_trait]
impl pb::data_hub_service_server::DataHubService for Replay {
    async fn create_topic(
        &self,
        _: tonic::Request<pb::CreateTopicRequest>,
    ) -> Unary<pb::CreateTopicResponse> {
        only_subscribe()
    }
    async fn describe_topic(
        &self,
        _: tonic::Request<pb::DescribeTopicRequest>,
    ) -> Unary<pb::DescribeTopicResponse> {
        only_subscribe()
    }
    async fn list_topics(
        &self,
        _: tonic::Request<pb::ListTopicsRequest>,
    ) -> Unary<pb::ListTopicsResponse> {
        only_subscribe()
    }
    async fn delete_topic(
        &self,
        _: tonic::Request<pb::DeleteTopicRequest>,
    ) -> Unary<pb::DeleteTopicResponse> {
        only_subscribe()
    }
    async fn produce(&self, _: tonic::Request<pb::ProduceRequest>) -> Unary<pb::ProduceResponse> {
        only_subscribe()
    }
    async fn produce_stream(
        &self,
        _: tonic::Request<tonic::Streaming<pb::ProduceStreamRequest>>,
    ) -> Unary<pb::ProduceStreamResponse> {
        only_subscribe()
    }
    type SubscribeStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::SubscribeResponse, tonic::Status>>;
    async fn subscribe(
        &self,
        _: tonic::Request<pb::SubscribeRequest>,
    ) -> Unary<Self::SubscribeStream> {
        let batches = std::mem::take(
            &mut *self
                .batches
                .lock()
                .map_err(|_| tonic::Status::internal("the replay lock is poisoned"))?,
        );
        // As the gateway's streams: a task sends into a channel of the default depth.
        let depth = plinth_datahub::config::SubscribeConfig::default().buffered_batches;
        let (sender, receiver) = tokio::sync::mpsc::channel(depth);
        tokio::spawn(async move {
            for batch in batches {
                if sender.send(Ok(batch)).await.is_err() {
                    break;
                }
            }
        });
        Ok(tonic::Response::new(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        ))
    }
    async fn commit(&self, _: tonic::Request<pb::CommitRequest>) -> Unary<pb::CommitResponse> {
        only_subscribe()
    }
    async fn create_lake_sink(
        &self,
        _: tonic::Request<pb::CreateLakeSinkRequest>,
    ) -> Unary<pb::CreateLakeSinkResponse> {
        only_subscribe()
    }
    async fn list_lake_sinks(
        &self,
        _: tonic::Request<pb::ListLakeSinksRequest>,
    ) -> Unary<pb::ListLakeSinksResponse> {
        only_subscribe()
    }
    async fn pause_lake_sink(
        &self,
        _: tonic::Request<pb::PauseLakeSinkRequest>,
    ) -> Unary<pb::PauseLakeSinkResponse> {
        only_subscribe()
    }
    async fn resume_lake_sink(
        &self,
        _: tonic::Request<pb::ResumeLakeSinkRequest>,
    ) -> Unary<pb::ResumeLakeSinkResponse> {
        only_subscribe()
    }
    async fn delete_lake_sink(
        &self,
        _: tonic::Request<pb::DeleteLakeSinkRequest>,
    ) -> Unary<pb::DeleteLakeSinkResponse> {
        only_subscribe()
    }
    async fn list_datasets(
        &self,
        _: tonic::Request<pb::ListDatasetsRequest>,
    ) -> Unary<pb::ListDatasetsResponse> {
        only_subscribe()
    }
    async fn describe_dataset(
        &self,
        _: tonic::Request<pb::DescribeDatasetRequest>,
    ) -> Unary<pb::DescribeDatasetResponse> {
        only_subscribe()
    }
}

/// Serves `batches` through the runtime's gRPC server and reads them back with the bench's client:
/// the gRPC hop alone.
async fn replay_subscribe(
    batches: Vec<pb::SubscribeResponse>,
    count: usize,
) -> anyhow::Result<Reading> {
    let mut config = plinth_runtime::config::ServerConfig::with_ports(0, 0);
    config.grpc.listen = "127.0.0.1:0".parse()?;
    config.http.listen = "127.0.0.1:0".parse()?;
    let server = plinth_runtime::server::ServerBuilder::new("replay", config)
        .grpc_service(
            pb::data_hub_service_server::DataHubServiceServer::new(Replay {
                batches: std::sync::Mutex::new(batches),
            })
            .max_encoding_message_size(64 * 1024 * 1024),
        )
        .bind()
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let addr = server.grpc_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let client = connect(addr).await?;
    let reading = gateway_subscribe(&client, "replay", count, None).await?;
    let _ = stop.send(());
    Ok(reading)
}

/// The records a topic holds (sum of high minus low watermarks), through DescribeTopic.
async fn watermarks(services: &Services, topic: &str) -> anyhow::Result<usize> {
    let described = services
        .client
        .clone()
        .describe_topic(pb::DescribeTopicRequest {
            name: Some(TopicName::new(topic)),
        })
        .await;
    Ok(match described {
        Ok(response) => response
            .into_inner()
            .partitions
            .iter()
            .map(|p| usize::try_from(p.high_watermark - p.low_watermark).unwrap_or(0))
            .sum(),
        Err(_) => 0,
    })
}

// ---- lake -----------------------------------------------------------------------------------------

fn lake_partition(index: usize) -> i32 {
    (index % LAKE_PARTITIONS as usize) as i32
}

/// Creates a sink on `topic` through the gateway and waits until it has landed `count` records;
/// returns the elapsed time and the Parquet bytes written.
async fn gateway_lake(
    services: &Services,
    topic: &str,
    count: usize,
) -> anyhow::Result<(Duration, u64)> {
    let mut client = services.client.clone();
    let started = Instant::now();
    client
        .create_lake_sink(pb::CreateLakeSinkRequest {
            topic: Some(TopicName::new(topic)),
            ..Default::default()
        })
        .await
        .context("CreateLakeSink failed")?;
    loop {
        let sinks = client
            .list_lake_sinks(pb::ListLakeSinksRequest {
                topic: Some(TopicName::new(topic)),
            })
            .await
            .context("ListLakeSinks failed")?
            .into_inner()
            .sinks;
        let sink = sinks.first().context("the sink is not listed")?;
        if sink.state() == pb::LakeSinkState::Failed {
            bail!("the lake sink failed: {}", sink.error);
        }
        let landed: i64 = sink.partitions.iter().map(|p| p.next_offset).sum();
        if usize::try_from(landed).unwrap_or(0) >= count {
            break;
        }
        if started.elapsed() > CASE_TIMEOUT {
            bail!("the lake sink landed {landed} of {count} records in {CASE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let bytes = parquet_bytes(&services.lake_dir.join(topic));
    Ok((elapsed, bytes))
}

/// The sizes of the `.parquet` files under `dir`, recursively.
fn parquet_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                parquet_bytes(&path)
            } else if path.extension().is_some_and(|ext| ext == "parquet") {
                entry.metadata().map_or(0, |m| m.len())
            } else {
                0
            }
        })
        .sum()
}

/// The plain loop: per partition, the framed records decoded into JSON, one Arrow batch, one Parquet
/// file written to `dir`. Returns the Parquet bytes written.
fn raw_lake(
    schema: &SchemaRef,
    framed: &[Vec<u8>],
    timestamp_ms: i64,
    dir: &Path,
) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    // One thread per partition's file, as the sink encodes two full buffers at once.
    let written = std::thread::scope(|scope| {
        let files: Vec<_> = (0..LAKE_PARTITIONS)
            .map(|partition| {
                scope.spawn(move || raw_lake_file(schema, framed, timestamp_ms, dir, partition))
            })
            .collect();
        files
            .into_iter()
            .map(|file| {
                file.join()
                    .map_err(|_| anyhow::anyhow!("a raw lake thread panicked"))?
            })
            .sum::<anyhow::Result<u64>>()
    })?;
    Ok(written)
}

/// One partition's records as one Parquet file, the way the sink builds it.
fn raw_lake_file(
    schema: &SchemaRef,
    framed: &[Vec<u8>],
    timestamp_ms: i64,
    dir: &Path,
    partition: i32,
) -> anyhow::Result<u64> {
    let mut records = TextRecords::new();
    for (offset, (_, bytes)) in framed
        .iter()
        .enumerate()
        .filter(|(index, _)| lake_partition(*index) == partition)
        .enumerate()
    {
        let (schema_id, json) = wire_format::decode(bytes)?;
        records.push(
            json,
            KafkaMetadata {
                partition,
                offset: offset as i64,
                timestamp_ms,
                schema_id: schema_id as i32,
            },
        );
    }
    let batch = text_to_record_batch(schema, &records, 0..records.len())?;
    let bytes = encode_parquet(schema, &[batch])?;
    std::fs::write(dir.join(format!("partition-{partition}.parquet")), &bytes)?;
    Ok(bytes.len() as u64)
}

async fn bench_lake(services: &Services, count: usize) -> anyhow::Result<Report> {
    let lake_schema: SchemaRef = Arc::new(derive_lake_schema(&services.schema)?);
    let timestamp_ms = chrono::Utc::now().timestamp_millis();
    let producer: Arc<FutureProducer> = Arc::new(
        producer_config(&services.kafka)
            .map_err(|err| anyhow::anyhow!("{err:?}"))?
            .create()?,
    );
    let warm = (count / 10).max(BATCH);
    let framed_warm: Arc<Vec<Vec<u8>>> = Arc::new(
        documents(warm, 2)
            .iter()
            .map(|doc| wire_format::encode(services.schema_id, doc.as_bytes()))
            .collect(),
    );
    let framed_all: Arc<Vec<Vec<u8>>> = Arc::new(
        documents(count, 3)
            .iter()
            .map(|doc| wire_format::encode(services.schema_id, doc.as_bytes()))
            .collect(),
    );
    eprintln!("== lake: filling the topics ({warm} + {count} records)");
    services
        .create_topic("bench-lake-warm", LAKE_PARTITIONS)
        .await?;
    services.create_topic("bench-lake", LAKE_PARTITIONS).await?;
    let partition_of: fn(usize) -> i32 = lake_partition;
    raw_produce(
        &producer,
        "bench-lake-warm",
        &framed_warm,
        Some(partition_of),
        Some(timestamp_ms),
    )
    .await?;
    raw_produce(
        &producer,
        "bench-lake",
        &framed_all,
        Some(partition_of),
        Some(timestamp_ms),
    )
    .await?;

    eprintln!("== lake: warmup");
    // The warm sink's files are smaller than max_file_rows: they are cut by max_file_age.
    gateway_lake(services, "bench-lake-warm", warm).await?;
    let raw_dir = services.dir.path().join("raw-lake");
    {
        let (schema, framed, dir) = (
            Arc::clone(&lake_schema),
            Arc::clone(&framed_warm),
            raw_dir.join("warm"),
        );
        tokio::task::spawn_blocking(move || raw_lake(&schema, &framed, timestamp_ms, &dir))
            .await??;
    }

    eprintln!("== lake: raw text_to_record_batch + encode_parquet, {count} records");
    let started = Instant::now();
    let raw_bytes = {
        let (schema, framed, dir) = (
            Arc::clone(&lake_schema),
            Arc::clone(&framed_all),
            raw_dir.join("all"),
        );
        tokio::task::spawn_blocking(move || raw_lake(&schema, &framed, timestamp_ms, &dir))
            .await??
    };
    let raw = side(count, started.elapsed());
    eprintln!("== lake: gateway lake sink, {count} records");
    let (elapsed, sink_bytes) = gateway_lake(services, "bench-lake", count).await?;
    let gateway = side(count, elapsed);
    Ok(Report {
        case: Case::Lake,
        gateway,
        raw,
        notes: vec![
            format!(
                "{LAKE_PARTITIONS} partitions, one file of {} rows each (max_file_rows); sink timed from CreateLakeSink until ListLakeSinks shows every record landed",
                count / LAKE_PARTITIONS as usize
            ),
            format!(
                "Parquet written: sink {:.1} MB, plain loop {:.1} MB (MB/s counts the JSON in)",
                sink_bytes as f64 / 1e6,
                raw_bytes as f64 / 1e6
            ),
        ],
    })
}

// ---- the run --------------------------------------------------------------------------------------

async fn run(cases: &[Case], records: usize) -> anyhow::Result<()> {
    let services = Services::start(records).await?;
    let load_before = load_average();
    let warmup = (records / 10).max(CLIENTS * BATCH) / (CLIENTS * BATCH) * (CLIENTS * BATCH);
    let mut reports = Vec::new();
    let mut failure = None;
    for &case in cases {
        let report = match case {
            Case::Produce => {
                let salts = (0, 4);
                let all = documents(records, salts.0);
                let warm = documents(warmup, salts.1);
                bench_produce(&services, &all, &warm, salts).await
            }
            Case::Subscribe => bench_subscribe(&services, records).await,
            Case::Lake => bench_lake(&services, records).await,
        };
        match report {
            Ok(report) => reports.push(report),
            Err(err) => {
                eprintln!("ERROR {}: {err:#}", case.key());
                failure = Some(err);
                break;
            }
        }
    }
    services.stop().await;
    print_table(&reports, records, &load_before);
    if let Some(err) = failure {
        return Err(err.context("a measurement failed: the figures above are incomplete"));
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

fn print_table(reports: &[Report], records: usize, load_before: &str) {
    println!();
    println!(
        "Data hub gateway vs raw clients: {records} records of {RECORD_BYTES} B JSON per case after a warmup, tansu in memory on loopback, {} cores, load average before {load_before}, after {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    println!(
        "{:<44} | {:>10} {:>7} {:>7} | {:>10} {:>7} {:>7} | {:>5} | {:<6} | verdict",
        "case", "gw rec/s", "MB/s", "s", "raw rec/s", "MB/s", "s", "ratio", "goal"
    );
    for report in reports {
        println!(
            "{:<44} | {:>10.0} {:>7.1} {:>7.2} | {:>10.0} {:>7.1} {:>7.2} | {:>5.2} | >= {:.2} | {}",
            report.case.label(),
            report.gateway.records_per_second(),
            report.gateway.megabytes_per_second(),
            report.gateway.elapsed.as_secs_f64(),
            report.raw.records_per_second(),
            report.raw.megabytes_per_second(),
            report.raw.elapsed.as_secs_f64(),
            report.ratio(),
            report.case.goal(),
            verdict(report.met()),
        );
        for note in &report.notes {
            println!("  {}: {note}", report.case.key());
        }
    }
    println!();
    for report in reports {
        let line = json!({
            "bench": "datahub",
            "case": report.case.key(),
            "records": report.gateway.records,
            "gateway_records_per_s": report.gateway.records_per_second().round(),
            "gateway_mb_per_s": (report.gateway.megabytes_per_second() * 10.0).round() / 10.0,
            "raw_records_per_s": report.raw.records_per_second().round(),
            "raw_mb_per_s": (report.raw.megabytes_per_second() * 10.0).round() / 10.0,
            "ratio": (report.ratio() * 1000.0).round() / 1000.0,
            "goal_ratio": report.case.goal(),
            "verdict": verdict(report.met()),
        });
        println!("BENCH_RESULT {line}");
    }
}
