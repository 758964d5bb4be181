//! Helpers for Plinth's cross-service tests: services started on free loopback ports and stopped on
//! drop, unique names, the Python venv that holds the independent clients (confluent-kafka, tritonclient),
//! and the generated test model repository.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::sync::oneshot;

pub mod process;
pub mod s3;

/// A name unique to one test run (UUIDv7), so tests can share servers and databases in parallel.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// The Python interpreter of the tools venv (`make test` installs it with `deploy/scripts/tools.sh venv`).
/// Panics with the fix when it is missing: a missing dependency fails loudly.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("PLINTH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/plinth/tools/venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash deploy/scripts/tools.sh venv` (make test does) or set PLINTH_VENV",
        python.display()
    );
    python
}

/// A service's `serve` future running in a task of this process: [`ServingTask::stop`] asks it to shut
/// down and waits for the drain; dropping it only asks.
#[derive(Debug)]
struct ServingTask {
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl ServingTask {
    /// Spawns `serve(shutdown)`; `shutdown` resolves when the task is stopped.
    fn spawn<Fut>(serve: impl FnOnce(BoxShutdown) -> Fut) -> Self
    where
        Fut: std::future::Future + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let served = serve(Box::pin(async move {
            let _ = stopped.await;
        }));
        let done = tokio::spawn(async move {
            let _ = served.await;
        });
        Self {
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Asks the service to shut down and waits until it has.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for ServingTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The shutdown future a [`ServingTask`] hands to `serve`.
type BoxShutdown = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// A channel to a service started here, through the runtime's client (token injection, timeouts).
async fn local_channel(
    grpc: SocketAddr,
    token: Option<&str>,
    timeout: std::time::Duration,
    service: &str,
) -> plinth_runtime::client::AuthChannel {
    let endpoint = format!("http://{grpc}")
        .parse()
        .unwrap_or_else(|err| panic!("{service} endpoint: {err}"));
    plinth_runtime::client::connect(&endpoint, None, token.map(str::to_owned), timeout)
        .await
        .unwrap_or_else(|err| panic!("{service} connects: {err}"))
}

/// A schema registry running in this process on free loopback ports, stopped when dropped.
#[derive(Debug)]
pub struct RegistryServer {
    /// gRPC address.
    pub grpc: SocketAddr,
    /// HTTP (Confluent REST) address.
    pub http: SocketAddr,
    /// Stops the registry when dropped.
    _task: ServingTask,
    _dir: TempDir,
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", path.display()));
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl RegistryServer {
    /// Starts a registry on SQLite in a temp dir, after `configure` adjusts its configuration.
    pub async fn start_with(configure: impl FnOnce(&mut plinth_schema_registry::Config)) -> Self {
        let dir = TempDir::new("plinth-registry");
        let mut config = plinth_schema_registry::Config::default();
        config.server.grpc.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        config.server.http.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        config.database.url = format!("sqlite://{}?mode=rwc", dir.0.join("registry.db").display());
        configure(&mut config);
        let bound = plinth_schema_registry::bind(&config)
            .await
            .unwrap_or_else(|err| panic!("registry starts: {err}"));
        let (grpc, http) = (bound.grpc_addr(), bound.http_addr());
        Self {
            grpc,
            http,
            _task: ServingTask::spawn(|shutdown| bound.serve(shutdown)),
            _dir: dir,
        }
    }

    /// Starts a registry on SQLite with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The REST base URL.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The gRPC endpoint URL.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// A gRPC client of this registry through the runtime's channel, with an optional bearer token.
    pub async fn grpc_client(
        &self,
        token: Option<&str>,
    ) -> plinth_proto::schemaregistry::v1::schema_registry_service_client::SchemaRegistryServiceClient<
        plinth_runtime::client::AuthChannel,
    >{
        let channel = local_channel(
            self.grpc,
            token,
            std::time::Duration::from_secs(5),
            "registry",
        )
        .await;
        plinth_proto::schemaregistry::v1::schema_registry_service_client::SchemaRegistryServiceClient::new(
            channel,
        )
    }
}

/// A data hub gateway on SQLite in a temp dir, against a registry and a broker, with a local lake.
#[derive(Debug)]
pub struct DataHubServer {
    /// The gRPC (and Arrow Flight) address.
    pub grpc: SocketAddr,
    /// The HTTP address.
    pub http: SocketAddr,
    /// The lake root directory.
    pub lake_dir: PathBuf,
    task: ServingTask,
    _dir: TempDir,
}

impl DataHubServer {
    /// Starts a gateway with test-friendly settings (2 s group sessions, 5 s Kafka timeouts, 1 s file
    /// age), after `configure` adjusts its configuration.
    pub async fn start_with(
        registry: &RegistryServer,
        bootstrap_servers: &str,
        configure: impl FnOnce(&mut plinth_datahub::Config),
    ) -> Self {
        let dir = TempDir::new("plinth-datahub");
        let lake_dir = dir.0.join("lake");
        let mut config = plinth_datahub::Config::default();
        config.server.grpc.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        config.server.http.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        config.server.shutdown_grace_period = std::time::Duration::from_secs(5);
        config.database.url = format!("sqlite://{}?mode=rwc", dir.0.join("datahub.db").display());
        config.kafka.bootstrap_servers = bootstrap_servers.to_owned();
        config.kafka.session_timeout = std::time::Duration::from_secs(2);
        config.kafka.request_timeout = std::time::Duration::from_secs(5);
        config.registry.url = registry
            .grpc_url()
            .parse()
            .unwrap_or_else(|err| panic!("registry url: {err}"));
        config.lake.root = format!("file://{}", lake_dir.display());
        config.lake.max_file_age = std::time::Duration::from_secs(1);
        configure(&mut config);
        let bound = plinth_datahub::bind(&config)
            .await
            .unwrap_or_else(|err| panic!("datahub starts: {err}"));
        let (grpc, http) = (bound.grpc_addr(), bound.http_addr());
        Self {
            grpc,
            http,
            lake_dir,
            task: ServingTask::spawn(|shutdown| bound.serve(shutdown)),
            _dir: dir,
        }
    }

    /// Starts a gateway with the test defaults.
    pub async fn start(registry: &RegistryServer, bootstrap_servers: &str) -> Self {
        Self::start_with(registry, bootstrap_servers, |_| {}).await
    }

    /// The gRPC endpoint URL.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// A gRPC client of the gateway.
    pub async fn client(
        &self,
    ) -> plinth_proto::datahub::v1::data_hub_service_client::DataHubServiceClient<
        plinth_runtime::client::AuthChannel,
    > {
        let channel = local_channel(
            self.grpc,
            None,
            std::time::Duration::from_secs(30),
            "datahub",
        )
        .await;
        plinth_proto::datahub::v1::data_hub_service_client::DataHubServiceClient::new(channel)
    }

    /// Stops the gateway and waits until it has shut down.
    pub async fn stop(mut self) {
        self.task.stop().await;
    }
}

/// Starts a tansu broker on a free loopback port, in memory.
pub async fn start_broker() -> plinth_datahub::local_broker::LocalBroker {
    plinth_datahub::local_broker::LocalBroker::start_found(
        "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
        plinth_datahub::local_broker::Storage::Memory,
    )
    .await
    .unwrap_or_else(|err| panic!("broker starts: {err}"))
}

/// Registers `schema` (JSON) under `subject` and returns its global id.
pub async fn register_json_schema(
    registry: &RegistryServer,
    subject: &str,
    schema: &serde_json::Value,
) -> u32 {
    use plinth_proto::schemaregistry::v1 as pb;
    let mut client = registry.grpc_client(None).await;
    let response = client
        .register_schema(pb::RegisterSchemaRequest {
            subject: Some(plinth_proto::ids::Subject::new(subject)),
            schema: Some(pb::Schema {
                schema: schema.to_string(),
                schema_type: pb::SchemaType::Json.into(),
                references: vec![],
            }),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("register {subject}: {status:?}"))
        .into_inner();
    response
        .registered
        .and_then(|version| version.id)
        .map_or(0, |id| id.value)
}

/// A loopback TCP proxy that can drop every open connection and refuse new ones, then come back: a
/// network outage (or a restart) of whatever it fronts, while that keeps its data.
#[derive(Debug)]
pub struct TcpOutage {
    /// The proxy's address: what clients connect to.
    pub addr: SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    target: std::sync::Arc<std::sync::Mutex<Option<SocketAddr>>>,
}

impl TcpOutage {
    /// A proxy on a free loopback port; it forwards once [`TcpOutage::forward_to`] names the target.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("proxy binds: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("proxy address: {err}"));
        let (up, _) = tokio::sync::watch::channel(true);
        let up_rx = up.subscribe();
        let target = std::sync::Arc::new(std::sync::Mutex::new(None::<SocketAddr>));
        let target_of_task = target.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let to = *target_of_task
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (Some(to), true) = (to, *up_rx.borrow()) else {
                    drop(client);
                    continue;
                };
                let mut down = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(to).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up, target }
    }

    /// Forwards new connections to `target`.
    pub fn forward_to(&self, target: SocketAddr) {
        *self
            .target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(target);
    }

    /// Takes the link down (every connection dropped, new ones refused) or brings it back.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

/// A tansu broker in memory reached only through a [`TcpOutage`] proxy (it advertises the proxy), so a
/// test can cut every client off the broker and reconnect them while the broker keeps its records.
pub async fn start_broker_behind_proxy() -> (plinth_datahub::local_broker::LocalBroker, TcpOutage) {
    let proxy = TcpOutage::start().await;
    let binary = plinth_datahub::local_broker::find_tansu()
        .unwrap_or_else(|| panic!("tansu is missing: run `deploy/scripts/tools.sh kafka`"));
    let broker = plinth_datahub::local_broker::LocalBroker::start_behind(
        &binary,
        proxy.addr,
        plinth_datahub::local_broker::Storage::Memory,
    )
    .await
    .unwrap_or_else(|err| panic!("broker starts: {err}"));
    proxy.forward_to(broker.listen_addr());
    (broker, proxy)
}

/// A feature store in this process on free ports, with a SQLite registry and a lake in a temporary
/// directory; the online store is embedded unless `configure` picks Redis.
#[derive(Debug)]
pub struct FeatureStoreServer {
    /// The gRPC (and Arrow Flight) address.
    pub grpc: SocketAddr,
    /// The HTTP address (Feast's JSON API).
    pub http: SocketAddr,
    /// The lake root directory.
    pub lake_dir: PathBuf,
    task: ServingTask,
    _dir: TempDir,
}

impl FeatureStoreServer {
    /// Starts a feature store after `configure` adjusts its configuration (the lake is at `lake_dir`).
    pub async fn start_with(configure: impl FnOnce(&mut plinth_feature_store::Config)) -> Self {
        let dir = TempDir::new("plinth-feature-store");
        let lake_dir = dir.0.join("lake");
        std::fs::create_dir_all(&lake_dir).unwrap_or_else(|err| panic!("lake dir: {err}"));
        let mut config = plinth_feature_store::Config::default();
        config.server.grpc.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        config.server.http.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        config.server.shutdown_grace_period = std::time::Duration::from_secs(5);
        config.database.url = format!("sqlite://{}?mode=rwc", dir.0.join("registry.db").display());
        config.online.embedded_url =
            format!("sqlite://{}?mode=rwc", dir.0.join("online.db").display());
        config.online.key_prefix = unique_name("fs");
        config.lake.root = format!("file://{}", lake_dir.display());
        config.training.spill_dir = Some(dir.0.join("spill"));
        configure(&mut config);
        let bound = plinth_feature_store::bind(&config)
            .await
            .unwrap_or_else(|err| panic!("feature store starts: {err}"));
        let (grpc, http) = (bound.grpc_addr(), bound.http_addr());
        Self {
            grpc,
            http,
            lake_dir,
            task: ServingTask::spawn(|shutdown| bound.serve(shutdown)),
            _dir: dir,
        }
    }

    /// A gRPC client of the feature store.
    pub async fn client(
        &self,
    ) -> plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient<
        plinth_runtime::client::AuthChannel,
    > {
        let channel = local_channel(
            self.grpc,
            None,
            std::time::Duration::from_secs(30),
            "feature store",
        )
        .await;
        plinth_proto::featurestore::v1::feature_store_service_client::FeatureStoreServiceClient::new(
            channel,
        )
    }

    /// Stops the feature store and waits until it has shut down.
    pub async fn stop(mut self) {
        self.task.stop().await;
    }
}

/// An orchestrator on free ports in its own thread and tokio runtime, so a test can kill it the hard
/// way ([`OrchestratorServer::kill`]: the runtime is dropped mid-run, nothing drains) as well as stop it.
/// Its state (SQLite unless `configure` picks PostgreSQL, logs, lake, models) lives in `dir`, which
/// outlives the server so a second orchestrator can take over.
#[derive(Debug)]
pub struct OrchestratorServer {
    /// The gRPC address.
    pub grpc: SocketAddr,
    /// The HTTP address.
    pub http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    kill: Option<oneshot::Sender<()>>,
}

/// The default test configuration of an orchestrator whose files live under `dir`: SQLite, local
/// executor, quick polling and a 2 s lease (so a takeover after a kill is quick), events not published.
pub fn orchestrator_config(dir: &std::path::Path) -> plinth_orchestrator::Config {
    let mut config = plinth_orchestrator::Config::default();
    config.server.grpc.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
    config.server.http.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
    config.server.shutdown_grace_period = std::time::Duration::from_secs(2);
    config.database.url = format!(
        "sqlite://{}?mode=rwc",
        dir.join("orchestrator.db").display()
    );
    config.logs.root = format!("file://{}", dir.join("logs").display());
    config.logs.spool_dir = Some(dir.join("spool"));
    config.lake.root = format!("file://{}", dir.join("lake").display());
    config.models.root = format!("file://{}", dir.join("models").display());
    config.executor.local.work_dir = Some(dir.join("work"));
    config.executor.local.kill_grace = std::time::Duration::from_secs(1);
    config.scheduler.poll_interval = std::time::Duration::from_millis(200);
    config.scheduler.lease_timeout = std::time::Duration::from_secs(2);
    config.events.publish = false;
    for sub in ["logs", "lake", "models", "work", "spool"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap_or_else(|err| panic!("{sub} dir: {err}"));
    }
    config
}

impl OrchestratorServer {
    /// Starts an orchestrator with `config`.
    pub fn start(config: plinth_orchestrator::Config) -> Self {
        let (addresses, bound) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let (kill, killed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|err| panic!("runtime: {err}"));
            let server = runtime.block_on(plinth_orchestrator::bind(&config));
            let server = match server {
                Ok(server) => server,
                Err(err) => {
                    let _ = addresses.send(Err(err.to_string()));
                    return;
                }
            };
            let _ = addresses.send(Ok((server.grpc_addr(), server.http_addr())));
            let serving = runtime.spawn(server.serve(async move {
                let _ = stopped.await;
            }));
            // Either a stop (the service drains and returns) or a kill (the runtime is dropped with
            // everything in it, mid-flight).
            runtime.block_on(async move {
                tokio::select! {
                    _ = serving => {}
                    _ = killed => {}
                }
            });
            runtime.shutdown_background();
        });
        let (grpc, http) = bound
            .recv()
            .unwrap_or_else(|err| panic!("orchestrator thread: {err}"))
            .unwrap_or_else(|err| panic!("orchestrator starts: {err}"));
        Self {
            grpc,
            http,
            stop: Some(stop),
            thread: Some(thread),
            kill: Some(kill),
        }
    }

    /// A gRPC client of the orchestrator.
    pub async fn client(
        &self,
    ) -> plinth_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient<
        plinth_runtime::client::AuthChannel,
    > {
        let channel = local_channel(
            self.grpc,
            None,
            std::time::Duration::from_secs(30),
            "orchestrator",
        )
        .await;
        plinth_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient::new(
            channel,
        )
    }

    /// Kills the orchestrator: its runtime is dropped with the scheduler and every attempt in it, as
    /// when the process is killed (its local task processes die with it).
    pub fn kill(mut self) {
        self.stop.take();
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the orchestrator gracefully and waits.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for OrchestratorServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

/// The test model repository written by `crates/plinth-serving/testdata/make_models.py` (iris, types,
/// driver, corrupt, wrongref, incomplete; see the script), generated once per script content into the
/// system's temporary directory and shared by every test. Panics with the fix when the venv is missing.
pub fn serving_models() -> PathBuf {
    use std::hash::{Hash as _, Hasher as _};
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/plinth-serving/testdata/make_models.py");
    let text = std::fs::read(&script)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", script.display()));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    // The same directory the crate's own unit tests use (`src/models/tests.rs`), so the script runs once.
    let dir = std::env::temp_dir().join(format!("plinth-serving-models-{:x}", hasher.finish()));
    if dir.join("expected.json").exists() {
        return dir;
    }
    // Written aside and renamed into place: concurrent tests never see half a repository.
    let partial = std::env::temp_dir().join(unique_name("plinth-test-models-partial"));
    let output = std::process::Command::new(python())
        .arg(&script)
        .arg(&partial)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    if std::fs::rename(&partial, &dir).is_err() {
        // Another test won the race: its repository is the same.
        let _ = std::fs::remove_dir_all(&partial);
    }
    assert!(
        dir.join("expected.json").exists(),
        "{} has no expected.json",
        dir.display()
    );
    dir
}

/// Model serving in this process on free ports, its repository the test models of [`serving_models`]
/// unless `configure` changes `models.root`; nothing is loaded at start unless `configure` says so.
#[derive(Debug)]
pub struct ServingServer {
    /// The gRPC address (OIP V2 and `plinth.serving.v1`).
    pub grpc: SocketAddr,
    /// The HTTP address (`/v2/...`).
    pub http: SocketAddr,
    task: ServingTask,
}

impl ServingServer {
    /// Starts model serving after `configure` adjusts its configuration; returns once the listeners are
    /// bound (models configured to load at start may still be loading: wait for readiness).
    pub async fn start_with(configure: impl FnOnce(&mut plinth_serving::Config)) -> Self {
        let mut config = plinth_serving::Config::default();
        config.server.grpc.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        config.server.http.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        config.server.shutdown_grace_period = std::time::Duration::from_secs(5);
        config.models.root = format!("file://{}", serving_models().display());
        configure(&mut config);
        let bound = plinth_serving::bind(&config)
            .await
            .unwrap_or_else(|err| panic!("model serving starts: {err}"));
        let (grpc, http) = (bound.grpc_addr(), bound.http_addr());
        Self {
            grpc,
            http,
            task: ServingTask::spawn(|shutdown| bound.serve(shutdown)),
        }
    }

    /// `http://127.0.0.1:PORT` of the gRPC listener.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://127.0.0.1:PORT` of the HTTP listener.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// A channel to the gRPC listener, for `inference` and `plinth.serving.v1` clients.
    pub async fn channel(&self) -> plinth_runtime::client::AuthChannel {
        local_channel(
            self.grpc,
            None,
            std::time::Duration::from_secs(30),
            "model serving",
        )
        .await
    }

    /// Waits until `/readyz` answers 200 (every configured model loaded), at most `timeout`.
    pub async fn wait_ready(&self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let addr = self.http;
            let ready = tokio::task::spawn_blocking(move || http_status(addr, "/readyz"))
                .await
                .ok()
                .flatten();
            if ready == Some(200) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "model serving at {} is not ready after {timeout:?}",
                self.http
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Stops model serving and waits until it has shut down.
    pub async fn stop(mut self) {
        self.task.stop().await;
    }
}

/// The status code of `GET path` on `addr` over plain HTTP/1.1, `None` when it does not answer.
pub(crate) fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
