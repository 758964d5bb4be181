//! Runs every `sh` and `python` block of docs/getting-started.md, docs/schema-registry.md,
//! docs/datahub.md, docs/orchestrator.md and docs/serving.md, in order, each guide against its own fresh
//! `plinth up` (the real binary, every port free-picked, its own local broker), so the user guides never
//! drift from what the platform does. The getting-started guide runs after `plinth up --demo` (what
//! `make run` runs) finished its journey on the same platform.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the first surprise"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "a synchronous test driving processes: std::thread::sleep blocks no runtime"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Platform {
    child: Child,
    /// The registry's gRPC URL.
    grpc: String,
    /// The registry's REST `host:port`.
    http: String,
    /// The data hub's gRPC URL.
    datahub_grpc: String,
    /// The data hub's HTTP `host:port`.
    datahub_http: String,
    /// The local broker's `host:port`.
    kafka: String,
    /// The orchestrator's gRPC URL.
    orchestrator_grpc: String,
    /// The feature store's gRPC URL.
    feature_store_grpc: String,
    /// The feature store's HTTP `host:port`.
    feature_store_http: String,
    /// Model serving's gRPC URL.
    serving_grpc: String,
    /// Model serving's HTTP `host:port`.
    serving_http: String,
    /// `plinth up`'s data directory.
    state: PathBuf,
    dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        // SIGKILL would leave the broker that `plinth up` runs as a child behind (its kill-on-drop never
        // runs), so ask for the Ctrl-C shutdown first, which stops the broker, and kill only as a fallback.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The words of a line that are `http://` URLs.
fn urls(line: &str) -> Vec<String> {
    line.split_whitespace()
        .filter(|word| word.starts_with("http://"))
        .map(str::to_owned)
        .collect()
}

fn start_platform(name: &str) -> Platform {
    start_platform_with(name, false)
}

/// Starts `plinth up`, with `--demo` when `demo` is set (then returns once the demo is done).
fn start_platform_with(name: &str, demo: bool) -> Platform {
    let dir = std::env::temp_dir().join(format!("plinth-docs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args([
            "up",
            "--registry-grpc-port",
            "0",
            "--registry-http-port",
            "0",
            "--datahub-grpc-port",
            "0",
            "--datahub-http-port",
            "0",
            "--feature-store-grpc-port",
            "0",
            "--feature-store-http-port",
            "0",
            "--orchestrator-grpc-port",
            "0",
            "--orchestrator-http-port",
            "0",
            "--serving-grpc-port",
            "0",
            "--serving-http-port",
            "0",
            "--kafka-port",
            "0",
            "--log-level",
            "warn",
            "--data-dir",
        ])
        .arg(dir.join("state"))
        .args(demo.then_some("--demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("plinth up starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut registry, mut datahub, mut kafka, mut orchestrator) = (None, None, None, None);
    let (mut feature_store, mut serving) = (None, None);
    while registry.is_none()
        || datahub.is_none()
        || kafka.is_none()
        || orchestrator.is_none()
        || feature_store.is_none()
        || serving.is_none()
    {
        assert!(
            Instant::now() < deadline,
            "plinth up did not print its endpoints"
        );
        let line = lines.next().expect("plinth up exited early").unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("schema-registry") => registry = Some(urls(&line)),
            Some("datahub") => datahub = Some(urls(&line)),
            Some("kafka") => kafka = words.get(1).map(|addr| addr.to_string()),
            // `orchestrator     gRPC http://ADDR   HTTP http://ADDR  (pipelines; ...)`
            Some("orchestrator") => orchestrator = urls(&line).into_iter().next(),
            Some("feature-store") => feature_store = Some(urls(&line)),
            Some("model-serving") => serving = Some(urls(&line)),
            _ => {}
        }
    }
    if demo {
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut printed = String::new();
        loop {
            assert!(
                Instant::now() < deadline,
                "the demo did not end within 10 minutes:\n{printed}"
            );
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("plinth up exited during the demo:\n{printed}"))
                .unwrap();
            printed.push_str(&line);
            printed.push('\n');
            assert!(
                !line.contains("the demo stopped"),
                "the demo failed:\n{printed}"
            );
            if line.starts_with("Demo done") {
                break;
            }
        }
        for step in 1..=10 {
            assert!(
                printed.contains(&format!("[step {step}/10]")),
                "step {step} missing:\n{printed}"
            );
        }
        // The journey's last step: predictions by key from the model the pipeline trained.
        assert!(printed.contains("run succeeded"), "{printed}");
        assert!(printed.contains("3 of 4 keys predicted"), "{printed}");
    }
    // Keep draining stdout so the platform never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let (registry, datahub) = (registry.unwrap(), datahub.unwrap());
    let (feature_store, serving) = (feature_store.unwrap(), serving.unwrap());
    let host_port = |url: &String| url.trim_start_matches("http://").to_owned();
    Platform {
        child,
        grpc: registry[0].clone(),
        http: host_port(&registry[1]),
        datahub_grpc: datahub[0].clone(),
        datahub_http: host_port(&datahub[1]),
        kafka: kafka.unwrap(),
        orchestrator_grpc: orchestrator.unwrap(),
        feature_store_grpc: feature_store[0].clone(),
        feature_store_http: host_port(&feature_store[1]),
        serving_grpc: serving[0].clone(),
        serving_http: host_port(&serving[1]),
        state: dir.join("state"),
        dir: TempDir(dir),
    }
}

/// The fenced blocks of a markdown file with their language.
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

fn python() -> PathBuf {
    let venv = std::env::var_os("PLINTH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/plinth/tools/venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash deploy/scripts/tools.sh venv`",
        python.display()
    );
    python
}

/// What one block printed.
struct BlockRun {
    body: String,
    stdout: String,
}

/// Runs every `sh` and `python` block of `docs/<guide>`, in order, with the local addresses the guide
/// names replaced by the platform's; fails on the first block that fails.
fn run_guide(guide: &str, platform: &Platform) -> Vec<BlockRun> {
    let guide_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(guide);
    let markdown = std::fs::read_to_string(&guide_path).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_plinth"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let datahub_grpc = platform.datahub_grpc.trim_start_matches("http://");
    let serving_grpc = platform.serving_grpc.trim_start_matches("http://");
    let state = format!("{}/", platform.state.display());
    let python = python();
    let venv = python
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .display()
        .to_string();
    let replacements = [
        ("localhost:8001", serving_grpc),
        ("127.0.0.1:8001", serving_grpc),
        ("localhost:8000", platform.serving_http.as_str()),
        ("127.0.0.1:8000", platform.serving_http.as_str()),
        ("localhost:6566", platform.feature_store_http.as_str()),
        ("127.0.0.1:6566", platform.feature_store_http.as_str()),
        (".plinth/", state.as_str()),
        ("~/.cache/plinth/tools/venv", venv.as_str()),
        ("$HOME/.cache/plinth/tools/venv", venv.as_str()),
        ("localhost:8081", platform.http.as_str()),
        ("127.0.0.1:8081", platform.http.as_str()),
        ("localhost:7002", datahub_grpc),
        ("127.0.0.1:7002", datahub_grpc),
        ("localhost:9102", platform.datahub_http.as_str()),
        ("127.0.0.1:9102", platform.datahub_http.as_str()),
        ("localhost:9092", platform.kafka.as_str()),
        ("127.0.0.1:9092", platform.kafka.as_str()),
    ];
    let mut runs = Vec::new();
    for (lang, body) in code_blocks(&markdown) {
        let body = replacements
            .iter()
            .fold(body, |body, (from, to)| body.replace(from, to));
        let mut command = match lang.as_str() {
            "sh" => {
                // A block that waits (`until ...; do sleep 1; done`) must not hang the test.
                let mut command = Command::new("timeout");
                command.args(["600", "bash", "-euo", "pipefail", "-c", &body]);
                command
            }
            "python" => {
                let mut command = Command::new(&python);
                command.args(["-c", &body]);
                command
            }
            _ => continue,
        };
        let output = command
            .current_dir(platform.dir.0.join("work"))
            .env("PATH", &path)
            .env("PLINTH_REGISTRY_URL", &platform.grpc)
            .env("PLINTH_DATAHUB_URL", &platform.datahub_grpc)
            .env("PLINTH_ORCHESTRATOR_URL", &platform.orchestrator_grpc)
            .env("PLINTH_FEATURE_STORE_URL", &platform.feature_store_grpc)
            .env("PLINTH_SERVING_URL", &platform.serving_grpc)
            .output()
            .expect("block runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "this {lang} block of docs/{guide} failed:\n{body}\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        runs.push(BlockRun { body, stdout });
    }
    runs
}

/// The schema id of `subject`'s version 1 in `registered SUBJECT version 1 (schema id N)`.
fn schema_id_of(subject: &str, outputs: &str) -> u64 {
    let prefix = format!("registered {subject} version 1 (schema id ");
    let start = outputs
        .find(&prefix)
        .unwrap_or_else(|| panic!("`{prefix}` not printed: {outputs}"))
        + prefix.len();
    let digits: String = outputs[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// What the block that runs `command` printed.
fn printed_by<'a>(runs: &'a [BlockRun], command: &str) -> &'a str {
    &runs
        .iter()
        .find(|run| run.body.contains(command))
        .unwrap_or_else(|| panic!("no block runs `{command}`"))
        .stdout
}

#[test]
fn schema_registry_guide_runs_as_written() {
    let platform = start_platform("schema-registry");
    let runs = run_guide("schema-registry.md", &platform);
    assert!(
        runs.len() >= 8,
        "only {} blocks found in the guide",
        runs.len()
    );
    let outputs: String = runs.iter().map(|run| run.stdout.as_str()).collect();
    // What the guide promises, as printed. Ids are global and `plinth up` registers the orchestrator's
    // run event schema first, so the guide's first schema's id is read, not assumed.
    let orders_id = schema_id_of("orders-value", &outputs);
    assert!(
        outputs.contains(&format!(
            r#"{{"id":{orders_id},"subject":"returns-value","version":1}}"#
        )),
        "the same schema under another subject keeps its id: {outputs}"
    );
    assert!(
        outputs.contains("compatible with orders-value"),
        "{outputs}"
    );
    assert!(
        outputs.contains("registered orders-value version 2"),
        "{outputs}"
    );
    assert!(outputs.contains("FULL_TRANSITIVE"), "{outputs}");
    assert!(
        outputs.contains("{'order_id'") || outputs.contains("{'n': 1}"),
        "{outputs}"
    );
}

#[test]
fn datahub_guide_runs_as_written() {
    let platform = start_platform("datahub");
    let runs = run_guide("datahub.md", &platform);
    assert!(
        runs.len() >= 15,
        "only {} blocks found in the guide",
        runs.len()
    );
    let outputs: String = runs.iter().map(|run| run.stdout.as_str()).collect();
    let printed_by = |command: &str| printed_by(&runs, command);
    let records = |stdout: &str| -> Vec<serde_json::Value> {
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    // What the guide promises, as printed.
    assert!(outputs.contains("created topic orders"), "{outputs}");
    assert!(
        outputs.contains("wrote 5 of 5 records to orders"),
        "{outputs}"
    );
    let rejected = printed_by(r#""seven""#);
    assert!(rejected.contains("value_schema_violation"), "{rejected}");
    assert!(rejected.contains("record 1"), "{rejected}");
    assert!(rejected.contains("exit code 1"), "{rejected}");
    let partial = printed_by("--accept-partial -o json");
    assert!(partial.contains(r#""written":1"#), "{partial}");
    assert!(partial.contains("invalid_value_json"), "{partial}");

    // Commits: the group's second run reads exactly what the first one did not print.
    let first = records(printed_by("--group billing --from earliest --max 4"));
    let second = records(printed_by("--group billing --timeout 5s"));
    assert_eq!(first.len(), 4, "{first:?}");
    assert_eq!(second.len(), 2, "{second:?}");
    let mut order_ids: Vec<i64> = first
        .iter()
        .chain(&second)
        .map(|record| {
            assert_eq!(record["topic"], "orders");
            assert!(record["schema_id"].as_u64().is_some(), "{record}");
            assert_eq!(record["schema_version"], 1, "{record}");
            record["value"]["order_id"].as_i64().unwrap()
        })
        .collect();
    order_ids.sort_unstable();
    assert_eq!(order_ids, [1, 2, 3, 4, 5, 6]);

    let scanned = records(printed_by("--columns order_id,customer,amount --limit 3"));
    assert_eq!(scanned.len(), 3, "{scanned:?}");
    assert!(
        scanned
            .iter()
            .all(|row| row.get("order_id").is_some() && row.get("_kafka_offset").is_none()),
        "{scanned:?}"
    );
    let all_rows = records(printed_by("plinth lake scan orders --from"));
    assert_eq!(all_rows.len(), 6, "{all_rows:?}");

    let orders_id = schema_id_of("orders-value", &outputs);
    assert!(
        outputs.contains(&format!("magic byte 0 schema id {orders_id}")),
        "{outputs}"
    );
    assert!(outputs.contains("'order_id': 10"), "{outputs}");
}

#[test]
fn orchestrator_guide_runs_as_written() {
    let platform = start_platform("orchestrator");
    let runs = run_guide("orchestrator.md", &platform);
    assert_eq!(runs.len(), 3, "the first pipeline's blocks");
    let printed_by = |command: &str| printed_by(&runs, command);
    // What the guide promises, as printed.
    let stored = printed_by("plinth pipeline apply hello.yaml");
    assert!(stored.contains("ok  hello: 2 tasks, on demand"), "{stored}");
    assert!(stored.contains("created  hello  version 1"), "{stored}");

    let waited = printed_by("--wait");
    let run_id = waited
        .strip_prefix("started run ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id first: {waited}"));
    for event in [
        "greet running (try 1)",
        "greet succeeded (try 1)",
        "shout succeeded (try 1)",
        "run succeeded",
    ] {
        assert!(waited.contains(event), "{event}: {waited}");
    }

    let found = printed_by("plinth pipeline logs");
    let mut lines = found.lines();
    assert!(
        lines.next().unwrap().starts_with("RUN ID"),
        "the runs table first: {found}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..4],
        [run_id, "hello", "succeeded", "manual"],
        "{found}"
    );
    assert!(
        found.contains(&format!("run {run_id} of hello (version 1): succeeded")),
        "status of the run found again: {found}"
    );
    let greeting = found
        .lines()
        .find(|line| line.starts_with("hello plinth on "))
        .unwrap_or_else(|| panic!("the greet task's log: {found}"));
    let date = greeting.trim_start_matches("hello plinth on ");
    assert!(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        "{{{{ ds }}}} is the logical date: {greeting}"
    );
    assert!(
        found.contains("[plinth] starting attempt 1")
            && found.contains("[plinth] attempt 1 ended: exit code 0"),
        "{found}"
    );
}

#[test]
fn serving_guide_runs_as_written() {
    let platform = start_platform("serving");
    let runs = run_guide("serving.md", &platform);
    assert_eq!(runs.len(), 5, "the first model's blocks");
    let printed_by = |command: &str| printed_by(&runs, command);

    let listed = printed_by("plinth model list");
    assert!(listed.contains("driver"), "{listed}");
    assert!(listed.contains("v1 ready*"), "{listed}");
    assert!(listed.contains("input FP32[-1,3]"), "{listed}");

    // The model's labels for the two rows: conv_rate + acc_rate > 1 is class 1.
    let labels = printed_by("tritonclient");
    assert!(labels.contains("labels [1 0]"), "{labels}");
    let rest = printed_by("v2/models/driver/infer");
    assert!(rest.contains("\"model_name\":\"driver\""), "{rest}");
    assert!(rest.contains("\"name\":\"label\""), "{rest}");

    let predicted = printed_by("plinth model predict");
    assert!(predicted.contains("Apply complete"), "{predicted}");
    let row = |key: &str| {
        predicted
            .lines()
            .find(|line| line.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no row for {key}: {predicted}"))
            .to_owned()
    };
    assert!(row("1001").contains("ok"), "{predicted}");
    assert!(
        row("1002").contains("defaulted: driver_hourly:acc_rate"),
        "{predicted}"
    );
    assert!(row("9999").contains("entity_not_found"), "{predicted}");
    assert!(
        predicted.contains("exit code 1: a key has no prediction"),
        "{predicted}"
    );
}

#[test]
fn make_run_demo_and_getting_started_run_as_written() {
    // `make run` is `plinth up --demo`: the test runs the same binary and command.
    let makefile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Makefile"))
            .unwrap();
    assert!(
        makefile.contains("--bin plinth -- up --demo"),
        "make run no longer runs `plinth up --demo`; update this test"
    );
    let platform = start_platform_with("getting-started", true);
    let runs = run_guide("getting-started.md", &platform);
    assert_eq!(runs.len(), 8, "the guide's sh blocks");

    // The project's unit tests ran (the block failed otherwise) from the generated project.
    printed_by(&runs, "unittest discover");
    let planned = printed_by(&runs, "plinth features plan");
    assert!(
        planned.contains("+ feature_view churn_customer_stats"),
        "{planned}"
    );
    assert!(planned.contains("ok  churn-train: 4 tasks"), "{planned}");
    assert!(
        planned.contains("ok  churn-batch-score: 2 tasks"),
        "{planned}"
    );
    let trained = printed_by(&runs, "plinth pipeline run churn-train");
    assert!(trained.contains("run succeeded"), "{trained}");
    let predicted = printed_by(&runs, "plinth model predict churn");
    assert!(predicted.contains("2 of 2 keys predicted"), "{predicted}");
    let scored = printed_by(&runs, "plinth pipeline run churn-batch-score");
    assert!(scored.contains("run succeeded"), "{scored}");
}
