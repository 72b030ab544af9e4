//! Logging set-up: JSON lines in production ([`crate::json_log`]),
//! human-readable in development.
//! sqlx and sea-orm are held at `warn` by default, so no statement (and no
//! session token bound into one) is logged.
//!
//! Lines are formatted on the thread that logs them and written to stderr by
//! a dedicated thread (tracing-appender), which writes whatever has queued up
//! in one `write` and flushes as soon as the queue is empty: a request does
//! not wait for a system call, and under load many lines share one. The queue
//! is not lossy — when it is full (`QUEUED_LINES`) loggers wait rather than drop
//! lines — and [`LogGuard`] flushes it when the process ends.
//!
//! Protocol errors: actix-http logs every malformed or stalled connection (a
//! 100 KB request line, too many headers, a slowloris timeout) as one
//! `ERROR actix_http::h1::dispatcher: stream error …`, so anyone could fill
//! the error log without signing in. Those events are taken out of the
//! output and replaced by at most one `WARN` line per second (target
//! `protocol`) carrying the last error and how many were suppressed.

use std::io::BufWriter;

use domain::log_throttle::Throttle;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::settings::LogFormat;

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=info";

/// Lines that may wait for the writer thread; when they are all taken,
/// loggers wait. The queue is allocated up front (≈ 32 bytes a line).
const QUEUED_LINES: usize = 16 * 1024;

/// Keeps the log writer (and the trace export) alive; dropping it writes
/// out every queued line. Call [`LogGuard::flush_traces`] before the end.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
    traces: Option<crate::otel::Tracing>,
}

impl LogGuard {
    /// Sends the spans still queued to the collector (bounded in time).
    pub async fn flush_traces(&mut self) {
        if let Some(traces) = self.traces.take() {
            traces.shutdown().await;
        }
    }
}

/// An error event of actix-http's connection handling (see the module docs).
fn is_protocol_error(metadata: &Metadata<'_>) -> bool {
    *metadata.level() == Level::ERROR && metadata.target().starts_with("actix_http::h1")
}

/// Turns actix-http's per-connection error events into throttled warnings.
///
/// It works in `event_enabled`: a protocol error is disabled for every layer
/// (so the output never sees it) after, at most once a second, a warning is
/// written straight to the log's writer (an event emitted from inside another
/// event's dispatch would be discarded by tracing, which guards against
/// recursion). No per-layer filter is involved: those make every callsite's
/// interest "sometimes", so each disabled `debug!` of sqlx or a handler span
/// would be filtered again per call.
pub struct ProtocolErrors<W> {
    throttle: Throttle,
    format: LogFormat,
    writer: W,
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

const PROTOCOL_WARNING: &str = "malformed, oversized or stalled request refused by the HTTP layer";

impl<W> ProtocolErrors<W> {
    fn line(&self, error: &str, suppressed: u64) -> String {
        let now = chrono::Utc::now();
        match self.format {
            LogFormat::Json => {
                let mut line = format!(
                    "{{\"timestamp\":\"{}\",\"level\":\"WARN\",\"message\":\"{PROTOCOL_WARNING}\",\"error\":",
                    now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                );
                crate::json_log::push_str(&mut line, error);
                line.push_str(&format!(",\"suppressed\":{suppressed},\"target\":\"protocol\"}}\n"));
                line
            }
            LogFormat::Pretty => format!(
                "{}  WARN protocol: {PROTOCOL_WARNING} error={error:?} suppressed={suppressed}\n",
                now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        }
    }
}

impl<S, W> Layer<S> for ProtocolErrors<W>
where
    S: Subscriber,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        if !is_protocol_error(event.metadata()) {
            return true;
        }
        if let Some(suppressed) = self.throttle.admit() {
            let mut message = Message::default();
            event.record(&mut message);
            // Bounded: a hostile request line must not become a huge log line.
            message.0.truncate(message.0.floor_char_boundary(200));
            let line = self.line(&message.0, suppressed);
            let _ = std::io::Write::write_all(&mut self.writer.make_writer(), line.as_bytes());
        }
        false
    }
}

/// A layer that is told of events only (never of spans).
struct EventsOnly<L>(L);

impl<S: Subscriber, L: Layer<S>> Layer<S> for EventsOnly<L> {
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        if metadata.is_span() {
            tracing::subscriber::Interest::always()
        } else {
            self.0.register_callsite(metadata)
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        metadata.is_span() || self.0.enabled(metadata, ctx)
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        self.0.on_event(event, ctx);
    }
}

/// The subscriber: `filter`, then the protocol-error throttle, then lines in
/// `format` written to `writer` (everything but the raw protocol errors),
/// and, with a `recorder`, the spans of target [`crate::otel::TARGET`]
/// recorded for OpenTelemetry (without one, that target is off at the callsite).
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    recorder: Option<crate::otel::SpanRecorder>,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    let directive = if recorder.is_some() { "otel=info" } else { "otel=off" };
    let filter = filter.add_directive(directive.parse().expect("a valid directive"));
    let protocol = ProtocolErrors {
        throttle: Throttle::default(),
        format,
        writer: writer.clone(),
    };
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .event_format(crate::json_log::JsonLines)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(writer).compact().boxed(),
    };
    // With traces on, the output layer sees events only: it would otherwise
    // format the fields of every exported span (the lines print none). Not a
    // per-layer filter: having one makes every event and span ask it.
    let output = if recorder.is_some() {
        EventsOnly(output).boxed()
    } else {
        output
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(protocol)
        .with(output)
        .with(recorder)
}

/// Installs the global subscriber (and starts trace export when `otel` is
/// set); later calls are ignored (and return a guard that holds nothing).
/// Must run inside a Tokio runtime.
pub fn init(format: LogFormat, otel: Option<&crate::settings::telemetry::Otel>) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let (traces, recorder) = match otel.map(crate::otel::start).transpose() {
        Ok(Some((traces, recorder))) => (Some(traces), Some(recorder)),
        Ok(None) => (None, None),
        Err(error) => {
            eprintln!("OpenTelemetry export is off: {error:#}");
            (None, None)
        }
    };
    let exporting = recorder.is_some();
    let installed = subscriber(format, filter, writer, recorder).try_init();
    if installed.is_ok() && exporting {
        infra::db::set_traces_exported();
    }
    LogGuard {
        _worker: installed.is_ok().then_some(guard),
        traces: if installed.is_ok() { traces } else { None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_log::captured::Captured;

    #[test]
    fn a_burst_of_protocol_errors_becomes_one_throttled_warning() {
        let out = Captured::default();
        let subscriber = subscriber(LogFormat::Json, EnvFilter::new(DEFAULT_FILTER), out.clone(), None);
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                tracing::error!(target: "actix_http::h1::dispatcher", "stream error: request parse error: {}", "x".repeat(1000));
            }
            tracing::error!(target: "api::other", "a real error");
        });
        let text = out.text();
        let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["target"], "protocol");
        assert_eq!(lines[0]["level"], "WARN");
        assert!(lines[0]["error"].as_str().is_some_and(|e| e.len() <= 200));
        assert_eq!(lines[1]["message"], "a real error", "other errors are untouched");
    }
}
