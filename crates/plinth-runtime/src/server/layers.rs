//! The tower layers every request passes through, outermost first: [`ObserveLayer`] (span and
//! metrics), [`TimeoutLayer`], [`BodyLimitLayer`]. They are applied with `Router::layer`, so they
//! run after routing and see the matched route. They work on `axum::body::Body` in both directions
//! and never fail (`Error = Infallible`): every rejection is a well-formed gRPC or HTTP response.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::MatchedPath;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::Limited;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::is_grpc_request;
use crate::error::ApiError;
use crate::telemetry::{
    LABEL_METHOD, LABEL_SERVICE, LABEL_STATUS, REQUEST_DURATION_SECONDS, REQUEST_SPAN,
    REQUESTS_TOTAL, extract_context,
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Label for requests that matched no route or service.
const UNMATCHED: &str = "unmatched";

// ---------------------------------------------------------------------------------------------------
// Observe: one span per request (parented by an incoming `traceparent`) and the request metrics.

/// Opens a span per request and records [`REQUESTS_TOTAL`] and [`REQUEST_DURATION_SECONDS`] when the
/// response ends (for gRPC, when its trailers carry the status).
#[derive(Clone)]
pub(crate) struct ObserveLayer {
    service_name: &'static str,
    otel_requests: Counter<u64>,
    otel_duration: Histogram<f64>,
}

impl ObserveLayer {
    pub(crate) fn new(service_name: &'static str) -> Self {
        // Instruments come from the global meter provider, which `telemetry::init` sets when OTLP
        // export is on; otherwise they are no-ops.
        let meter = opentelemetry::global::meter("plinth-runtime");
        ObserveLayer {
            service_name,
            otel_requests: meter.u64_counter(REQUESTS_TOTAL).build(),
            otel_duration: meter
                .f64_histogram(REQUEST_DURATION_SECONDS)
                .with_unit("s")
                .build(),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

impl<S> Service<Request<Body>> for Observe<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let is_grpc = is_grpc_request(request.headers());
        let method = request.method().clone();
        let path = request.uri().path();
        let matched = request.extensions().get::<MatchedPath>();
        let label = method_label(is_grpc, &method, path, matched);
        let span = tracing::info_span!(
            REQUEST_SPAN,
            otel.name = span_name(is_grpc, &method, path, matched),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            service = self.layer.service_name,
            protocol = if is_grpc { "grpc" } else { "http" },
            http.request.method = %method,
            http.route = matched.map(MatchedPath::as_str),
            url.path = %path,
            status = tracing::field::Empty,
        );
        if let Err(err) = span.set_parent(extract_context(request.headers())) {
            tracing::trace!(%err, "cannot parent the request span");
        }
        let response = span.in_scope(|| self.inner.call(request));
        let layer = self.layer.clone();
        Box::pin(async move {
            let response = match response.instrument(span.clone()).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let observation = Observation {
                layer,
                label,
                started,
                span,
            };
            if !is_grpc {
                observation.finish(
                    response.status().as_str(),
                    response.status().is_server_error(),
                );
                return Ok(response);
            }
            if let Some(code) = grpc_status(response.headers()) {
                observation.finish(grpc_code_name(code), is_server_fault(code));
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(ObservedBody {
                    inner: body,
                    observation: Some(observation),
                })
            }))
        })
    }
}

/// The `method` label: the gRPC path of a registered service, `GET /route/{param}` for matched HTTP
/// routes, or [`UNMATCHED`], so that unknown paths cannot blow up the label cardinality.
///
/// The layers run inside the router (`Router::layer`), so the matched route is known here.
fn method_label(
    is_grpc: bool,
    method: &Method,
    path: &str,
    matched: Option<&MatchedPath>,
) -> String {
    match (is_grpc, matched) {
        (true, Some(_)) => path.to_owned(),
        (false, Some(matched)) => format!("{method} {}", matched.as_str()),
        (_, None) => UNMATCHED.to_owned(),
    }
}

/// The span name, following OpenTelemetry conventions: `package.Service/Method` for gRPC,
/// `GET /route/{param}` for HTTP, the bare HTTP method when no route matched.
fn span_name(is_grpc: bool, method: &Method, path: &str, matched: Option<&MatchedPath>) -> String {
    match (is_grpc, matched) {
        (true, Some(_)) => path.trim_start_matches('/').to_owned(),
        (false, Some(matched)) => format!("{method} {}", matched.as_str()),
        (_, None) => method.to_string(),
    }
}

struct Observation {
    layer: ObserveLayer,
    label: String,
    started: Instant,
    span: tracing::Span,
}

impl Observation {
    fn finish(self, status: &str, is_error: bool) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let service = self.layer.service_name;
        metrics::counter!(
            REQUESTS_TOTAL,
            LABEL_SERVICE => service,
            LABEL_METHOD => self.label.clone(),
            LABEL_STATUS => status.to_owned()
        )
        .increment(1);
        metrics::histogram!(
            REQUEST_DURATION_SECONDS,
            LABEL_SERVICE => service,
            LABEL_METHOD => self.label.clone()
        )
        .record(elapsed);
        self.layer.otel_requests.add(
            1,
            &[
                KeyValue::new(LABEL_SERVICE, service),
                KeyValue::new(LABEL_METHOD, self.label.clone()),
                KeyValue::new(LABEL_STATUS, status.to_owned()),
            ],
        );
        self.layer.otel_duration.record(
            elapsed,
            &[
                KeyValue::new(LABEL_SERVICE, service),
                KeyValue::new(LABEL_METHOD, self.label.clone()),
            ],
        );
        self.span.record("status", status);
        if is_error {
            self.span.record("otel.status_code", "ERROR");
        }
        tracing::debug!(parent: &self.span, status, elapsed_seconds = elapsed, "request finished");
    }
}

/// A gRPC response body that records the request when its trailers (holding `grpc-status`) pass.
struct ObservedBody {
    inner: Body,
    observation: Option<Observation>,
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = grpc_status(trailers).unwrap_or(tonic::Code::Unknown);
                    self.finish(grpc_code_name(code), is_server_fault(code));
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish("UNKNOWN", true),
            Poll::Ready(None) => self.finish("UNKNOWN", true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl ObservedBody {
    fn finish(&mut self, status: &str, is_error: bool) {
        if let Some(observation) = self.observation.take() {
            observation.finish(status, is_error);
        }
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        // The client went away before the status was sent.
        self.finish("CANCELLED", false);
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(tonic::Code::from_i32)
}

fn is_server_fault(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    )
}

/// The canonical UPPER_SNAKE name of a gRPC code, as used in the `status` label.
pub(crate) fn grpc_code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

// ---------------------------------------------------------------------------------------------------
// Timeout: the response headers must come within `request_timeout` (or the client's `grpc-timeout`).

/// Answers with gRPC `DEADLINE_EXCEEDED` or HTTP 504 when the inner service has not produced response
/// headers in time. Streaming bodies are not cut: a `Watch` stream may run as long as it likes once
/// started.
#[derive(Clone)]
pub(crate) struct TimeoutLayer {
    timeout: Duration,
    untimed: Arc<[&'static str]>,
}

impl TimeoutLayer {
    /// `untimed`: gRPC paths that only the client's `grpc-timeout` bounds.
    pub(crate) fn new(timeout: Duration, untimed: Vec<&'static str>) -> Self {
        TimeoutLayer {
            timeout,
            untimed: untimed.into(),
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            timeout: self.timeout,
            untimed: self.untimed.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Timeout<S> {
    inner: S,
    timeout: Duration,
    untimed: Arc<[&'static str]>,
}

impl<S> Service<Request<Body>> for Timeout<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let is_grpc = is_grpc_request(request.headers());
        let untimed = is_grpc && self.untimed.contains(&request.uri().path());
        let timeout = match grpc_timeout(request.headers()) {
            Some(client_deadline) if is_grpc && untimed => client_deadline,
            Some(client_deadline) if is_grpc => client_deadline.min(self.timeout),
            _ if untimed => Duration::MAX,
            _ => self.timeout,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(timeout, response).await {
                Ok(response) => response,
                Err(_elapsed) => Ok(ApiError::deadline_exceeded(
                    "REQUEST_TIMEOUT",
                    format!(
                        "the service did not answer within {}; retry later",
                        crate::config::duration::format(timeout)
                    ),
                )
                .into_protocol_response(is_grpc, None)),
            }
        })
    }
}

/// Parses the `grpc-timeout` header: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------------
// Body limit: HTTP bodies and gRPC messages no larger than `max_request_body_bytes`.

/// Rejects HTTP requests whose `content-length` exceeds the limit with 413 and a JSON error, caps
/// bodies without a length at the limit, and fails gRPC requests carrying a message larger than the
/// limit with `RESOURCE_EXHAUSTED`.
#[derive(Clone, Copy)]
pub(crate) struct BodyLimitLayer {
    limit: usize,
}

impl BodyLimitLayer {
    pub(crate) fn new(limit: usize) -> Self {
        BodyLimitLayer { limit }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub(crate) struct BodyLimit<S> {
    inner: S,
    limit: usize,
}

impl<S> Service<Request<Body>> for BodyLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let limit = self.limit;
        if is_grpc_request(request.headers()) {
            let request = request.map(|body| Body::new(GrpcMessageLimit::new(body, limit)));
            return Box::pin(self.inner.call(request));
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if let Some(declared) = declared
            && declared > limit as u64
        {
            let error = ApiError::resource_exhausted(
                "REQUEST_BODY_TOO_LARGE",
                format!(
                    "the request body has {declared} bytes, more than the limit of {limit}; send a smaller body"
                ),
            )
            .with_metadata("limit_bytes", limit.to_string());
            return Box::pin(std::future::ready(Ok(
                error.into_response_with_status(StatusCode::PAYLOAD_TOO_LARGE)
            )));
        }
        let request = request.map(|body| Body::new(Limited::new(body, limit)));
        Box::pin(self.inner.call(request))
    }
}

/// A gRPC request body that fails with `RESOURCE_EXHAUSTED` as soon as a length-prefixed message
/// declares more than `limit` bytes. tonic finds the `Status` in the body error and returns it.
struct GrpcMessageLimit {
    inner: Body,
    limit: usize,
    /// Bytes of the current 5-byte message prefix seen so far.
    prefix: [u8; 5],
    prefix_len: usize,
    /// Payload bytes of the current message still to pass.
    remaining: usize,
}

impl GrpcMessageLimit {
    fn new(inner: Body, limit: usize) -> Self {
        GrpcMessageLimit {
            inner,
            limit,
            prefix: [0; 5],
            prefix_len: 0,
            remaining: 0,
        }
    }

    /// Walks the message framing through `data`, failing on the first oversized message.
    fn scan(&mut self, data: &[u8]) -> Result<(), tonic::Status> {
        let mut offset = 0;
        while offset < data.len() {
            if self.remaining > 0 {
                let step = self.remaining.min(data.len() - offset);
                self.remaining -= step;
                offset += step;
                continue;
            }
            self.prefix[self.prefix_len] = data[offset];
            self.prefix_len += 1;
            offset += 1;
            if self.prefix_len == self.prefix.len() {
                self.prefix_len = 0;
                let [_, a, b, c, d] = self.prefix;
                let length = u32::from_be_bytes([a, b, c, d]) as usize;
                if length > self.limit {
                    return Err(tonic::Status::resource_exhausted(format!(
                        "the request message has {length} bytes, more than the limit of {}; send smaller messages",
                        self.limit
                    )));
                }
                self.remaining = length;
            }
        }
        Ok(())
    }
}

impl HttpBody for GrpcMessageLimit {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(status) = self.scan(data)
                {
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                Poll::Ready(Some(Err(tonic::Status::from_error(err.into()))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header_is_parsed() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("5S", Some(Duration::from_secs(5))),
            ("250m", Some(Duration::from_millis(250))),
            ("1H", Some(Duration::from_secs(3600))),
            ("x", None),
            ("10X", None),
        ] {
            headers.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(grpc_timeout(&headers), expected, "{value}");
        }
    }

    #[test]
    fn grpc_message_limit_tracks_framing_across_chunks() {
        let mut limit = GrpcMessageLimit::new(Body::empty(), 10);
        // A 4-byte message split across chunks, then an 11-byte prefix.
        assert!(limit.scan(&[0, 0, 0]).is_ok());
        assert!(limit.scan(&[0, 4, 1, 2]).is_ok());
        assert!(limit.scan(&[3, 4, 0, 0, 0, 0]).is_ok());
        let err = limit.scan(&[11]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    }
}
