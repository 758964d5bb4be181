//! The HTTP endpoints every server has: `/metrics`, `/healthz`, `/readyz`.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};

use super::HealthHandle;
use crate::telemetry::metrics_handle;

/// How often the Prometheus recorder drains histogram samples while nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

pub(super) fn router(health: HealthHandle) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn metrics() -> Response {
    let handle = metrics_handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(health): State<HealthHandle>) -> Response {
    if health.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// Drains the Prometheus recorder's histogram buffers periodically so they stay bounded between
/// scrapes.
pub(super) async fn metrics_upkeep() {
    let handle = metrics_handle();
    let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        handle.run_upkeep();
    }
}
