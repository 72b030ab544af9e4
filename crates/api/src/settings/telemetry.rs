//! What the service tells operators: `DEBUG`, `LOG_FORMAT`,
//! `METRICS_ENABLED`, `METRICS_ADDR`, `METRICS_PUBLIC`, and OpenTelemetry's
//! standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SDK_DISABLED`).
//!
//! In production `/metrics` is private by default: served only on its own
//! listener (`METRICS_ADDR`, default [`DEFAULT_METRICS_ADDR`], loopback), not
//! on the public port, unless `METRICS_PUBLIC=true`. In development it is on
//! the main listener unless `METRICS_ADDR` moves it.

use super::reader::Reader;

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// Logs, metrics and error detail.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// `DEBUG`: 5xx bodies carry their cause chain (`details.cause`);
    /// development only (production refuses it).
    pub debug: bool,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `METRICS_ENABLED`: serve `/metrics` at all (default true).
    pub metrics_enabled: bool,
    /// `METRICS_ADDR`: serve `/metrics` on a listener of its own there (in
    /// production [`DEFAULT_METRICS_ADDR`] unless `METRICS_PUBLIC`).
    pub metrics_addr: Option<String>,
    /// Whether `/metrics` is also served on the main (public) listener:
    /// `METRICS_PUBLIC=true`, or development without `METRICS_ADDR`.
    pub metrics_on_main_listener: bool,
    /// Trace export (OTLP/HTTP), when an endpoint is set.
    pub otel: Option<Otel>,
}

/// OpenTelemetry trace export.
#[derive(Debug, Clone, PartialEq)]
pub struct Otel {
    /// Where spans are POSTed: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given,
    /// or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
    pub traces_endpoint: String,
    /// `OTEL_SERVICE_NAME` (default `saas-api`).
    pub service_name: String,
    /// The share of new traces sampled (`OTEL_TRACES_SAMPLER_ARG` for the
    /// ratio samplers; 1 or 0 for the always-on/off ones).
    pub sampler_ratio: f64,
    /// Whether a caller's sampling decision (its `traceparent`) is followed
    /// (`parentbased_*`, the default `parentbased_always_on`).
    pub parent_based: bool,
    /// `OTEL_EXPORTER_OTLP_HEADERS` / `…_TRACES_HEADERS` (`key=value,…`).
    pub headers: Vec<(String, String)>,
}

fn otel(r: &mut Reader<'_>) -> Option<Otel> {
    if r.flag("OTEL_SDK_DISABLED", false) {
        return None;
    }
    let traces_endpoint = match (
        r.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        r.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(traces), _) => traces.to_owned(),
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return None,
    };
    if !traces_endpoint.starts_with("http://") {
        r.errors.push(format!(
            "OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// collector (a local agent or sidecar; https is not built in), got {traces_endpoint:?}"
        ));
    }
    if let Some(protocol) = r.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        && protocol != "http/protobuf"
    {
        r.errors.push(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is supported, got {protocol:?}"
        ));
    }
    let sampler = r.string("OTEL_TRACES_SAMPLER", "parentbased_always_on");
    let ratio = r.parse("OTEL_TRACES_SAMPLER_ARG", 1.0f64, "a ratio from 0 to 1");
    if !(0.0..=1.0).contains(&ratio) {
        r.errors.push(format!(
            "OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, got {ratio}"
        ));
    }
    let (parent_based, sampler_ratio) = match sampler.as_str() {
        "always_on" => (false, 1.0),
        "always_off" => (false, 0.0),
        "traceidratio" => (false, ratio),
        "parentbased_always_on" => (true, 1.0),
        "parentbased_always_off" => (true, 0.0),
        "parentbased_traceidratio" => (true, ratio),
        other => {
            r.errors.push(format!(
                "OTEL_TRACES_SAMPLER: expected always_on, always_off, traceidratio or their parentbased_ forms, got {other:?}"
            ));
            (true, 1.0)
        }
    };
    let raw_headers = r
        .get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .or_else(|| r.get("OTEL_EXPORTER_OTLP_HEADERS"))
        .unwrap_or("");
    let mut headers = Vec::new();
    for pair in raw_headers.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => headers.push((
                key.trim().to_owned(),
                percent_encoding::percent_decode_str(value.trim())
                    .decode_utf8_lossy()
                    .into_owned(),
            )),
            _ => r
                .errors
                .push("OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas".to_owned()),
        }
    }
    Some(Otel {
        traces_endpoint,
        service_name: r.string("OTEL_SERVICE_NAME", "saas-api"),
        sampler_ratio,
        parent_based,
        headers,
    })
}

/// Where production serves `/metrics` when `METRICS_ADDR` is not set: loopback only.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9100";

/// Reads the group.
pub fn read(r: &mut Reader<'_>, production: bool) -> Telemetry {
    let log_format = match r.get("LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
        None if production => LogFormat::Json,
        None => LogFormat::Pretty,
        Some("json") => LogFormat::Json,
        Some("pretty" | "text") => LogFormat::Pretty,
        Some(other) => {
            r.errors
                .push(format!("LOG_FORMAT: expected json or pretty, got {other:?}"));
            LogFormat::Pretty
        }
    };
    let metrics_addr = r.get("METRICS_ADDR").map(str::to_owned);
    if let Some(addr) = &metrics_addr
        && addr.parse::<std::net::SocketAddr>().is_err()
    {
        r.errors.push(format!(
            "METRICS_ADDR: expected host:port like 127.0.0.1:9100, got {addr:?}"
        ));
    }
    let public = r.flag("METRICS_PUBLIC", false);
    let metrics_on_main_listener = public || (!production && metrics_addr.is_none());
    let metrics_addr = match metrics_addr {
        None if production && !public => Some(DEFAULT_METRICS_ADDR.to_owned()),
        other => other,
    };
    Telemetry {
        debug: r.flag("DEBUG", !production),
        log_format,
        metrics_enabled: r.flag("METRICS_ENABLED", true),
        metrics_addr,
        metrics_on_main_listener,
        otel: otel(r),
    }
}
