//! The orchestrator against the ceiling of spawning processes directly and against Apache Airflow 3.3:
//! `cargo bench -p plinth-orchestrator --bench orchestrator` (or `make bench`). Airflow runs from the
//! peers venv (`$PLINTH_PEERS_VENV`, default `~/.cache/plinth/tools/peers-venv`, built by
//! `bash deploy/scripts/tools.sh peers`). Arguments after `--` narrow the run: `latency`, `dag`.
//!
//! One run starts the orchestrator in this process (`plinth_orchestrator::bind`: SQLite, logs and lake
//! in a temp dir, the local executor, events not published) and drives it over its gRPC API:
//!
//! - **latency**: a one-task pipeline whose command is this very binary in stamp mode: the first thing
//!   it does is write the wall-clock time into a file, so "process start" is when the task's own program
//!   began, not when the orchestrator says it spawned it. `PLINTH_BENCH_TRIGGERS` (default 50)
//!   sequential on-demand runs (one throwaway first), each awaited on `StreamRunEvents`; p50/p99 of
//!   process start − the time `RunPipeline` was sent, and of the run's end. Goal p50 ≤ 50 ms. Airflow's
//!   figure for the same one-task DAG (a `BashOperator` writing `date +%s%N`) comes from a few samples.
//! - **dag**: one run of a pipeline of `PLINTH_BENCH_TASKS` (default 1,000) independent `true` tasks, 32
//!   at a time (`max_active_tasks` and `scheduler.max_parallel_tasks`): wall time from trigger to the
//!   run's end and tasks/s, against the ceiling (the same processes spawned from Rust, 32 at a time) and
//!   against Airflow 3.3 standalone with the LocalExecutor on SQLite (the same DAG, written with dynamic
//!   task mapping by default, `PLINTH_BENCH_AIRFLOW_FORM=classic` for one operator per task). Goal ≥ 20×
//!   Airflow's tasks/s.
//!
//! Airflow is skipped, with the reason printed, when the venv lacks it or `PLINTH_BENCH_SKIP_AIRFLOW=1`.
//! A miss is reported, never asserted; only a failed run or request makes the exit code non-zero.
//! docs/benchmarks.md records the figures.

// The same allocator as the shipped binaries, so the bench measures what ships.
#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use plinth_proto::orchestrator::v1 as pb;
use plinth_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient;
use plinth_runtime::client::AuthChannel;
use serde_json::{Value as Json, json};

/// The argument that turns this binary into the latency pipeline's task: write the time and exit.
const STAMP_ARG: &str = "__plinth_bench_stamp";
const DEFAULT_TASKS: usize = 1_000;
const DEFAULT_TRIGGERS: usize = 50;
const DEFAULT_AIRFLOW_SAMPLES: usize = 5;
const CONCURRENCY: usize = 32;
const LATENCY_PIPELINE: &str = "bench-latency";
const DAG_PIPELINE: &str = "bench-dag";
const LATENCY_GOAL_P50_MS: f64 = 50.0;
const THROUGHPUT_GOAL_VS_AIRFLOW: f64 = 20.0;
/// How long one latency run may take before the bench gives up on it.
const LATENCY_RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the DAG run may take.
const DAG_RUN_TIMEOUT: Duration = Duration::from_secs(1_800);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(STAMP_ARG) {
        return stamp(args.get(1).context("stamp mode needs the file to write")?);
    }
    if !args.iter().any(|arg| arg == "--bench") {
        // `cargo test --benches` runs bench binaries without `--bench`: a benchmark is not a test.
        println!(
            "orchestrator bench: run it with `cargo bench -p plinth-orchestrator --bench orchestrator`"
        );
        return Ok(());
    }
    let named = |key: &str| args.iter().any(|arg| arg == key);
    let (mut latency, mut dag) = (named("latency"), named("dag"));
    if !latency && !dag {
        (latency, dag) = (true, true);
    }
    let form = match std::env::var("PLINTH_BENCH_AIRFLOW_FORM").as_deref() {
        Ok("classic") => AirflowForm::Classic,
        Ok("mapped") | Err(_) => AirflowForm::Mapped,
        Ok(other) => bail!("PLINTH_BENCH_AIRFLOW_FORM={other} is neither `mapped` nor `classic`"),
    };
    let settings = Settings {
        tasks: env_number("PLINTH_BENCH_TASKS", DEFAULT_TASKS, 1)?,
        triggers: env_number("PLINTH_BENCH_TRIGGERS", DEFAULT_TRIGGERS, 2)?,
        airflow_samples: env_number("PLINTH_BENCH_AIRFLOW_SAMPLES", DEFAULT_AIRFLOW_SAMPLES, 1)?,
        skip_airflow: std::env::var("PLINTH_BENCH_SKIP_AIRFLOW").is_ok_and(|v| v == "1"),
        form,
        latency,
        dag,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run(&settings))
}

/// Stamp mode: the wall-clock time in nanoseconds since the epoch, written to `path`.
fn stamp(path: &str) -> anyhow::Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    std::fs::write(path, now.to_string()).with_context(|| format!("cannot write {path}"))
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AirflowForm {
    /// `BashOperator.partial(...).expand(bash_command=[...])`: one mapped task, N instances.
    Mapped,
    /// N `BashOperator`s.
    Classic,
}

impl AirflowForm {
    fn name(self) -> &'static str {
        match self {
            AirflowForm::Mapped => "mapped",
            AirflowForm::Classic => "classic",
        }
    }

    fn label(self) -> &'static str {
        match self {
            AirflowForm::Mapped => "dynamic task mapping, BashOperator.partial().expand()",
            AirflowForm::Classic => "one BashOperator per task",
        }
    }
}

#[derive(Debug)]
struct Settings {
    tasks: usize,
    triggers: usize,
    airflow_samples: usize,
    skip_airflow: bool,
    form: AirflowForm,
    latency: bool,
    dag: bool,
}

/// Nanoseconds since the epoch, now.
fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as i128)
}

fn timestamp_nanos(timestamp: Option<&prost_types::Timestamp>) -> Option<i128> {
    timestamp.map(|t| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos))
}

fn millis(nanos: i128) -> f64 {
    nanos as f64 / 1e6
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p99 and max of `values`, in the values' unit.
#[derive(Debug, Clone, Copy)]
struct Summary {
    p50: f64,
    p99: f64,
    max: f64,
    count: usize,
}

impl Summary {
    fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            p50: quantile(&sorted, 0.5),
            p99: quantile(&sorted, 0.99),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            count: sorted.len(),
        }
    }
}

/// `true` as an absolute path, so Plinth, the ceiling and nobody's PATH lookup differ.
fn true_path() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("true"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("/bin/true"))
}

/// A YAML scalar for any text: JSON strings are valid YAML flow scalars.
fn yaml_string(text: &str) -> String {
    Json::String(text.to_owned()).to_string()
}

fn latency_pipeline(exe: &Path, stamp_file: &Path) -> String {
    format!(
        "name: {LATENCY_PIPELINE}\nowner: bench\ndescription: trigger to first task start\nmax_active_runs: 1\ntasks:\n  stamp:\n    uses: command\n    with:\n      command: [{}, {}, {}]\n",
        yaml_string(&exe.display().to_string()),
        yaml_string(STAMP_ARG),
        yaml_string(&stamp_file.display().to_string()),
    )
}

fn dag_pipeline(tasks: usize, true_path: &Path) -> String {
    let mut yaml = format!(
        "name: {DAG_PIPELINE}\nowner: bench\ndescription: {tasks} independent trivial tasks\nmax_active_runs: 1\nmax_active_tasks: {CONCURRENCY}\ntasks:\n"
    );
    let command = yaml_string(&true_path.display().to_string());
    for i in 0..tasks {
        yaml.push_str(&format!(
            "  t{i:05}: {{uses: command, with: {{command: [{command}]}}}}\n"
        ));
    }
    yaml
}

/// The orchestrator serving in this process.
struct Plinth {
    grpc: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Plinth {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let mut config = plinth_orchestrator::Config::default();
        config.server.grpc.listen = "127.0.0.1:0".parse()?;
        config.server.http.listen = "127.0.0.1:0".parse()?;
        config.server.shutdown_grace_period = Duration::from_secs(5);
        config.database.url = format!(
            "sqlite://{}?mode=rwc",
            dir.join("orchestrator.db").display()
        );
        config.logs.root = format!("file://{}", dir.join("logs").display());
        config.logs.spool_dir = Some(dir.join("spool"));
        config.lake.root = format!("file://{}", dir.join("lake").display());
        config.models.root = format!("file://{}", dir.join("models").display());
        config.executor.local.work_dir = Some(dir.join("work"));
        config.scheduler.max_parallel_tasks = CONCURRENCY;
        config.events.publish = false;
        for sub in ["logs", "spool", "lake", "models", "work"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let bound = plinth_orchestrator::bind(&config)
            .await
            .map_err(|err| anyhow::anyhow!("the orchestrator does not start: {err}"))?;
        let grpc = bound.grpc_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            if let Err(err) = bound
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
            {
                eprintln!("orchestrator stopped with an error: {err}");
            }
        });
        Ok(Self { grpc, stop, done })
    }

    async fn client(&self) -> anyhow::Result<OrchestratorServiceClient<AuthChannel>> {
        let endpoint = format!("http://{}", self.grpc).parse()?;
        let channel =
            plinth_runtime::client::connect(&endpoint, None, None, Duration::from_secs(600))
                .await
                .map_err(|err| anyhow::anyhow!("cannot connect to the orchestrator: {err}"))?;
        Ok(OrchestratorServiceClient::new(channel)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
    }
}

fn run_is_terminal(state: i32) -> bool {
    [
        pb::RunState::Succeeded,
        pb::RunState::Failed,
        pb::RunState::Cancelled,
    ]
    .iter()
    .any(|terminal| *terminal as i32 == state)
}

/// One triggered run, awaited.
struct Triggered {
    /// When `RunPipeline` was sent (ns since the epoch).
    sent: i128,
    /// When this client learnt that the run ended (ns since the epoch).
    seen_end: i128,
    /// Whether the end was learnt from the event stream (else from polling `GetRun`).
    seen_on_stream: bool,
    /// When `RunPipeline` answered (ns since the epoch).
    answered: i128,
    /// The run as `GetRun` answers it once ended.
    run: pb::Run,
}

/// Subscribes to `pipeline`'s events, triggers a run and waits until it ends.
async fn trigger_and_wait(
    client: &mut OrchestratorServiceClient<AuthChannel>,
    pipeline: &str,
    timeout: Duration,
) -> anyhow::Result<Triggered> {
    let mut events = client
        .stream_run_events(pb::StreamRunEventsRequest {
            pipeline: pipeline.to_owned(),
            run_id: String::new(),
            after_sequence: 0,
        })
        .await
        .with_context(|| format!("StreamRunEvents of {pipeline}"))?
        .into_inner();
    let sent = now_nanos();
    let run = client
        .run_pipeline(pb::RunPipelineRequest {
            pipeline: pipeline.to_owned(),
            params: None,
            logical_date: None,
            request_id: String::new(),
        })
        .await
        .with_context(|| format!("RunPipeline {pipeline}"))?
        .into_inner()
        .run
        .context("RunPipeline answered no run")?;
    let answered = now_nanos();
    let run_id = run.id;
    let started = Instant::now();
    let (seen_end, seen_on_stream) = loop {
        ensure!(
            started.elapsed() < timeout,
            "run {run_id} of {pipeline} did not end within {timeout:?}"
        );
        match tokio::time::timeout(Duration::from_secs(2), events.message()).await {
            Ok(Ok(Some(pb::StreamRunEventsResponse { event: Some(event) }))) => {
                if event.run_id == run_id
                    && event.task.is_empty()
                    && run_is_terminal(event.run_state)
                {
                    break (now_nanos(), true);
                }
            }
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => bail!("the event stream of {pipeline} ended"),
            Ok(Err(status)) => bail!("the event stream of {pipeline} failed: {status}"),
            // No event for 2 s: ask, in case the stream missed the end.
            Err(_) => {
                let state = get_run(client, &run_id).await?.state;
                if run_is_terminal(state) {
                    break (now_nanos(), false);
                }
            }
        }
    };
    let run = get_run(client, &run_id).await?;
    ensure!(
        run.state == pb::RunState::Succeeded as i32,
        "run {run_id} of {pipeline} ended {:?}: {}",
        pb::RunState::try_from(run.state).unwrap_or(pb::RunState::Unspecified),
        run.reason
    );
    Ok(Triggered {
        sent,
        seen_end,
        seen_on_stream,
        answered,
        run,
    })
}

async fn get_run(
    client: &mut OrchestratorServiceClient<AuthChannel>,
    run_id: &str,
) -> anyhow::Result<pb::Run> {
    client
        .get_run(pb::GetRunRequest {
            run_id: run_id.to_owned(),
        })
        .await
        .with_context(|| format!("GetRun {run_id}"))?
        .into_inner()
        .run
        .context("GetRun answered no run")
}

/// Plinth's latency figures, in ms.
#[derive(Debug, Default)]
struct Latency {
    /// Task program start − RunPipeline sent.
    process_start: Vec<f64>,
    /// The attempt's stored start time − RunPipeline sent (when the executor says it spawned).
    attempt_start: Vec<f64>,
    /// The run's stored end time − RunPipeline sent.
    run_end: Vec<f64>,
    /// When the client learnt the end − RunPipeline sent.
    seen_end: Vec<f64>,
    /// Runs whose end was learnt by polling, not from the stream.
    polled: usize,
}

async fn measure_latency(
    client: &mut OrchestratorServiceClient<AuthChannel>,
    stamp_file: &Path,
    triggers: usize,
) -> anyhow::Result<Latency> {
    let mut latency = Latency::default();
    // One throwaway run first: the first run pays for cold caches (the binary's pages, SQLite's).
    for round in 0..=triggers {
        let _ = std::fs::remove_file(stamp_file);
        let triggered = trigger_and_wait(client, LATENCY_PIPELINE, LATENCY_RUN_TIMEOUT).await?;
        let text = std::fs::read_to_string(stamp_file).with_context(|| {
            format!(
                "the task of run {} wrote no stamp at {}",
                triggered.run.id,
                stamp_file.display()
            )
        })?;
        let process_start: i128 = text
            .trim()
            .parse()
            .with_context(|| format!("stamp {text:?} is not a number"))?;
        if round == 0 {
            continue;
        }
        let sent = triggered.sent;
        latency.process_start.push(millis(process_start - sent));
        let attempt_start = triggered
            .run
            .tasks
            .first()
            .and_then(|task| task.attempts.first())
            .and_then(|attempt| timestamp_nanos(attempt.start_time.as_ref()));
        if let Some(start) = attempt_start {
            latency.attempt_start.push(millis(start - sent));
        }
        if let Some(end) = timestamp_nanos(triggered.run.end_time.as_ref()) {
            latency.run_end.push(millis(end - sent));
        }
        latency.seen_end.push(millis(triggered.seen_end - sent));
        if !triggered.seen_on_stream {
            latency.polled += 1;
        }
    }
    Ok(latency)
}

/// One DAG run's figures.
#[derive(Debug, Clone)]
struct DagRun {
    who: String,
    tasks: usize,
    /// Trigger (or first spawn) to the end, in seconds.
    wall: f64,
    /// Trigger to the first task's start, in seconds, when known.
    first_start: Option<f64>,
    note: String,
}

impl DagRun {
    fn tasks_per_second(&self) -> f64 {
        self.tasks as f64 / self.wall
    }
}

async fn measure_plinth_dag(
    client: &mut OrchestratorServiceClient<AuthChannel>,
    tasks: usize,
) -> anyhow::Result<DagRun> {
    let triggered = trigger_and_wait(client, DAG_PIPELINE, DAG_RUN_TIMEOUT).await?;
    let run = &triggered.run;
    ensure!(
        run.tasks.len() == tasks,
        "the DAG run has {} tasks, expected {tasks}",
        run.tasks.len()
    );
    let not_succeeded = run
        .tasks
        .iter()
        .filter(|task| task.state != pb::TaskState::Succeeded as i32)
        .count();
    ensure!(
        not_succeeded == 0,
        "{not_succeeded} tasks of the DAG run did not succeed"
    );
    let first_start = run
        .tasks
        .iter()
        .flat_map(|task| &task.attempts)
        .filter_map(|attempt| timestamp_nanos(attempt.start_time.as_ref()))
        .min();
    let stored_end = timestamp_nanos(run.end_time.as_ref());
    Ok(DagRun {
        who: "Plinth".to_owned(),
        tasks,
        wall: (triggered.seen_end - triggered.sent) as f64 / 1e9,
        first_start: first_start.map(|start| (start - triggered.sent) as f64 / 1e9),
        note: format!(
            "RunPipeline answered at {:.3} s, run end stored at {:.2} s, seen {}",
            (triggered.answered - triggered.sent) as f64 / 1e9,
            stored_end.map_or(f64::NAN, |end| (end - triggered.sent) as f64 / 1e9),
            if triggered.seen_on_stream {
                "on the event stream"
            } else {
                "by polling GetRun"
            }
        ),
    })
}

/// The ceiling: the same processes spawned directly, `CONCURRENCY` at a time.
async fn measure_ceiling(tasks: usize, program: &Path) -> anyhow::Result<DagRun> {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let permit = slots.clone().acquire_owned().await?;
        let program = program.to_owned();
        running.spawn(async move {
            let status = tokio::process::Command::new(&program)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
            drop(permit);
            status
        });
    }
    let mut failed = 0;
    while let Some(joined) = running.join_next().await {
        if !joined?.is_ok_and(|status| status.success()) {
            failed += 1;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    ensure!(failed == 0, "{failed} directly spawned processes failed");
    Ok(DagRun {
        who: "ceiling: direct spawn from Rust".to_owned(),
        tasks,
        wall,
        first_start: None,
        note: format!("tokio::process, {CONCURRENCY} at a time"),
    })
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

/// Airflow's figures, as `benches/peers/airflow_bench.py` prints them.
#[derive(Debug)]
struct Airflow {
    version: String,
    /// Trigger → the bash command's own start, ms.
    command_start: Vec<f64>,
    /// Trigger → the task instance's start_date, ms.
    ti_start: Vec<f64>,
    /// Trigger → the DAG run's end_date, ms.
    run_end: Vec<f64>,
    dag: Option<DagRun>,
}

fn numbers(value: &Json, key: &str) -> Vec<f64> {
    value[key]
        .as_array()
        .map(|items| items.iter().filter_map(Json::as_f64).collect())
        .unwrap_or_default()
}

/// Runs Airflow, or says why it did not run.
fn run_airflow(settings: &Settings, dir: &Path) -> Result<Airflow, String> {
    if settings.skip_airflow {
        return Err("PLINTH_BENCH_SKIP_AIRFLOW=1".to_owned());
    }
    let python = peers_python()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/airflow_bench.py");
    let home = dir.join("airflow");
    println!(
        "orchestrator bench: starting Airflow in {} (a few minutes; its progress goes to stderr)",
        home.display()
    );
    let output = Command::new(&python)
        .arg(&script)
        .arg("--home")
        .arg(&home)
        .args(["--tasks", &settings.tasks.to_string()])
        .args(["--samples", &settings.airflow_samples.to_string()])
        .args(["--form", settings.form.name()])
        .args([
            "--parts",
            if settings.dag {
                "latency,dag"
            } else {
                "latency"
            },
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| {
            format!(
                "cannot run {} with {}: {err}",
                script.display(),
                python.display()
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let answer: Json = serde_json::from_str(last).map_err(|_| {
        format!(
            "airflow_bench.py ({}) printed no JSON result: {stdout}",
            output.status
        )
    })?;
    if let Some(reason) = answer["skipped"].as_str() {
        return Err(reason.to_owned());
    }
    if let Some(error) = answer["error"].as_str() {
        return Err(format!("Airflow failed: {error}"));
    }
    let dag = answer["dag"].as_object().map(|dag| DagRun {
        who: format!("Airflow {}", answer["version"].as_str().unwrap_or("?")),
        tasks: dag.get("tasks").and_then(Json::as_u64).unwrap_or_default() as usize,
        wall: dag.get("wall_s").and_then(Json::as_f64).unwrap_or(f64::NAN),
        first_start: dag.get("first_start_s").and_then(Json::as_f64),
        note: settings.form.label().to_owned(),
    });
    Ok(Airflow {
        version: answer["version"].as_str().unwrap_or("?").to_owned(),
        command_start: numbers(&answer["latency"], "command_start_ms"),
        ti_start: numbers(&answer["latency"], "ti_start_ms"),
        run_end: numbers(&answer["latency"], "run_end_ms"),
        dag,
    })
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    let load_before = load_average();
    let dir = tempfile::Builder::new()
        .prefix("plinth-orchestrator-bench-")
        .tempdir()
        .context("cannot create a temp dir")?;
    let exe = std::env::current_exe().context("cannot find this bench binary")?;
    let stamp_file = dir.path().join("stamp");
    let program = true_path();

    let plinth = Plinth::start(dir.path()).await?;
    let outcome = measure(settings, &plinth, &exe, &stamp_file, &program).await;
    plinth.stop().await;
    let mut results = outcome?;

    if settings.dag {
        println!(
            "orchestrator bench: the ceiling, {} `{}` processes spawned directly",
            settings.tasks,
            program.display()
        );
        results.ceiling = Some(measure_ceiling(settings.tasks, &program).await?);
    }
    match run_airflow(settings, dir.path()) {
        Ok(airflow) => results.airflow = Some(airflow),
        Err(why) => results.notes.push(format!("Airflow not run: {why}")),
    }
    print_table(settings, &results, &load_before);
    Ok(())
}

#[derive(Debug, Default)]
struct Results {
    latency: Option<Latency>,
    plinth_dag: Option<DagRun>,
    ceiling: Option<DagRun>,
    airflow: Option<Airflow>,
    notes: Vec<String>,
}

async fn measure(
    settings: &Settings,
    plinth: &Plinth,
    exe: &Path,
    stamp_file: &Path,
    program: &Path,
) -> anyhow::Result<Results> {
    let mut client = plinth.client().await?;
    let mut files = vec![pb::PipelineFile {
        path: "pipelines/bench-latency.yaml".to_owned(),
        content: latency_pipeline(exe, stamp_file),
    }];
    if settings.dag {
        files.push(pb::PipelineFile {
            path: "pipelines/bench-dag.yaml".to_owned(),
            content: dag_pipeline(settings.tasks, program),
        });
    }
    let started = Instant::now();
    client
        .apply_pipelines(pb::ApplyPipelinesRequest { files })
        .await
        .context("ApplyPipelines")?;
    let mut results = Results::default();
    results.notes.push(format!(
        "ApplyPipelines of the pipelines ({} tasks in all) took {:.2} s",
        settings.tasks + 1,
        started.elapsed().as_secs_f64()
    ));
    // Always at least the throwaway run, so the DAG run does not pay for the first run's cold start.
    let triggers = if settings.latency {
        settings.triggers
    } else {
        0
    };
    println!("orchestrator bench: {triggers} sequential on-demand runs of a one-task pipeline");
    results.latency = Some(measure_latency(&mut client, stamp_file, triggers).await?)
        .filter(|_| settings.latency);
    if settings.dag {
        println!(
            "orchestrator bench: one run of {} independent `true` tasks, {CONCURRENCY} at a time",
            settings.tasks
        );
        results.plinth_dag = Some(measure_plinth_dag(&mut client, settings.tasks).await?);
    }
    Ok(results)
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

fn round2(value: f64) -> Option<f64> {
    value.is_finite().then(|| (value * 100.0).round() / 100.0)
}

fn print_table(settings: &Settings, results: &Results, load_before: &str) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "Orchestrator vs direct spawn and Airflow: SQLite, local executor, {CONCURRENCY} tasks at a time; {cores} cores, load average before {load_before}, after {}",
        load_average()
    );
    let mut lines = Vec::new();
    let airflow_p50 = results
        .airflow
        .as_ref()
        .map(|airflow| Summary::of(&airflow.command_start).p50)
        .filter(|p50| p50.is_finite());
    if let Some(latency) = &results.latency {
        println!(
            "{:<52} | {:>4} | {:>8} | {:>8} | {:>8} | verdict",
            "trigger → ...", "runs", "p50 ms", "p99 ms", "max ms"
        );
        let process = Summary::of(&latency.process_start);
        let mut rows = vec![
            (
                "Plinth: task program starts",
                process,
                Some(process.p50 <= LATENCY_GOAL_P50_MS),
            ),
            (
                "Plinth: attempt start stored",
                Summary::of(&latency.attempt_start),
                None,
            ),
            (
                "Plinth: run end stored",
                Summary::of(&latency.run_end),
                None,
            ),
            (
                "Plinth: run end seen by the client",
                Summary::of(&latency.seen_end),
                None,
            ),
        ];
        if let Some(airflow) = &results.airflow {
            rows.push((
                "Airflow: bash command starts",
                Summary::of(&airflow.command_start),
                None,
            ));
            rows.push((
                "Airflow: task instance start_date",
                Summary::of(&airflow.ti_start),
                None,
            ));
            rows.push((
                "Airflow: DAG run end_date",
                Summary::of(&airflow.run_end),
                None,
            ));
        }
        for (case, summary, met) in rows {
            if summary.count == 0 {
                continue;
            }
            println!(
                "{case:<52} | {:>4} | {:>8.1} | {:>8.1} | {:>8.1} | {}",
                summary.count,
                summary.p50,
                summary.p99,
                summary.max,
                met.map_or("-", verdict)
            );
            lines.push(json!({
                "bench": "orchestrator",
                "case": format!("latency {case}"),
                "runs": summary.count,
                "p50_ms": round2(summary.p50),
                "p99_ms": round2(summary.p99),
                "max_ms": round2(summary.max),
                "goal": met.map(|_| format!("p50 <= {LATENCY_GOAL_P50_MS} ms")),
                "verdict": met.map(verdict),
            }));
        }
        if let Some(airflow) = airflow_p50 {
            println!(
                "  trigger → task start p50: Airflow / Plinth = {:.1}×",
                airflow / process.p50
            );
        }
        if latency.polled > 0 {
            println!(
                "  note: {} of {} run ends were learnt by polling GetRun, not from the event stream",
                latency.polled,
                latency.process_start.len()
            );
        }
    }
    let plinth_rate = results.plinth_dag.as_ref().map(DagRun::tasks_per_second);
    let airflow_dag = results.airflow.as_ref().and_then(|a| a.dag.as_ref());
    let dags: Vec<&DagRun> = [
        results.ceiling.as_ref(),
        results.plinth_dag.as_ref(),
        airflow_dag,
    ]
    .into_iter()
    .flatten()
    .collect();
    if !dags.is_empty() {
        println!(
            "{:<34} | {:>6} | {:>8} | {:>9} | {:>11} | {:>13} | {:>7} | verdict | note",
            "DAG of trivial tasks",
            "tasks",
            "wall s",
            "tasks/s",
            "1st start s",
            "Plinth ÷ this",
            "goal"
        );
        for dag in &dags {
            let is_plinth = dag.who == "Plinth";
            let ratio = plinth_rate
                .filter(|_| !is_plinth)
                .map(|plinth| plinth / dag.tasks_per_second());
            let is_airflow = dag.who.starts_with("Airflow");
            let met = ratio
                .filter(|_| is_airflow)
                .map(|r| verdict(r >= THROUGHPUT_GOAL_VS_AIRFLOW));
            println!(
                "{:<34} | {:>6} | {:>8.2} | {:>9.1} | {:>11} | {:>13} | {:>7} | {:>7} | {}",
                dag.who,
                dag.tasks,
                dag.wall,
                dag.tasks_per_second(),
                dag.first_start
                    .map_or("-".to_owned(), |s| format!("{s:.3}")),
                ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
                if met.is_some() {
                    format!("≥ {THROUGHPUT_GOAL_VS_AIRFLOW}")
                } else {
                    "-".to_owned()
                },
                met.unwrap_or("-"),
                dag.note
            );
            lines.push(json!({
                "bench": "orchestrator",
                "case": format!("dag {}", dag.who),
                "tasks": dag.tasks,
                "wall_s": round2(dag.wall),
                "tasks_per_s": round2(dag.tasks_per_second()),
                "first_start_s": dag.first_start.filter(|s| s.is_finite()).map(|s| (s * 1e3).round() / 1e3),
                "plinth_rate_ratio": ratio.and_then(round2),
                "goal": met.map(|_| format!(">= {THROUGHPUT_GOAL_VS_AIRFLOW}x Airflow's tasks/s")),
                "verdict": met,
                "note": dag.note,
            }));
        }
    }
    if let Some(airflow) = &results.airflow {
        println!(
            "  Airflow {} standalone: LocalExecutor, SQLite, parallelism {CONCURRENCY}; DAG written with {}",
            airflow.version,
            settings.form.label()
        );
    }
    for note in &results.notes {
        println!("  note: {note}");
    }
    println!();
    for line in lines {
        println!("BENCH_RESULT {line}");
    }
}
