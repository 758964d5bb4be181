//! OTLP/gRPC export of traces and metrics.
//!
//! The SDK's batch span processor and periodic metric reader export from their own OS threads, where
//! the tonic exporter finds no Tokio reactor. Every export therefore runs with a small dedicated
//! runtime entered, which also keeps exports flowing (and the final flush possible) whatever the
//! application's runtime is doing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use tokio::runtime::{Handle, Runtime};
use url::Url;

use crate::error::TelemetryError;

/// How long one export, and the final flush, may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The running OTLP providers and the runtime their exports run on.
#[derive(Debug)]
pub(super) struct OtlpPipeline {
    runtime: Runtime,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
}

impl OtlpPipeline {
    pub(super) fn start(
        service_name: &str,
        endpoint: &Url,
        export_interval: Duration,
    ) -> Result<Self, TelemetryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("plinth-otlp")
            .enable_all()
            .build()
            .map_err(TelemetryError::Runtime)?;
        // The tonic channels spawn their connection tasks on the runtime current at build time.
        let _entered = runtime.enter();
        let handle = runtime.handle().clone();
        let resource = Resource::builder()
            .with_service_name(service_name.to_owned())
            .build();

        let span_exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|err| TelemetryError::Exporter {
                signal: "traces",
                endpoint: endpoint.to_string(),
                reason: err.to_string(),
            })?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_batch_exporter(InRuntime {
                inner: span_exporter,
                handle: handle.clone(),
            })
            .with_resource(resource.clone())
            .build();

        let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|err| TelemetryError::Exporter {
                signal: "metrics",
                endpoint: endpoint.to_string(),
                reason: err.to_string(),
            })?;
        let reader = PeriodicReader::builder(InRuntime {
            inner: metric_exporter,
            handle,
        })
        .with_interval(export_interval)
        .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource)
            .build();
        drop(_entered);
        Ok(OtlpPipeline {
            runtime,
            tracer_provider,
            meter_provider,
        })
    }

    pub(super) fn tracer(&self, service_name: &str) -> SdkTracer {
        self.tracer_provider.tracer(service_name.to_owned())
    }

    pub(super) fn set_global_providers(&self) {
        opentelemetry::global::set_tracer_provider(self.tracer_provider.clone());
        opentelemetry::global::set_meter_provider(self.meter_provider.clone());
    }

    /// Flushes what is buffered and stops the exporters and their runtime.
    pub(super) fn shutdown(self) {
        if let Err(err) = self.tracer_provider.shutdown_with_timeout(EXPORT_TIMEOUT) {
            tracing::warn!(%err, "cannot flush traces to the OTLP collector");
        }
        if let Err(err) = self.meter_provider.shutdown_with_timeout(EXPORT_TIMEOUT) {
            tracing::warn!(%err, "cannot flush metrics to the OTLP collector");
        }
        // A runtime must not be dropped from async code; this never blocks.
        self.runtime.shutdown_background();
    }
}

/// An exporter whose calls run with the telemetry runtime entered.
#[derive(Debug)]
struct InRuntime<E> {
    inner: E,
    handle: Handle,
}

/// A future polled with a runtime entered, so it may create timers and I/O resources wherever it is
/// polled from.
struct Entered<F> {
    handle: Handle,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Entered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _entered = self.handle.enter();
        self.future.as_mut().poll(cx)
    }
}

impl<E: SpanExporter> SpanExporter for InRuntime<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        Entered {
            handle: self.handle.clone(),
            future: Box::pin(self.inner.export(batch)),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _entered = self.handle.enter();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        let _entered = self.handle.enter();
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for InRuntime<E> {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        Entered {
            handle: self.handle.clone(),
            future: Box::pin(self.inner.export(metrics)),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let _entered = self.handle.enter();
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _entered = self.handle.enter();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}
