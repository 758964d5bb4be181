//! Wiring: opens the registry, the online store and the lake, builds the gRPC service (with Arrow
//! Flight on the same port) and the Feast-shaped HTTP API, binds the listeners, keeps the cached project
//! fresh and readiness true only while the registry and the online store answer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use plinth_runtime::server::{BoundServer, HealthHandle, ServerBuilder};
use plinth_runtime::storage::Locations;

use crate::SERVICE_NAME;
use crate::api::{FeatureStoreAccessPolicy, GrpcApi};
use crate::config::{Config, OnlineStoreKind};
use crate::feature_store::FeatureStore;
use crate::offline::OfflineContext;
use crate::online::OnlineStore;

/// Why the feature store could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] plinth_runtime::config::ConfigError),
    /// The registry database could not be opened.
    #[error("cannot open the feature store registry {url}: {source}")]
    Registry {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        source: crate::registry::RegistryError,
    },
    /// The online store could not be opened.
    #[error("cannot open the online store: {0}")]
    Online(#[from] crate::online::OnlineError),
    /// A part could not be built from the configuration.
    #[error("{0}")]
    Setup(String),
    /// The listeners failed.
    #[error(transparent)]
    Server(#[from] plinth_runtime::error::ServerError),
}

/// A feature store whose listeners are bound but not serving yet.
#[derive(Debug)]
pub struct BoundFeatureStore {
    server: BoundServer,
    health: HealthHandle,
    store: Arc<FeatureStore>,
    datahub: plinth_runtime::client::AuthChannel,
}

/// How often readiness re-checks the registry and the online store.
const READINESS_INTERVAL: Duration = Duration::from_secs(5);

impl BoundFeatureStore {
    /// The gRPC (and Arrow Flight) address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The HTTP address (Feast's `/get-online-features` and `/push`, `/metrics`, `/healthz`, `/readyz`).
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
        let background = tokio::spawn(keep_fresh(
            self.store.clone(),
            self.health.clone(),
            background_stopped.clone(),
        ));
        let streams = tokio::spawn(crate::streaming::run(
            self.store.clone(),
            self.datahub.clone(),
            background_stopped,
        ));
        let served = self.server.serve(shutdown).await;
        let _ = stop_background.send(true);
        let _ = background.await;
        let _ = streams.await;
        self.store.registry().close().await;
        served.map_err(StartError::from)
    }
}

/// Opens the parts and binds the listeners.
pub async fn bind(config: &Config) -> Result<BoundFeatureStore, StartError> {
    use plinth_runtime::config::Validate as _;
    config.validate()?;
    let registry = crate::registry::Registry::connect(
        &config.database.url,
        config.database.max_connections,
        config.database.connect_timeout,
    )
    .await
    .map_err(|source| StartError::Registry {
        url: config.database.redacted_url(),
        source,
    })?;
    let online: Arc<dyn OnlineStore> = match config.online.store {
        OnlineStoreKind::Redis => Arc::new(crate::online::redis::RedisStore::new(
            &crate::online::redis::RedisConfig {
                url: config.online.redis_url()?,
                prefix: config.online.key_prefix.clone(),
                timeout: config.online.timeout,
                tls: config.online.redis_tls()?,
            },
        )?),
        OnlineStoreKind::Embedded => Arc::new(
            crate::online::embedded::EmbeddedStore::open(&config.online.embedded_url).await?,
        ),
    };
    let locations = Arc::new(Locations::new(config.lake.options.clone()));
    // Opened once here so that a lake root that cannot be used stops the start with its reason.
    locations
        .get(&config.lake.root)
        .map_err(|err| StartError::Setup(format!("lake.root: {}", err.message)))?;
    let mut offline = OfflineContext::new(locations, config.lake.root.clone());
    offline.target_partition_bytes = config.training.partition_bytes;
    offline.cache = Arc::new(crate::offline::cache::FeatureCache::new(
        config.training.cache_bytes,
    ));
    if let Some(dir) = &config.training.spill_dir {
        offline.scratch_dir = dir.clone();
    }
    let datahub = config
        .datahub
        .connect_lazy()
        .map_err(|err| StartError::Setup(format!("datahub: {err}")))?;
    let store = Arc::new(
        FeatureStore::new(registry, online, offline, config.serving.clone())
            .await
            .map_err(|source| StartError::Registry {
                url: config.database.redacted_url(),
                source,
            })?,
    );
    let mut builder = ServerBuilder::new(SERVICE_NAME, config.server.clone())
        .grpc_service(GrpcApi::server(
            store.clone(),
            config.server.max_request_body_bytes,
        ))
        .grpc_service(crate::flight::flight_service(store.clone()))
        .http_router(crate::http::router(store.clone()))
        .untimed_method("/plinth.featurestore.v1.FeatureStoreService/GetTrainingSet")
        .untimed_method("/plinth.featurestore.v1.FeatureStoreService/Materialize")
        .access_policy(Arc::new(FeatureStoreAccessPolicy));
    let health = builder.health();
    let server = builder.bind().await?;
    health.set_ready(true).await;
    tracing::info!(grpc = %server.grpc_addr(), http = %server.http_addr(), lake = %config.lake.root, online = ?config.online.store, "feature store listening");
    Ok(BoundFeatureStore {
        server,
        health,
        store,
        datahub,
    })
}

/// Re-reads the project every refresh period and keeps readiness false while the registry or the
/// online store does not answer.
async fn keep_fresh(
    store: Arc<FeatureStore>,
    health: HealthHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let period = store.refresh_period().min(READINESS_INTERVAL);
    let stop = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    health
        .track(period, stop, || {
            let store = store.clone();
            async move {
                let registry = store.refresh().await;
                let online = store.online().ping().await;
                match (registry, online) {
                    (Ok(()), Ok(())) => Ok(()),
                    (registry, online) => Err(format!(
                        "registry: {}; online store: {}",
                        registry
                            .err()
                            .map_or_else(|| "ok".to_owned(), |err| err.message),
                        online
                            .err()
                            .map_or_else(|| "ok".to_owned(), |err| err.to_string())
                    )),
                }
            }
        })
        .await;
}

/// Runs the feature store until `shutdown` resolves (`main` passes SIGTERM/SIGINT; tests their own).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    bind(&config).await?.serve(shutdown).await
}
