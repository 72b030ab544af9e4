//! Prometheus metrics (OpenMetrics text at `/metrics`, or on `METRICS_ADDR`).
//!
//! - `http_requests_total{method,route,status}` and
//!   `http_request_duration_seconds{method,route}`: `route` is the matched
//!   template (`/api/v1/items/{id}`), never the raw path, so ids and junk
//!   URLs cannot blow up the number of series;
//! - `session_cache_lookups_total{outcome="hit|miss|error"}`;
//! - `db_pool_connections` and `db_pool_idle_connections`, read at scrape time;
//! - `response_cache_pending_invalidations`: namespaces whose invalidation
//!   waits for Redis to answer again (at most one each), read at scrape time;
//! - `db_item_lane_batches_total` and `db_item_lane_requests_total`: item
//!   reads and inserts answered by the PostgreSQL lanes, and the batches that
//!   answered them (their ratio is the batching factor), read at scrape time.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};
use async_trait::async_trait;
use domain::auth::{CachedSession, SessionCache, TokenHash};
use infra::Db;
use infra::item_repository::lanes::Lanes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

// Label values are `&'static str`, so recording a request allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

/// The standard methods by name; any other (a client may send any token)
/// is `OTHER`, so made-up methods cannot add series.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

/// A route template as a `&'static str`. Templates come from the app's route
/// table, a fixed set, so each is leaked once and the set stays bounded.
fn route_label(template: &str) -> &'static str {
    static INTERNED: std::sync::LazyLock<std::sync::RwLock<std::collections::HashSet<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(known) = INTERNED
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(template)
    {
        return known;
    }
    let mut interned = INTERNED.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = interned.get(template) {
        return known;
    }
    let leaked: &'static str = Box::leak(template.to_owned().into_boxed_str());
    interned.insert(leaked);
    leaked
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    outcome: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    cache: Family<CacheLabels, Counter>,
    pool_size: Gauge<i64, AtomicI64>,
    pool_idle: Gauge<i64, AtomicI64>,
    pending_invalidations: Gauge<i64, AtomicI64>,
    lane_batches: Counter,
    lane_requests: Counter,
    db: Option<Db>,
    response_cache: std::sync::OnceLock<infra::cache::ResilientVersionedCache>,
    lanes: std::sync::OnceLock<Lanes>,
    /// Two scrapes at once must not both add the same lane counts.
    lane_sync: std::sync::Mutex<()>,
}

impl Metrics {
    /// Registers every metric; pool gauges read `db` (none in handler unit tests).
    pub fn new(db: Option<Db>) -> Arc<Self> {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = HistogramFamily::new_with_constructor(latency_histogram);
        let cache = Family::<CacheLabels, Counter>::default();
        let pool_size = Gauge::<i64, AtomicI64>::default();
        let pool_idle = Gauge::<i64, AtomicI64>::default();
        let pending_invalidations = Gauge::<i64, AtomicI64>::default();
        let (lane_batches, lane_requests) = (Counter::default(), Counter::default());
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        registry.register(
            "session_cache_lookups",
            "Session cache lookups by outcome",
            cache.clone(),
        );
        registry.register("db_pool_connections", "Open database connections", pool_size.clone());
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        registry.register(
            "response_cache_pending_invalidations",
            "Response-cache namespaces waiting for their invalidation to be retried",
            pending_invalidations.clone(),
        );
        registry.register(
            "db_item_lane_batches",
            "Batches the PostgreSQL item lanes ran",
            lane_batches.clone(),
        );
        registry.register(
            "db_item_lane_requests",
            "Item reads and inserts the PostgreSQL item lanes answered",
            lane_requests.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            latency,
            cache,
            pool_size,
            pool_idle,
            pending_invalidations,
            lane_batches,
            lane_requests,
            db,
            response_cache: std::sync::OnceLock::new(),
            lanes: std::sync::OnceLock::new(),
            lane_sync: std::sync::Mutex::new(()),
        })
    }

    fn observe(&self, method: &'static str, route: &'static str, status: u16, elapsed: Duration) {
        self.latency
            .get_or_create(&RouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels { method, route, status })
            .inc();
    }

    fn cache_outcome(&self, outcome: &'static str) {
        self.cache.get_or_create(&CacheLabels { outcome }).inc();
    }

    /// Reports `cache`'s pending invalidations from now on.
    pub fn watch_response_cache(&self, cache: infra::cache::ResilientVersionedCache) {
        let _ = self.response_cache.set(cache);
    }

    /// Reports what `lanes` have batched from now on.
    pub fn watch_item_lanes(&self, lanes: Lanes) {
        let _ = self.lanes.set(lanes);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        if let Some(lanes) = self.lanes.get() {
            let _sync = self.lane_sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let stats = lanes.stats();
            self.lane_batches
                .inc_by(stats.batches.saturating_sub(self.lane_batches.get()));
            self.lane_requests
                .inc_by(stats.jobs.saturating_sub(self.lane_requests.get()));
        }
        if let Some(cache) = self.response_cache.get() {
            self.pending_invalidations
                .set(i64::try_from(cache.pending()).unwrap_or(i64::MAX));
        }
        if let Some(db) = &self.db {
            let (size, idle) = db.pool_stats();
            self.pool_size.set(i64::from(size));
            self.pool_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
        }
        let mut out = String::with_capacity(8 * 1024);
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %error, "encoding metrics failed");
        }
        out
    }
}

/// Counts every answer by route and status, and times it.
///
/// # Errors
/// Only what inner services return as `Err`.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let started = Instant::now();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let request = response.request();
        let route = request.match_pattern();
        metrics.observe(
            method_label(request.method()),
            route.as_deref().map_or("unmatched", route_label),
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}

/// `GET /metrics`.
pub async fn scrape(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}

/// A [`SessionCache`] that counts hits, misses and errors of the one it wraps.
pub struct CountingSessionCache {
    inner: Arc<dyn SessionCache>,
    metrics: Arc<Metrics>,
}

impl CountingSessionCache {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SessionCache>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl SessionCache for CountingSessionCache {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, domain::Error> {
        let result = self.inner.get(key).await;
        self.metrics.cache_outcome(match &result {
            Ok(Some(_)) => "hit",
            Ok(None) => "miss",
            Err(_) => "error",
        });
        result
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), domain::Error> {
        self.inner.put(key, session, ttl).await
    }
}
