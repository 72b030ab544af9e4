//! OpenTelemetry traces, exported over OTLP/HTTP (protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set.
//!
//! - Spans are `tracing` spans of target [`TARGET`] (the request, the
//!   authentication, each database statement or lane wait, each Redis command
//!   group), recorded by [`SpanRecorder`]. Without an
//!   endpoint the target is filtered off at the callsite (`otel=off`), so
//!   nothing is created and nothing costs.
//! - Sampling is decided once per request, before any span exists
//!   ([`sampled`]); an unsampled request opens no span at all.
//! - W3C `traceparent`/`tracestate` in a request make its span a child of the
//!   caller's; the answer carries `traceparent` (and the caller's
//!   `tracestate`) back. The access log line carries `trace_id` and
//!   `span_id`, sampled or not ([`TraceIds`]).
//! - Export never touches the request path: a finished span is pushed on a
//!   bounded list ([`QUEUE`]) under a lock held for the push alone, and one
//!   background task sends batches of at most [`MAX_BATCH`] spans, woken once
//!   a batch is waiting or once a second — never once per span. A
//!   full list, or a batch the collector did not take (down, slow: each
//!   export is bounded by [`EXPORT_TIMEOUT`]), is counted in
//!   `otel_spans_dropped_total`; what was taken in `otel_spans_exported_total`.
//! - A batch is sent by [`OtlpHttp`]: written as protobuf straight from the
//!   recorded spans (`encode.rs`) under the service's resource and one scope,
//!   and POSTed.

mod encode;
mod recorder;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tokio::sync::{Notify, mpsc, oneshot};

use recorder::RecordedSpan;
pub use recorder::SpanRecorder;

use crate::settings::telemetry::Otel;

/// The `tracing` target of every span meant for OpenTelemetry.
pub const TARGET: &str = "otel";
/// Spans waiting for export at most; beyond, they are dropped (and counted).
pub const QUEUE: usize = 4096;
/// The most spans one export carries.
pub const MAX_BATCH: usize = 512;
/// The longest one export may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);
const EXPORT_EVERY: Duration = Duration::from_secs(1);

/// What became of the spans (for `/metrics`).
#[derive(Debug, Default)]
pub struct SpanStats {
    exported: AtomicU64,
    dropped: AtomicU64,
}

impl SpanStats {
    /// Spans the collector took.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Spans lost: the queue was full, or the collector did not take them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

static STATS: OnceLock<Arc<SpanStats>> = OnceLock::new();

/// How new traces are sampled. The decision is made once per request, before
/// any span exists ([`sampled`]): an unsampled request opens no span at all,
/// so sampling at 0.1 costs nine requests in ten nothing but the decision.
#[derive(Debug)]
struct Sampling {
    ratio: f64,
    parent_based: bool,
    /// The W3C trace-context propagator, kept here rather than installed
    /// globally: the global one sits behind a lock every request would take.
    propagator: TraceContextPropagator,
}

static SAMPLING: OnceLock<Sampling> = OnceLock::new();

/// The caller's trace context: empty (and nothing parsed) when the request
/// carries no `traceparent`, as most do.
pub fn parent(headers: &actix_web::http::header::HeaderMap) -> Context {
    match SAMPLING.get() {
        Some(sampling) if headers.contains_key(&crate::headers::TRACEPARENT) => {
            sampling.propagator.extract(&HeaderExtractor(headers))
        }
        _ => Context::new(),
    }
}

/// Whether a request whose caller sent `parent` (possibly empty) is traced:
/// the caller's decision when sampling is parent-based and it sent one,
/// otherwise the configured ratio.
pub fn sampled(parent: &Context) -> bool {
    use opentelemetry::trace::TraceContextExt as _;
    let Some(sampling) = SAMPLING.get() else {
        return false;
    };
    if parent.has_active_span() {
        let caller = parent.span();
        let caller = caller.span_context();
        if sampling.parent_based && caller.is_valid() {
            return caller.is_sampled();
        }
    }
    if sampling.ratio >= 1.0 {
        return true;
    }
    rand::random::<f64>() < sampling.ratio
}

/// The ids a request answers with and logs: the caller's trace (or a new
/// one), a span id of its own, the caller's span as its parent; and the
/// `traceparent` that says so, written into one buffer (no allocation).
pub struct TraceIds {
    trace: u128,
    span: u64,
    /// The caller's span, if it sent one.
    parent: Option<u64>,
    /// `00-<32 hex>-<16 hex>-<flags>`
    text: [u8; 55],
}

impl TraceIds {
    /// New ids under `parent`'s trace, if it has one; `sampled` is the flag answered.
    pub fn new(parent: &Context, sampled: bool) -> Self {
        use opentelemetry::trace::TraceContextExt as _;
        // Read in place: the caller's context (and its trace state) is not copied.
        let caller = parent.span();
        let caller = caller.span_context();
        let (trace, parent) = if parent.has_active_span() && caller.is_valid() {
            (
                u128::from_be_bytes(caller.trace_id().to_bytes()),
                Some(u64::from_be_bytes(caller.span_id().to_bytes())),
            )
        } else {
            (recorder::new_id::<u128>(), None)
        };
        let span = recorder::new_id::<u64>();
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
        // Hex of exactly the bytes' size (32 and 16 digits) into fixed ranges: cannot fail.
        let _ = hex::encode_to_slice(trace.to_be_bytes(), &mut text[3..35]);
        let _ = hex::encode_to_slice(span.to_be_bytes(), &mut text[36..52]);
        if sampled {
            text[54] = b'1';
        }
        Self {
            trace,
            span,
            parent,
            text,
        }
    }

    fn str(&self, range: std::ops::Range<usize>) -> &str {
        // Only ASCII hex digits and dashes are ever written.
        std::str::from_utf8(&self.text[range]).unwrap_or_default()
    }

    /// The trace id (32 hex digits).
    pub fn trace_id(&self) -> &str {
        self.str(3..35)
    }

    /// The span id this service answers with (16 hex digits).
    pub fn span_id(&self) -> &str {
        self.str(36..52)
    }

    /// The trace id, as the request span's `otel.trace_id` field.
    pub fn trace(&self) -> u128 {
        self.trace
    }

    /// The span id, as the request span's `otel.span_id` field.
    pub fn span(&self) -> u64 {
        self.span
    }

    /// The caller's span id, as the request span's `otel.parent_span_id` field.
    pub fn parent(&self) -> Option<u64> {
        self.parent
    }

    /// The whole `traceparent` value.
    pub fn header(&self) -> actix_web::http::header::HeaderValue {
        actix_web::http::header::HeaderValue::from_bytes(&self.text)
            .unwrap_or_else(|_| actix_web::http::header::HeaderValue::from_static(""))
    }
}

/// The caller's `tracestate`, when it sent one with a valid `traceparent`
/// (carried by the trace's spans and answered back).
pub fn trace_state(parent: &Context) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    if !parent.has_active_span() {
        return None;
    }
    let state = parent.span().span_context().trace_state().header();
    (!state.is_empty()).then_some(state)
}

/// The process's span counts, once export is on.
pub fn stats() -> Option<&'static SpanStats> {
    STATS.get().map(|s| &**s)
}

/// Finished spans waiting for export, shared by the request threads (which
/// push) and the export task (which takes them all at once).
#[derive(Debug, Default)]
struct Queue {
    spans: Mutex<Vec<RecordedSpan>>,
    /// Told once when a batch's worth is waiting (never once per span: a
    /// wake-up per span cost more than the span itself, see docs/performance.md).
    batch_ready: Notify,
    stats: Arc<SpanStats>,
}

impl Queue {
    /// Queues a finished span, or counts it dropped when [`QUEUE`] are waiting.
    fn push(&self, span: RecordedSpan) {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if spans.len() >= QUEUE {
            drop(spans);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        spans.push(span);
        let ready = spans.len() == MAX_BATCH;
        drop(spans);
        if ready {
            self.batch_ready.notify_one();
        }
    }

    /// Everything waiting.
    fn take(&self) -> Vec<RecordedSpan> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if spans.is_empty() {
            return Vec::new();
        }
        std::mem::replace(&mut *spans, Vec::with_capacity(MAX_BATCH))
    }
}

/// The name the spans' instrumentation scope carries.
const SCOPE: &str = "saas-api";

/// OTLP/HTTP export in protobuf: every span of a batch under the service's
/// resource and the one scope of this process ([`SCOPE`]).
struct OtlpHttp {
    /// Sends `settings`' headers and the protobuf content type with every export.
    client: reqwest::Client,
    endpoint: String,
    /// The encoded `Resource` (`service.name`, `service.version`).
    resource: Vec<u8>,
    /// The encoded `InstrumentationScope`.
    scope: Vec<u8>,
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

impl OtlpHttp {
    /// An exporter POSTing to `settings`' endpoint with its headers.
    ///
    /// # Errors
    /// A header name or value HTTP does not allow, or no HTTP client.
    fn new(settings: &Otel) -> anyhow::Result<Self> {
        use prost::Message as _;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &settings.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| anyhow::anyhow!("OTEL_EXPORTER_OTLP_HEADERS: {name:?} is not a header name"))?;
            let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                anyhow::anyhow!("OTEL_EXPORTER_OTLP_HEADERS: the value of {name} is not a header value")
            })?;
            headers.insert(name, value);
        }
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/x-protobuf"),
        );
        let resource = Resource {
            attributes: vec![
                string_attribute("service.name", &settings.service_name),
                string_attribute("service.version", env!("CARGO_PKG_VERSION")),
                string_attribute("telemetry.sdk.name", SCOPE),
                string_attribute("telemetry.sdk.language", "rust"),
            ],
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: SCOPE.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..InstrumentationScope::default()
        };
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .default_headers(headers)
                .build()?,
            endpoint: settings.traces_endpoint.clone(),
            resource: resource.encode_to_vec(),
            scope: scope.encode_to_vec(),
        })
    }

    /// Sends `batch`; `Err` when the collector did not take it.
    async fn export(&self, batch: &[RecordedSpan]) -> anyhow::Result<()> {
        self.client
            .post(&self.endpoint)
            .body(encode::request(&self.resource, &self.scope, batch))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

/// Exports everything pending, [`MAX_BATCH`] spans per request.
async fn export_pending(exporter: &OtlpHttp, queue: &Queue) {
    let spans = queue.take();
    for batch in spans.chunks(MAX_BATCH) {
        let count = batch.len() as u64;
        match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await {
            Ok(Ok(())) => queue.stats.exported.fetch_add(count, Ordering::Relaxed),
            _ => queue.stats.dropped.fetch_add(count, Ordering::Relaxed),
        };
    }
}

async fn export_loop(exporter: OtlpHttp, queue: Arc<Queue>, mut flushes: mpsc::Receiver<oneshot::Sender<()>>) {
    let mut tick = tokio::time::interval(EXPORT_EVERY);
    loop {
        tokio::select! {
            flush = flushes.recv() => {
                export_pending(&exporter, &queue).await;
                match flush {
                    Some(done) => { let _ = done.send(()); }
                    None => return,
                }
            }
            () = queue.batch_ready.notified() => export_pending(&exporter, &queue).await,
            _ = tick.tick() => export_pending(&exporter, &queue).await,
        }
    }
}

/// The running export: flush it before the process ends.
pub struct Tracing {
    flushes: mpsc::Sender<oneshot::Sender<()>>,
}

impl Tracing {
    /// Sends what is pending (bounded by [`EXPORT_TIMEOUT`] per batch), then stops.
    pub async fn shutdown(self) {
        let (done, flushed) = oneshot::channel();
        if self.flushes.send(done).await.is_ok() {
            let _ = tokio::time::timeout(EXPORT_TIMEOUT + Duration::from_secs(1), flushed).await;
        }
    }
}

/// Starts export to `settings`' collector (on the current Tokio runtime) and
/// returns the layer that records the spans.
///
/// # Errors
/// An endpoint or header the exporter refuses.
pub fn start(settings: &Otel) -> anyhow::Result<(Tracing, SpanRecorder)> {
    let exporter = OtlpHttp::new(settings)?;
    let queue = Arc::new(Queue {
        stats: STATS.get_or_init(Arc::default).clone(),
        ..Queue::default()
    });
    let (flushes, flush_requests) = mpsc::channel(1);
    tokio::spawn(export_loop(exporter, queue.clone(), flush_requests));
    let _ = SAMPLING.set(Sampling {
        ratio: settings.sampler_ratio,
        parent_based: settings.parent_based,
        propagator: TraceContextPropagator::new(),
    });
    Ok((Tracing { flushes }, SpanRecorder::new(queue)))
}

/// Reads W3C trace context from actix's request headers.
struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(actix_web::http::header::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};

    fn is_hex(text: &str, len: usize) -> bool {
        text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[test]
    fn a_request_without_a_caller_gets_a_new_trace_and_its_sampling_flag() {
        let ids = TraceIds::new(&Context::new(), false);
        let header = ids.header();
        let header = header.to_str().unwrap();
        assert_eq!(header, format!("00-{}-{}-00", ids.trace_id(), ids.span_id()));
        assert!(
            is_hex(ids.trace_id(), 32) && ids.trace_id() != "0".repeat(32),
            "{header}"
        );
        assert!(is_hex(ids.span_id(), 16) && ids.span_id() != "0".repeat(16), "{header}");
        assert_eq!(ids.trace_id(), format!("{:032x}", ids.trace()));
        assert_eq!(ids.span_id(), format!("{:016x}", ids.span()));
        assert_eq!(ids.parent(), None);
        assert_ne!(TraceIds::new(&Context::new(), false).trace_id(), ids.trace_id());
        let sampled = TraceIds::new(&Context::new(), true);
        assert!(sampled.header().to_str().unwrap().ends_with("-01"));
    }

    #[test]
    fn a_request_keeps_its_callers_trace_and_state() {
        let caller = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::default(),
            true,
            TraceState::from_key_value([("vendor", "x1")]).unwrap(),
        );
        let parent = Context::new().with_remote_span_context(caller);
        let ids = TraceIds::new(&parent, false);
        assert_eq!(ids.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_ne!(ids.span_id(), "b7ad6b7169203331", "a span id of its own");
        assert!(is_hex(ids.span_id(), 16));
        assert_eq!(ids.parent(), Some(0xb7ad_6b71_6920_3331));
        assert_eq!(trace_state(&parent).as_deref(), Some("vendor=x1"));
        assert_eq!(trace_state(&Context::new()), None);
    }
}
