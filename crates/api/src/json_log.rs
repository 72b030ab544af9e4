//! The JSON line format of production logs, as a tracing-subscriber
//! [`FormatEvent`]: `{"timestamp":…,"level":…,"message":…,<fields>…,"target":…}`.
//!
//! tracing-subscriber's own JSON format gathers an event's fields into a
//! `BTreeMap` of `serde_json::Value`s (an allocation per field) before
//! writing them; at one access line per request that was about 12 % of the
//! throughput of a cheap request. This writes each field straight into the
//! line. Spans are not printed (nothing per request opens one at `info`).

use std::fmt::{self, Write as _};

use chrono::{SecondsFormat, Utc};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// One JSON object per line.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(320);
        line.push_str("{\"timestamp\":\"");
        line.push_str(&Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true));
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push('"');
        event.record(&mut Fields(&mut line));
        line.push_str(",\"target\":");
        push_str(&mut line, meta.target());
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Writes each field as `,"name":value`.
struct Fields<'a>(&'a mut String);

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        self.0.push(',');
        push_str(self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_str(self.0, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            push_str(self.0, &value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields and messages arrive here too, formatted with Display.
        self.key(field);
        push_str(self.0, &format!("{value:?}"));
    }
}

/// Appends `value` as a JSON string (quotes, backslashes and control
/// characters escaped).
pub(crate) fn push_str(line: &mut String, value: &str) {
    line.reserve(value.len() + 2);
    line.push('"');
    // Byte by byte: everything escaped is ASCII, so every cut falls on a
    // character boundary, and the rest (UTF-8 included) is copied whole.
    let mut copied = 0;
    for (at, &byte) in value.as_bytes().iter().enumerate() {
        if byte != b'"' && byte != b'\\' && !byte.is_ascii_control() {
            continue;
        }
        line.push_str(&value[copied..at]);
        match byte {
            b'"' => line.push_str("\\\""),
            b'\\' => line.push_str("\\\\"),
            b'\n' => line.push_str("\\n"),
            b'\r' => line.push_str("\\r"),
            b'\t' => line.push_str("\\t"),
            other => {
                let _ = write!(line, "\\u{:04x}", other);
            }
        }
        copied = at + 1;
    }
    line.push_str(&value[copied..]);
    line.push('"');
}

/// A log writer that keeps what it is given, for tests of log output.
#[cfg(test)]
pub(crate) mod captured {
    use std::sync::{Arc, Mutex, PoisonError};

    use tracing_subscriber::fmt::MakeWriter;

    /// Everything written, shared between clones.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Captured {
        /// What was written, as text.
        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::captured::Captured;
    use super::*;

    #[test]
    fn every_field_type_makes_valid_json_and_strings_are_escaped() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let text_with_escapes = "a \"quoted\" \\ value\nwith\tcontrols \u{1}\u{7f} and é";
            tracing::info!(
                target: "access",
                request_id = "r-1",
                status = 201u16,
                delta = -3i64,
                latency_ms = 0.25,
                odd = f64::NAN,
                ok = true,
                user_id = None::<&str>,
                shown = %text_with_escapes,
                "request {}",
                "done"
            );
        });
        let text = out.text();
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "access");
        assert_eq!(line["message"], "request done");
        assert_eq!(line["request_id"], "r-1");
        assert_eq!(line["status"], 201);
        assert_eq!(line["delta"], -3);
        assert_eq!(line["latency_ms"], 0.25);
        assert_eq!(line["odd"], "NaN");
        assert_eq!(line["ok"], true);
        assert!(line.get("user_id").is_none(), "an empty Option is left out");
        assert_eq!(line["shown"], "a \"quoted\" \\ value\nwith\tcontrols \u{1}\u{7f} and é");
        let stamp = line["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok(), "{stamp}");
    }
}
