//! Start-up: connect, prepare the schema, detect better-auth's tables, choose
//! the caches, and bind the server.
//!
//! Order matters and fails fast: a database that cannot be reached, missing
//! better-auth tables or an unusable `REDIS_URL` stop the process with a
//! message saying what to fix. Only in development on SQLite (the embedded
//! default) are better-auth-compatible tables created when missing, so a
//! fresh clone runs with no setup at all.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{HttpServer, web};
use anyhow::Context as _;
use domain::auth::{AuthService, AuthSettings, SessionCache, SignatureVerifier};
use domain::clock::{Clock, SystemClock};
use domain::health::DependencyProbe;
use domain::item::ItemService;
use domain::rate_limit::{RateLimitService, RateLimiter, RatePolicy};
use infra::better_auth::dev::DevBetterAuth;
use infra::better_auth::{BetterAuthSchema, NamingStyle, SqlSessionStore};
use infra::cache::{
    MemorySessionCache, RedisSessionCache, RedisVersionedCache, ResilientVersionedCache, TieredSessionCache,
};
use infra::db::DbOptions;
use infra::probes::{DatabaseProbe, RedisProbe};
use infra::rate_limit::{MemoryRateLimiter, RedisRateLimiter};
use infra::redis::RedisClient;
use infra::{Db, DbBackendKind, SeaOrmItemRepository};
use migration::{Migrator, MigratorTrait};

use crate::app::AppOptions;
use crate::lifecycle::{Lifecycle, shutdown_on_signal};
use crate::metrics::{CountingSessionCache, Metrics, scrape};
use crate::settings::Settings;
use crate::state::{AppState, CookieNames, SecurityPolicy};

/// Entries the in-process session cache holds at most.
const MEMORY_CACHE_ENTRIES: u64 = 100_000;

/// A bound, not yet running, server.
pub struct Application {
    port: u16,
    server: Server,
    metrics_server: Option<Server>,
    db: Db,
    lifecycle: Arc<Lifecycle>,
    shutdown_delay: Duration,
}

/// Connects to the configured database once.
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect_database(settings: &Settings) -> anyhow::Result<Db> {
    if let Some(dir) = sqlite_parent_dir(&settings.database.url) {
        std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    let options = DbOptions {
        max_connections: settings.database.pool_max,
        acquire_timeout: settings.database.timeout,
    };
    Db::connect(&settings.database.url, &options).await
}

/// Connects, retrying with exponential backoff (250 ms doubling to 5 s) for up
/// to `DB_STARTUP_TIMEOUT`, logging each failed attempt: in a fresh deployment
/// the database often comes up after the service.
///
/// # Errors
/// When the database is still unreachable at the deadline.
pub async fn connect_database_with_retry(settings: &Settings) -> anyhow::Result<Db> {
    let started = tokio::time::Instant::now();
    let deadline = started + settings.database.startup_timeout;
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        match connect_database(settings).await {
            Ok(db) => return Ok(db),
            Err(error) => {
                let now = tokio::time::Instant::now();
                if now + backoff > deadline {
                    return Err(error.context(format!(
                        "database unreachable after {attempt} attempt(s) over {:.1} s (DB_STARTUP_TIMEOUT={} s)",
                        (now - started).as_secs_f64(),
                        settings.database.startup_timeout.as_secs()
                    )));
                }
                tracing::warn!(
                    attempt,
                    retry_in_ms = backoff.as_millis(),
                    error = format!("{error:#}"),
                    "database not reachable yet"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
        }
    }
}

/// The directory a relative or absolute SQLite file lives in, to create it.
fn sqlite_parent_dir(url: &str) -> Option<std::path::PathBuf> {
    let normalized = infra::db::normalize_url(url);
    let path = normalized
        .strip_prefix("sqlite://")
        .or_else(|| normalized.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(ToOwned::to_owned)
}

impl Application {
    /// Prepares everything and binds the listener.
    ///
    /// # Errors
    /// Any start-up failure, with context saying which step failed.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = connect_database_with_retry(&settings).await?;
        if !settings.is_production() && db.kind() == DbBackendKind::Sqlite {
            let dev = DevBetterAuth::new(db.clone(), NamingStyle::CamelCase);
            if !dev.tables_exist().await? {
                tracing::warn!(
                    "better-auth tables missing: creating empty development tables (SQLite, development only)"
                );
                dev.create_tables(true).await?;
            }
        }
        if settings.database.auto_migrate {
            Migrator::up(db.conn(), None)
                .await
                .context("running migrations failed")?;
            tracing::info!("migrations applied");
        }
        let schema = BetterAuthSchema::detect(&db).await?;
        if !settings.database.auto_migrate {
            // Serving without the app's tables would only produce 500s.
            let pending = Migrator::get_pending_migrations(db.conn())
                .await
                .context("reading migration status failed")?;
            if !pending.is_empty() {
                let names: Vec<&str> = pending.iter().map(|m| m.name()).collect();
                anyhow::bail!(
                    "{} migration(s) pending ({}): run `saas-api migrate up` (or set AUTO_MIGRATE=true) before serving",
                    names.len(),
                    names.join(", ")
                );
            }
        }
        tracing::info!(
            style = schema.style.as_str(),
            ban_columns = schema.has_ban_columns,
            naive_timestamps = ?schema.naive_timestamps,
            "better-auth schema detected"
        );

        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut probes: Vec<Arc<dyn DependencyProbe>> = vec![Arc::new(DatabaseProbe(db.clone()))];
        let redis = match &settings.cache.redis_url {
            Some(url) => {
                let client = RedisClient::new(url, &settings.cache.redis_prefix, settings.cache.redis_timeout)?;
                if let Err(error) = client.ping().await {
                    tracing::warn!(error = %error, "Redis is not answering yet; sessions are checked against the database and rate limits kept in process until it does");
                }
                probes.push(Arc::new(RedisProbe(client.clone())));
                tracing::info!("session cache and rate limits: Redis (shared by all instances)");
                Some(client)
            }
            None => {
                tracing::info!("session cache and rate limits: in process (no REDIS_URL)");
                None
            }
        };
        let metrics = Metrics::new(Some(db.clone()));
        let cache: Arc<dyn SessionCache> = match &redis {
            Some(client) => Arc::new(TieredSessionCache::new(
                RedisSessionCache::new(client.clone()),
                settings.cache.session_l1_ttl.min(settings.cache.session_cache_ttl),
                MEMORY_CACHE_ENTRIES,
            )),
            None => Arc::new(MemorySessionCache::new(MEMORY_CACHE_ENTRIES)),
        };
        let cache: Arc<dyn SessionCache> = Arc::new(CountingSessionCache::new(cache, metrics.clone()));
        let shared_limiter = redis
            .as_ref()
            .map(|c| Arc::new(RedisRateLimiter::new(c.clone())) as Arc<dyn RateLimiter>);
        let rate_limit = RateLimitService::new(
            shared_limiter,
            Arc::new(MemoryRateLimiter::new()),
            RatePolicy {
                limit: settings.security.rate_limit_requests,
                window: settings.security.rate_limit_window,
            },
        );
        let secrets: Vec<&str> = settings.auth.better_auth_secrets.iter().map(|s| s.expose()).collect();
        let auth = AuthService::new(
            SignatureVerifier::new(&secrets),
            Arc::new(SqlSessionStore::new(db.clone(), &schema)),
            cache,
            clock.clone(),
            AuthSettings {
                cache_ttl: settings.cache.session_cache_ttl,
                require_signed_bearer: settings.auth.bearer_require_signature,
            },
        );
        let mut items = ItemService::new(Arc::new(SeaOrmItemRepository::new(db.clone())), clock);
        if let (Some(client), false) = (&redis, settings.cache.response_cache_ttl.is_zero()) {
            let ttl = settings.cache.response_cache_ttl;
            tracing::info!(ttl_s = ttl.as_secs(), "response cache of item lists and items: on");
            let cache = ResilientVersionedCache::new(Arc::new(RedisVersionedCache::new(client.clone())), ttl);
            items = items.with_view_cache(Arc::new(cache), ttl);
        }
        let lifecycle = Lifecycle::new();
        let state = web::Data::new(AppState {
            auth,
            items,
            probes,
            redis_configured: settings.cache.redis_url.is_some(),
            cookies: CookieNames::new(&settings.auth.cookie_prefix),
            rate_limit,
            security: SecurityPolicy {
                frontend_origins: settings.security.frontend_origins.clone(),
                trusted_proxies: settings.security.trusted_proxies.clone(),
                production: settings.is_production(),
                expose_causes: settings.telemetry.debug && !settings.is_production(),
            },
            lifecycle: lifecycle.clone(),
        });

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
            serve_metrics: settings.telemetry.metrics_enabled && settings.telemetry.metrics_addr.is_none(),
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
        let metrics_server = match (&settings.telemetry.metrics_addr, settings.telemetry.metrics_enabled) {
            (Some(addr), true) => {
                let server = HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(metrics.clone())
                        .route("/metrics", web::get().to(scrape))
                })
                .bind(addr.as_str())
                .with_context(|| format!("could not bind METRICS_ADDR {addr}"))?
                .workers(1)
                .disable_signals()
                .run();
                tracing::info!(addr = %addr, "metrics listening");
                Some(server)
            }
            _ => None,
        };
        Ok(Self {
            port,
            server: server.run(),
            metrics_server,
            db,
            lifecycle,
            shutdown_delay: settings.server.shutdown_delay,
        })
    }

    /// The bound port (useful when `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
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
        let metrics_handle = self.metrics_server.as_ref().map(Server::handle);
        if let Some(metrics) = self.metrics_server {
            tokio::spawn(metrics);
        }
        let result = self.server.await;
        signals.abort();
        if let Some(metrics) = metrics_handle {
            metrics.stop(false).await;
        }
        self.db.close().await;
        tracing::info!("database pool closed");
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_directories_are_derived_from_the_url() {
        assert_eq!(sqlite_parent_dir("sqlite://data/saas.db"), Some("data".into()));
        assert_eq!(
            sqlite_parent_dir("sqlite+aiosqlite:///data/x.db?mode=rwc"),
            Some("data".into())
        );
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_parent_dir("sqlite://app.db"), None);
        assert_eq!(sqlite_parent_dir("postgres://h/db"), None);
    }
}
