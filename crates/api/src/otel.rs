//! OpenTelemetry traces, exported over OTLP/HTTP (protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set.
//!
//! - Spans are `tracing` spans of target [`TARGET`] (the request, the
//!   authentication, each database statement or lane wait, each Redis command
//!   group), bridged by `tracing-opentelemetry`. Without an endpoint the
//!   target is filtered off at the callsite (`otel=off`), so nothing is
//!   created and nothing costs.
//! - W3C `traceparent`/`tracestate` in a request make its span a child of the
//!   caller's; the answer carries `traceparent` back. The access log line
//!   carries `trace_id` and `span_id`.
//! - Export never touches the request path: a finished span is pushed on a
//!   bounded list ([`QUEUE`]) under a lock held for the push alone, and one
//!   background task sends batches of at most [`MAX_BATCH`] spans, woken once
//!   a batch is waiting or once a second — never once per span. A
//!   full list, or a batch the collector did not take (down, slow: each
//!   export is bounded by [`EXPORT_TIMEOUT`]), is counted in
//!   `otel_spans_dropped_total`; what was taken in `otel_spans_exported_total`.
//!   The SDK's batch processor keeps its drop count private, hence this one.
//! - A batch is sent by [`OtlpHttp`]: the spans are moved into their
//!   protobuf form (one resource, one scope), encoded and POSTed.
//!   `opentelemetry-otlp`'s exporter deep-copied every span before
//!   converting it (grouping by scope through a hash map), which was half of
//!   the export's cost and an eighth of a sampled request's (see
//!   docs/decisions.md); it also never learnt the service's resource, so
//!   `service.name` did not reach the collector.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource as ResourceProto;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Span, SpanData, SpanProcessor, Tracer};
use tokio::sync::{Notify, mpsc, oneshot};

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

/// Writes `context` as `traceparent` (and `tracestate`) into an answer's headers.
pub fn inject(context: &Context, headers: &mut actix_web::http::header::HeaderMap) {
    if let Some(sampling) = SAMPLING.get() {
        sampling
            .propagator
            .inject_context(context, &mut HeaderInjector(headers));
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

/// The `traceparent` of a request that is not traced — the caller's trace
/// (or a new one), a new span id, the not-sampled flag — written into one
/// buffer: no allocation on the path nine requests in ten take at 0.1.
pub struct UnsampledIds {
    /// `00-<32 hex>-<16 hex>-00`
    text: [u8; 55],
}

impl UnsampledIds {
    /// New ids under `parent`'s trace, if it has one.
    pub fn new(parent: &Context) -> Self {
        use opentelemetry::trace::TraceContextExt as _;
        let caller = parent
            .has_active_span()
            .then(|| parent.span().span_context().clone())
            .filter(opentelemetry::trace::SpanContext::is_valid);
        let trace_id = caller.map_or_else(
            || rand::random::<u128>() | 1,
            |c| u128::from_be_bytes(c.trace_id().to_bytes()),
        );
        let span_id = rand::random::<u64>() | 1;
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
        // Hex of exactly the bytes' size (32 and 16 digits) into fixed ranges: cannot fail.
        let _ = hex::encode_to_slice(trace_id.to_be_bytes(), &mut text[3..35]);
        let _ = hex::encode_to_slice(span_id.to_be_bytes(), &mut text[36..52]);
        Self { text }
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

    /// The whole `traceparent` value.
    pub fn header(&self) -> actix_web::http::header::HeaderValue {
        actix_web::http::header::HeaderValue::from_bytes(&self.text)
            .unwrap_or_else(|_| actix_web::http::header::HeaderValue::from_static(""))
    }
}

/// The process's span counts, once export is on.
pub fn stats() -> Option<&'static SpanStats> {
    STATS.get().map(|s| &**s)
}

/// Finished spans waiting for export, shared by the request threads (which
/// push) and the export task (which takes them all at once).
#[derive(Debug, Default)]
struct Pending {
    spans: Mutex<Vec<SpanData>>,
    /// Told once when a batch's worth is waiting (never once per span: a
    /// wake-up per span cost more than the span itself, see docs/performance.md).
    batch_ready: Notify,
}

/// Hands finished spans to the export task without ever waiting for it or
/// waking it per span.
#[derive(Debug)]
struct QueueProcessor {
    pending: Arc<Pending>,
    stats: Arc<SpanStats>,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let mut spans = self.pending.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if spans.len() >= QUEUE {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        spans.push(span);
        let ready = spans.len() == MAX_BATCH;
        drop(spans);
        if ready {
            self.pending.batch_ready.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The name the spans' instrumentation scope carries.
const SCOPE: &str = "saas-api";

/// OTLP/HTTP export in protobuf: every span of a batch under the service's
/// resource and the one scope of this process's tracer ([`SCOPE`]).
struct OtlpHttp {
    /// Sends `settings`' headers and the protobuf content type with every export.
    client: reqwest::Client,
    endpoint: String,
    resource: ResourceProto,
    scope: InstrumentationScope,
}

impl OtlpHttp {
    /// An exporter POSTing to `settings`' endpoint with its headers.
    ///
    /// # Errors
    /// A header name or value HTTP does not allow, or no HTTP client.
    fn new(settings: &Otel, resource: &Resource) -> anyhow::Result<Self> {
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
        let attributes = resource
            .iter()
            .map(|(key, value)| opentelemetry::KeyValue::new(key.clone(), value.clone()));
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .default_headers(headers)
                .build()?,
            endpoint: settings.traces_endpoint.clone(),
            resource: ResourceProto {
                attributes: opentelemetry_proto::tonic::Attributes::from(attributes).0,
                ..ResourceProto::default()
            },
            scope: InstrumentationScope {
                name: SCOPE.to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..InstrumentationScope::default()
            },
        })
    }

    /// The request body for `batch` (the spans are moved, not copied).
    fn body(&self, batch: Vec<SpanData>) -> Vec<u8> {
        use prost::Message as _;
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans: batch.into_iter().map(Into::into).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec()
    }

    /// Sends `batch`; `Err` when the collector did not take it.
    async fn export(&self, batch: Vec<SpanData>) -> anyhow::Result<()> {
        self.client
            .post(&self.endpoint)
            .body(self.body(batch))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

/// Exports everything pending, [`MAX_BATCH`] spans per request.
async fn export_pending(exporter: &OtlpHttp, pending: &Pending, stats: &SpanStats) {
    let spans = std::mem::replace(
        &mut *pending.spans.lock().unwrap_or_else(PoisonError::into_inner),
        Vec::with_capacity(MAX_BATCH),
    );
    let mut spans = spans.into_iter().peekable();
    while spans.peek().is_some() {
        let batch: Vec<SpanData> = spans.by_ref().take(MAX_BATCH).collect();
        let count = batch.len() as u64;
        match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await {
            Ok(Ok(())) => stats.exported.fetch_add(count, Ordering::Relaxed),
            _ => stats.dropped.fetch_add(count, Ordering::Relaxed),
        };
    }
}

async fn export_loop(
    exporter: OtlpHttp,
    pending: Arc<Pending>,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
    stats: Arc<SpanStats>,
) {
    let mut tick = tokio::time::interval(EXPORT_EVERY);
    loop {
        tokio::select! {
            flush = flushes.recv() => {
                export_pending(&exporter, &pending, &stats).await;
                match flush {
                    Some(done) => { let _ = done.send(()); }
                    None => return,
                }
            }
            () = pending.batch_ready.notified() => export_pending(&exporter, &pending, &stats).await,
            _ = tick.tick() => export_pending(&exporter, &pending, &stats).await,
        }
    }
}

/// The running export: flush it before the process ends.
pub struct Tracing {
    provider: SdkTracerProvider,
    flushes: mpsc::Sender<oneshot::Sender<()>>,
}

impl Tracing {
    /// Sends what is pending (bounded by [`EXPORT_TIMEOUT`] per batch), then stops.
    pub async fn shutdown(self) {
        let (done, flushed) = oneshot::channel();
        if self.flushes.send(done).await.is_ok() {
            let _ = tokio::time::timeout(EXPORT_TIMEOUT + Duration::from_secs(1), flushed).await;
        }
        let _ = self.provider.shutdown();
    }
}

/// Starts export to `settings`' collector (on the current Tokio runtime) and
/// returns the tracer for the `tracing` bridge.
///
/// # Errors
/// An endpoint or header the exporter refuses.
pub fn start(settings: &Otel) -> anyhow::Result<(Tracing, Tracer)> {
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let exporter = OtlpHttp::new(settings, &resource)?;
    let stats = STATS.get_or_init(Arc::default).clone();
    let pending = Arc::new(Pending::default());
    let (flushes, flush_requests) = mpsc::channel(1);
    tokio::spawn(export_loop(exporter, pending.clone(), flush_requests, stats.clone()));
    let _ = SAMPLING.set(Sampling {
        ratio: settings.sampler_ratio,
        parent_based: settings.parent_based,
        propagator: TraceContextPropagator::new(),
    });
    // The request span exists only once `sampled` said yes; its children follow it.
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(QueueProcessor { pending, stats })
        .with_sampler(sampler)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer(SCOPE);
    Ok((Tracing { provider, flushes }, tracer))
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

/// Writes W3C trace context into actix's response headers.
struct HeaderInjector<'a>(&'a mut actix_web::http::header::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            actix_web::http::header::HeaderName::from_bytes(key.as_bytes()),
            actix_web::http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
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
    fn an_unsampled_request_without_a_caller_gets_a_new_trace_and_the_not_sampled_flag() {
        let ids = UnsampledIds::new(&Context::new());
        let header = ids.header();
        let header = header.to_str().unwrap();
        assert_eq!(header, format!("00-{}-{}-00", ids.trace_id(), ids.span_id()));
        assert!(
            is_hex(ids.trace_id(), 32) && ids.trace_id() != "0".repeat(32),
            "{header}"
        );
        assert!(is_hex(ids.span_id(), 16) && ids.span_id() != "0".repeat(16), "{header}");
        assert_ne!(UnsampledIds::new(&Context::new()).trace_id(), ids.trace_id());
    }

    #[test]
    fn an_unsampled_request_keeps_its_callers_trace() {
        let caller = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::default(),
            true,
            TraceState::default(),
        );
        let ids = UnsampledIds::new(&Context::new().with_remote_span_context(caller));
        assert_eq!(ids.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_ne!(ids.span_id(), "b7ad6b7169203331", "a span id of its own");
        assert!(is_hex(ids.span_id(), 16));
    }
}
