//! The feature store against Feast 0.67 and DuckDB: `cargo bench -p plinth-feature-store --bench
//! feature_store` (or `make bench`), after `bash deploy/scripts/tools.sh peers` (Feast and DuckDB in
//! `$PLINTH_PEERS_VENV`, default `~/.cache/plinth/tools/peers-venv`). Arguments after `--` narrow the
//! run: `online`, `training`.
//!
//! One run writes one Parquet file of feature rows into a temp dir (`PLINTH_BENCH_FEATURE_ROWS`, default
//! 1,000,000: ten events per driver, so 100,000 drivers, five float64 features each) and one of entity
//! rows (`PLINTH_BENCH_ENTITY_ROWS`, default 100,000: a random driver, 1% unknown, at a random second
//! across the events' span). Both stores read that same file:
//!
//! - **online**: Plinth (`plinth_feature_store::bind` in this process, Redis online store) and Feast
//!   (`feast serve -w 2 --max-requests 0`, Redis online store) materialize every driver into the same
//!   Redis, db 15 (the bench owns it: flushed before and after). Then one Rust load generator, 32
//!   concurrent tokio tasks for `PLINTH_BENCH_SECONDS` (default 10) per case, reads random drivers,
//!   1 and 100 per request, from Plinth's gRPC `GetOnlineFeatures`, Plinth's HTTP `/get-online-features`
//!   and Feast's HTTP `/get-online-features` (the same JSON body for both), after a check that the three
//!   answer the same values for a sample of drivers (gRPC through tonic's client). Throughput and p99
//!   per case; goal ≥ 10× Feast's throughput and ≤ 1/10 of its p99. The gRPC load comes from
//!   [`GrpcLoad`], a unary client on the `h2` crate that sends a call's headers and message in one
//!   write, as ghz and the gRPC C core and Go clients do; HTTP load from reqwest.
//! - **training**: the training set of all entity rows with the five features, from Plinth two ways:
//!   gRPC `GetTrainingSet` (entity Parquet in, a Parquet dataset written to the lake) and Arrow Flight
//!   `DoGet` (the entity rows in memory as Arrow IPC in the ticket, the training set streamed back as
//!   Arrow, nothing written: the like-for-like of the peers, which take a DataFrame and hand back a
//!   table); Feast's `get_historical_features(...).to_df()` on its DuckDB offline store (entity_df a
//!   pandas DataFrame read before its runs), and a raw DuckDB `ASOF LEFT JOIN` into Arrow. Each side
//!   warms up once, then runs `PLINTH_BENCH_TRAINING_RUNS` times (default 5; Feast at most 3); the
//!   median is its figure. Both of Plinth's outputs are checked against DuckDB's, every row. Goal ≥ 10×
//!   Feast and at least DuckDB's speed; each peer is compared with both of Plinth's ways.
//!
//! A peer that cannot run here (no venv, no Redis) is reported as not run, never given a figure. A miss is
//! reported, never asserted; only a failed request or a disagreement makes the exit code non-zero.
//! docs/benchmarks.md records the figures.

// The same allocator as the shipped binaries, so the bench measures what ships.
#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit};
use arrow_flight::Ticket;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use futures::TryStreamExt as _;
use plinth_proto::featurestore::v1 as pb;
use plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient;
use plinth_runtime::client::AuthChannel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value as Json, json};

const DEFAULT_FEATURE_ROWS: usize = 1_000_000;
const DEFAULT_ENTITY_ROWS: usize = 100_000;
const DEFAULT_SECONDS: u64 = 10;
/// Timed training-set runs per side (after one warm-up); the median is the figure.
const DEFAULT_TRAINING_RUNS: usize = 5;
/// At most this many timed runs of Feast's training set (each takes over a second).
const FEAST_TRAINING_RUNS: usize = 3;
const EVENTS_PER_DRIVER: usize = 10;
const FEATURES: usize = 5;
const CLIENTS: usize = 32;
const BATCHES: [usize; 2] = [1, 100];
const FIRST_DRIVER: i64 = 1_000_000;
const HOUR: i64 = 3_600_000_000;
/// 2026-01-01T00:00:00Z in µs.
const T0: i64 = 1_767_225_600_000_000;
const REDIS_DB: u32 = 15;
const VIEW: &str = "driver_stats";
/// The training-set row of Plinth's `GetTrainingSet` (a Parquet dataset written to the lake).
const PLINTH_PARQUET: &str = "plinth GetTrainingSet (Parquet out)";
/// The training-set row of Plinth's Flight `DoGet` (Arrow in, Arrow out, nothing written).
const PLINTH_FLIGHT: &str = "plinth Flight DoGet (Arrow out)";
const ONLINE_GOAL_THROUGHPUT: f64 = 10.0;
const ONLINE_GOAL_P99: f64 = 0.1;
const TRAINING_GOAL_FEAST: f64 = 10.0;
const TRAINING_GOAL_DUCKDB: f64 = 1.0;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|arg| arg == "--bench") {
        // `cargo test --benches` runs bench binaries without `--bench`: a benchmark is not a test.
        println!(
            "feature store bench: run it with `cargo bench -p plinth-feature-store --bench feature_store`"
        );
        return Ok(());
    }
    let named = |key: &str| args.iter().any(|arg| arg == key);
    let (mut online, mut training) = (named("online"), named("training"));
    if !online && !training {
        (online, training) = (true, true);
    }
    let feature_rows = env_number("PLINTH_BENCH_FEATURE_ROWS", DEFAULT_FEATURE_ROWS, 100)?;
    let settings = Settings {
        drivers: feature_rows / EVENTS_PER_DRIVER,
        entity_rows: env_number("PLINTH_BENCH_ENTITY_ROWS", DEFAULT_ENTITY_ROWS, 1)?,
        seconds: env_number("PLINTH_BENCH_SECONDS", DEFAULT_SECONDS as usize, 1)? as u64,
        training_runs: env_number("PLINTH_BENCH_TRAINING_RUNS", DEFAULT_TRAINING_RUNS, 1)?,
        online,
        training,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run(&settings))
}

fn env_number(key: &str, default: usize, min: usize) -> anyhow::Result<usize> {
    match std::env::var(key) {
        Ok(value) => value
            .replace('_', "")
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= min)
            .with_context(|| format!("{key}={value} is not a number >= {min}")),
        Err(_) => Ok(default),
    }
}

#[derive(Debug)]
struct Settings {
    drivers: usize,
    entity_rows: usize,
    seconds: u64,
    training_runs: usize,
    online: bool,
    training: bool,
}

impl Settings {
    fn feature_rows(&self) -> usize {
        self.drivers * EVENTS_PER_DRIVER
    }
}

/// The peers venv's Python, if the venv is there.
fn peers_python() -> Result<PathBuf, String> {
    let venv = std::env::var_os("PLINTH_PEERS_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
            Some(cache.join("plinth/tools/peers-venv"))
        })
        .ok_or("neither PLINTH_PEERS_VENV nor HOME is set")?;
    let python = venv.join("bin/python");
    if python.exists() {
        Ok(python)
    } else {
        Err(format!(
            "no peers venv at {} (run `bash deploy/scripts/tools.sh peers`)",
            venv.display()
        ))
    }
}

fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/peers")
        .join(name)
}

/// Runs a peer script to completion and parses the JSON of its last stdout line.
fn run_peer(python: &Path, script: &str, args: &[&str]) -> anyhow::Result<Json> {
    let output = Command::new(python)
        .arg(peer_script(script))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {script} with {}", python.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        bail!(
            "{script} {args:?} failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("{script} printed no JSON result: {stdout}"))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) -> anyhow::Result<()> {
    let schema = batches.first().context("no batch to write")?.schema();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(())
}

/// Writes the feature rows: event `k` of every driver at `T0 + k h + a per-driver second`, five random
/// features. Returns each driver's latest features (what the online stores must answer).
fn write_features(path: &Path, drivers: usize, rng: &mut StdRng) -> anyhow::Result<Vec<[f64; 5]>> {
    let schema = Arc::new(Schema::new(
        [
            Field::new("driver_id", DataType::Int64, false),
            Field::new("event_timestamp", ts_type(), false),
        ]
        .into_iter()
        .chain((0..FEATURES).map(|i| Field::new(format!("f{i}"), DataType::Float64, true)))
        .collect::<Vec<_>>(),
    ));
    let mut latest = vec![[0.0; FEATURES]; drivers];
    let mut batches = Vec::new();
    for event in 0..EVENTS_PER_DRIVER {
        let ids: Vec<i64> = (0..drivers).map(|d| FIRST_DRIVER + d as i64).collect();
        let times: Vec<i64> = (0..drivers)
            .map(|d| T0 + event as i64 * HOUR + (d as i64 % 3_000) * 1_000_000)
            .collect();
        let mut columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        ];
        let values: Vec<Vec<f64>> = (0..FEATURES)
            .map(|_| (0..drivers).map(|_| rng.random::<f64>()).collect())
            .collect();
        if event == EVENTS_PER_DRIVER - 1 {
            for (d, row) in latest.iter_mut().enumerate() {
                for (i, value) in row.iter_mut().enumerate() {
                    *value = values[i][d];
                }
            }
        }
        columns.extend(
            values
                .into_iter()
                .map(|column| Arc::new(Float64Array::from(column)) as Arc<dyn Array>),
        );
        batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    write_parquet(path, &batches)?;
    Ok(latest)
}

/// Writes the entity rows: `row_id`, a random driver (1% unknown), a random second from an hour before
/// the first event to an hour after the last.
fn write_entities(
    path: &Path,
    rows: usize,
    drivers: usize,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("driver_id", DataType::Int64, false),
        Field::new("event_timestamp", ts_type(), false),
        Field::new("row_id", DataType::Int64, false),
    ]));
    let span_seconds = (EVENTS_PER_DRIVER as i64 + 2) * 3_600;
    let ids: Vec<i64> = (0..rows)
        .map(|_| FIRST_DRIVER + rng.random_range(0..(drivers + drivers / 100 + 1)) as i64)
        .collect();
    let times: Vec<i64> = (0..rows)
        .map(|_| T0 - HOUR + rng.random_range(0..span_seconds) * 1_000_000)
        .collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        ],
    )?;
    write_parquet(path, &[batch])
}

fn definitions() -> String {
    let mut yaml = format!(
        "entities:\n  - name: driver\n    join_keys: [{{name: driver_id, type: int64}}]\nsources:\n  - name: driver_stats_source\n    lake: {{dataset: {VIEW}}}\n    timestamp_field: event_timestamp\nfeature_views:\n  - name: {VIEW}\n    entities: [driver]\n    ttl: 0\n    source: driver_stats_source\n    features:\n"
    );
    for i in 0..FEATURES {
        let _ = writeln!(yaml, "      - {{name: f{i}, type: float64}}");
    }
    yaml
}

fn feature_refs() -> Vec<String> {
    (0..FEATURES).map(|i| format!("{VIEW}:f{i}")).collect()
}

/// Plinth serving in this process.
struct Plinth {
    grpc: SocketAddr,
    http: SocketAddr,
    lake_dir: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Plinth {
    async fn start(dir: &Path, lake_dir: &Path, redis: Option<&str>) -> anyhow::Result<Self> {
        let mut config = plinth_feature_store::Config::default();
        config.server.grpc.listen = "127.0.0.1:0".parse()?;
        config.server.http.listen = "127.0.0.1:0".parse()?;
        config.server.shutdown_grace_period = Duration::from_secs(5);
        config.database.url = format!("sqlite://{}?mode=rwc", dir.join("registry.db").display());
        config.online.embedded_url =
            format!("sqlite://{}?mode=rwc", dir.join("online.db").display());
        if let Some(url) = redis {
            config.online.store = plinth_feature_store::config::OnlineStoreKind::Redis;
            config.online.redis_url = url.to_owned();
        }
        config.online.key_prefix = format!("plinth-bench-{}", std::process::id());
        config.serving.max_entity_rows = 10_000;
        config.lake.root = format!("file://{}", lake_dir.display());
        config.training.spill_dir = Some(dir.join("spill"));
        let bound = plinth_feature_store::bind(&config)
            .await
            .map_err(|err| anyhow::anyhow!("the feature store does not start: {err}"))?;
        let (grpc, http) = (bound.grpc_addr(), bound.http_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let _ = bound
                .serve(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            grpc,
            http,
            lake_dir: lake_dir.to_owned(),
            stop,
            done,
        })
    }

    async fn channel(&self) -> anyhow::Result<AuthChannel> {
        let endpoint = format!("http://{}", self.grpc).parse()?;
        plinth_runtime::client::connect(&endpoint, None, None, Duration::from_secs(300))
            .await
            .map_err(|err| anyhow::anyhow!("cannot connect to the feature store: {err}"))
    }

    async fn client(&self) -> anyhow::Result<FeatureStoreServiceClient<AuthChannel>> {
        Ok(FeatureStoreServiceClient::new(self.channel().await?)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20))
    }

    async fn flight_client(&self) -> anyhow::Result<FlightServiceClient<AuthChannel>> {
        Ok(FlightServiceClient::new(self.channel().await?)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20))
    }

    async fn apply_and_materialize(&self) -> anyhow::Result<Duration> {
        let mut client = self.client().await?;
        client
            .apply_definitions(pb::ApplyDefinitionsRequest {
                files: vec![pb::DefinitionFile {
                    path: "features/bench.yaml".to_owned(),
                    content: definitions(),
                }],
                prune: false,
            })
            .await
            .context("ApplyDefinitions")?;
        let started = Instant::now();
        let answer = client
            .materialize(pb::MaterializeRequest {
                feature_views: vec![VIEW.to_owned()],
                start_time: None,
                end_time: Some(prost_types::Timestamp {
                    seconds: (T0 + (EVENTS_PER_DRIVER as i64 + 1) * HOUR) / 1_000_000,
                    nanos: 0,
                }),
                incremental: false,
            })
            .await
            .context("Materialize")?
            .into_inner();
        let elapsed = started.elapsed();
        ensure!(answer.views.len() == 1, "Materialize answered {answer:?}");
        Ok(elapsed)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
    }
}

/// `feast serve`, stopped (by its pid) when dropped.
struct FeastServer {
    child: Child,
    http: SocketAddr,
}

impl FeastServer {
    fn start(python: &Path, repo: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let feast = python.with_file_name("feast");
        let log = std::fs::File::create(repo.join("serve.log"))?;
        // A process group of its own, so that stopping it stops gunicorn's master and workers too.
        let child = Command::new(&feast)
            .process_group(0)
            .arg("-c")
            .arg(repo)
            .args(["serve", "-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["--no-access-log", "--max-requests", "0", "-w", "2"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", feast.display()))?;
        Ok(Self {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }
}

impl FeastServer {
    /// Sends `signal` to the server's whole process group; whether any of it was there.
    fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Stops the server and waits until none of its processes is left: `feast serve` runs a gunicorn
    /// master and workers, which outlive the CLI process by a second or more, and the next case must
    /// not share the cores with Feast's shutdown.
    async fn stop(mut self) {
        self.signal("-TERM");
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.signal("-0") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for FeastServer {
    fn drop(&mut self) {
        // After `stop`, or on an early return: whatever is left of the group goes.
        self.signal("-KILL");
        let _ = self.child.wait();
    }
}

fn http_body(ids: &[i64]) -> String {
    let features: Vec<String> = feature_refs().iter().map(|r| format!("\"{r}\"")).collect();
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!(
        "{{\"features\":[{}],\"entities\":{{\"driver_id\":[{}]}},\"full_feature_names\":false}}",
        features.join(","),
        ids.join(",")
    )
}

fn grpc_request(ids: &[i64]) -> pb::GetOnlineFeaturesRequest {
    pb::GetOnlineFeaturesRequest {
        features: Some(pb::FeatureSelection {
            selection: Some(pb::feature_selection::Selection::Features(
                pb::FeatureList {
                    refs: feature_refs(),
                },
            )),
        }),
        entities: HashMap::from([(
            "driver_id".to_owned(),
            pb::RepeatedValue {
                val: ids
                    .iter()
                    .map(|id| pb::Value {
                        val: Some(pb::value::Val::Int64Val(*id)),
                    })
                    .collect(),
            },
        )]),
        full_feature_names: false,
    }
}

/// The load generator's gRPC client: unary `GetOnlineFeatures` calls written directly on the `h2`
/// crate, as gRPC load generators (ghz, h2load) and the gRPC C core and Go clients do it: a call's
/// headers and its one message leave in one write. tonic's client writes them in two (hyper opens the
/// stream before the body gets send capacity), which doubles the wake-ups of both ends of a loopback
/// connection whose load generator shares the server's two cores.
struct GrpcLoad {
    send: h2::client::SendRequest<bytes::Bytes>,
    uri: http::Uri,
}

impl GrpcLoad {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::handshake(tcp).await?;
        tokio::spawn(async move {
            // Ends with the client; an error shows up in the next call.
            let _ = connection.await;
        });
        let uri =
            format!("http://{addr}/plinth.featurestore.v1.FeatureStoreService/GetOnlineFeatures")
                .parse()?;
        Ok(Self { send, uri })
    }

    async fn get_online_features(
        &mut self,
        request: &pb::GetOnlineFeaturesRequest,
    ) -> anyhow::Result<pb::GetOnlineFeaturesResponse> {
        use bytes::BufMut as _;
        use prost::Message as _;

        let length = request.encoded_len();
        let mut message = bytes::BytesMut::with_capacity(5 + length);
        message.put_u8(0);
        message.put_u32(u32::try_from(length)?);
        request.encode(&mut message)?;
        let head = http::Request::post(self.uri.clone())
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        futures::future::poll_fn(|cx| self.send.poll_ready(cx)).await?;
        let (response, mut stream) = self.send.send_request(head, false)?;
        stream.send_data(message.freeze(), true)?;
        let response = response.await?;
        ensure!(
            response.status() == http::StatusCode::OK,
            "GetOnlineFeatures answered HTTP {}",
            response.status()
        );
        let grpc_status = |headers: &http::HeaderMap| {
            headers
                .get("grpc-status")
                .map(|status| status.to_str().unwrap_or("?").to_owned())
        };
        if let Some(status) = grpc_status(response.headers()) {
            bail!("GetOnlineFeatures failed with gRPC status {status}");
        }
        let mut body = response.into_body();
        let mut data = bytes::BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            body.flow_control().release_capacity(chunk.len())?;
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await?.unwrap_or_default();
        let status = grpc_status(&trailers);
        ensure!(
            status.as_deref() == Some("0"),
            "GetOnlineFeatures ended with gRPC status {status:?}"
        );
        ensure!(
            data.len() >= 5 && data[0] == 0,
            "GetOnlineFeatures answered no uncompressed message"
        );
        let length = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        ensure!(
            data.len() == 5 + length,
            "GetOnlineFeatures answered a cut message"
        );
        Ok(pb::GetOnlineFeaturesResponse::decode(&data[5..])?)
    }
}

/// Reads `ids` over HTTP and returns the features per driver, columns in the response's order.
async fn http_values(
    http: &reqwest::Client,
    addr: SocketAddr,
    ids: &[i64],
) -> anyhow::Result<Vec<Vec<Option<f64>>>> {
    let response = http
        .post(format!("http://{addr}/get-online-features"))
        .header("content-type", "application/json")
        .body(http_body(ids))
        .send()
        .await?;
    let status = response.status();
    let body: Json = response.json().await?;
    ensure!(status.is_success(), "{addr} answered {status}: {body}");
    let names = body["metadata"]["feature_names"]
        .as_array()
        .context("no metadata.feature_names")?;
    let mut rows = vec![vec![None; FEATURES]; ids.len()];
    for (column, name) in names.iter().enumerate() {
        let Some(feature) = name
            .as_str()
            .and_then(|n| n.strip_prefix('f'))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let values = body["results"][column]["values"]
            .as_array()
            .context("no results[].values")?;
        for (row, value) in values.iter().enumerate().take(ids.len()) {
            rows[row][feature] = value.as_f64();
        }
    }
    Ok(rows)
}

async fn grpc_values(
    client: &mut FeatureStoreServiceClient<AuthChannel>,
    ids: &[i64],
) -> anyhow::Result<Vec<Vec<Option<f64>>>> {
    let answer = client
        .get_online_features(grpc_request(ids))
        .await?
        .into_inner();
    let names = answer
        .metadata
        .and_then(|m| m.feature_names)
        .context("no metadata")?
        .val;
    let mut rows = vec![vec![None; FEATURES]; ids.len()];
    for (column, name) in names.iter().enumerate() {
        let Some(feature) = name.strip_prefix('f').and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        for (row, value) in answer.results[column].values.iter().enumerate() {
            if let Some(pb::value::Val::DoubleVal(v)) = value.val {
                rows[row][feature] = Some(v);
            }
        }
    }
    Ok(rows)
}

/// Fails with the first differing driver unless `got` equals `expected` (to 1e-12 relative:
/// serde_json's default float parsing can be one ulp off the shortest text it was written as).
fn same_values(
    who: &str,
    got: &[Vec<Option<f64>>],
    expected: &[Vec<Option<f64>>],
) -> anyhow::Result<()> {
    let close = |a: &Option<f64>, b: &Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(b.abs()),
        (None, None) => true,
        _ => false,
    };
    if let Some((row, (got, expected))) =
        got.iter()
            .zip(expected)
            .enumerate()
            .find(|(_, (got, expected))| {
                got.len() != expected.len()
                    || !got.iter().zip(expected.iter()).all(|(a, b)| close(a, b))
            })
    {
        bail!(
            "{who} does not answer the generated latest values: sample row {row} is {got:?}, expected {expected:?}"
        );
    }
    ensure!(
        got.len() == expected.len(),
        "{who} answered {} rows, expected {}",
        got.len(),
        expected.len()
    );
    Ok(())
}

/// Which server and protocol a load case drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    PlinthGrpc,
    PlinthHttp,
    FeastHttp,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::PlinthGrpc => "plinth gRPC",
            Target::PlinthHttp => "plinth HTTP",
            Target::FeastHttp => "feast HTTP",
        }
    }
}

#[derive(Debug, Clone)]
struct Load {
    requests: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Load {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// 32 tasks, each sending one request at a time for `duration`, random drivers, `batch` per request.
async fn load(
    target: Target,
    plinth: &Plinth,
    feast: Option<SocketAddr>,
    drivers: usize,
    batch: usize,
    duration: Duration,
) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let addr = match target {
        Target::PlinthHttp => plinth.http,
        Target::FeastHttp => feast.context("Feast is not running")?,
        Target::PlinthGrpc => plinth.grpc,
    };
    let mut tasks = Vec::with_capacity(CLIENTS);
    let started = Instant::now();
    let deadline = started + duration;
    for task in 0..CLIENTS {
        let http = http.clone();
        let mut grpc = match target {
            Target::PlinthGrpc => Some(GrpcLoad::connect(plinth.grpc).await?),
            _ => None,
        };
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(task as u64);
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            let url = format!("http://{addr}/get-online-features");
            while Instant::now() < deadline {
                let ids: Vec<i64> = (0..batch)
                    .map(|_| FIRST_DRIVER + rng.random_range(0..drivers) as i64)
                    .collect();
                let sent = Instant::now();
                match &mut grpc {
                    Some(client) => {
                        let answer = client.get_online_features(&grpc_request(&ids)).await?;
                        ensure!(answer.results.len() == FEATURES + 1, "short answer");
                    }
                    None => {
                        let response = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(http_body(&ids))
                            .send()
                            .await?;
                        let status = response.status();
                        let body = response.bytes().await?;
                        ensure!(
                            status.is_success(),
                            "{addr} answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                }
                latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed();
    ensure!(!all.is_empty(), "{} answered no request", target.label());
    all.sort_unstable();
    let at = |q: f64| {
        let index = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1;
        Duration::from_micros(u64::from(all[index]))
    };
    Ok(Load {
        requests: all.len() as u64,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
    })
}

fn redis_flush(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
    redis::cmd("FLUSHDB").exec(&mut connection)?;
    Ok(())
}

/// Everything one run measured, for the table.
#[derive(Default)]
struct Results {
    notes: Vec<String>,
    materialize: Vec<(String, Duration)>,
    online: Vec<(Target, usize, Load)>,
    training: Vec<(&'static str, Duration, usize)>,
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    // The telemetry a shipped binary installs at its defaults (logs at info to stderr, every request's
    // span recorded), so the bench measures what ships.
    let _telemetry = plinth_runtime::telemetry::init(
        plinth_feature_store::SERVICE_NAME,
        &plinth_runtime::config::TelemetryConfig::default(),
    )?;
    let load_before = load_average();
    let dir = tempfile::Builder::new()
        .prefix("plinth-feature-store-bench")
        .tempdir()?;
    let lake_dir = dir.path().join("lake");
    let features_path = lake_dir.join(VIEW).join("part-0.parquet");
    let entities_path = dir.path().join("entities.parquet");
    let mut rng = StdRng::seed_from_u64(42);
    let started = Instant::now();
    let latest = write_features(&features_path, settings.drivers, &mut rng)?;
    write_entities(
        &entities_path,
        settings.entity_rows,
        settings.drivers,
        &mut rng,
    )?;
    println!(
        "feature store bench: wrote {} feature rows ({} drivers × {EVENTS_PER_DRIVER} events × {FEATURES} float64) and {} entity rows in {:.1} s",
        settings.feature_rows(),
        settings.drivers,
        settings.entity_rows,
        started.elapsed().as_secs_f64()
    );
    let mut results = Results::default();
    let python = peers_python();
    if let Err(why) = &python {
        results
            .notes
            .push(format!("Feast and DuckDB not run: {why}"));
    }
    let python = python.ok();

    let redis_url = format!("redis://127.0.0.1:6379/{REDIS_DB}");
    let redis = match redis_flush(&redis_url) {
        Ok(()) => Some(redis_url.clone()),
        Err(err) => {
            results.notes.push(format!(
                "online not run: no Redis at {redis_url} ({err}); start it with `bash deploy/scripts/services.sh ensure`"
            ));
            None
        }
    };
    let plinth = Plinth::start(dir.path(), &lake_dir, redis.as_deref()).await?;
    let outcome = measure(
        settings,
        &plinth,
        python.as_deref(),
        redis.is_some(),
        dir.path(),
        &features_path,
        &entities_path,
        &latest,
        &mut results,
    )
    .await;
    plinth.stop().await;
    if redis.is_some() {
        let _ = redis_flush(&redis_url);
    }
    print_table(settings, &results, &load_before);
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    settings: &Settings,
    plinth: &Plinth,
    python: Option<&Path>,
    redis: bool,
    dir: &Path,
    features_path: &Path,
    entities_path: &Path,
    latest: &[[f64; 5]],
    results: &mut Results,
) -> anyhow::Result<()> {
    let elapsed = plinth.apply_and_materialize().await?;
    if redis {
        results
            .materialize
            .push(("plinth (Redis)".to_owned(), elapsed));
    }
    if settings.online && redis {
        online(
            settings,
            plinth,
            python,
            dir,
            features_path,
            latest,
            results,
        )
        .await?;
    }
    if settings.training {
        training(
            settings,
            plinth,
            python,
            dir,
            features_path,
            entities_path,
            results,
        )
        .await?;
    }
    Ok(())
}

async fn online(
    settings: &Settings,
    plinth: &Plinth,
    python: Option<&Path>,
    dir: &Path,
    features_path: &Path,
    latest: &[[f64; 5]],
    results: &mut Results,
) -> anyhow::Result<()> {
    let repo = dir.join("feast");
    let feast = match python {
        Some(python) => {
            let source = features_path.display().to_string();
            let answer = run_peer(
                python,
                "feast_peer.py",
                &[
                    "setup",
                    &repo.display().to_string(),
                    "--source",
                    &source,
                    "--redis",
                    &format!("127.0.0.1:6379,db={REDIS_DB}"),
                    "--features",
                    &FEATURES.to_string(),
                ],
            )?;
            let seconds = answer["materialize_s"]
                .as_f64()
                .context("no materialize_s")?;
            results
                .materialize
                .push(("feast (Redis)".to_owned(), Duration::from_secs_f64(seconds)));
            Some(FeastServer::start(python, &repo)?)
        }
        None => None,
    };
    let http = reqwest::Client::new();
    // Both servers answer the same values for a sample of drivers (and the generated latest ones).
    let sample: Vec<i64> = (0..100)
        .map(|i| FIRST_DRIVER + (i * settings.drivers / 100) as i64)
        .collect();
    let expected: Vec<Vec<Option<f64>>> = sample
        .iter()
        .map(|id| {
            latest[(id - FIRST_DRIVER) as usize]
                .iter()
                .map(|v| Some(*v))
                .collect()
        })
        .collect();
    let mut client = plinth.client().await?;
    same_values(
        "Plinth gRPC",
        &grpc_values(&mut client, &sample).await?,
        &expected,
    )?;
    same_values(
        "Plinth HTTP",
        &http_values(&http, plinth.http, &sample).await?,
        &expected,
    )?;
    if let Some(server) = &feast {
        let ready = Instant::now();
        loop {
            match http_values(&http, server.http, &sample).await {
                Ok(values) => {
                    same_values("Feast", &values, &expected)?;
                    break;
                }
                Err(err) if ready.elapsed() > Duration::from_secs(90) => {
                    bail!(
                        "feast serve did not answer within 90 s ({err}); see {}",
                        repo.join("serve.log").display()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    let duration = Duration::from_secs(settings.seconds);
    for batch in BATCHES {
        for target in [Target::PlinthGrpc, Target::PlinthHttp, Target::FeastHttp] {
            let feast_addr = feast.as_ref().map(|server| server.http);
            if target == Target::FeastHttp && feast_addr.is_none() {
                continue;
            }
            // A short warm-up (connections, caches), then the measurement.
            load(
                target,
                plinth,
                feast_addr,
                settings.drivers,
                batch,
                Duration::from_secs(1),
            )
            .await?;
            let measured = load(
                target,
                plinth,
                feast_addr,
                settings.drivers,
                batch,
                duration,
            )
            .await?;
            println!(
                "  online {} batch {batch}: {:.0} req/s, p99 {:.1} ms",
                target.label(),
                measured.per_second(),
                measured.p99.as_secs_f64() * 1e3
            );
            results.online.push((target, batch, measured));
        }
    }
    if let Some(feast) = feast {
        feast.stop().await;
    }
    Ok(())
}

async fn training(
    settings: &Settings,
    plinth: &Plinth,
    python: Option<&Path>,
    dir: &Path,
    features_path: &Path,
    entities_path: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    let mut client = plinth.client().await?;
    let request = |output: &str| pb::GetTrainingSetRequest {
        training_set: Some(pb::TrainingSetRequest {
            features: Some(pb::FeatureSelection {
                selection: Some(pb::feature_selection::Selection::Features(
                    pb::FeatureList {
                        refs: feature_refs(),
                    },
                )),
            }),
            entities: Some(pb::training_set_request::Entities::EntityUrl(format!(
                "file://{}",
                entities_path.display()
            ))),
            short_feature_names: true,
            ..Default::default()
        }),
        output_dataset: Some(plinth_proto::ids::DatasetName::new(output.to_owned())),
    };
    client
        .get_training_set(request("training_warmup"))
        .await
        .context("GetTrainingSet (warm-up)")?;
    let mut runs = Vec::with_capacity(settings.training_runs);
    for run in 0..settings.training_runs {
        // The first timed run's dataset is the one compared with DuckDB's rows.
        let output = if run == 0 {
            "training".to_owned()
        } else {
            format!("training_{run}")
        };
        let started = Instant::now();
        let answer = client
            .get_training_set(request(&output))
            .await
            .context("GetTrainingSet")?
            .into_inner();
        runs.push(started.elapsed().as_secs_f64());
        ensure!(
            answer.row_count as usize == settings.entity_rows,
            "Plinth's training set has {} rows, not {}",
            answer.row_count,
            settings.entity_rows
        );
    }
    record_plinth_runs(
        results,
        PLINTH_PARQUET,
        "GetTrainingSet",
        &runs,
        settings.entity_rows,
    );
    let flight_rows = flight_training(settings, plinth, entities_path, results).await?;
    let Some(python) = python else {
        return Ok(());
    };
    let duck_out = dir.join("duckdb.parquet");
    let answer = run_peer(
        python,
        "duckdb_asof.py",
        &[
            "--features",
            &features_path.display().to_string(),
            "--entities",
            &entities_path.display().to_string(),
            "--columns",
            &FEATURES.to_string(),
            "--out",
            &duck_out.display().to_string(),
            "--runs",
            &settings.training_runs.to_string(),
        ],
    )?;
    let (seconds, runs) = peer_runs(&answer)?;
    let rows = answer["rows"].as_u64().unwrap_or_default() as usize;
    results.training.push((
        "duckdb ASOF LEFT JOIN",
        Duration::from_secs_f64(seconds),
        rows,
    ));
    println!("  training duckdb: {seconds:.3} s (median of {runs})");
    results
        .notes
        .push(format!("training runs, duckdb: {runs} s"));
    let theirs = read_rows(&duck_out)?;
    let mismatches = compare(&read_rows(&plinth.lake_dir.join("training"))?, &theirs);
    ensure!(
        mismatches == 0,
        "Plinth's GetTrainingSet and DuckDB disagree on {mismatches} training rows"
    );
    let mismatches = compare(&flight_rows, &theirs);
    ensure!(
        mismatches == 0,
        "Plinth's Flight DoGet and DuckDB disagree on {mismatches} training rows"
    );
    results.notes.push(format!(
        "training: Plinth's {} rows (GetTrainingSet and Flight DoGet) equal DuckDB's, every row and feature",
        settings.entity_rows
    ));
    let repo = dir.join("feast");
    if repo.join("feature_store.yaml").exists() {
        let answer = run_peer(
            python,
            "feast_peer.py",
            &[
                "offline",
                &repo.display().to_string(),
                "--entities",
                &entities_path.display().to_string(),
                "--features",
                &FEATURES.to_string(),
                "--runs",
                &settings.training_runs.min(FEAST_TRAINING_RUNS).to_string(),
            ],
        )?;
        let (seconds, runs) = peer_runs(&answer)?;
        let rows = answer["rows"].as_u64().unwrap_or_default() as usize;
        results.training.push((
            "feast get_historical_features (DuckDB)",
            Duration::from_secs_f64(seconds),
            rows,
        ));
        println!("  training feast: {seconds:.3} s (median of {runs})");
        results
            .notes
            .push(format!("training runs, feast: {runs} s"));
        if let (Some(first), Some((_, plinth, _))) = (
            answer["first"].as_f64(),
            results
                .training
                .iter()
                .find(|(who, _, _)| *who == PLINTH_PARQUET),
        ) {
            results.notes.push(format!(
                "training, feast's first call in its process (the warm-up, what a job calling it once pays): {first:.3} s, {:.1}× Plinth's GetTrainingSet median; the verdict uses the warm median",
                first / plinth.as_secs_f64()
            ));
        }
    } else {
        results
            .notes
            .push("Feast's training set not run: its repo is made by the online case".to_owned());
    }
    Ok(())
}

/// The training set through Arrow Flight: the entity rows sent in memory as Arrow IPC in the `DoGet`
/// ticket (as Feast's `entity_df` is a DataFrame in memory) and the training set streamed back as Arrow
/// batches (as Feast's `to_df()` and DuckDB's `.arrow()` hand back a table). The Parquet entity file is
/// read before the clock starts, as the Feast peer reads it with pandas before its runs; encoding the
/// ticket is timed. Returns the first timed run's rows.
async fn flight_training(
    settings: &Settings,
    plinth: &Plinth,
    entities_path: &Path,
    results: &mut Results,
) -> anyhow::Result<HashMap<i64, Vec<Option<f64>>>> {
    let entity_batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(entities_path)?,
        )?
        .build()?
        .collect::<Result<_, _>>()?;
    let mut client = plinth.flight_client().await?;
    let ticket = |batches: &[RecordBatch]| -> anyhow::Result<Ticket> {
        let schema = batches.first().context("no entity rows")?.schema();
        let mut ipc = Vec::new();
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &schema)?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        drop(writer);
        let request = pb::TrainingSetRequest {
            features: Some(pb::FeatureSelection {
                selection: Some(pb::feature_selection::Selection::Features(
                    pb::FeatureList {
                        refs: feature_refs(),
                    },
                )),
            }),
            entities: Some(pb::training_set_request::Entities::EntityArrowIpc(ipc)),
            short_feature_names: true,
            ..Default::default()
        };
        Ok(Ticket {
            ticket: prost::Message::encode_to_vec(&request).into(),
        })
    };
    let mut first_rows = None;
    let mut runs = Vec::with_capacity(settings.training_runs);
    for run in 0..=settings.training_runs {
        let started = Instant::now();
        let response = client
            .do_get(ticket(&entity_batches)?)
            .await
            .context("Flight DoGet")?
            .into_inner()
            .map_err(FlightError::from);
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(response)
            .try_collect()
            .await
            .context("Flight DoGet stream")?;
        let elapsed = started.elapsed().as_secs_f64();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        ensure!(
            rows == settings.entity_rows,
            "Plinth's Flight training set has {rows} rows, not {}",
            settings.entity_rows
        );
        // Run 0 is the warm-up, as for the other sides.
        if run == 1 {
            first_rows = Some(rows_of_batches(&batches)?);
        }
        if run > 0 {
            runs.push(elapsed);
        }
    }
    record_plinth_runs(
        results,
        PLINTH_FLIGHT,
        "Flight DoGet",
        &runs,
        settings.entity_rows,
    );
    first_rows.context("no timed Flight run")
}

/// Records one of Plinth's training-set ways: its median time as `row` of the table, printed with
/// every timed run, and the runs as a note.
fn record_plinth_runs(
    results: &mut Results,
    row: &'static str,
    way: &str,
    runs: &[f64],
    rows: usize,
) {
    let elapsed = Duration::from_secs_f64(median(runs));
    results.training.push((row, elapsed, rows));
    println!(
        "  training plinth {way}: {:.3} s (median of {})",
        elapsed.as_secs_f64(),
        runs_text(runs)
    );
    results.notes.push(format!(
        "training runs, plinth {way}: {} s",
        runs_text(runs)
    ));
}

/// The median of `values` (not empty).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

fn runs_text(runs: &[f64]) -> String {
    runs.iter()
        .map(|run| format!("{run:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A peer's answer: the median of its timed runs, and the runs as text.
fn peer_runs(answer: &serde_json::Value) -> anyhow::Result<(f64, String)> {
    let runs: Vec<f64> = answer["runs"]
        .as_array()
        .context("no runs in the peer's answer")?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    ensure!(!runs.is_empty(), "the peer timed no run");
    Ok((median(&runs), runs_text(&runs)))
}

/// Features per row id, from every Parquet file under `path` (a file or a directory).
fn read_rows(path: &Path) -> anyhow::Result<HashMap<i64, Vec<Option<f64>>>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect()
    } else {
        vec![path.to_owned()]
    };
    let mut batches = Vec::new();
    for file in files {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&file)?,
        )?
        .build()?;
        for batch in reader {
            batches.push(batch?);
        }
    }
    rows_of_batches(&batches).with_context(|| format!("reading {}", path.display()))
}

/// Features per row id, from training-set batches.
fn rows_of_batches(batches: &[RecordBatch]) -> anyhow::Result<HashMap<i64, Vec<Option<f64>>>> {
    let mut rows = HashMap::new();
    for batch in batches {
        let ids = batch
            .column_by_name("row_id")
            .context("no row_id column")?
            .as_primitive::<Int64Type>()
            .clone();
        let columns: Vec<_> = (0..FEATURES)
            .map(|i| {
                batch
                    .column_by_name(&format!("f{i}"))
                    .with_context(|| format!("no f{i} column"))
                    .map(|c| c.as_primitive::<Float64Type>().clone())
            })
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            let values = columns
                .iter()
                .map(|c| (!c.is_null(row)).then(|| c.value(row)))
                .collect();
            rows.insert(ids.value(row), values);
        }
    }
    Ok(rows)
}

/// Rows of Plinth's training set that differ from DuckDB's (or miss).
fn compare(
    ours: &HashMap<i64, Vec<Option<f64>>>,
    theirs: &HashMap<i64, Vec<Option<f64>>>,
) -> usize {
    let mut mismatches = 0;
    for (id, values) in theirs {
        if ours.get(id) != Some(values) {
            if mismatches < 5 {
                eprintln!("row {id}: plinth {:?}, duckdb {values:?}", ours.get(id));
            }
            mismatches += 1;
        }
    }
    mismatches + ours.len().abs_diff(theirs.len())
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

fn print_table(settings: &Settings, results: &Results, load_before: &str) {
    println!();
    println!(
        "Feature store vs Feast 0.67 and DuckDB: {} drivers × {FEATURES} float64 online in Redis db {REDIS_DB}, {CLIENTS} clients × {} s per case; training set {} entity rows × {} feature rows; {} cores, load average before {load_before}, after {}",
        settings.drivers,
        settings.seconds,
        settings.entity_rows,
        settings.feature_rows(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    for (who, elapsed) in &results.materialize {
        println!(
            "materialize {} drivers, {who}: {:.2} s",
            settings.drivers,
            elapsed.as_secs_f64()
        );
    }
    let mut lines = Vec::new();
    if !results.online.is_empty() {
        println!(
            "{:<26} | {:>9} {:>8} {:>8} | {:>9} {:>8} | {:>8} {:>9} | verdict",
            "online case",
            "req/s",
            "p50 ms",
            "p99 ms",
            "feast r/s",
            "p99 ms",
            "× thrpt",
            "p99 ratio"
        );
        for (target, batch, load) in &results.online {
            let feast = results
                .online
                .iter()
                .find(|(t, b, _)| *t == Target::FeastHttp && b == batch)
                .map(|(_, _, l)| l);
            let case = format!("{} batch {batch}", target.label());
            let (ratio, p99_ratio) = match feast {
                Some(feast) if *target != Target::FeastHttp => (
                    Some(load.per_second() / feast.per_second()),
                    Some(load.p99.as_secs_f64() / feast.p99.as_secs_f64()),
                ),
                _ => (None, None),
            };
            let met = match (ratio, p99_ratio) {
                (Some(r), Some(p)) => verdict(r >= ONLINE_GOAL_THROUGHPUT && p <= ONLINE_GOAL_P99),
                _ => "-",
            };
            println!(
                "{case:<26} | {:>9.0} {:>8.2} {:>8.2} | {:>9} {:>8} | {:>8} {:>9} | {met}",
                load.per_second(),
                load.p50.as_secs_f64() * 1e3,
                load.p99.as_secs_f64() * 1e3,
                feast.map_or("-".to_owned(), |f| format!("{:.0}", f.per_second())),
                feast.map_or("-".to_owned(), |f| format!(
                    "{:.1}",
                    f.p99.as_secs_f64() * 1e3
                )),
                ratio.map_or("-".to_owned(), |r| format!("{r:.1}")),
                p99_ratio.map_or("-".to_owned(), |p| format!("{p:.3}")),
            );
            lines.push(json!({
                "bench": "feature_store",
                "case": format!("online_{}_batch{batch}", match target {
                    Target::PlinthGrpc => "plinth_grpc",
                    Target::PlinthHttp => "plinth_http",
                    Target::FeastHttp => "feast_http",
                }),
                "requests_per_s": load.per_second().round(),
                "entities_per_s": (load.per_second() * *batch as f64).round(),
                "p50_ms": (load.p50.as_secs_f64() * 1e5).round() / 100.0,
                "p99_ms": (load.p99.as_secs_f64() * 1e5).round() / 100.0,
                "throughput_ratio_vs_feast": ratio.map(|r| (r * 100.0).round() / 100.0),
                "p99_ratio_vs_feast": p99_ratio.map(|p| (p * 1000.0).round() / 1000.0),
                "goal": format!(">= {ONLINE_GOAL_THROUGHPUT}x throughput, <= {ONLINE_GOAL_P99} p99"),
                "verdict": met,
            }));
        }
    }
    if !results.training.is_empty() {
        print_training(results, &mut lines);
    }
    for note in &results.notes {
        println!("  note: {note}");
    }
    println!();
    for line in lines {
        println!("BENCH_RESULT {line}");
    }
}

/// The training-set rows: each peer against each of Plinth's two ways of handing out a training set.
fn print_training(results: &Results, lines: &mut Vec<Json>) {
    let plinth_time = |name: &str| {
        results
            .training
            .iter()
            .find(|(who, _, _)| *who == name)
            .map(|(_, elapsed, _)| elapsed.as_secs_f64())
    };
    let parquet = plinth_time(PLINTH_PARQUET);
    let flight = plinth_time(PLINTH_FLIGHT);
    println!(
        "{:<40} | {:>8} | {:>8} | {:>19} | {:>15} | verdict (Parquet, Flight)",
        "training set", "s", "rows", "× GetTrainingSet", "× Flight DoGet"
    );
    for (who, elapsed, rows) in &results.training {
        let seconds = elapsed.as_secs_f64();
        let goal = if who.starts_with("feast") {
            Some(TRAINING_GOAL_FEAST)
        } else if who.starts_with("duckdb") {
            Some(TRAINING_GOAL_DUCKDB)
        } else {
            None
        };
        let speedup = |plinth: Option<f64>| goal.and(plinth).map(|plinth| seconds / plinth);
        let (over_parquet, over_flight) = (speedup(parquet), speedup(flight));
        let met = |speedup: Option<f64>| match (goal, speedup) {
            (Some(goal), Some(speedup)) => verdict(speedup >= goal),
            _ => "-",
        };
        let text = |speedup: Option<f64>| speedup.map_or("-".to_owned(), |s| format!("{s:.1}×"));
        println!(
            "{who:<40} | {seconds:>8.3} | {rows:>8} | {:>19} | {:>15} | {}, {}",
            text(over_parquet),
            text(over_flight),
            met(over_parquet),
            met(over_flight),
        );
        let round = |speedup: Option<f64>| speedup.map(|s| (s * 100.0).round() / 100.0);
        lines.push(json!({
            "bench": "feature_store",
            "case": format!("training_{}", who.split_whitespace().take(2).collect::<Vec<_>>().join("_").to_lowercase()),
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "rows": rows,
            "plinth_speedup": round(over_parquet),
            "plinth_flight_speedup": round(over_flight),
            "goal": goal.map(|g| format!(">= {g}x")),
            "verdict": met(over_parquet),
            "verdict_flight": met(over_flight),
        }));
    }
}
