//! Model serving against MLServer 1.7: `cargo bench -p plinth-serving --bench serving` (or `make bench`),
//! after `bash deploy/scripts/tools.sh venv peers` (scikit-learn and skl2onnx in `$PLINTH_VENV`,
//! MLServer with mlserver-sklearn in `$PLINTH_TOOLS_DIR/mlserver-venv`). Arguments after `--` narrow
//! the run: `infer`, `by-key`.
//!
//! One run trains one scikit-learn model (`benches/peers/make_bench_model.py`: a 20-tree random forest on
//! 10 features) and stores it for both servers: ONNX (skl2onnx) in a Plinth model repository, joblib for
//! MLServer's sklearn runtime.
//!
//! - **infer**: Plinth (`plinth_serving::bind` in this process, ONNX Runtime, dynamic batching on) and
//!   MLServer (`mlserver start`, `parallel_workers: 0`, serving.md) answer the Open Inference Protocol V2
//!   over gRPC. After a check that both give the same labels for 64 rows, one Rust load generator, 32
//!   concurrent tokio tasks for `PLINTH_BENCH_SECONDS` (default 10) per case, sends `ModelInfer` with
//!   `raw_input_contents`, 1 and 64 rows per request. Throughput and p99 per case; goal ≥ 5× MLServer's
//!   throughput.
//! - **by-key**: a feature store in this process (Redis online store, db 14, flushed before and after)
//!   holds the ten features of 10,000 drivers, pushed online; `PredictByKey` for one random driver per
//!   request, first from one client (latency) and then from 32 (throughput). Goal: p99 ≤ 2 ms on loopback.
//!
//! A peer that cannot run here (no venv, no Redis) is reported as not run, never given a figure. A miss
//! is reported, never asserted; only a failed request or a disagreement makes the exit code non-zero.
//! docs/benchmarks.md records the figures.

// The same allocator as the shipped binaries, so the bench measures what ships.
#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use plinth_proto::featurestore::v1 as fs;
use plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient;
use plinth_proto::inference as oip;
use plinth_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use plinth_proto::serving::v1 as sv;
use plinth_proto::serving::v1::serving_service_client::ServingServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

const DEFAULT_SECONDS: u64 = 10;
const CLIENTS: usize = 32;
const BATCHES: [usize; 2] = [1, 64];
const FEATURES: usize = 10;
const DRIVERS: usize = 10_000;
const FIRST_DRIVER: i64 = 1_000_000;
const REDIS_DB: u32 = 14;
const GOAL_THROUGHPUT: f64 = 5.0;
const GOAL_BY_KEY_P99: Duration = Duration::from_millis(2);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let seconds = match std::env::var("PLINTH_BENCH_SECONDS") {
        Ok(text) => text
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .with_context(|| format!("PLINTH_BENCH_SECONDS={text} is not a positive integer"))?,
        Err(_) => DEFAULT_SECONDS,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(
        wants("infer"),
        wants("by-key"),
        Duration::from_secs(seconds),
    ))
}

/// One measured case.
struct Load {
    requests: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Load {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn from(mut latencies: Vec<u32>, elapsed: Duration) -> anyhow::Result<Load> {
        ensure!(!latencies.is_empty(), "no request answered");
        latencies.sort_unstable();
        let at = |q: f64| {
            let index =
                ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
            Duration::from_micros(u64::from(latencies[index]))
        };
        Ok(Load {
            requests: latencies.len() as u64,
            elapsed,
            p50: at(0.50),
            p99: at(0.99),
        })
    }
}

#[derive(Default)]
struct Results {
    notes: Vec<String>,
    infer: Vec<(&'static str, usize, Load)>,
    by_key: Vec<(usize, Load)>,
}

fn tools_dir() -> PathBuf {
    std::env::var_os("PLINTH_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("plinth/tools")
        })
}

fn venv_bin(var: &str, default: &str, program: &str) -> Result<PathBuf, String> {
    let venv = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_dir().join(default));
    let bin = venv.join("bin").join(program);
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: run `bash deploy/scripts/tools.sh venv peers`",
            bin.display()
        ))
    }
}

async fn run(infer: bool, by_key: bool, duration: Duration) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("plinth-serving-bench")
        .tempdir()?;
    let python = venv_bin("PLINTH_VENV", "venv", "python").map_err(anyhow::Error::msg)?;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/make_bench_model.py");
    let status = Command::new(&python)
        .arg(&script)
        .arg(dir.path())
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    ensure!(status.success(), "{} failed", script.display());
    let rows = sample_rows(dir.path())?;

    let mut results = Results::default();
    let redis_url = format!("redis://127.0.0.1:6379/{REDIS_DB}");
    let redis = by_key && redis_flush(&redis_url).is_ok();
    if by_key && !redis {
        results.notes.push(format!(
            "by-key not run: no Redis at {redis_url}; start it with `bash deploy/scripts/services.sh ensure`"
        ));
    }
    let feature_store = if redis {
        Some(FeatureStore::start(dir.path(), &redis_url).await?)
    } else {
        None
    };
    let plinth = start_plinth(dir.path(), feature_store.as_ref().map(|f| f.grpc)).await?;
    let outcome = measure(
        &plinth,
        feature_store.as_ref(),
        dir.path(),
        &rows,
        infer,
        duration,
        &mut results,
    )
    .await;
    if let Some(feature_store) = feature_store {
        feature_store.stop().await;
        let _ = redis_flush(&redis_url);
    }
    let _ = plinth.stop.send(true);
    let _ = plinth.task.await;
    print_table(&results, duration);
    outcome
}

async fn measure(
    plinth: &Plinth,
    feature_store: Option<&FeatureStore>,
    dir: &Path,
    rows: &[Vec<f32>],
    infer: bool,
    duration: Duration,
    results: &mut Results,
) -> anyhow::Result<()> {
    if infer {
        let mlserver = match venv_bin("PLINTH_MLSERVER_VENV", "mlserver-venv", "mlserver") {
            Ok(bin) => Some(MlServer::start(&bin, &dir.join("mlserver")).await?),
            Err(why) => {
                results.notes.push(format!("MLServer not run: {why}"));
                None
            }
        };
        let plinth_labels = labels(plinth.grpc, "label", rows).await?;
        if let Some(mlserver) = &mlserver {
            let theirs = labels(mlserver.grpc, "predict", rows).await?;
            ensure!(
                plinth_labels == theirs,
                "Plinth and MLServer disagree on the labels of the sample rows: {plinth_labels:?} vs {theirs:?}"
            );
            println!(
                "serving bench: Plinth and MLServer agree on the labels of {} rows",
                rows.len()
            );
        }
        for batch in BATCHES {
            let load = infer_load(plinth.grpc, Some("label"), rows, batch, duration).await?;
            results.infer.push(("plinth", batch, load));
            if let Some(mlserver) = &mlserver {
                let load = infer_load(mlserver.grpc, None, rows, batch, duration).await?;
                results.infer.push(("mlserver", batch, load));
            }
        }
    }
    if let Some(feature_store) = feature_store {
        feature_store.push_features().await?;
        for clients in [1, CLIENTS] {
            let load = by_key_load(plinth.grpc, clients, duration).await?;
            results.by_key.push((clients, load));
        }
    }
    Ok(())
}

/// The sample rows `make_bench_model.py` wrote.
fn sample_rows(dir: &Path) -> anyhow::Result<Vec<Vec<f32>>> {
    let text = std::fs::read_to_string(dir.join("sample.json"))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let rows = json["rows"].as_array().context("sample.json has no rows")?;
    rows.iter()
        .map(|row| {
            row.as_array()
                .context("a sample row is not a list")?
                .iter()
                .map(|v| {
                    v.as_f64()
                        .map(|v| v as f32)
                        .context("a sample value is not a number")
                })
                .collect()
        })
        .collect()
}

fn infer_request(
    output: Option<&str>,
    rows: &[Vec<f32>],
    start: usize,
    batch: usize,
) -> oip::ModelInferRequest {
    let mut raw = Vec::with_capacity(batch * FEATURES * 4);
    for i in 0..batch {
        for value in &rows[(start + i) % rows.len()] {
            raw.extend_from_slice(&value.to_le_bytes());
        }
    }
    oip::ModelInferRequest {
        model_name: "bench".to_owned(),
        inputs: vec![oip::model_infer_request::InferInputTensor {
            name: "input".to_owned(),
            datatype: "FP32".to_owned(),
            shape: vec![batch as i64, FEATURES as i64],
            ..Default::default()
        }],
        outputs: output
            .map(|name| {
                vec![oip::model_infer_request::InferRequestedOutputTensor {
                    name: name.to_owned(),
                    ..Default::default()
                }]
            })
            .unwrap_or_default(),
        raw_input_contents: vec![raw],
        ..Default::default()
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?)
}

/// The labels a server answers for `rows`, in one request; `output` is the label output's name.
async fn labels(addr: SocketAddr, output: &str, rows: &[Vec<f32>]) -> anyhow::Result<Vec<i64>> {
    let mut client = GrpcInferenceServiceClient::new(connect(addr).await?);
    let answer = client
        .model_infer(infer_request(None, rows, 0, rows.len()))
        .await
        .with_context(|| format!("ModelInfer at {addr}"))?
        .into_inner();
    let index = answer
        .outputs
        .iter()
        .position(|o| o.name == output)
        .with_context(|| format!("{addr} answered no output `{output}`"))?;
    if let Some(raw) = answer.raw_output_contents.get(index) {
        return Ok(raw
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect());
    }
    let contents = answer.outputs[index]
        .contents
        .as_ref()
        .context("an output without contents")?;
    Ok(contents.int64_contents.clone())
}

async fn infer_load(
    addr: SocketAddr,
    output: Option<&str>,
    rows: &[Vec<f32>],
    batch: usize,
    duration: Duration,
) -> anyhow::Result<Load> {
    let channel = connect(addr).await?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(CLIENTS);
    for task in 0..CLIENTS {
        let mut client = GrpcInferenceServiceClient::new(channel.clone());
        let request = infer_request(output, rows, task, batch);
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = client.model_infer(request.clone()).await?.into_inner();
                ensure!(!answer.outputs.is_empty(), "an answer without outputs");
                latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Load::from(all, started.elapsed())
}

async fn by_key_load(addr: SocketAddr, clients: usize, duration: Duration) -> anyhow::Result<Load> {
    let channel = connect(addr).await?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for task in 0..clients {
        let mut client = ServingServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(task as u64);
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            while Instant::now() < deadline {
                let driver = FIRST_DRIVER + rng.random_range(0..DRIVERS) as i64;
                let request = sv::PredictByKeyRequest {
                    model: "bench".to_owned(),
                    entities: [("driver_id".to_owned(), int64s(&[driver]))]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                };
                let sent = Instant::now();
                let answer = client.predict_by_key(request).await?.into_inner();
                latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                ensure!(
                    answer.predictions.len() == 1
                        && answer.predictions[0].status == sv::PredictionStatus::Ok as i32,
                    "driver {driver} was not predicted: {:?}",
                    answer.predictions.first().map(|p| p.status)
                );
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Load::from(all, started.elapsed())
}

fn int64s(values: &[i64]) -> fs::RepeatedValue {
    fs::RepeatedValue {
        val: values
            .iter()
            .map(|v| fs::Value {
                val: Some(fs::value::Val::Int64Val(*v)),
            })
            .collect(),
    }
}

struct Plinth {
    grpc: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_plinth(dir: &Path, feature_store: Option<SocketAddr>) -> anyhow::Result<Plinth> {
    let mut config = plinth_serving::Config::default();
    config.server.grpc.listen = "127.0.0.1:0".parse()?;
    config.server.http.listen = "127.0.0.1:0".parse()?;
    config.telemetry.log_level = "warn".to_owned();
    config.models.root = url::Url::from_directory_path(dir.join("plinth"))
        .map_err(|()| anyhow::anyhow!("the bench dir is not absolute"))?
        .to_string();
    config.models.load = vec!["bench".to_owned()];
    if let Some(addr) = feature_store {
        config.feature_store.url = format!("http://{addr}").parse()?;
    }
    let bound = plinth_serving::bind(&config).await?;
    let grpc = bound.grpc_addr();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(err) = bound.serve(shutdown).await {
            eprintln!("serving bench: Plinth stopped: {err}");
        }
    });
    wait_model_ready(grpc, "Plinth").await?;
    Ok(Plinth { grpc, stop, task })
}

async fn wait_model_ready(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(channel) = connect(addr).await {
            let mut client = GrpcInferenceServiceClient::new(channel);
            let ready = client
                .model_ready(oip::ModelReadyRequest {
                    name: "bench".to_owned(),
                    version: String::new(),
                })
                .await;
            if ready.is_ok_and(|r| r.into_inner().ready) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{who} did not load the bench model within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// MLServer as a child process, killed on drop.
struct MlServer {
    grpc: SocketAddr,
    child: Child,
}

impl MlServer {
    async fn start(bin: &Path, dir: &Path) -> anyhow::Result<MlServer> {
        let [http, grpc, metrics] = [free_port()?, free_port()?, free_port()?];
        // serving.md: the default parallel workers die at start with uvloop 0.23; 0 runs in process.
        let settings = serde_json::json!({
            "host": "127.0.0.1",
            "http_port": http,
            "grpc_port": grpc,
            "metrics_port": metrics,
            "parallel_workers": 0,
            "debug": false,
        });
        std::fs::write(dir.join("settings.json"), settings.to_string())?;
        let log = std::fs::File::create(dir.join("mlserver.log"))?;
        let child = Command::new(bin)
            .arg("start")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let server = MlServer {
            grpc: SocketAddr::from(([127, 0, 0, 1], grpc)),
            child,
        };
        wait_model_ready(server.grpc, "MLServer")
            .await
            .with_context(|| format!("see {}", dir.join("mlserver.log").display()))?;
        Ok(server)
    }
}

impl Drop for MlServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A feature store in this process with a Redis online store and the bench's features.
struct FeatureStore {
    grpc: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FeatureStore {
    async fn start(dir: &Path, redis_url: &str) -> anyhow::Result<FeatureStore> {
        let mut config = plinth_feature_store::Config::default();
        config.server.grpc.listen = "127.0.0.1:0".parse()?;
        config.server.http.listen = "127.0.0.1:0".parse()?;
        config.telemetry.log_level = "warn".to_owned();
        config.database.url = format!("sqlite://{}?mode=rwc", dir.join("registry.db").display());
        config.online.store = plinth_feature_store::config::OnlineStoreKind::Redis;
        config.online.redis_url = redis_url.to_owned();
        let lake = dir.join("lake");
        std::fs::create_dir_all(&lake)?;
        config.lake.root = format!("file://{}", lake.display());
        config.training.spill_dir = Some(dir.join("spill"));
        let bound = plinth_feature_store::bind(&config).await?;
        let grpc = bound.grpc_addr();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(err) = bound.serve(shutdown).await {
                eprintln!("serving bench: the feature store stopped: {err}");
            }
        });
        Ok(FeatureStore { grpc, stop, task })
    }

    async fn push_features(&self) -> anyhow::Result<()> {
        let mut client = FeatureStoreServiceClient::new(connect(self.grpc).await?);
        let features: String = (0..FEATURES)
            .map(|i| format!("      - {{name: f{i}, type: float64}}\n"))
            .collect();
        let definitions = format!(
            "entities:\n  - name: driver\n    join_keys: [{{name: driver_id, type: int64}}]\n\
             sources:\n  - name: bench_push\n    push: {{}}\n    timestamp_field: event_timestamp\n\
             feature_views:\n  - name: bench_stats\n    entities: [driver]\n    source: bench_push\n    features:\n{features}\
             feature_services:\n  - name: bench_v1\n    features: [bench_stats]\n"
        );
        client
            .apply_definitions(fs::ApplyDefinitionsRequest {
                files: vec![fs::DefinitionFile {
                    path: "bench.yaml".to_owned(),
                    content: definitions,
                }],
                ..Default::default()
            })
            .await
            .context("applying the bench's feature definitions")?;
        let mut rng = StdRng::seed_from_u64(11);
        let now = prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp(),
            nanos: 0,
        };
        for chunk in (0..DRIVERS).collect::<Vec<_>>().chunks(2_000) {
            let mut columns = std::collections::HashMap::new();
            let ids: Vec<i64> = chunk.iter().map(|i| FIRST_DRIVER + *i as i64).collect();
            columns.insert("driver_id".to_owned(), int64s(&ids));
            columns.insert(
                "event_timestamp".to_owned(),
                fs::RepeatedValue {
                    val: chunk
                        .iter()
                        .map(|_| fs::Value {
                            val: Some(fs::value::Val::UnixTimestampVal(now)),
                        })
                        .collect(),
                },
            );
            for f in 0..FEATURES {
                columns.insert(
                    format!("f{f}"),
                    fs::RepeatedValue {
                        val: chunk
                            .iter()
                            .map(|_| fs::Value {
                                val: Some(fs::value::Val::DoubleVal(rng.random_range(-3.0..3.0))),
                            })
                            .collect(),
                    },
                );
            }
            client
                .push(fs::PushRequest {
                    push_source: "bench_push".to_owned(),
                    columns,
                    to: fs::PushTarget::Online as i32,
                })
                .await
                .context("pushing the bench's features")?;
        }
        Ok(())
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn redis_flush(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
    redis::cmd("FLUSHDB").exec(&mut connection)?;
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

fn print_table(results: &Results, duration: Duration) {
    println!();
    println!(
        "model serving bench: {CLIENTS} clients, {} s per case, load average {}",
        duration.as_secs(),
        load_average()
    );
    for note in &results.notes {
        println!("note: {note}");
    }
    if !results.infer.is_empty() {
        println!("| OIP V2 gRPC ModelInfer | rows/request | req/s | rows/s | p50 ms | p99 ms |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (who, batch, load) in &results.infer {
            println!(
                "| {who} | {batch} | {:.0} | {:.0} | {:.2} | {:.2} |",
                load.rate(),
                load.rate() * *batch as f64,
                load.p50.as_secs_f64() * 1e3,
                load.p99.as_secs_f64() * 1e3
            );
        }
        for batch in BATCHES {
            let find = |who: &str| {
                results
                    .infer
                    .iter()
                    .find(|(w, b, _)| *w == who && *b == batch)
                    .map(|(_, _, load)| load)
            };
            if let (Some(plinth), Some(theirs)) = (find("plinth"), find("mlserver")) {
                let ratio = plinth.rate() / theirs.rate();
                println!(
                    "batch {batch}: Plinth/MLServer throughput {ratio:.1}× (goal ≥ {GOAL_THROUGHPUT}×: {}), p99 {:.2} vs {:.2} ms",
                    if ratio >= GOAL_THROUGHPUT {
                        "met"
                    } else {
                        "MISSED"
                    },
                    plinth.p99.as_secs_f64() * 1e3,
                    theirs.p99.as_secs_f64() * 1e3
                );
            }
        }
    }
    if !results.by_key.is_empty() {
        println!("| PredictByKey (Redis) | clients | req/s | p50 ms | p99 ms |");
        println!("|---|---:|---:|---:|---:|");
        for (clients, load) in &results.by_key {
            println!(
                "| plinth | {clients} | {:.0} | {:.2} | {:.2} |",
                load.rate(),
                load.p50.as_secs_f64() * 1e3,
                load.p99.as_secs_f64() * 1e3
            );
        }
        if let Some((_, load)) = results.by_key.first() {
            println!(
                "PredictByKey p99 from one client {:.2} ms (goal ≤ {} ms: {})",
                load.p99.as_secs_f64() * 1e3,
                GOAL_BY_KEY_P99.as_millis(),
                if load.p99 <= GOAL_BY_KEY_P99 {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
    }
}
