//! Services as child processes: the real binaries (`plinth-schema-registry`, `plinth-datahub`,
//! `plinth-feature-store`, `plinth-serving`, `plinth-orchestrator`) started with a configuration, on
//! free loopback ports, each with its own scratch directory, for tests that need what only separate
//! processes have (per-process telemetry, signals, crashes).
//!
//! A [`ServiceProcess`] listens on `127.0.0.1:0` for both listeners and reads the addresses it got from
//! its `serving` log line, so there is no port race; it is ready once `/readyz` answers 200. Its stdout
//! and stderr go to `<dir>/output.log`, whose tail every failure message shows. Dropping it kills the
//! process; [`ServiceProcess::stop`] sends SIGTERM and waits for the graceful shutdown (which also
//! flushes telemetry).
//!
//! The binaries are the workspace's, found next to the test executable (`target/<profile>/`): build them
//! first with `cargo build --workspace --bins` (`make nextest` does).

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// How long a service may take to log its addresses and become ready, unless the caller says.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`ServiceProcess::stop`] waits after SIGTERM before it kills.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Lines of output quoted in failure messages.
const TAIL_LINES: usize = 60;

/// The service binaries this harness starts.
pub const BINARIES: [&str; 5] = [
    "plinth-schema-registry",
    "plinth-datahub",
    "plinth-feature-store",
    "plinth-serving",
    "plinth-orchestrator",
];

/// What every service process takes besides its own settings.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// `telemetry.otlp_endpoint`, e.g. `http://127.0.0.1:4317`. When set, spans are exported every
    /// 100 ms (`OTEL_BSP_SCHEDULE_DELAY`) and metrics every second, so a test sees them quickly.
    pub otlp_endpoint: Option<String>,
    /// TOML configuration text, written to `<dir>/config.toml` and passed with `--config`; the
    /// harness's own settings are environment variables, which win over it.
    pub toml: Option<String>,
    /// More environment variables (`PLINTH_...` overrides, `RUST_LOG`, `OTEL_...`), set last, so they
    /// win over everything. Keep `plinth_runtime` logging at info: the harness reads the `serving` line.
    pub env: Vec<(String, String)>,
    /// How long to wait for readiness; [`START_TIMEOUT`] when unset.
    pub start_timeout: Option<Duration>,
}

impl ProcessOptions {
    /// Options exporting telemetry to `endpoint`.
    pub fn with_otlp(endpoint: &str) -> Self {
        Self {
            otlp_endpoint: Some(endpoint.to_owned()),
            ..Self::default()
        }
    }

    /// Adds an environment variable (set after the harness's own).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// The feature store's online store.
#[derive(Debug, Clone)]
pub enum OnlineStore {
    /// An embedded SQLite file in the process's directory.
    Embedded,
    /// Redis at `url` (e.g. `redis://127.0.0.1:6379/0`), keys under `key_prefix` (make it unique).
    Redis {
        /// `redis://host:port/db`.
        url: String,
        /// The prefix of every key, so tests sharing a Redis do not meet.
        key_prefix: String,
    },
}

/// The peers an orchestrator calls; unset ones keep the configuration's defaults.
#[derive(Debug, Clone, Default)]
pub struct OrchestratorPeers {
    /// The schema registry's gRPC URL.
    pub registry: Option<String>,
    /// The data hub's gRPC URL.
    pub datahub: Option<String>,
    /// The feature store's gRPC URL.
    pub feature_store: Option<String>,
    /// Model serving's gRPC URL.
    pub serving: Option<String>,
}

/// A service binary running as a child process; killed when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    /// The binary's name, e.g. `plinth-datahub`.
    pub binary: &'static str,
    /// The gRPC listener.
    pub grpc: SocketAddr,
    /// The HTTP listener (`/metrics`, `/healthz`, `/readyz`, the service's REST API).
    pub http: SocketAddr,
    /// The process's scratch directory (config file, SQLite databases, lake, output log), removed on
    /// drop.
    pub dir: TempDir,
    child: Option<Child>,
    /// Disconnected once the thread copying stderr has seen its end.
    /// (In a mutex only so that the process can be shared between tasks.)
    output: std::sync::Mutex<std::sync::mpsc::Receiver<(SocketAddr, SocketAddr)>>,
}

impl ServiceProcess {
    /// A schema registry; its database is `database_url`, or SQLite in its directory when `None`.
    pub async fn schema_registry(database_url: Option<&str>, options: ProcessOptions) -> Self {
        let dir = TempDir::new("plinth-registry-process");
        let mut env = BTreeMap::new();
        env.insert(
            "PLINTH_DATABASE__URL".to_owned(),
            database_url.map_or_else(|| sqlite_url(&dir.0, "registry.db"), str::to_owned),
        );
        Self::start("plinth-schema-registry", dir, env, options).await
    }

    /// A data hub gateway reading the registry at `registry_url` and the brokers `bootstrap_servers`,
    /// with test-friendly timings (2 s group sessions, 5 s Kafka timeouts, 1 s lake file age). Its
    /// database is `database_url` (SQLite in its directory when `None`), its lake `lake_root` (a `file://`
    /// URL of `<dir>/lake` when `None`).
    pub async fn datahub(
        registry_url: &str,
        bootstrap_servers: &str,
        database_url: Option<&str>,
        lake_root: Option<&str>,
        options: ProcessOptions,
    ) -> Self {
        let dir = TempDir::new("plinth-datahub-process");
        let mut env = BTreeMap::new();
        env.insert(
            "PLINTH_DATABASE__URL".to_owned(),
            database_url.map_or_else(|| sqlite_url(&dir.0, "datahub.db"), str::to_owned),
        );
        env.insert("PLINTH_REGISTRY__URL".to_owned(), registry_url.to_owned());
        env.insert(
            "PLINTH_KAFKA__BOOTSTRAP_SERVERS".to_owned(),
            bootstrap_servers.to_owned(),
        );
        env.insert("PLINTH_KAFKA__SESSION_TIMEOUT".to_owned(), "2s".to_owned());
        env.insert("PLINTH_KAFKA__REQUEST_TIMEOUT".to_owned(), "5s".to_owned());
        env.insert(
            "PLINTH_LAKE__ROOT".to_owned(),
            lake_root.map_or_else(|| dir_url(&dir.0, "lake"), str::to_owned),
        );
        env.insert("PLINTH_LAKE__MAX_FILE_AGE".to_owned(), "1s".to_owned());
        Self::start("plinth-datahub", dir, env, options).await
    }

    /// A feature store with `online` as its online store, streaming from the data hub at `datahub_url`
    /// when set, re-reading its registry every 300 ms (so stream consumers start quickly). Its registry
    /// database is `database_url` (SQLite in its directory when `None`), its lake `lake_root`
    /// (`<dir>/lake` when `None`).
    pub async fn feature_store(
        datahub_url: Option<&str>,
        online: OnlineStore,
        database_url: Option<&str>,
        lake_root: Option<&str>,
        options: ProcessOptions,
    ) -> Self {
        let dir = TempDir::new("plinth-feature-store-process");
        let mut env = BTreeMap::new();
        env.insert(
            "PLINTH_DATABASE__URL".to_owned(),
            database_url.map_or_else(|| sqlite_url(&dir.0, "registry.db"), str::to_owned),
        );
        if let Some(url) = datahub_url {
            env.insert("PLINTH_DATAHUB__URL".to_owned(), url.to_owned());
        }
        match online {
            OnlineStore::Embedded => {
                env.insert("PLINTH_ONLINE__STORE".to_owned(), "embedded".to_owned());
                env.insert(
                    "PLINTH_ONLINE__EMBEDDED_URL".to_owned(),
                    sqlite_url(&dir.0, "online.db"),
                );
            }
            OnlineStore::Redis { url, key_prefix } => {
                env.insert("PLINTH_ONLINE__STORE".to_owned(), "redis".to_owned());
                env.insert("PLINTH_ONLINE__REDIS_URL".to_owned(), url);
                env.insert("PLINTH_ONLINE__KEY_PREFIX".to_owned(), key_prefix);
            }
        }
        env.insert(
            "PLINTH_LAKE__ROOT".to_owned(),
            lake_root.map_or_else(|| dir_url(&dir.0, "lake"), str::to_owned),
        );
        let spill = dir.0.join("spill");
        env.insert(
            "PLINTH_TRAINING__SPILL_DIR".to_owned(),
            spill.display().to_string(),
        );
        env.insert(
            "PLINTH_SERVING__REGISTRY_REFRESH".to_owned(),
            "300ms".to_owned(),
        );
        Self::start("plinth-feature-store", dir, env, options).await
    }

    /// Model serving on the model repository `models_root` (a URL such as `file:///...`), loading the
    /// models `load` (`name` or `name:version`) at start, reading features from `feature_store_url` when
    /// set. The ONNX Runtime library is [`onnx_library`]. Ready once every model in `load` is loaded.
    pub async fn serving(
        models_root: &str,
        load: &[&str],
        feature_store_url: Option<&str>,
        options: ProcessOptions,
    ) -> Self {
        let dir = TempDir::new("plinth-serving-process");
        let mut env = BTreeMap::new();
        env.insert("PLINTH_MODELS__ROOT".to_owned(), models_root.to_owned());
        let load: Vec<String> = load.iter().map(|model| format!("{model:?}")).collect();
        env.insert(
            "PLINTH_MODELS__LOAD".to_owned(),
            format!("[{}]", load.join(", ")),
        );
        env.insert(
            "PLINTH_ONNX__LIBRARY".to_owned(),
            onnx_library().display().to_string(),
        );
        if let Some(url) = feature_store_url {
            env.insert("PLINTH_FEATURE_STORE__URL".to_owned(), url.to_owned());
        }
        Self::start("plinth-serving", dir, env, options).await
    }

    /// An orchestrator with the local executor, its logs, lake, models and work directories under its
    /// directory, quick polling (200 ms) and a 2 s lease; run events are not published unless `options`
    /// sets `PLINTH_EVENTS__PUBLISH=true`. Its database is `database_url` (SQLite when `None`).
    pub async fn orchestrator(
        database_url: Option<&str>,
        peers: OrchestratorPeers,
        options: ProcessOptions,
    ) -> Self {
        let dir = TempDir::new("plinth-orchestrator-process");
        let mut env = BTreeMap::new();
        env.insert(
            "PLINTH_DATABASE__URL".to_owned(),
            database_url.map_or_else(|| sqlite_url(&dir.0, "orchestrator.db"), str::to_owned),
        );
        for (key, sub) in [
            ("PLINTH_LOGS__ROOT", "logs"),
            ("PLINTH_LAKE__ROOT", "lake"),
            ("PLINTH_MODELS__ROOT", "models"),
        ] {
            env.insert(key.to_owned(), dir_url(&dir.0, sub));
        }
        for (key, sub) in [
            ("PLINTH_LOGS__SPOOL_DIR", "spool"),
            ("PLINTH_EXECUTOR__LOCAL__WORK_DIR", "work"),
        ] {
            let path = dir.0.join(sub);
            std::fs::create_dir_all(&path)
                .unwrap_or_else(|err| panic!("cannot create {}: {err}", path.display()));
            env.insert(key.to_owned(), path.display().to_string());
        }
        env.insert(
            "PLINTH_EXECUTOR__LOCAL__KILL_GRACE".to_owned(),
            "1s".to_owned(),
        );
        env.insert(
            "PLINTH_SCHEDULER__POLL_INTERVAL".to_owned(),
            "200ms".to_owned(),
        );
        env.insert(
            "PLINTH_SCHEDULER__LEASE_TIMEOUT".to_owned(),
            "2s".to_owned(),
        );
        env.insert("PLINTH_EVENTS__PUBLISH".to_owned(), "false".to_owned());
        for (key, url) in [
            ("PLINTH_REGISTRY__URL", &peers.registry),
            ("PLINTH_DATAHUB__URL", &peers.datahub),
            ("PLINTH_FEATURE_STORE__URL", &peers.feature_store),
            ("PLINTH_SERVING__URL", &peers.serving),
        ] {
            if let Some(url) = url {
                env.insert(key.to_owned(), url.clone());
            }
        }
        Self::start("plinth-orchestrator", dir, env, options).await
    }

    /// Starts `binary` with the harness's settings (loopback listeners on free ports, 5 s shutdown
    /// grace, text logs at info), then `env`, then `options`; waits until it is ready.
    pub async fn start(
        binary: &'static str,
        dir: TempDir,
        env: BTreeMap<String, String>,
        options: ProcessOptions,
    ) -> Self {
        let path = binary_path(binary);
        let output_path = dir.0.join("output.log");
        let output = std::fs::File::create(&output_path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", output_path.display()));
        let stdout = output
            .try_clone()
            .unwrap_or_else(|err| panic!("cannot share {}: {err}", output_path.display()));
        let mut command = Command::new(&path);
        command
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        // The test's own environment must not configure the service behind the harness's back.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PLINTH_") || key == "RUST_LOG" {
                command.env_remove(&key);
            }
        }
        command
            .env("PLINTH_SERVER__GRPC__LISTEN", "127.0.0.1:0")
            .env("PLINTH_SERVER__HTTP__LISTEN", "127.0.0.1:0")
            .env("PLINTH_SERVER__SHUTDOWN_GRACE_PERIOD", "5s")
            .env("PLINTH_TELEMETRY__LOG_FORMAT", "text")
            .env("PLINTH_TELEMETRY__LOG_LEVEL", "info");
        if let Some(endpoint) = &options.otlp_endpoint {
            command
                .env("PLINTH_TELEMETRY__OTLP_ENDPOINT", endpoint)
                .env("PLINTH_TELEMETRY__OTLP_EXPORT_INTERVAL", "1s")
                .env("OTEL_BSP_SCHEDULE_DELAY", "100");
        }
        command.envs(&env);
        if let Some(toml) = &options.toml {
            let config = dir.0.join("config.toml");
            std::fs::write(&config, toml)
                .unwrap_or_else(|err| panic!("cannot write {}: {err}", config.display()));
            command.arg("--config").arg(&config);
        }
        command.envs(options.env.iter().map(|(key, value)| (key, value)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", path.display()));
        let stderr = child
            .stderr
            .take()
            .unwrap_or_else(|| unreachable!("stderr is piped"));
        let (addresses, found) = std::sync::mpsc::channel();
        // Copies stderr into the output file and reports the addresses of the `serving` line.
        std::thread::spawn(move || {
            let mut output = output;
            let mut reported = false;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(output, "{line}");
                if !reported && let Some(listeners) = serving_line(&line) {
                    reported = true;
                    let _ = addresses.send(listeners);
                }
            }
        });

        let timeout = options.start_timeout.unwrap_or(START_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let mut process = Self {
            binary,
            grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            child: Some(child),
            output: std::sync::Mutex::new(found),
        };
        loop {
            let received = process
                .output
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .try_recv();
            match received {
                Ok((grpc, http)) => {
                    process.grpc = grpc;
                    process.http = http;
                    break;
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    // Its stderr closed: it is exiting; say how it ended.
                    let exiting = Instant::now() + Duration::from_secs(2);
                    while Instant::now() < exiting {
                        process.check_running("while starting");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    process.fail("closed its output without logging its listeners");
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
            process.check_running("while starting");
            if Instant::now() >= deadline {
                process.fail(&format!("did not log its listeners within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        loop {
            let http = process.http;
            let status = tokio::task::spawn_blocking(move || crate::http_status(http, "/readyz"))
                .await
                .ok()
                .flatten();
            if status == Some(200) {
                return process;
            }
            process.check_running("before it was ready");
            if Instant::now() >= deadline {
                process.fail(&format!(
                    "is not ready (GET /readyz: {status:?}) within {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://` URL of the gRPC listener.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://` URL of the HTTP listener.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// A channel to the gRPC listener through the runtime's client (30 s deadline).
    pub async fn channel(&self) -> plinth_runtime::client::AuthChannel {
        crate::local_channel(self.grpc, None, Duration::from_secs(30), self.binary).await
    }

    /// The path of the file holding the process's stdout and stderr.
    pub fn output_path(&self) -> PathBuf {
        self.dir.0.join("output.log")
    }

    /// The last `lines` lines of the process's output.
    pub fn output_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.output_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM and waits (off the async threads) for the graceful shutdown, which drains
    /// requests and flushes telemetry; kills the process if it takes longer than 20 s. Panics, with
    /// the output's tail, when it exits with a failure.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let binary = self.binary;
        let terminated = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut status = None;
        while terminated && Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(exited)) => {
                    status = Some(exited);
                    break;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => break,
            }
        }
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.wait_for_output();
        match status {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "{binary} exited with {status} after SIGTERM; its output ends with:\n{}",
                self.output_tail(TAIL_LINES)
            ),
            None => panic!(
                "{binary} did not stop within {STOP_TIMEOUT:?} of SIGTERM and was killed; its output ends with:\n{}",
                self.output_tail(TAIL_LINES)
            ),
        }
    }

    /// Kills the process (SIGKILL) and waits for it: a crash, nothing drains or flushes.
    pub fn kill(mut self) {
        self.kill_now();
    }

    /// Panics with the output's tail when the process has exited.
    pub fn check_running(&mut self, when: &str) {
        let exited = self
            .child
            .as_mut()
            .map_or(Ok(None), Child::try_wait)
            .ok()
            .flatten();
        if let Some(status) = exited {
            self.child = None;
            self.fail(&format!("exited {when} with {status}"));
        }
    }

    fn fail(&mut self, what: &str) -> ! {
        self.kill_now();
        self.wait_for_output();
        panic!(
            "{} {what}; its output ({}) ends with:\n{}",
            self.binary,
            self.output_path().display(),
            self.output_tail(TAIL_LINES)
        )
    }

    /// Waits (at most a second) until the process's last words are in the output file.
    fn wait_for_output(&self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        let output = self
            .output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Err(std::sync::mpsc::RecvTimeoutError::Disconnected) = output.recv_timeout(left)
            {
                return;
            }
        }
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// The path of a workspace binary: in the target directory that holds the running test executable
/// (`target/<profile>/deps/it-...` → `target/<profile>/<name>`). Panics with the fix when it is
/// missing.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|err| panic!("current_exe: {err}"));
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the service binaries before the tests with \
         `cargo build --workspace --bins` (`make nextest` does), with the same profile and target \
         directory as the tests",
        path.display()
    );
    path
}

/// `libonnxruntime.so`: `ORT_DYLIB_PATH`, else the one of the tools venv's `onnxruntime` wheel (model
/// serving's own lookup). Panics with the fix when there is none.
pub fn onnx_library() -> PathBuf {
    plinth_serving::engine::find_library().unwrap_or_else(|| {
        panic!(
            "no libonnxruntime.so in the tools venv: run `bash deploy/scripts/tools.sh venv` or set ORT_DYLIB_PATH"
        )
    })
}

/// A SQLite URL of `file` in `dir`, created on first use.
fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(file).display())
}

/// A `file://` URL of the directory `sub` of `dir`, created.
fn dir_url(dir: &Path, sub: &str) -> String {
    let path = dir.join(sub);
    std::fs::create_dir_all(&path)
        .unwrap_or_else(|err| panic!("cannot create {}: {err}", path.display()));
    format!("file://{}", path.display())
}

/// The listeners of the runtime's `serving` log line (`... serving service="x" grpc=A http=B ...` in
/// text, or its JSON form), `None` for any other line.
fn serving_line(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(line) {
        let fields = object.get("fields")?;
        if fields.get("message")?.as_str()? != "serving" {
            return None;
        }
        let grpc = fields.get("grpc")?.as_str()?.parse().ok()?;
        let http = fields.get("http")?.as_str()?.parse().ok()?;
        return Some((grpc, http));
    }
    let mut tokens = line.split_whitespace();
    tokens.find(|token| *token == "serving")?;
    let (mut grpc, mut http) = (None, None);
    for token in tokens {
        if let Some(addr) = token.strip_prefix("grpc=") {
            grpc = addr.parse().ok();
        } else if let Some(addr) = token.strip_prefix("http=") {
            http = addr.parse().ok();
        }
    }
    Some((grpc?, http?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn services_start_as_processes_and_stop_gracefully() {
        let registry = ServiceProcess::schema_registry(None, ProcessOptions::default()).await;
        let feature_store = ServiceProcess::feature_store(
            None,
            OnlineStore::Embedded,
            None,
            None,
            ProcessOptions::default(),
        )
        .await;
        let orchestrator = ServiceProcess::orchestrator(
            None,
            OrchestratorPeers {
                feature_store: Some(feature_store.grpc_url()),
                ..OrchestratorPeers::default()
            },
            ProcessOptions::default(),
        )
        .await;
        for process in [&registry, &feature_store, &orchestrator] {
            assert_ne!(process.grpc.port(), 0);
            assert_ne!(process.grpc, process.http);
            assert!(process.pid().is_some());
            assert!(
                process.output_tail(TAIL_LINES).contains("serving"),
                "{}",
                process.output_tail(TAIL_LINES)
            );
        }
        orchestrator.stop().await;
        feature_store.stop().await;
        registry.stop().await;
    }

    #[tokio::test]
    #[should_panic(expected = "plinth-schema-registry exited while starting")]
    async fn a_service_that_cannot_start_fails_the_test_with_its_output() {
        let options = ProcessOptions::default().env("PLINTH_TELEMETRY__LOG_LEVEL", "verbose");
        let _registry = ServiceProcess::schema_registry(None, options).await;
    }

    #[test]
    fn the_serving_line_gives_the_listeners() {
        let text = "2026-11-26T10:00:00.000Z  INFO plinth_runtime::server: serving service=\"datahub\" grpc=127.0.0.1:4100 http=127.0.0.1:4101 tls=false";
        assert_eq!(
            serving_line(text),
            Some((
                "127.0.0.1:4100".parse().unwrap(),
                "127.0.0.1:4101".parse().unwrap()
            ))
        );
        let json = r#"{"timestamp":"x","level":"INFO","fields":{"message":"serving","service":"datahub","grpc":"127.0.0.1:1","http":"127.0.0.1:2","tls":false},"target":"plinth_runtime::server"}"#;
        assert_eq!(
            serving_line(json),
            Some((
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:2".parse().unwrap()
            ))
        );
        assert_eq!(serving_line("INFO stopped service=\"datahub\""), None);
        assert_eq!(serving_line(r#"{"fields":{"message":"stopped"}}"#), None);
    }
}
