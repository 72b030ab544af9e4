//! Start-up: connect, prepare the schema, detect better-auth's tables, choose
//! the caches, and bind the server. The steps live in [`database`] and
//! [`services`]; this module binds listeners and runs the server.
//!
//! Order matters and fails fast: a database that cannot be reached, missing
//! better-auth tables or an unusable `REDIS_URL` stop the process with a
//! message saying what to fix. Only in development on SQLite (the embedded
//! default) are better-auth-compatible tables created when missing, so a
//! fresh clone runs with no setup at all.

pub mod database;
pub mod services;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{HttpServer, web};
use anyhow::Context as _;
use infra::Db;

pub use database::{connect_database, connect_database_with_retry};

use crate::app::AppOptions;
use crate::lifecycle::{Lifecycle, shutdown_on_signal};
use crate::metrics::{Metrics, scrape};
use crate::settings::Settings;

/// A bound, not yet running, server.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    metrics_server: Option<Server>,
    db: Db,
    lifecycle: Arc<Lifecycle>,
    shutdown_delay: Duration,
    idempotency: Arc<domain::idempotency::IdempotencyService>,
    /// The organization plugin's tables, for the clean-up of deleted organizations' records.
    memberships: Option<infra::better_auth::SqlMembershipStore>,
    /// Every scoped resource's table (items' first), for that clean-up.
    tables: Vec<&'static str>,
}

/// How often housekeeping runs, and how many rows one statement deletes.
const PURGE_EVERY: Duration = Duration::from_secs(600);
const PURGE_BATCH: u32 = 1000;

/// Housekeeping off the request path, in small batches every
/// [`PURGE_EVERY`]: expired idempotency keys, and every scoped resource's
/// records of organizations better-auth has deleted (no foreign key can
/// cascade to them).
async fn housekeeping(
    idempotency: Arc<domain::idempotency::IdempotencyService>,
    memberships: Option<infra::better_auth::SqlMembershipStore>,
    tables: Vec<&'static str>,
) {
    loop {
        tokio::time::sleep(PURGE_EVERY).await;
        purge("expired idempotency keys", || idempotency.purge_expired(PURGE_BATCH)).await;
        if let Some(store) = &memberships {
            for table in &tables {
                purge(&format!("{table} of deleted organizations"), || {
                    store.delete_records_of_deleted_organizations(table, PURGE_BATCH)
                })
                .await;
            }
        }
    }
}

/// Runs `batch` until it deletes less than a full batch (or fails: retried next round).
async fn purge<F, Fut>(what: &str, batch: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, domain::Error>>,
{
    let mut total = 0;
    loop {
        match batch().await {
            Ok(n) => {
                total += n;
                if n < u64::from(PURGE_BATCH) {
                    break;
                }
                tokio::task::yield_now().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "could not delete {what}; will retry");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(deleted = total, "deleted {what}");
    }
}

/// `/metrics` on its own listener when `METRICS_ADDR` is set (in production
/// by default) and metrics are on; with the port it is bound to.
fn metrics_server(settings: &Settings, metrics: web::Data<Metrics>) -> anyhow::Result<Option<(Server, u16)>> {
    let (Some(addr), true) = (&settings.telemetry.metrics_addr, settings.telemetry.metrics_enabled) else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr.as_str()).with_context(|| {
        format!("could not bind METRICS_ADDR {addr} (another instance on this host? give each its own METRICS_ADDR)")
    })?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(scrape))
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .run();
    tracing::info!(addr = %addr, port, "metrics listening");
    Ok(Some((server, port)))
}

impl Application {
    /// Prepares everything and binds the listener.
    ///
    /// # Errors
    /// Any start-up failure, with context saying which step failed.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = connect_database_with_retry(&settings).await?;
        let schema = database::prepare_schema(&settings, &db).await?;
        let metrics = Metrics::new(Some(db.clone()));
        let lifecycle = Lifecycle::new();
        let state =
            web::Data::new(services::compose(&settings, &db, &schema, metrics.clone(), lifecycle.clone()).await?);
        let idempotency = state.idempotency.clone();
        let tables = std::iter::once(<infra::item_repository::ItemsTable as infra::resource::ScopedTable>::TABLE)
            .chain(state.resources.tables().iter().copied())
            .collect();
        let memberships = infra::better_auth::SqlMembershipStore::new(db.clone(), &schema);

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| format!("could not bind {}:{}", settings.server.host, settings.server.port))?;
        let port = listener.local_addr()?.port();
        let metrics = web::Data::from(metrics);
        let options = AppOptions {
            body: crate::extract::BodyConfig {
                max_bytes: settings.server.max_request_size,
                timeout: settings.server.request_body_timeout,
            },
            metrics: metrics.clone(),
            serve_metrics: settings.telemetry.metrics_enabled && settings.telemetry.metrics_on_main_listener,
        };
        let mut server = HttpServer::new(move || crate::app::build(state.clone(), options.clone()))
            .on_connect(crate::extract::json_body::remember_socket)
            .listen(listener)?
            // Signals are handled by `lifecycle` so readiness can turn first.
            .disable_signals()
            .shutdown_timeout(settings.server.shutdown_timeout.as_secs());
        if let Some(workers) = settings.server.workers {
            server = server.workers(workers);
        }
        tracing::info!(host = %settings.server.host, port, "listening");
        let (metrics_server, metrics_port) = metrics_server(&settings, metrics)?.unzip();
        Ok(Self {
            port,
            metrics_port,
            server: server.run(),
            metrics_server,
            db,
            lifecycle,
            shutdown_delay: settings.server.shutdown_delay,
            idempotency,
            memberships,
            tables,
        })
    }

    /// The bound port (useful when `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics`' own listener (`METRICS_ADDR`), when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or a handle's `stop`), then drains
    /// in-flight requests and closes the database pool.
    ///
    /// # Errors
    /// I/O errors of the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let signals = tokio::spawn(shutdown_on_signal(self.lifecycle.clone(), handle, self.shutdown_delay));
        let purge = tokio::spawn(housekeeping(
            self.idempotency.clone(),
            self.memberships.clone(),
            self.tables.clone(),
        ));
        let metrics_handle = self.metrics_server.as_ref().map(Server::handle);
        if let Some(metrics) = self.metrics_server {
            tokio::spawn(metrics);
        }
        let result = self.server.await;
        signals.abort();
        purge.abort();
        if let Some(metrics) = metrics_handle {
            metrics.stop(false).await;
        }
        self.db.close().await;
        tracing::info!("database pool closed");
        result
    }
}
