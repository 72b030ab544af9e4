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
//! - Export never touches the request path: a finished span is handed to a
//!   bounded queue ([`QUEUE`]) with `try_send`, and one background task sends
//!   batches (at most [`MAX_BATCH`] spans, or whatever a second gathered). A
//!   full queue, or a batch the collector did not take (down, slow: each
//!   export is bounded by [`EXPORT_TIMEOUT`]), is counted in
//!   `otel_spans_dropped_total`; what was taken in `otel_spans_exported_total`.
//!   The SDK's batch processor keeps its drop count private, hence this one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor, Tracer};
use tokio::sync::{mpsc, oneshot};

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
#[derive(Debug, Clone, Copy)]
struct Sampling {
    ratio: f64,
    parent_based: bool,
}

static SAMPLING: OnceLock<Sampling> = OnceLock::new();

/// Whether a request whose caller sent `parent` (possibly empty) is traced:
/// the caller's decision when sampling is parent-based and it sent one,
/// otherwise the configured ratio.
pub fn sampled(parent: &Context) -> bool {
    use opentelemetry::trace::TraceContextExt as _;
    let Some(sampling) = SAMPLING.get() else {
        return false;
    };
    let caller = parent.span();
    let caller = caller.span_context();
    if sampling.parent_based && caller.is_valid() {
        return caller.is_sampled();
    }
    if sampling.ratio >= 1.0 {
        return true;
    }
    rand::random::<f64>() < sampling.ratio
}

/// A `traceparent` for a request that is not traced: the caller's trace (or
/// a new one), a new span id, and the not-sampled flag.
pub fn unsampled_traceparent(parent: &Context) -> (String, String) {
    use opentelemetry::trace::TraceContextExt as _;
    let caller = parent.span();
    let caller = caller.span_context();
    let trace_id = if caller.is_valid() {
        caller.trace_id().to_string()
    } else {
        format!("{:032x}", rand::random::<u128>() | 1)
    };
    let span_id = format!("{:016x}", rand::random::<u64>() | 1);
    (trace_id, span_id)
}

/// The process's span counts, once export is on.
pub fn stats() -> Option<&'static SpanStats> {
    STATS.get().map(|s| &**s)
}

enum Message {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

/// Hands finished spans to the export task without ever waiting.
#[derive(Debug)]
struct QueueProcessor {
    queue: mpsc::Sender<Message>,
    stats: Arc<SpanStats>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Span(_) => "Span",
            Self::Flush(_) => "Flush",
        })
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

async fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, stats: &SpanStats) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::replace(batch, Vec::with_capacity(MAX_BATCH));
    let count = spans.len() as u64;
    match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(spans)).await {
        Ok(Ok(())) => stats.exported.fetch_add(count, Ordering::Relaxed),
        _ => stats.dropped.fetch_add(count, Ordering::Relaxed),
    };
}

async fn export_loop<E: SpanExporter>(exporter: E, mut queue: mpsc::Receiver<Message>, stats: Arc<SpanStats>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(EXPORT_EVERY);
    loop {
        tokio::select! {
            message = queue.recv() => match message {
                Some(Message::Span(span)) => {
                    batch.push(*span);
                    if batch.len() >= MAX_BATCH {
                        export(&exporter, &mut batch, &stats).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    export(&exporter, &mut batch, &stats).await;
                    let _ = done.send(());
                }
                None => {
                    export(&exporter, &mut batch, &stats).await;
                    return;
                }
            },
            _ = tick.tick() => export(&exporter, &mut batch, &stats).await,
        }
    }
}

/// The running export: flush it before the process ends.
pub struct Tracing {
    provider: SdkTracerProvider,
    queue: mpsc::Sender<Message>,
}

impl Tracing {
    /// Sends what is queued (bounded by [`EXPORT_TIMEOUT`]), then stops.
    pub async fn shutdown(self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
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
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(settings.traces_endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .with_headers(settings.headers.iter().cloned().collect())
        .build()?;
    let stats = STATS.get_or_init(Arc::default).clone();
    let (queue, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(export_loop(exporter, receiver, stats.clone()));
    let _ = SAMPLING.set(Sampling {
        ratio: settings.sampler_ratio,
        parent_based: settings.parent_based,
    });
    // The request span exists only once `sampled` said yes; its children follow it.
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(QueueProcessor {
            queue: queue.clone(),
            stats,
        })
        .with_sampler(sampler)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(settings.service_name.clone())
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let tracer = provider.tracer("saas-api");
    Ok((Tracing { provider, queue }, tracer))
}

/// Reads W3C trace context from actix's request headers.
pub struct HeaderExtractor<'a>(pub &'a actix_web::http::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(actix_web::http::header::HeaderName::as_str).collect()
    }
}

/// Writes W3C trace context into actix's response headers.
pub struct HeaderInjector<'a>(pub &'a mut actix_web::http::header::HeaderMap);

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
