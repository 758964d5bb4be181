//! OTLP export against an in-process collector.
//!
//! A test binary of its own (not a module of `tests/it`) because `telemetry::init` installs
//! process-wide state exactly once, and this test needs to be the one that installs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly; clippy only exempts #[test] functions themselves"
)]

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use plinth_runtime::config::{ServerConfig, TelemetryConfig};
use plinth_runtime::server::ServerBuilder;
use plinth_runtime::telemetry;
use tokio::sync::mpsc;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

struct Traces(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Traces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

struct Metrics(mpsc::UnboundedSender<ExportMetricsServiceRequest>);

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn service_name(resource: Option<&Resource>) -> Option<String> {
    resource?.attributes.iter().find_map(|attribute| {
        match attribute.value.as_ref()?.value.as_ref()? {
            Value::StringValue(name) if attribute.key == "service.name" => Some(name.clone()),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_the_collector() {
    let (trace_sender, mut traces) = mpsc::unbounded_channel();
    let (metric_sender, mut metrics) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Traces(trace_sender)))
            .add_service(MetricsServiceServer::new(Metrics(metric_sender)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let config = TelemetryConfig {
        otlp_endpoint: Some(format!("http://{collector}").parse().unwrap()),
        otlp_export_interval: Duration::from_millis(200),
        // Quiet logs must not silence traces.
        log_level: "error".to_owned(),
        ..TelemetryConfig::default()
    };
    let guard = telemetry::init("otlp-test", &config).unwrap();
    assert!(guard.is_active());
    // `plinth up` initializes once per service: later calls succeed and do nothing.
    assert!(
        !telemetry::init("another-service", &config)
            .unwrap()
            .is_active()
    );

    let mut server_config = ServerConfig::with_ports(0, 0);
    server_config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    server_config.http.listen = "127.0.0.1:0".parse().unwrap();
    let router = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
    let server = ServerBuilder::new("otlp-test", server_config)
        .http_router(router)
        .bind()
        .await
        .unwrap();
    let url = format!("http://{}/hello", server.http_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let response = reqwest::Client::new()
        .get(url)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();

    // Dropping the guard flushes both providers; it blocks, so not on a runtime worker.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let mut request_span = None;
    while let Ok(export) = traces.try_recv() {
        for resource_spans in export.resource_spans {
            let service = service_name(resource_spans.resource.as_ref());
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                if span.name == "GET /hello" {
                    request_span = Some((service.clone(), span));
                }
            }
        }
    }
    let (service, span) = request_span.expect("the request span was exported");
    assert_eq!(service.as_deref(), Some("otlp-test"));
    assert_eq!(
        span.trace_id,
        hex(TRACE_ID),
        "the span joins the caller's trace"
    );
    assert_eq!(
        span.parent_span_id,
        hex(PARENT_SPAN_ID),
        "the caller's span is the parent"
    );

    let mut counted = false;
    while let Ok(export) = metrics.try_recv() {
        for resource_metrics in export.resource_metrics {
            let service = service_name(resource_metrics.resource.as_ref());
            for metric in resource_metrics
                .scope_metrics
                .into_iter()
                .flat_map(|scope| scope.metrics)
            {
                if metric.name == telemetry::REQUESTS_TOTAL {
                    assert_eq!(service.as_deref(), Some("otlp-test"));
                    counted = true;
                }
            }
        }
    }
    assert!(counted, "the request counter was exported");
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
        .collect()
}
