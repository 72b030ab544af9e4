//! What the service tells operators: `DEBUG`, `LOG_FORMAT`,
//! `METRICS_ENABLED`, `METRICS_ADDR`.

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
    /// `METRICS_ADDR`: serve `/metrics` there instead of on the main listener.
    pub metrics_addr: Option<String>,
}

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
    Telemetry {
        debug: r.flag("DEBUG", !production),
        log_format,
        metrics_enabled: r.flag("METRICS_ENABLED", true),
        metrics_addr,
    }
}
