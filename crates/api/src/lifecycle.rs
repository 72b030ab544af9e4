//! Process lifecycle: readiness and graceful shutdown.
//!
//! On SIGTERM or SIGINT: `/health/ready` answers 503 at once (so a load
//! balancer stops sending new work), then after `SHUTDOWN_DELAY_MS` (time for
//! it to notice; 0 by default) the server stops accepting connections, lets
//! in-flight requests finish for up to `SHUTDOWN_TIMEOUT` seconds, and the
//! pools are closed before the process exits 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;

/// Shared shutdown state.
#[derive(Debug, Default)]
pub struct Lifecycle {
    shutting_down: AtomicBool,
}

impl Lifecycle {
    /// A running (not shutting down) lifecycle.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Marks the process as shutting down (readiness turns 503).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        tracing::info!("SIGINT received");
    }
}

/// Waits for a signal, then drives the shutdown sequence on `server`.
pub async fn shutdown_on_signal(lifecycle: Arc<Lifecycle>, server: ServerHandle, delay: Duration) {
    signal().await;
    lifecycle.begin_shutdown();
    tracing::info!(delay_ms = delay.as_millis(), "shutting down: readiness is now 503");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    tracing::info!("no longer accepting connections; draining in-flight requests");
    server.stop(true).await;
}
