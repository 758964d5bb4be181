//! Wiring: loads ONNX Runtime and the configured models, builds the Open Inference Protocol front ends
//! (gRPC and REST), `plinth.serving.v1`, the predictor and the prediction log, and binds the listeners.
//! Readiness stays false until every configured model is loaded; a model that does not load stops the
//! start with its reason (a pod that cannot serve its models must not become ready).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use plinth_runtime::server::{BoundServer, HealthHandle, ServerBuilder};

use crate::SERVICE_NAME;
use crate::config::Config;
use crate::error::ServingError;
use crate::models::ModelManager;
use crate::monitor::Monitor;
use crate::predict::Predictor;

/// Why model serving could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] plinth_runtime::config::ConfigError),
    /// ONNX Runtime, the repository or a configured model could not be loaded.
    #[error("{0}")]
    Serving(#[from] ServingError),
    /// The listeners failed.
    #[error(transparent)]
    Server(#[from] plinth_runtime::error::ServerError),
}

/// Model serving with its listeners bound, loading or serving.
#[derive(Debug)]
pub struct BoundServing {
    server: BoundServer,
    health: HealthHandle,
    manager: Arc<ModelManager>,
    monitor_task: Option<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    loading: tokio::task::JoinHandle<Result<(), ServingError>>,
}

impl BoundServing {
    /// The gRPC address (OIP V2 and `plinth.serving.v1`).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The HTTP address (`/v2/...`, `/metrics`, `/healthz`, `/readyz`).
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    /// The models.
    pub fn models(&self) -> Arc<ModelManager> {
        self.manager.clone()
    }

    /// Serves until `shutdown` resolves, then drains. Fails when a configured model does not load.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let BoundServing {
            server,
            health,
            manager: _,
            monitor_task,
            stop,
            loading,
        } = self;
        let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<ServingError>();
        let loader = tokio::spawn(async move {
            match loading.await {
                Ok(Ok(())) => {
                    health.set_ready(true).await;
                    tracing::info!("every configured model is loaded: ready");
                }
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "a configured model did not load");
                    let _ = failed_tx.send(err);
                }
                Err(err) => {
                    let _ = failed_tx.send(ServingError::internal(format!(
                        "the model loader stopped: {err}"
                    )));
                }
            }
        });
        // Stop serving when the shutdown signal comes or a configured model fails to load; the failure
        // is handed out of the shutdown future to become serve's error.
        let (why_tx, why_rx) = tokio::sync::oneshot::channel::<ServingError>();
        let served = server
            .serve(async move {
                tokio::select! {
                    () = shutdown => {}
                    Ok(err) = failed_rx => { let _ = why_tx.send(err); }
                }
            })
            .await;
        let _ = stop.send(true);
        loader.abort();
        if let Some(task) = monitor_task {
            let _ = task.await;
        }
        served?;
        match why_rx.await {
            Ok(err) => Err(StartError::Serving(err)),
            Err(_) => Ok(()),
        }
    }
}

/// Loads ONNX Runtime, binds the listeners (not ready yet) and starts loading the configured models.
pub async fn bind(config: &Config) -> Result<BoundServing, StartError> {
    use plinth_runtime::config::Validate as _;
    config.validate()?;
    let refs = config.models.load_refs()?;
    let manager = ModelManager::from_config(config)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (monitor, monitor_task) = if config.monitoring.enabled {
        let (monitor, task) = Monitor::start(&config.monitoring, stopped.clone())?;
        (Some(monitor), Some(task))
    } else {
        (None, None)
    };
    let feature_store = crate::predict::FeatureStoreClient::new(&config.feature_store)?;
    let predictor = Arc::new(Predictor::new(
        manager.clone(),
        feature_store,
        monitor,
        &config.limits,
    ));
    let max_message = config.server.max_request_body_bytes;
    let mut builder = ServerBuilder::new(SERVICE_NAME, config.server.clone())
        .grpc_service(crate::oip::grpc::server(manager.clone(), max_message))
        .grpc_service(crate::api::server(manager.clone(), predictor))
        .http_router(crate::oip::rest::router(manager.clone()));
    let health = builder.health();
    let server = builder.bind().await?;
    tracing::info!(grpc = %server.grpc_addr(), http = %server.http_addr(), models = %config.models.root, "model serving listening; loading models");
    let loading = {
        let manager = manager.clone();
        let all = config.models.load_all;
        tokio::spawn(async move { manager.load_at_start(&refs, all).await })
    };
    Ok(BoundServing {
        server,
        health,
        manager,
        monitor_task,
        stop,
        loading,
    })
}

/// Runs model serving until `shutdown` resolves (`main` passes SIGTERM/SIGINT; tests their own).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    bind(&config).await?.serve(shutdown).await
}
