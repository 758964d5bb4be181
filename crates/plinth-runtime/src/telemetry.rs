//! Logs, traces and metrics: one call to [`init`] per process, a Prometheus recorder shared by every
//! service in the process ([`metrics_handle`]), and W3C trace-context propagation helpers.
//!
//! `plinth up` hosts several services in one process, so everything global here is installed at most
//! once: the second [`init`] returns an inert guard, and [`metrics_handle`] always returns the same
//! recorder's handle.

mod otlp;
mod propagation;
mod records;

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use self::propagation::{
    context_pairs, current_context, extract_context, extract_pairs, inject_context, inject_metadata,
};
pub use self::records::{
    MAX_LINKS, MAX_RUNS, RecordTraces, TracedRecords, record_context, traces_exported,
};
use crate::config::{LogFormat, TelemetryConfig};
use crate::error::TelemetryError;

/// Counter of finished requests, labelled `service`, `method`, `status`.
pub const REQUESTS_TOTAL: &str = "plinth_requests_total";
/// Histogram of request durations in seconds, labelled `service`, `method`.
pub const REQUEST_DURATION_SECONDS: &str = "plinth_request_duration_seconds";
/// Label: the service name given to the server builder.
pub const LABEL_SERVICE: &str = "service";
/// Label: the gRPC method path or the matched HTTP route.
pub const LABEL_METHOD: &str = "method";
/// Label: the gRPC status name or the HTTP status code.
pub const LABEL_STATUS: &str = "status";
/// Name of the span opened for every request by the server.
pub const REQUEST_SPAN: &str = "request";

/// Histogram buckets for [`REQUEST_DURATION_SECONDS`], from 1 ms to 30 s.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static INITIALIZED: AtomicBool = AtomicBool::new(false);
/// Set once the OTLP trace exporter is installed: [`traces_exported`].
static TRACES_EXPORTED: AtomicBool = AtomicBool::new(false);

/// Keeps telemetry running; dropping it flushes and shuts down the OTLP exporters. Keep it alive until
/// the end of `main`, and drop it outside the hot path: the flush blocks for up to a few seconds.
#[derive(Debug)]
#[must_use = "dropping the guard shuts telemetry export down"]
pub struct TelemetryGuard {
    installed: bool,
    otlp: Option<otlp::OtlpPipeline>,
}

impl TelemetryGuard {
    /// True when this guard belongs to the call that installed the process-wide subscriber; false for
    /// the inert guards returned by later calls.
    pub fn is_active(&self) -> bool {
        self.installed
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(pipeline) = self.otlp.take() {
            TRACES_EXPORTED.store(false, Ordering::Relaxed);
            pipeline.shutdown();
        }
    }
}

/// Starts telemetry for the process: structured logs to stderr (`text` or `json`, filtered by
/// `config.log_level`, or by `RUST_LOG` when set), and when `config.otlp_endpoint` is set, OTLP/gRPC
/// export of traces (every `tracing` span at INFO or above, independently of the log filter) and
/// metrics, with resource `service.name = service_name`.
/// Also sets the global text-map propagator to W3C trace context.
///
/// Idempotent: when telemetry is already installed in this process (by an earlier call, or by a test
/// harness that set its own subscriber) it returns an inert guard instead of failing.
pub fn init(
    service_name: &str,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    if INITIALIZED.swap(true, Ordering::SeqCst) {
        tracing::debug!(
            service = service_name,
            "telemetry already initialized; reusing it"
        );
        return Ok(TelemetryGuard {
            installed: false,
            otlp: None,
        });
    }
    let result = install(service_name, config);
    if result.is_err() {
        // Let a later call with a corrected configuration try again.
        INITIALIZED.store(false, Ordering::SeqCst);
    }
    result
}

fn install(service_name: &str, config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.trim().is_empty() => {
            parse_log_filter(&directive).map_err(|reason| TelemetryError::InvalidLogFilter {
                directive,
                origin: "RUST_LOG",
                reason,
            })?
        }
        _ => parse_log_filter(&config.log_level).map_err(|reason| {
            TelemetryError::InvalidLogFilter {
                directive: config.log_level.clone(),
                origin: "telemetry.log_level",
                reason,
            }
        })?,
    };
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );

    let pipeline = match &config.otlp_endpoint {
        Some(endpoint) => Some(otlp::OtlpPipeline::start(
            service_name,
            endpoint,
            config.otlp_export_interval,
        )?),
        None => None,
    };
    // Traces get every span at INFO and above whatever the log level: quiet logs must not mean
    // missing traces. The log filter only applies to what is printed.
    let otel_layer = pipeline.as_ref().map(|pipeline| {
        tracing_opentelemetry::layer()
            .with_tracer(pipeline.tracer(service_name))
            .with_filter(LevelFilter::INFO)
    });

    let ansi = std::io::stderr().is_terminal();
    let fmt_layer = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter);
    let installed = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();

    match installed {
        Ok(()) => {
            if let Some(pipeline) = &pipeline {
                pipeline.set_global_providers();
                TRACES_EXPORTED.store(true, Ordering::Relaxed);
            }
            tracing::debug!(
                service = service_name,
                otlp = pipeline.is_some(),
                "telemetry initialized"
            );
            Ok(TelemetryGuard {
                installed: true,
                otlp: pipeline,
            })
        }
        Err(err) => {
            // Someone else (usually a test harness) owns the global subscriber: keep theirs.
            tracing::debug!(%err, "a tracing subscriber is already installed; keeping it");
            if let Some(pipeline) = pipeline {
                pipeline.shutdown();
            }
            Ok(TelemetryGuard {
                installed: false,
                otlp: None,
            })
        }
    }
}

/// Parses a log filter. Bare words must be levels (`info`), targets need a level
/// (`plinth_runtime=debug`), which catches typos such as `verbose` that `EnvFilter` would silently
/// read as a target name.
pub(crate) fn parse_log_filter(directive: &str) -> Result<EnvFilter, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for part in directive
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        if !part.contains(['=', '[']) && !LEVELS.contains(&part.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "`{part}` is not a level; use one of trace, debug, info, warn, error, off, \
                 or `target=level` directives like `info,plinth_runtime=debug`"
            ));
        }
    }
    EnvFilter::builder()
        .parse(directive)
        .map_err(|err| format!("{err}; expected directives like `info,plinth_runtime=debug`"))
}

/// The process-wide Prometheus recorder's handle, installing the recorder on first use. Every
/// server's `/metrics` renders from it, so services in one process share one exposition (told apart by
/// the `service` label).
///
/// If another `metrics` recorder was installed first, a detached recorder's handle is returned and a
/// warning logged: `/metrics` then only shows what that detached recorder sees (nothing).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets_for_metric(
                Matcher::Full(REQUEST_DURATION_SECONDS.to_owned()),
                &DURATION_BUCKETS,
            );
            let builder = match builder {
                Ok(builder) => builder,
                Err(err) => {
                    tracing::warn!(%err, "cannot set request duration buckets; using summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    metrics::describe_counter!(REQUESTS_TOTAL, "Requests served, by service, method and status.");
                    metrics::describe_histogram!(
                        REQUEST_DURATION_SECONDS,
                        metrics::Unit::Seconds,
                        "Time to produce a response, by service and method."
                    );
                }
                Err(err) => {
                    tracing::warn!(%err, "another metrics recorder is installed; /metrics will be empty");
                }
            }
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests;
