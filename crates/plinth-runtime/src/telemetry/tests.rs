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

/// Spans exported by a test tracer provider, kept in memory.
#[derive(Debug, Clone, Default)]
struct Collected(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Collected {
    fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

fn traceparent(trace: u8, span: u8) -> String {
    format!(
        "00-{}-{}-01",
        format!("{trace:02x}").repeat(16),
        format!("{span:02x}").repeat(8)
    )
}

fn headers(pairs: &[(&'static str, String)]) -> Vec<(&'static str, Vec<u8>)> {
    pairs
        .iter()
        .map(|(key, value)| (*key, value.clone().into_bytes()))
        .collect()
}

fn borrowed<'a>(
    headers: &'a [(&'static str, Vec<u8>)],
) -> impl Iterator<Item = (&'static str, &'a [u8])> {
    headers.iter().map(|(key, value)| (*key, value.as_slice()))
}

#[test]
fn a_record_context_comes_from_its_traceparent_header() {
    let record = headers(&[
        ("source", "app".to_owned()),
        ("TraceParent", traceparent(0x4b, 0x01)),
        ("tracestate", "vendor=1".to_owned()),
    ]);
    let cx = record_context(borrowed(&record)).unwrap();
    assert_eq!(cx.trace_id(), TraceId::from_bytes([0x4b; 16]));
    assert_eq!(cx.span_id(), SpanId::from_bytes([0x01; 8]));
    assert!(cx.is_remote());
    assert_eq!(cx.trace_state().get("vendor"), Some("1"));
}

#[test]
fn garbage_or_missing_trace_headers_give_no_context() {
    for record in [
        vec![],
        vec![("other", b"00-x".to_vec())],
        vec![("traceparent", b"garbage".to_vec())],
        vec![("traceparent", vec![0xff, 0xfe])],
        // All-zero ids are invalid.
        vec![("traceparent", traceparent(0, 0).into_bytes())],
    ] {
        assert!(record_context(borrowed(&record)).is_none(), "{record:?}");
    }
}

#[test]
fn the_first_context_is_the_parent_and_the_other_distinct_ones_links() {
    let mut traces = RecordTraces::collecting(true);
    for (trace, span) in [(1, 1), (1, 1), (2, 2), (1, 1), (3, 3), (2, 2)] {
        traces.add_headers(borrowed(&headers(&[(
            "traceparent",
            traceparent(trace, span),
        )])));
    }
    traces.add_headers(borrowed(&headers(&[("traceparent", "garbage".to_owned())])));
    traces.add_headers(std::iter::empty());
    assert_eq!(
        traces.parent().unwrap().trace_id(),
        TraceId::from_bytes([1; 16])
    );
    let links: Vec<TraceId> = traces.links().iter().map(SpanContext::trace_id).collect();
    assert_eq!(
        links,
        [TraceId::from_bytes([2; 16]), TraceId::from_bytes([3; 16])]
    );
    assert_eq!(traces.dropped(), 0);
}

#[test]
fn links_stop_at_the_cap() {
    let mut traces = RecordTraces::collecting(true);
    for index in 1..=(MAX_LINKS + 11) {
        let span = SpanId::from_bytes((index as u64).to_be_bytes());
        traces.add(SpanContext::new(
            TraceId::from_bytes([7; 16]),
            span,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
    }
    assert!(traces.parent().is_some());
    assert_eq!(traces.links().len(), MAX_LINKS);
    assert_eq!(traces.dropped(), 10);
}

#[test]
fn nothing_is_collected_unless_traces_are_exported() {
    assert!(!traces_exported(), "no OTLP exporter in unit tests");
    let mut traces = RecordTraces::new();
    assert!(!traces.is_collecting());
    traces.add_headers(borrowed(&headers(&[("traceparent", traceparent(1, 1))])));
    assert!(traces.is_empty());
}

#[test]
fn a_batch_span_gets_the_parent_and_the_links() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let collected = Collected::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let mut traces = RecordTraces::collecting(true);
    for (trace, span) in [(1, 1), (2, 2), (3, 3)] {
        traces.add_headers(borrowed(&headers(&[(
            "traceparent",
            traceparent(trace, span),
        )])));
    }
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("batch");
        traces.apply_to(&span);
        span.in_scope(|| {});
    });
    provider.force_flush().unwrap();
    let spans = collected.0.lock().unwrap();
    let batch = spans.iter().find(|span| span.name == "batch").unwrap();
    assert_eq!(batch.span_context.trace_id(), TraceId::from_bytes([1; 16]));
    assert_eq!(batch.parent_span_id, SpanId::from_bytes([1; 8]));
    let links: Vec<SpanId> = batch
        .links
        .iter()
        .map(|link| link.span_context.span_id())
        .collect();
    assert_eq!(
        links,
        [SpanId::from_bytes([2; 8]), SpanId::from_bytes([3; 8])]
    );
}

#[test]
fn traced_records_give_each_batch_the_contexts_of_its_positions() {
    let mut records = TracedRecords::collecting(true);
    // Positions 0..=2 from produce call 1, 3 without headers, 4..=5 from call 2, 6 from call 1 again.
    for (position, context) in [
        (0, Some((1, 1))),
        (1, Some((1, 1))),
        (2, Some((1, 1))),
        (3, None),
        (4, Some((2, 2))),
        (5, Some((2, 2))),
        (6, Some((1, 1))),
    ] {
        let record = match context {
            Some((trace, span)) => headers(&[("traceparent", traceparent(trace, span))]),
            None => headers(&[("other", "x".to_owned())]),
        };
        records.push(position, borrowed(&record));
    }
    let parent = |traces: &RecordTraces| traces.parent().map(|cx| cx.span_id());
    let links = |traces: &RecordTraces| -> Vec<SpanId> {
        traces.links().iter().map(SpanContext::span_id).collect()
    };
    let all = records.batch(0..7);
    assert_eq!(parent(&all), Some(SpanId::from_bytes([1; 8])));
    assert_eq!(links(&all), [SpanId::from_bytes([2; 8])]);
    let middle = records.batch(3..6);
    assert_eq!(parent(&middle), Some(SpanId::from_bytes([2; 8])));
    assert!(links(&middle).is_empty());
    assert!(records.batch(3..4).is_empty());
    let tail = records.batch(5..7);
    assert_eq!(parent(&tail), Some(SpanId::from_bytes([2; 8])));
    assert_eq!(links(&tail), [SpanId::from_bytes([1; 8])]);

    let mut off = TracedRecords::collecting(false);
    off.push(0, borrowed(&headers(&[("traceparent", traceparent(1, 1))])));
    assert!(off.batch(0..1).is_empty());
}
