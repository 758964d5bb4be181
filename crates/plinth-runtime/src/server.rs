//! The server every Plinth service runs: a gRPC listener (the service's gRPC services, health and
//! reflection) and an HTTP listener (the service's axum routes, `/metrics`, `/healthz`, `/readyz`),
//! both behind the same layers (span and metrics, timeout, body limit, optional auth), optionally
//! TLS, and with graceful shutdown.
//!
//! ```no_run
//! # async fn run() -> Result<(), plinth_runtime::error::ServerError> {
//! use plinth_runtime::config::ServerConfig;
//! use plinth_runtime::server::{ServerBuilder, shutdown_signal};
//!
//! let mut builder = ServerBuilder::new("schema-registry", ServerConfig::with_ports(7001, 7002))
//!     .http_router(axum::Router::new());
//! let health = builder.health();
//! let server = builder.bind().await?;
//! health.set_ready(true).await;
//! server.serve(shutdown_signal()).await
//! # }
//! ```

mod health;
mod layers;
mod probes;
mod serve;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use http::{HeaderMap, Request, header};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tower::Service;

pub use self::health::HealthHandle;
use self::layers::{BodyLimitLayer, ObserveLayer, TimeoutLayer};
use crate::auth::{AccessPolicy, AuthLayer, DefaultAccessPolicy, TokenStore};
use crate::config::ServerConfig;
use crate::error::ServerError;

/// A complete request pipeline for one listener: routes with their layers.
type ListenerService = axum::Router;

/// Collects what a service serves, then binds it with [`ServerBuilder::bind`].
pub struct ServerBuilder {
    service_name: &'static str,
    config: ServerConfig,
    grpc_routes: RoutesBuilder,
    grpc_service_names: Vec<&'static str>,
    http_router: axum::Router,
    access_policy: Arc<dyn AccessPolicy>,
    descriptor_sets: Vec<&'static [u8]>,
    health: HealthHandle,
    health_requested: bool,
    untimed_methods: Vec<&'static str>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("service_name", &self.service_name)
            .field("config", &self.config)
            .field("grpc_service_names", &self.grpc_service_names)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Starts a server for `service_name` (used in metrics labels, spans and logs).
    pub fn new(service_name: &'static str, config: ServerConfig) -> Self {
        ServerBuilder {
            service_name,
            config,
            grpc_routes: RoutesBuilder::default(),
            grpc_service_names: Vec::new(),
            http_router: axum::Router::new(),
            access_policy: Arc::new(DefaultAccessPolicy),
            descriptor_sets: Vec::new(),
            health: HealthHandle::new(),
            health_requested: false,
            untimed_methods: Vec::new(),
        }
    }

    /// Exempts the gRPC method at `path` (`/package.Service/Method`) from `request_timeout`: for
    /// client-streaming RPCs, whose response headers come only after the client's stream ends. The
    /// client's own `grpc-timeout` still applies.
    #[must_use]
    pub fn untimed_method(mut self, path: &'static str) -> Self {
        self.untimed_methods.push(path);
        self
    }

    /// Serves a tonic service (a generated `FooServer`) on the gRPC listener and reports its health
    /// under its full name.
    ///
    /// The layers cap every gRPC message at `max_request_body_bytes`, but tonic's generated servers
    /// also apply their own limit (4 MiB unless changed): to accept larger messages call
    /// `.max_decoding_message_size(config.max_request_body_bytes)` on the generated server too.
    #[must_use]
    pub fn grpc_service<S>(mut self, service: S) -> Self
    where
        S: Service<Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.grpc_routes.add_service(service);
        self.grpc_service_names.push(S::NAME);
        self.health.add_service(S::NAME);
        self
    }

    /// Serves `router` on the HTTP listener, next to `/metrics`, `/healthz` and `/readyz` (which it
    /// must not define itself).
    #[must_use]
    pub fn http_router(mut self, router: axum::Router) -> Self {
        self.http_router = self.http_router.merge(router);
        self
    }

    /// Replaces [`DefaultAccessPolicy`], used when `auth.enabled`.
    #[must_use]
    pub fn access_policy(mut self, policy: Arc<dyn AccessPolicy>) -> Self {
        self.access_policy = policy;
        self
    }

    /// Registers an extra encoded `FileDescriptorSet` with gRPC reflection (Plinth's own protos and
    /// the health service are always registered).
    #[must_use]
    pub fn file_descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded);
        self
    }

    /// The handle that marks the server ready or not. Once called, the server starts NOT ready and
    /// the service calls [`HealthHandle::set_ready`] when it can serve; if never called, the server
    /// is ready as soon as it serves.
    pub fn health(&mut self) -> HealthHandle {
        self.health_requested = true;
        self.health.clone()
    }

    /// Builds the request pipelines and binds both listeners (port 0 picks free ports).
    pub async fn bind(self) -> Result<BoundServer, ServerError> {
        let ServerBuilder {
            service_name,
            config,
            grpc_routes,
            grpc_service_names,
            http_router,
            access_policy,
            descriptor_sets,
            health,
            health_requested,
            untimed_methods,
        } = self;

        let auth = match (&config.auth.enabled, &config.auth.tokens_file) {
            (false, _) => None,
            (true, None) => return Err(ServerError::AuthWithoutTokens),
            (true, Some(path)) => Some(AuthLayer::new(
                Arc::new(TokenStore::load(path)?),
                access_policy,
            )),
        };
        let tls = match &config.tls {
            Some(tls) => Some(TlsAcceptor::from(crate::tls::server_config(tls)?)),
            None => None,
        };
        // Install the recorder before the first request is counted.
        let _ = crate::telemetry::metrics_handle();
        health.publish().await;

        let grpc_router = grpc_router(
            grpc_routes,
            &grpc_service_names,
            &health,
            &descriptor_sets,
            &config,
        )?;
        let http_router = http_router
            .merge(probes::router(health.clone()))
            .layer(DefaultBodyLimit::max(config.max_request_body_bytes));
        let grpc_service = with_layers(
            grpc_router,
            service_name,
            &config,
            auth.clone(),
            untimed_methods.clone(),
        );
        let http_service = with_layers(http_router, service_name, &config, auth, untimed_methods);

        let grpc_listener = bind_listener("gRPC", config.grpc.listen, "grpc.listen").await?;
        let http_listener = bind_listener("HTTP", config.http.listen, "http.listen").await?;
        Ok(BoundServer {
            service_name,
            grpc_addr: local_addr(&grpc_listener, "gRPC", config.grpc.listen, "grpc.listen")?,
            http_addr: local_addr(&http_listener, "HTTP", config.http.listen, "http.listen")?,
            grpc_listener,
            http_listener,
            grpc_service,
            http_service,
            tls,
            health,
            ready_on_serve: !health_requested,
            grace_period: config.shutdown_grace_period,
        })
    }
}

/// Both listeners, bound and ready to [`serve`](BoundServer::serve).
pub struct BoundServer {
    service_name: &'static str,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    grpc_service: ListenerService,
    http_service: ListenerService,
    tls: Option<TlsAcceptor>,
    health: HealthHandle,
    ready_on_serve: bool,
    grace_period: Duration,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("service_name", &self.service_name)
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl BoundServer {
    /// The address the gRPC listener is bound to.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The address the HTTP listener is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The readiness handle (the same one [`ServerBuilder::health`] returned).
    pub fn health(&self) -> HealthHandle {
        self.health.clone()
    }

    /// Serves until `shutdown` resolves, then marks the server not ready, stops accepting
    /// connections, lets in-flight requests finish for up to `shutdown_grace_period`, closes what
    /// remains and returns.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        if self.ready_on_serve {
            self.health.set_ready(true).await;
        }
        tracing::info!(
            service = self.service_name,
            grpc = %self.grpc_addr,
            http = %self.http_addr,
            tls = self.tls.is_some(),
            "serving"
        );
        let upkeep = tokio::spawn(probes::metrics_upkeep());
        let health = self.health.clone();
        let service_name = self.service_name;
        let signal = async move {
            shutdown.await;
            tracing::info!(service = service_name, "shutting down");
            health.set_ready(false).await;
            // Receivers outlive this sender only after `true` was sent, which they read first.
            let _ = stop_sender.send(true);
        };
        let grpc = serve::serve_listener(serve::Listener {
            name: "gRPC",
            listener: self.grpc_listener,
            tls: self.tls.clone(),
            service: self.grpc_service,
            stop: stop.clone(),
            grace_period: self.grace_period,
        });
        let http = serve::serve_listener(serve::Listener {
            name: "HTTP",
            listener: self.http_listener,
            tls: self.tls,
            service: self.http_service,
            stop,
            grace_period: self.grace_period,
        });
        tokio::join!(signal, grpc, http);
        upkeep.abort();
        tracing::info!(service = self.service_name, "stopped");
        Ok(())
    }
}

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}

/// True for gRPC requests (content type `application/grpc`, `application/grpc+proto`, ...).
pub(crate) fn is_grpc_request(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

fn grpc_router(
    routes: RoutesBuilder,
    service_names: &[&'static str],
    health: &HealthHandle,
    descriptor_sets: &[&'static [u8]],
    config: &ServerConfig,
) -> Result<axum::Router, ServerError> {
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(plinth_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        // List only what this server serves: the descriptor set holds every Plinth package, and a
        // registry must not advertise the data hub's service.
        let served = service_names.iter().copied().chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]);
        for name in served {
            builder = builder.with_service_name(name);
        }
        for set in descriptor_sets {
            builder = builder.register_encoded_file_descriptor_set(set);
        }
        builder
    };
    let reflection_error = |err: tonic_reflection::server::Error| ServerError::Reflection {
        reason: err.to_string(),
    };
    let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
    let routes: Routes = routes
        .routes()
        .add_service(
            health
                .server()
                .max_decoding_message_size(config.max_request_body_bytes),
        )
        .add_service(reflection_v1.max_decoding_message_size(config.max_request_body_bytes))
        .add_service(reflection_v1alpha.max_decoding_message_size(config.max_request_body_bytes));
    Ok(routes.prepare().into_axum_router())
}

/// Applies the request layers, outermost first: span and metrics, timeout, body limit, auth. They
/// are applied with `Router::layer`, after routing, so they see the matched route (for span names
/// and bounded metric labels); the router's fallback is layered too.
fn with_layers(
    router: axum::Router,
    service_name: &'static str,
    config: &ServerConfig,
    auth: Option<AuthLayer>,
    untimed_methods: Vec<&'static str>,
) -> axum::Router {
    let router = match auth {
        Some(auth) => router.layer(auth),
        None => router,
    };
    router
        .layer(BodyLimitLayer::new(config.max_request_body_bytes))
        .layer(TimeoutLayer::new(config.request_timeout, untimed_methods))
        .layer(ObserveLayer::new(service_name))
}

async fn bind_listener(
    listener: &'static str,
    addr: SocketAddr,
    key: &'static str,
) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            listener,
            addr,
            key,
            source,
        })
}

fn local_addr(
    listener: &TcpListener,
    name: &'static str,
    addr: SocketAddr,
    key: &'static str,
) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Bind {
        listener: name,
        addr,
        key,
        source,
    })
}
