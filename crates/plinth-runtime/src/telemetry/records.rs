//! The trace of a batch of Kafka records: a consumer's span for a batch (a lake file, a streaming write)
//! continues the trace of the first record whose headers carry a W3C `traceparent`, and links to the
//! other distinct traces in the batch, so a record can be followed from its producer through every
//! consumer.
//!
//! Everything here is a no-op unless OTLP trace export is on in the process ([`traces_exported`]):
//! then no header is even looked at.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::propagation::extract_pairs;

/// The most links one batch span gets (OpenTelemetry's default per-span link limit); records with
/// further contexts are counted in [`RecordTraces::dropped`] only.
pub const MAX_LINKS: usize = 128;

/// The header holding the W3C trace context.
const TRACEPARENT: &str = "traceparent";
/// The header holding the vendor trace state.
const TRACESTATE: &str = "tracestate";

/// True when this process exports traces over OTLP (`telemetry.otlp_endpoint` set and the exporter
/// installed by [`super::init`]).
pub fn traces_exported() -> bool {
    super::TRACES_EXPORTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The remote span context one record's headers carry, `None` when they hold no valid `traceparent`
/// (missing, not UTF-8, malformed, all-zero ids). Header names are matched without case.
pub fn record_context<'k, 'v>(
    headers: impl IntoIterator<Item = (&'k str, &'v [u8])>,
) -> Option<SpanContext> {
    let mut traceparent = None;
    let mut tracestate = None;
    for (key, value) in headers {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            traceparent = std::str::from_utf8(value).ok();
        } else if key.eq_ignore_ascii_case(TRACESTATE) {
            tracestate = std::str::from_utf8(value).ok();
        }
    }
    let traceparent = traceparent?;
    let pairs = [(TRACEPARENT, traceparent)]
        .into_iter()
        .chain(tracestate.map(|state| (TRACESTATE, state)));
    let cx = extract_pairs(pairs);
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// The distinct trace contexts of a batch of records, in the order first seen: the first is the parent
/// of the batch's span, the next [`MAX_LINKS`] its links.
///
/// Built with [`RecordTraces::new`], it collects only when the process exports traces, so a consumer
/// can feed it every record unconditionally.
#[derive(Debug, Clone, Default)]
pub struct RecordTraces {
    collecting: bool,
    parent: Option<SpanContext>,
    links: Vec<SpanContext>,
    dropped: usize,
}

impl RecordTraces {
    /// An empty set that collects when this process exports traces, and ignores everything otherwise.
    pub fn new() -> Self {
        Self::collecting(traces_exported())
    }

    /// An empty set that collects when `collecting` is true (for tests and callers that decided).
    pub fn collecting(collecting: bool) -> Self {
        Self {
            collecting,
            ..Self::default()
        }
    }

    /// True when this set collects contexts (the process exports traces).
    pub fn is_collecting(&self) -> bool {
        self.collecting
    }

    /// The contexts of a batch of records delivered by the data hub's Subscribe (collecting only when
    /// this process exports traces).
    pub fn of_consumed(records: &[plinth_proto::datahub::v1::ConsumedRecord]) -> Self {
        let mut traces = Self::new();
        if traces.collecting {
            for record in records {
                traces.add_headers(
                    record
                        .headers
                        .iter()
                        .map(|header| (header.key.as_str(), header.value.as_slice())),
                );
            }
        }
        traces
    }

    /// Adds the context one record's headers carry; headers without a valid `traceparent` are ignored.
    pub fn add_headers<'k, 'v>(&mut self, headers: impl IntoIterator<Item = (&'k str, &'v [u8])>) {
        if !self.collecting {
            return;
        }
        if let Some(span_context) = record_context(headers) {
            self.add(span_context);
        }
    }

    /// Adds a context already extracted (see [`record_context`]); a duplicate or an invalid one is
    /// ignored.
    pub fn add(&mut self, span_context: SpanContext) {
        if !self.collecting || !span_context.is_valid() || self.has(&span_context) {
            return;
        }
        if self.parent.is_none() {
            self.parent = Some(span_context);
        } else if self.links.len() < MAX_LINKS {
            self.links.push(span_context);
        } else {
            self.dropped += 1;
        }
    }

    /// The parent: the first record's context.
    pub fn parent(&self) -> Option<&SpanContext> {
        self.parent.as_ref()
    }

    /// The links: the other distinct contexts, at most [`MAX_LINKS`].
    pub fn links(&self) -> &[SpanContext] {
        &self.links
    }

    /// Records whose context was left out because the links were full (a record repeating a kept
    /// context is not counted).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// True when no record carried a context.
    pub fn is_empty(&self) -> bool {
        self.parent.is_none()
    }

    /// Makes the parent the parent of `span` and links the other contexts. Call it before `span` is
    /// first entered (a started span keeps its parent). Without a parent the span stays as it is.
    pub fn apply_to(&self, span: &tracing::Span) {
        let Some(parent) = &self.parent else {
            return;
        };
        if let Err(err) = span.set_parent(Context::new().with_remote_span_context(parent.clone())) {
            tracing::trace!(%err, "cannot parent the batch span");
            return;
        }
        for link in &self.links {
            span.add_link(link.clone());
        }
    }

    fn has(&self, span_context: &SpanContext) -> bool {
        let same = |other: &SpanContext| {
            other.trace_id() == span_context.trace_id() && other.span_id() == span_context.span_id()
        };
        self.parent.as_ref().is_some_and(same) || self.links.iter().any(same)
    }
}

/// The most runs a [`TracedRecords`] keeps; records after that add nothing (a sequence where nearly
/// every record has its own producer span is cut into batches with the first contexts only).
pub const MAX_RUNS: usize = 4 * MAX_LINKS;

/// The trace contexts of a sequence of records by position, for consumers that decide the batches
/// later (a lake sink buffers a partition's records, then cuts them into files by event date): push
/// each record's headers, then take [`TracedRecords::batch`] for each batch's range of positions.
///
/// Consecutive records with the same context (a produce call's records) take one run, so memory grows
/// with the number of distinct producer calls, at most [`MAX_RUNS`], not with the records. Like
/// [`RecordTraces`], it collects only when the process exports traces.
#[derive(Debug, Clone, Default)]
pub struct TracedRecords {
    collecting: bool,
    runs: Vec<Run>,
}

/// Records `first..=last` of a sequence all carry `context`.
#[derive(Debug, Clone)]
struct Run {
    first: usize,
    last: usize,
    context: SpanContext,
}

impl TracedRecords {
    /// An empty sequence that collects when this process exports traces.
    pub fn new() -> Self {
        Self::collecting(traces_exported())
    }

    /// An empty sequence that collects when `collecting` is true.
    pub fn collecting(collecting: bool) -> Self {
        Self {
            collecting,
            runs: Vec::new(),
        }
    }

    /// True when this sequence collects contexts (the process exports traces).
    pub fn is_collecting(&self) -> bool {
        self.collecting
    }

    /// Notes the headers of the record at `position` (positions increase from call to call).
    pub fn push<'k, 'v>(
        &mut self,
        position: usize,
        headers: impl IntoIterator<Item = (&'k str, &'v [u8])>,
    ) {
        if !self.collecting {
            return;
        }
        let Some(context) = record_context(headers) else {
            return;
        };
        if let Some(run) = self.runs.last_mut()
            && run.last + 1 == position
            && run.context.trace_id() == context.trace_id()
            && run.context.span_id() == context.span_id()
        {
            run.last = position;
            return;
        }
        if self.runs.len() < MAX_RUNS {
            self.runs.push(Run {
                first: position,
                last: position,
                context,
            });
        }
    }

    /// The contexts of the records at `positions`, in order: the parent and links of that batch's span.
    pub fn batch(&self, positions: std::ops::Range<usize>) -> RecordTraces {
        let mut traces = RecordTraces::collecting(self.collecting);
        for run in &self.runs {
            if run.first < positions.end && run.last >= positions.start {
                traces.add(run.context.clone());
            }
        }
        traces
    }
}
