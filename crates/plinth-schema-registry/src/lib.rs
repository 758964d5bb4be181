//! The Plinth schema registry: every dataset on the platform has a registered JSON Schema under a
//! subject, and changes must stay compatible so producers never break consumers.
//!
//! It owns subjects, versions, global ids, compatibility configuration and modes (SQL via sqlx: SQLite
//! embedded, PostgreSQL in production), and serves them over the Confluent Schema Registry REST API
//! (`api::rest`, so existing Kafka serializers work unchanged) and `plinth.schemaregistry.v1` gRPC
//! (`api::grpc`). It does not produce or consume Kafka records, and it never fetches schemas over the
//! network: `$ref`s resolve only to registered references.
//!
//! Start reading at [`registry::Registry`]; `domain` holds the rules without IO, `store` the SQL, `cache`
//! the read cache that keeps replicas coherent.

pub mod api;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod registry;
pub mod store;

mod cache;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use plinth_runtime::server::{BoundServer, HealthHandle, ServerBuilder};

pub use crate::config::Config;
use crate::registry::Registry;
use crate::store::Store;

/// The service name used in logs, metrics and traces.
pub const SERVICE_NAME: &str = "schema-registry";

/// Why the registry could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] plinth_runtime::config::ConfigError),
    /// The database could not be opened or migrated.
    #[error("cannot open the registry database {url}: {source}")]
    Store {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        source: store::StoreError,
    },
    /// The listeners failed.
    #[error(transparent)]
    Server(#[from] plinth_runtime::error::ServerError),
}

/// A registry whose listeners are bound (so tests and `plinth up` know the addresses) but not serving yet.
#[derive(Debug)]
pub struct BoundRegistry {
    registry: Arc<Registry>,
    server: BoundServer,
    health: HealthHandle,
}

/// How often readiness re-checks that the database answers.
const READINESS_INTERVAL: Duration = Duration::from_secs(5);

impl BoundRegistry {
    /// The gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The HTTP (REST) address.
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and closes the store.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_tasks, tasks_stopped) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        let watcher = tokio::spawn(
            self.registry
                .clone()
                .watch_changes(stopped(tasks_stopped.clone())),
        );
        let readiness = tokio::spawn(track_readiness(
            self.registry.clone(),
            self.health.clone(),
            stopped(tasks_stopped),
        ));
        let served = self.server.serve(shutdown).await;
        let _ = stop_tasks.send(true);
        let _ = watcher.await;
        let _ = readiness.await;
        self.registry.store().close().await;
        served.map_err(StartError::from)
    }
}

/// Opens the store, builds both APIs and binds the listeners.
pub async fn bind(config: &Config) -> Result<BoundRegistry, StartError> {
    use plinth_runtime::config::Validate as _;
    config.validate()?;
    let settings = config.registry.settings()?;
    let store = Store::connect(
        &config.database.url,
        config.database.max_connections,
        config.database.connect_timeout,
    )
    .await
    .map_err(|source| StartError::Store {
        url: config.database.redacted_url(),
        source,
    })?;
    let registry = Arc::new(Registry::new(store, settings));
    let mut builder = ServerBuilder::new(SERVICE_NAME, config.server.clone())
        .grpc_service(api::grpc::GrpcApi::server(
            registry.clone(),
            config.server.max_request_body_bytes,
        ))
        .http_router(api::rest::router(registry.clone()))
        .access_policy(Arc::new(api::access::RegistryAccessPolicy));
    let health = builder.health();
    let server = builder.bind().await?;
    health.set_ready(true).await;
    tracing::info!(grpc = %server.grpc_addr(), http = %server.http_addr(), database = %config.database.redacted_url(), "schema registry listening");
    Ok(BoundRegistry {
        registry,
        server,
        health,
    })
}

/// Keeps readiness (gRPC health and `/readyz`) false while the database does not answer, so Kubernetes
/// routes traffic to replicas that can serve it.
async fn track_readiness(
    registry: Arc<Registry>,
    health: HealthHandle,
    stop: impl Future<Output = ()>,
) {
    health
        .track(READINESS_INTERVAL, stop, || {
            let registry = registry.clone();
            async move {
                registry
                    .store()
                    .ping()
                    .await
                    .map_err(|err| format!("the registry database does not answer: {err}"))
            }
        })
        .await;
}

/// Runs the registry until `shutdown` resolves (`main` passes SIGTERM/SIGINT; tests pass their own).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    bind(&config).await?.serve(shutdown).await
}
