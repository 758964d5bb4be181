//! W3C trace-context (`traceparent`, `tracestate`) in HTTP headers and gRPC metadata.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The trace context carried by incoming request headers (an empty context when there is none).
/// The server makes it the parent of each request's span.
pub fn extract_context(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes `cx` into outgoing HTTP headers.
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// Writes `cx` into outgoing gRPC metadata.
pub fn inject_metadata(cx: &Context, metadata: &mut MetadataMap) {
    TraceContextPropagator::new().inject_context(cx, &mut MetadataInjector(metadata));
}

/// `cx` as header pairs (`traceparent`, and `tracestate` when set) for carriers that are not HTTP or
/// gRPC, such as Kafka record headers. Empty when `cx` holds no sampled span.
pub fn context_pairs(cx: &Context) -> Vec<(String, String)> {
    let mut pairs = PairInjector(Vec::new());
    TraceContextPropagator::new().inject_context(cx, &mut pairs);
    pairs.0
}

/// The trace context carried by header pairs such as Kafka record headers.
pub fn extract_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Context {
    let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    TraceContextPropagator::new().extract(&PairExtractor(&pairs))
}

struct PairInjector(Vec<(String, String)>);

impl Injector for PairInjector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

struct PairExtractor<'a, 'b>(&'a [(&'b str, &'b str)]);

impl Extractor for PairExtractor<'_, '_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| *value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }
}

/// The OpenTelemetry context of the current `tracing` span (empty unless OTLP export is on).
pub fn current_context() -> Context {
    tracing::Span::current().context()
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}
