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

use std::io::BufWriter;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=info";

/// Lines that may wait for the writer thread; when they are all taken,
/// loggers wait. The queue is allocated up front (≈ 32 bytes a line).
const QUEUED_LINES: usize = 16 * 1024;

/// Keeps the log writer alive; dropping it writes out every queued line.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// Installs the global subscriber; later calls are ignored (and return a
/// guard that holds nothing).
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder.event_format(crate::json_log::JsonLines).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    LogGuard {
        _worker: installed.is_ok().then_some(guard),
    }
}
