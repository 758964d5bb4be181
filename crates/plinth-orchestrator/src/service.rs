//! Wiring: opens the database, the log store and the executor, builds the engine and the gRPC service,
//! binds the listeners, runs the scheduler and the event publisher, and keeps readiness true only while
//! the database answers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use plinth_runtime::server::{BoundServer, HealthHandle, ServerBuilder};
use plinth_runtime::storage::Locations;

use crate::SERVICE_NAME;
use crate::api::{GrpcApi, OrchestratorAccessPolicy};
use crate::config::{Config, ExecutorKind};
use crate::engine::{Engine, EngineParts};
use crate::events::Publisher;
use crate::executor::Executor;
use crate::logs::LogStore;
use crate::store::Store;
use crate::tasks::{Platform, StorageRoot};

/// Why the orchestrator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] plinth_runtime::config::ConfigError),
    /// The database could not be opened.
    #[error("cannot open the orchestrator database {url}: {source}")]
    Database {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        source: crate::store::StoreError,
    },
    /// A part could not be built from the configuration.
    #[error("{0}")]
    Setup(String),
    /// The listeners failed.
    #[error(transparent)]
    Server(#[from] plinth_runtime::error::ServerError),
}

/// An orchestrator whose listeners are bound but not serving yet.
#[derive(Debug)]
pub struct BoundOrchestrator {
    server: BoundServer,
    health: HealthHandle,
    engine: Arc<Engine>,
    publisher: Option<Publisher>,
}

/// How often readiness re-checks the database.
const READINESS_INTERVAL: Duration = Duration::from_secs(5);

impl BoundOrchestrator {
    /// The gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The HTTP address (`/metrics`, `/healthz`, `/readyz`).
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    /// Serves and schedules until `shutdown` resolves, then drains.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let scheduler = tokio::spawn(self.engine.clone().run(stopped.clone()));
        let publisher = self
            .publisher
            .map(|publisher| tokio::spawn(publisher.run(stopped.clone())));
        let (engine, health) = (self.engine.clone(), self.health.clone());
        let readiness = tokio::spawn(async move {
            let mut stopped = stopped;
            let stop = async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            };
            health
                .track(READINESS_INTERVAL, stop, || {
                    let engine = engine.clone();
                    async move {
                        engine
                            .store()
                            .ping()
                            .await
                            .map_err(|err| format!("the database does not answer: {err}"))
                    }
                })
                .await;
        });
        let served = self.server.serve(shutdown).await;
        let _ = stop.send(true);
        let _ = scheduler.await;
        if let Some(publisher) = publisher {
            let _ = publisher.await;
        }
        let _ = readiness.await;
        self.engine.store().close().await;
        served.map_err(StartError::from)
    }
}

fn setup(what: &str) -> impl Fn(String) -> StartError + '_ {
    move |message| StartError::Setup(format!("{what}: {message}"))
}

async fn build_executor(config: &Config) -> Result<Arc<dyn Executor>, StartError> {
    match config.executor.kind {
        ExecutorKind::Local => Ok(Arc::new(crate::executor::local::LocalExecutor::new(
            &config.executor.local,
        ))),
        ExecutorKind::Kubernetes => {
            // In a pod: the service account's token and the cluster's CA; elsewhere: KUBECONFIG.
            let client = kube::Client::try_default().await.map_err(|err| {
                setup("executor.kubernetes")(format!(
                    "cannot reach the Kubernetes API ({err}); run the orchestrator in the cluster with its service account, or set KUBECONFIG"
                ))
            })?;
            Ok(Arc::new(
                crate::executor::kubernetes::KubernetesExecutor::new(
                    client,
                    &config.executor.kubernetes,
                ),
            ))
        }
    }
}

/// Opens the parts and binds the listeners.
pub async fn bind(config: &Config) -> Result<BoundOrchestrator, StartError> {
    use plinth_runtime::config::Validate as _;
    config.validate()?;
    let store = Store::connect(
        &config.database.url,
        config.database.max_connections,
        config.database.connect_timeout,
    )
    .await
    .map_err(|source| StartError::Database {
        url: config.database.redacted_url(),
        source,
    })?;
    let log_locations = Arc::new(Locations::new(config.logs.options.clone()));
    let spool = config
        .logs
        .spool_dir
        .clone()
        .unwrap_or_else(crate::logs::default_spool_dir);
    let logs = LogStore::new(
        log_locations,
        config.logs.root.clone(),
        spool,
        config.logs.max_bytes,
    )
    .map_err(|err| setup("logs")(err.to_string()))?;
    // Logs of attempts a killed orchestrator left in the spool are stored before anything runs.
    match logs.recover_spools().await {
        Ok(0) => {}
        Ok(count) => tracing::info!(
            count,
            "stored the logs of attempts left by a stopped orchestrator"
        ),
        Err(err) => tracing::warn!(error = %err, "cannot recover the log spool"),
    }
    let lake = StorageRoot::new(
        Arc::new(Locations::new(config.lake.options.clone())),
        config.lake.root.clone(),
    );
    let models = StorageRoot::new(
        Arc::new(Locations::new(config.models.options.clone())),
        config.models.root.clone(),
    );
    let feature_store = config
        .feature_store
        .connect_lazy()
        .map_err(|err| setup("feature_store")(err.to_string()))?;
    let serving = config
        .serving
        .connect_lazy()
        .map_err(|err| setup("serving")(err.to_string()))?;
    let platform = Platform::new(lake, models)
        .with_feature_store(config.feature_store.url.clone(), feature_store)
        .with_model_serving(config.serving.url.clone(), serving);
    let work_dir = config
        .executor
        .local
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("plinth-orchestrator-work"));
    let engine = Engine::new(EngineParts {
        store: store.clone(),
        executor: build_executor(config).await?,
        logs,
        platform: Arc::new(platform),
        config: config.scheduler.clone(),
        work_dir,
        lake_root: config.lake.root.clone(),
    });
    let publisher = if config.events.publish {
        Some(Publisher {
            store,
            datahub: config
                .datahub
                .connect_lazy()
                .map_err(|err| setup("datahub")(err.to_string()))?,
            registry: config
                .registry
                .connect_lazy()
                .map_err(|err| setup("registry")(err.to_string()))?,
            topic: config.events.topic.clone(),
            notify: engine.events_notify(),
        })
    } else {
        None
    };
    let mut builder = ServerBuilder::new(SERVICE_NAME, config.server.clone())
        .grpc_service(GrpcApi::server(
            engine.clone(),
            config.server.max_request_body_bytes,
        ))
        .untimed_method("/plinth.orchestrator.v1.OrchestratorService/StreamRunEvents")
        .untimed_method("/plinth.orchestrator.v1.OrchestratorService/GetTaskLogs")
        .access_policy(Arc::new(OrchestratorAccessPolicy));
    let health = builder.health();
    let server = builder.bind().await?;
    health.set_ready(true).await;
    tracing::info!(grpc = %server.grpc_addr(), http = %server.http_addr(), executor = ?config.executor.kind, replica = engine.replica(), "orchestrator listening");
    Ok(BoundOrchestrator {
        server,
        health,
        engine,
        publisher,
    })
}

/// Runs the orchestrator until `shutdown` resolves (`main` passes SIGTERM/SIGINT; tests their own).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    bind(&config).await?.serve(shutdown).await
}
