use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};

use super::*;

fn remote_context() -> Context {
    let span_context = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(span_context)
}

#[test]
fn trace_context_round_trips_through_headers() {
    let mut headers = HeaderMap::new();
    inject_context(&remote_context(), &mut headers);
    assert_eq!(
        headers["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    let extracted = extract_context(&headers);
    assert_eq!(
        extracted.span().span_context().trace_id(),
        remote_context().span().span_context().trace_id()
    );
    assert!(extracted.span().span_context().is_remote());
}

#[test]
fn trace_context_is_injected_into_grpc_metadata() {
    let mut metadata = tonic::metadata::MetadataMap::new();
    inject_metadata(&remote_context(), &mut metadata);
    assert_eq!(
        metadata.get("traceparent").unwrap(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
}

#[test]
fn missing_or_garbage_traceparent_yields_no_parent() {
    assert!(
        !extract_context(&HeaderMap::new())
            .span()
            .span_context()
            .is_valid()
    );
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", "garbage".parse().unwrap());
    assert!(!extract_context(&headers).span().span_context().is_valid());
}

#[test]
fn init_twice_returns_an_inert_guard() {
    let config = TelemetryConfig::default();
    let first = init("first", &config).unwrap();
    let second = init("second", &config).unwrap();
    assert!(!second.is_active());
    drop(second);
    drop(first);
}

#[test]
fn metrics_handle_is_shared() {
    let first = metrics_handle();
    metrics::counter!("plinth_test_shared_total").increment(1);
    assert!(
        metrics_handle()
            .render()
            .contains("plinth_test_shared_total 1")
    );
    assert!(first.render().contains("plinth_test_shared_total"));
}
