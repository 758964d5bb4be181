//! Wiring: opens the store, builds the registry client, Kafka clients, lake and both gRPC services
//! (`plinth.datahub.v1` and Arrow Flight on one port), binds the listeners, and shuts down in order:
//! stop accepting, end Subscribe streams, stop the lake sinks, flush the producer, close the store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use plinth_runtime::error::ApiError;
use plinth_runtime::server::{BoundServer, HealthHandle, ServerBuilder};
use plinth_schema_registry::client::RegistryClient;
use plinth_schema_registry::domain::schema::SchemaDraft;

use crate::SERVICE_NAME;
use crate::api::{DataHubAccessPolicy, GrpcApi};
use crate::config::{Config, RegistryClientConfig};
use crate::lake::{Lake, LakeContext};
use crate::produce::Producer;
use crate::store::Store;
use crate::subscribe::Subscriptions;
use crate::topics::Topics;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] plinth_runtime::config::ConfigError),
    /// The database could not be opened.
    #[error("cannot open the gateway database {url}: {source}")]
    Store {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        source: crate::store::StoreError,
    },
    /// A part could not be built from the configuration (Kafka settings, registry endpoint, lake root).
    #[error("{0}")]
    Setup(String),
    /// The listeners failed.
    #[error(transparent)]
    Server(#[from] plinth_runtime::error::ServerError),
}

impl From<ApiError> for StartError {
    fn from(err: ApiError) -> Self {
        StartError::Setup(err.message)
    }
}

/// A gateway whose listeners are bound but not serving yet.
#[derive(Debug)]
pub struct BoundDataHub {
    server: BoundServer,
    health: HealthHandle,
    store: Store,
    topics: Arc<Topics>,
    producer: Arc<Producer>,
    lake: Arc<Lake>,
    stop_streams: tokio::sync::watch::Sender<bool>,
    grace: Duration,
}

/// How often readiness re-checks the database and the Kafka cluster.
const READINESS_INTERVAL: Duration = Duration::from_secs(5);

impl BoundDataHub {
    /// The gRPC (and Arrow Flight) address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The HTTP address (`/metrics`, `/healthz`, `/readyz`).
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    /// Serves until `shutdown` resolves, then stops streams and sinks and drains.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        self.lake.start().await;
        let (stop_readiness, readiness_stopped) = tokio::sync::watch::channel(false);
        let readiness = tokio::spawn(track_readiness(
            self.store.clone(),
            self.topics.clone(),
            self.health.clone(),
            readiness_stopped,
        ));
        let stop_streams = self.stop_streams.clone();
        let shutdown = async move {
            shutdown.await;
            // Subscribe streams never end by themselves; end them so the server can drain.
            let _ = stop_streams.send(true);
        };
        let served = self.server.serve(shutdown).await;
        let _ = stop_readiness.send(true);
        let _ = readiness.await;
        self.lake.shutdown().await;
        let producer = self.producer.clone();
        let grace = self.grace;
        let _ = tokio::task::spawn_blocking(move || producer.flush(grace)).await;
        self.store.close().await;
        served.map_err(StartError::from)
    }
}

fn registry_client(config: &RegistryClientConfig) -> Result<RegistryClient, StartError> {
    let token = match &config.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|err| {
                    StartError::Setup(format!(
                        "cannot read registry.token_file {}: {err}",
                        path.display()
                    ))
                })?
                .trim()
                .to_owned(),
        ),
        None => config.token.clone(),
    };
    let tls = config
        .ca_cert
        .as_ref()
        .map(|ca| plinth_runtime::tls::ClientTls {
            ca_path: Some(ca.clone()),
            cert_path: None,
            key_path: None,
        });
    let channel =
        plinth_runtime::client::connect_lazy(&config.url, tls.as_ref(), token, config.timeout)
            .map_err(|err| StartError::Setup(format!("registry.url: {err}")))?;
    Ok(RegistryClient::new(
        channel,
        SchemaDraft::Draft7,
        config.latest_ttl,
    ))
}

/// Opens the store, builds the parts and binds the listeners.
pub async fn bind(config: &Config) -> Result<BoundDataHub, StartError> {
    use plinth_runtime::config::Validate as _;
    config.validate()?;
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
    let registry = Arc::new(registry_client(&config.registry)?);
    let topics = Arc::new(Topics::new(store.clone(), registry.clone(), &config.kafka)?);
    let producer = Arc::new(Producer::new(
        &config.kafka,
        config.produce.clone(),
        topics.clone(),
        registry.clone(),
    )?);
    let (stop_streams, streams_stopped) = tokio::sync::watch::channel(false);
    let subscriptions = Arc::new(Subscriptions::new(
        config.kafka.clone(),
        config.subscribe.clone(),
        topics.clone(),
        registry.clone(),
        streams_stopped,
    ));
    let replica_id = format!(
        "{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "datahub".to_owned()),
        uuid::Uuid::now_v7()
    );
    let lake = Lake::new(LakeContext {
        store: store.clone(),
        registry: registry.clone(),
        kafka: config.kafka.clone(),
        config: config.lake.clone(),
        replica_id,
    })?;
    let mut builder = ServerBuilder::new(SERVICE_NAME, config.server.clone())
        .grpc_service(GrpcApi::server(
            topics.clone(),
            producer.clone(),
            subscriptions,
            lake.clone(),
            config.server.max_request_body_bytes,
        ))
        .grpc_service(crate::flight::flight_service(lake.clone()))
        // Client streams answer only after the client's last message.
        .untimed_method("/plinth.datahub.v1.DataHubService/ProduceStream")
        .untimed_method("/arrow.flight.protocol.FlightService/DoPut")
        .access_policy(Arc::new(DataHubAccessPolicy));
    let health = builder.health();
    let server = builder.bind().await?;
    health.set_ready(true).await;
    tracing::info!(grpc = %server.grpc_addr(), http = %server.http_addr(), kafka = %config.kafka.bootstrap_servers, lake = %config.lake.root, "data hub gateway listening");
    Ok(BoundDataHub {
        server,
        health,
        store,
        topics,
        producer,
        lake,
        stop_streams,
        grace: config.server.shutdown_grace_period,
    })
}

/// Keeps readiness false while the database or the Kafka cluster does not answer.
async fn track_readiness(
    store: Store,
    topics: Arc<Topics>,
    health: HealthHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let stop = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    health
        .track(READINESS_INTERVAL, stop, || {
            let (store, topics) = (store.clone(), topics.clone());
            async move {
                let database = store.ping().await;
                let kafka = topics.ping().await;
                match (database, kafka) {
                    (Ok(()), Ok(())) => Ok(()),
                    (database, kafka) => Err(format!(
                        "database: {}; kafka: {}",
                        database
                            .err()
                            .map_or_else(|| "ok".to_owned(), |err| err.to_string()),
                        kafka
                            .err()
                            .map_or_else(|| "ok".to_owned(), |err| err.message)
                    )),
                }
            }
        })
        .await;
}

/// Runs the gateway until `shutdown` resolves (`main` passes SIGTERM/SIGINT; tests pass their own).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    bind(&config).await?.serve(shutdown).await
}
