//! The listener and the lifecycle: `HOST`, `PORT`, `WORKERS`,
//! `MAX_REQUEST_SIZE`, `REQUEST_BODY_TIMEOUT`, `SHUTDOWN_TIMEOUT`,
//! `SHUTDOWN_DELAY_MS`.

use std::time::Duration;

use super::reader::Reader;

/// Most worker threads actix-server accepts (more panics inside it).
pub const MAX_WORKERS: usize = 512;

/// Where and how the HTTP server runs.
#[derive(Debug, Clone)]
pub struct Server {
    /// `HOST`.
    pub host: String,
    /// `PORT` (0 picks a free port: tests).
    pub port: u16,
    /// `WORKERS`: HTTP worker threads, 1–512 (default: one per core).
    pub workers: Option<usize>,
    /// `MAX_REQUEST_SIZE` (bytes).
    pub max_request_size: usize,
    /// `REQUEST_BODY_TIMEOUT` (seconds, default 10): the longest a request
    /// body may take to arrive before 408 and a closed connection.
    pub request_body_timeout: Duration,
    /// `SHUTDOWN_TIMEOUT` (seconds) for in-flight requests.
    pub shutdown_timeout: Duration,
    /// `SHUTDOWN_DELAY_MS`: readiness is 503 this long before listeners close.
    pub shutdown_delay: Duration,
}

/// Reads the group.
pub fn read(r: &mut Reader<'_>) -> Server {
    let workers = r
        .get("WORKERS")
        .is_some()
        .then(|| r.bounded("WORKERS", 1usize, 1, MAX_WORKERS, "a number of threads"));
    Server {
        host: r.string("HOST", "127.0.0.1"),
        port: r.parse("PORT", 8000u16, "a port number (0-65535)"),
        workers,
        max_request_size: r.bounded("MAX_REQUEST_SIZE", 10 * 1024 * 1024usize, 1, 1 << 30, "bytes"),
        request_body_timeout: Duration::from_secs(r.bounded("REQUEST_BODY_TIMEOUT", 10u64, 1, 3600, "seconds")),
        shutdown_timeout: Duration::from_secs(r.parse("SHUTDOWN_TIMEOUT", 30u64, "seconds")),
        shutdown_delay: Duration::from_millis(r.parse("SHUTDOWN_DELAY_MS", 0u64, "milliseconds")),
    }
}
