//! What the service tells operators: `DEBUG`, `LOG_FORMAT`,
//! `METRICS_ENABLED`, `METRICS_ADDR`, `METRICS_PUBLIC`.
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
    }
}
