//! The `tracing` layer that records the spans of target [`super::TARGET`]
//! straight into the form OTLP sends ([`RecordedSpan`]) and hands each one,
//! when it closes, to the export queue.
//!
//! It replaces tracing-opentelemetry's bridge and the SDK's tracer (see
//! docs/decisions.md): a span here is one struct in the span's registry
//! extensions — ids, name, kind, two timestamps and its attributes under
//! their field names (`&'static str`: no key is copied) — where the bridge
//! kept an OpenTelemetry `SpanBuilder`, started an SDK span from it, turned
//! that into `SpanData` and the exporter turned that into protobuf types.
//!
//! Fields are read as tracing-opentelemetry reads them: `otel.name` (the
//! span's name, else the callsite's), `otel.kind` (`server`, `client`,
//! `producer`, `consumer`, else internal), `otel.status_code` (`ok`,
//! `error`) and `otel.status_message`; every other field is an attribute.
//! The ids of a root come from its fields (`otel.trace_id` as a `u128`,
//! `otel.span_id`, `otel.parent_span_id` — a caller's span, hence remote —
//! and `otel.trace_state`), which is how the request span continues the
//! caller's `traceparent`; a span without them continues its nearest
//! recorded ancestor's trace, or starts a new one. Warnings and errors
//! logged inside a recorded span become its events; an error sets its
//! status to error.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::Queue;

/// An attribute's value, as OTLP's `AnyValue` carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// `string_value`
    Str(String),
    /// `int_value`
    Int(i64),
    /// `bool_value`
    Bool(bool),
    /// `double_value`
    Double(f64),
}

/// OTLP's `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl Kind {
    fn parse(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "server" => Self::Server,
            "client" => Self::Client,
            "producer" => Self::Producer,
            "consumer" => Self::Consumer,
            _ => Self::Internal,
        }
    }
}

/// OTLP's `Status.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset = 0,
    Ok = 1,
    Error = 2,
}

impl StatusCode {
    fn parse(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "ok" => Self::Ok,
            "error" => Self::Error,
            _ => Self::Unset,
        }
    }
}

/// A field's name and its value.
pub type Attribute = (&'static str, AttributeValue);

/// A warning or an error logged inside a span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    pub time: u64,
    pub name: String,
    pub attributes: Vec<Attribute>,
}

/// One span as it is exported.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedSpan {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0 for a root.
    pub parent_span_id: u64,
    /// The parent is a caller's span (from `traceparent`).
    pub remote_parent: bool,
    pub trace_state: String,
    pub name: Cow<'static, str>,
    pub kind: Kind,
    /// Nanoseconds since the Unix epoch.
    pub start: u64,
    pub end: u64,
    pub attributes: Vec<Attribute>,
    pub events: Vec<SpanEvent>,
    pub status: StatusCode,
    pub status_message: String,
}

impl RecordedSpan {
    fn new(name: &'static str, fields: usize) -> Self {
        Self {
            trace_id: 0,
            span_id: 0,
            parent_span_id: 0,
            remote_parent: false,
            trace_state: String::new(),
            name: Cow::Borrowed(name),
            kind: Kind::Internal,
            start: now(),
            end: 0,
            attributes: Vec::with_capacity(fields),
            events: Vec::new(),
            status: StatusCode::Unset,
            status_message: String::new(),
        }
    }

    fn set(&mut self, key: &'static str, value: AttributeValue) {
        set(&mut self.attributes, key, value);
    }
}

fn set(attributes: &mut Vec<Attribute>, key: &'static str, value: AttributeValue) {
    match attributes.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => attributes.push((key, value)),
    }
}

/// Nanoseconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A new id: random and never zero (zero means "none" in W3C trace context).
pub fn new_id<T: Default + PartialEq>() -> T
where
    rand::distr::StandardUniform: rand::distr::Distribution<T>,
{
    loop {
        let id: T = rand::random();
        if id != T::default() {
            return id;
        }
    }
}

/// Reads a span's fields into its record.
struct Fields<'a>(&'a mut RecordedSpan);

impl Fields<'_> {
    fn text(&mut self, field: &Field, value: String) {
        match field.name() {
            "otel.name" => self.0.name = Cow::Owned(value),
            "otel.kind" => self.0.kind = Kind::parse(&value),
            "otel.status_code" => self.0.status = StatusCode::parse(&value),
            "otel.status_message" => self.0.status_message = value,
            "otel.trace_state" => self.0.trace_state = value,
            name => self.0.set(name, AttributeValue::Str(value)),
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "otel.kind" => self.0.kind = Kind::parse(value),
            "otel.status_code" => self.0.status = StatusCode::parse(value),
            _ => self.text(field, value.to_owned()),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(field.name(), AttributeValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "otel.span_id" => self.0.span_id = value,
            "otel.parent_span_id" => {
                self.0.parent_span_id = value;
                self.0.remote_parent = value != 0;
            }
            name => self
                .0
                .set(name, AttributeValue::Int(i64::try_from(value).unwrap_or(i64::MAX))),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match field.name() {
            "otel.trace_id" => self.0.trace_id = value,
            _ => self.text(field, value.to_string()),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.text(field, value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(field.name(), AttributeValue::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.set(field.name(), AttributeValue::Double(value));
    }
}

/// Reads an event's fields: `message` is its name, the rest attributes.
struct EventFields<'a>(&'a mut SpanEvent);

impl EventFields<'_> {
    fn put(&mut self, field: &Field, value: AttributeValue) {
        set(&mut self.0.attributes, field.name(), value);
    }
}

impl Visit for EventFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0.name);
        } else {
            self.put(field, AttributeValue::Str(value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.0.name = text;
        } else {
            self.put(field, AttributeValue::Str(text));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AttributeValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, AttributeValue::Int(i64::try_from(value).unwrap_or(i64::MAX)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, AttributeValue::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AttributeValue::Double(value));
    }
}

/// The most events one span keeps (a loop that logs must not grow it without end).
const MAX_EVENTS: usize = 32;

thread_local! {
    /// Set while an event's fields are read (see `on_event`).
    static RECORDING_EVENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The layer (see the module docs).
pub struct SpanRecorder {
    queue: Arc<Queue>,
}

impl SpanRecorder {
    pub(super) fn new(queue: Arc<Queue>) -> Self {
        Self { queue }
    }
}

impl<S> Layer<S> for SpanRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        if metadata.target() != super::TARGET {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // Room for the fields that become attributes (the `otel.*` ones do not).
        let attributes = metadata
            .fields()
            .iter()
            .filter(|f| !f.name().starts_with("otel."))
            .count();
        let mut recorded = RecordedSpan::new(metadata.name(), attributes);
        attrs.record(&mut Fields(&mut recorded));
        if recorded.trace_id == 0 {
            // The nearest recorded ancestor's trace, if any.
            let mut ancestor = span.parent();
            while let Some(candidate) = ancestor {
                if let Some(parent) = candidate.extensions().get::<RecordedSpan>() {
                    recorded.trace_id = parent.trace_id;
                    recorded.parent_span_id = parent.span_id;
                    recorded.remote_parent = false;
                    recorded.trace_state.clone_from(&parent.trace_state);
                    break;
                }
                ancestor = candidate.parent();
            }
        }
        if recorded.trace_id == 0 {
            recorded.trace_id = new_id();
        }
        if recorded.span_id == 0 {
            recorded.span_id = new_id();
        }
        span.extensions_mut().insert(recorded);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.metadata().target() != super::TARGET {
            return;
        }
        if let Some(recorded) = span.extensions_mut().get_mut::<RecordedSpan>() {
            values.record(&mut Fields(recorded));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN || RECORDING_EVENT.get() {
            return;
        }
        let Some(span) = ctx.event_span(event) else { return };
        let Some(owner) = span.scope().find(|s| s.extensions().get::<RecordedSpan>().is_some()) else {
            return;
        };
        // The fields are read before the span's extensions are locked, and an
        // event logged while they are read (by some value's `Debug`) is not
        // recorded: either would otherwise wait for a lock its own thread holds.
        let mut recorded_event = SpanEvent {
            time: now(),
            name: String::new(),
            attributes: vec![("level", AttributeValue::Str(level.as_str().to_owned()))],
        };
        RECORDING_EVENT.set(true);
        event.record(&mut EventFields(&mut recorded_event));
        RECORDING_EVENT.set(false);
        let mut extensions = owner.extensions_mut();
        if let Some(recorded) = extensions.get_mut::<RecordedSpan>() {
            if level == Level::ERROR && recorded.status == StatusCode::Unset {
                recorded.status = StatusCode::Error;
            }
            if recorded.events.len() < MAX_EVENTS {
                recorded.events.push(recorded_event);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if span.metadata().target() != super::TARGET {
            return;
        }
        let recorded = span.extensions_mut().remove::<RecordedSpan>();
        if let Some(mut recorded) = recorded {
            recorded.end = now();
            self.queue.push(recorded);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    fn recorded(run: impl FnOnce()) -> Vec<RecordedSpan> {
        let queue = Arc::new(Queue::default());
        let subscriber = tracing_subscriber::registry().with(SpanRecorder::new(queue.clone()));
        tracing::subscriber::with_default(subscriber, run);
        queue.take()
    }

    #[test]
    fn a_root_continues_the_callers_trace_and_its_children_follow_it() {
        let spans = recorded(|| {
            let root = tracing::info_span!(
                target: "otel",
                "request",
                otel.name = %format_args!("GET {}", "/api/v1/users/me"),
                otel.kind = "server",
                otel.trace_id = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128,
                otel.span_id = 0x1111_u64,
                otel.parent_span_id = 0x00f0_67aa_0ba9_02b7_u64,
                otel.trace_state = "vendor=1",
                http.route = "/api/v1/users/me",
                http.response.status_code = tracing::field::Empty,
            );
            let _entered = root.enter();
            {
                let child =
                    tracing::info_span!(target: "otel", "authenticate", saas.presented = "cookie", rows = 3_u64);
                let _in_child = child.enter();
                let grandchild = tracing::info_span!(
                    target: "otel",
                    "db",
                    otel.kind = "client",
                    otel.status_code = tracing::field::Empty,
                    otel.status_message = tracing::field::Empty,
                    ok = true,
                );
                grandchild.record("ok", false);
                grandchild.record("otel.status_code", "error");
                grandchild.record("otel.status_message", "refused");
                tracing::error!(answer = 42, "the database said no");
            }
            tracing::info_span!(target: "elsewhere", "not recorded").in_scope(|| {});
            root.record("http.response.status_code", 200_i64);
        });
        assert_eq!(spans.len(), 3, "{spans:?}");
        let (db, authenticate, request) = (&spans[0], &spans[1], &spans[2]);
        assert_eq!(request.name, "GET /api/v1/users/me");
        assert_eq!(request.kind, Kind::Server);
        assert_eq!(request.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(
            (request.span_id, request.parent_span_id),
            (0x1111, 0x00f0_67aa_0ba9_02b7)
        );
        assert!(request.remote_parent);
        assert_eq!(request.trace_state, "vendor=1");
        assert_eq!(
            request.attributes,
            [
                ("http.route", AttributeValue::Str("/api/v1/users/me".into())),
                ("http.response.status_code", AttributeValue::Int(200)),
            ]
        );
        assert!(request.start > 0 && request.end >= request.start);

        assert_eq!(authenticate.trace_id, request.trace_id);
        assert_eq!(authenticate.parent_span_id, request.span_id);
        assert!(!authenticate.remote_parent);
        assert_eq!(authenticate.trace_state, "vendor=1", "the trace's state goes with it");
        assert_eq!(authenticate.kind, Kind::Internal);
        assert_ne!(authenticate.span_id, 0);
        assert_eq!(
            authenticate.attributes,
            [
                ("saas.presented", AttributeValue::Str("cookie".into())),
                ("rows", AttributeValue::Int(3))
            ]
        );
        assert_eq!(authenticate.status, StatusCode::Error, "an error logged inside it");
        assert_eq!(authenticate.events.len(), 1);
        assert_eq!(authenticate.events[0].name, "the database said no");
        assert!(
            authenticate.events[0]
                .attributes
                .contains(&("answer", AttributeValue::Int(42)))
        );

        assert_eq!(db.parent_span_id, authenticate.span_id);
        assert_eq!(db.kind, Kind::Client);
        assert_eq!(
            db.attributes,
            [("ok", AttributeValue::Bool(false))],
            "a recorded value replaces the first"
        );
        assert_eq!(
            (db.status, db.status_message.as_str()),
            (StatusCode::Error, "refused"),
            "set through its otel.status_* fields"
        );
        assert!(db.events.is_empty(), "the error was logged outside it");
    }

    #[test]
    fn a_span_without_a_recorded_ancestor_starts_a_trace_of_its_own() {
        let spans = recorded(|| {
            tracing::info_span!(target: "otel", "job").in_scope(|| {});
            tracing::info_span!(target: "otel", "job").in_scope(|| {});
        });
        assert_eq!(spans.len(), 2);
        assert!(
            spans
                .iter()
                .all(|s| s.trace_id != 0 && s.span_id != 0 && s.parent_span_id == 0)
        );
        assert_ne!(spans[0].trace_id, spans[1].trace_id);
    }
}
