//! Readiness, published both as gRPC health (`grpc.health.v1.Health`) and as HTTP `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

/// Marks a server ready or not. Cheap to clone; all clones share the state.
///
/// Readiness covers the overall server (gRPC health service name `""`), every registered gRPC service
/// by its full name, and `GET /readyz`.
#[derive(Clone)]
pub struct HealthHandle {
    inner: Arc<Inner>,
}

struct Inner {
    reporter: HealthReporter,
    services: Mutex<Vec<&'static str>>,
    ready: AtomicBool,
}

impl std::fmt::Debug for HealthHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthHandle")
            .field("ready", &self.is_ready())
            .field("services", &self.services())
            .finish()
    }
}

impl HealthHandle {
    pub(super) fn new() -> Self {
        HealthHandle {
            inner: Arc::new(Inner {
                reporter: HealthReporter::new(),
                services: Mutex::new(Vec::new()),
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// Sets readiness for the gRPC health service (overall and per service) and `/readyz`.
    pub async fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
        self.publish().await;
    }

    /// Runs `check` every `interval` until `stop` resolves, and keeps readiness equal to its answer: a
    /// service is ready only while the parts it serves from answer. A failed check is logged with its
    /// reason (when readiness changes, so a long outage does not flood the log).
    pub async fn track<F>(
        &self,
        interval: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
        mut check: impl FnMut() -> F,
    ) where
        F: std::future::Future<Output = Result<(), String>>,
    {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(interval) => {}
            }
            let result = check().await;
            let ready = result.is_ok();
            if ready != self.is_ready() {
                match &result {
                    Ok(()) => tracing::info!("ready again"),
                    Err(reason) => tracing::warn!(%reason, "not ready"),
                }
                self.set_ready(ready).await;
            }
        }
    }

    /// Whether the server currently reports ready.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    pub(super) fn add_service(&self, name: &'static str) {
        self.inner
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name);
    }

    /// Pushes the current readiness to the gRPC health reporter.
    pub(super) async fn publish(&self) {
        let status = if self.is_ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.inner.reporter.set_service_status("", status).await;
        for name in self.services() {
            self.inner.reporter.set_service_status(name, status).await;
        }
    }

    pub(super) fn server(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(
            self.inner.reporter.clone(),
        ))
    }

    fn services(&self) -> Vec<&'static str> {
        self.inner
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
