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
//! - `db_lane_batches_total` and `db_lane_requests_total`: reads and
//!   inserts of every resource answered by the PostgreSQL lanes, and the batches that
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
use infra::better_auth::auth_changes::ListenerStatus;
use infra::better_auth::secondary_tracking::TrackingStatus;
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
/// Each thread remembers the ones it has seen, so a request takes no lock
/// shared with the other workers.
fn route_label(template: &str) -> &'static str {
    thread_local! {
        static SEEN: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if let Some(known) = SEEN.with_borrow(|seen| seen.iter().copied().find(|known| *known == template)) {
        return known;
    }
    let known = interned_route_label(template);
    SEEN.with_borrow_mut(|seen| seen.push(known));
    known
}

fn interned_route_label(template: &str) -> &'static str {
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

/// The two series one answer updates, as remembered by a worker thread.
struct SeriesHandles {
    key: (u64, &'static str, &'static str, u16),
    latency: Histogram,
    requests: Counter,
}

/// Most series handles a thread remembers (routes × methods × statuses in use).
const MAX_CACHED_SERIES: usize = 256;

/// Tells one `Metrics` from another in the per-thread handle caches.
static NEXT_METRICS_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The process's metrics.
pub struct Metrics {
    /// Unique per instance (per-thread handle caches are keyed by it).
    id: u64,
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
    lanes: std::sync::OnceLock<infra::Db>,
    auth_changes: std::sync::OnceLock<Arc<ListenerStatus>>,
    auth_listening: Gauge<i64, AtomicI64>,
    secondary_tracking: std::sync::OnceLock<Arc<TrackingStatus>>,
    secondary_tracking_up: Gauge<i64, AtomicI64>,
    otel_exported: Counter,
    otel_dropped: Counter,
    auth_notifications: Gauge<i64, AtomicI64>,
    auth_reconnects: Gauge<i64, AtomicI64>,
    auth_distrusted: Gauge<i64, AtomicI64>,
    revocations: std::sync::OnceLock<Arc<domain::revocation::Revocations>>,
    /// Two scrapes at once must not both add the same lane counts.
    lane_sync: std::sync::Mutex<()>,
    process: crate::process_metrics::ProcessMetrics,
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
        let auth_listening = Gauge::<i64, AtomicI64>::default();
        let secondary_tracking_up = Gauge::<i64, AtomicI64>::default();
        let otel_exported = Counter::default();
        let otel_dropped = Counter::default();
        registry.register(
            "otel_spans_exported",
            "Spans the OpenTelemetry collector took (0 while export is off)",
            otel_exported.clone(),
        );
        registry.register(
            "otel_spans_dropped",
            "Spans lost: the export queue was full, or the collector did not take them in time",
            otel_dropped.clone(),
        );
        registry.register(
            "session_storage_tracking_up",
            "1 while Redis pushes better-auth's secondary-storage changes to this instance (sessions from there may then be reused for up to a second), 0 otherwise",
            secondary_tracking_up.clone(),
        );
        let auth_notifications = Gauge::<i64, AtomicI64>::default();
        let auth_reconnects = Gauge::<i64, AtomicI64>::default();
        let auth_distrusted = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "auth_cache_distrusted_hits",
            "Cached sessions, memberships, API keys and JWTs not trusted because a better-auth change (or a listener gap) came after them; each was re-checked against the database",
            auth_distrusted.clone(),
        );
        registry.register(
            "auth_change_listener_up",
            "1 while better-auth's changes are being received (PostgreSQL LISTEN), 0 otherwise (reconnecting, or off: see /health's auth_changes)",
            auth_listening.clone(),
        );
        registry.register(
            "auth_change_notifications",
            "better-auth changes received and applied since start",
            auth_notifications.clone(),
        );
        registry.register(
            "auth_change_listener_reconnects",
            "Times the auth-change listener lost its connection and listened again",
            auth_reconnects.clone(),
        );
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
            "db_lane_batches",
            "Batches the PostgreSQL lanes ran (every resource's)",
            lane_batches.clone(),
        );
        registry.register(
            "db_lane_requests",
            "Reads and inserts the PostgreSQL lanes answered (every resource's)",
            lane_requests.clone(),
        );
        let process = crate::process_metrics::ProcessMetrics::register(&mut registry);
        Arc::new(Self {
            id: NEXT_METRICS_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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
            auth_changes: std::sync::OnceLock::new(),
            auth_listening,
            secondary_tracking: std::sync::OnceLock::new(),
            secondary_tracking_up,
            otel_exported,
            otel_dropped,
            auth_notifications,
            auth_reconnects,
            auth_distrusted,
            revocations: std::sync::OnceLock::new(),
            lane_sync: std::sync::Mutex::new(()),
            process,
        })
    }

    /// Records one answer. The series' handles are remembered per thread
    /// (a handle shares its series' storage), so a request neither hashes
    /// label sets nor takes the families' locks, which both workers would
    /// otherwise contend for on every request.
    fn observe(&self, method: &'static str, route: &'static str, status: u16, elapsed: Duration) {
        thread_local! {
            static HANDLES: std::cell::RefCell<Vec<SeriesHandles>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let key = (self.id, method, route, status);
        let seconds = elapsed.as_secs_f64();
        // Recorded through the borrowed handles: cloning them would touch
        // their reference counts, shared with the other workers.
        let recorded = HANDLES.with_borrow(|handles| {
            handles.iter().find(|h| h.key == key).map(|h| {
                h.latency.observe(seconds);
                h.requests.inc();
            })
        });
        if recorded.is_some() {
            return;
        }
        let latency = self.latency.get_or_create_owned(&RouteLabels { method, route });
        let requests = self
            .requests
            .get_or_create_owned(&RequestLabels { method, route, status });
        latency.observe(seconds);
        requests.inc();
        HANDLES.with_borrow_mut(|handles| {
            // Bounded like the series themselves; a handle of a dropped
            // `Metrics` (tests) is never matched again, as ids are not reused.
            if handles.len() >= MAX_CACHED_SERIES {
                handles.clear();
            }
            handles.push(SeriesHandles { key, latency, requests });
        });
    }

    /// Reports `cache`'s pending invalidations from now on.
    pub fn watch_response_cache(&self, cache: infra::cache::ResilientVersionedCache) {
        let _ = self.response_cache.set(cache);
    }

    /// Reports whether better-auth's secondary storage is tracked.
    pub fn watch_secondary_tracking(&self, status: Arc<TrackingStatus>) {
        let _ = self.secondary_tracking.set(status);
    }

    /// Reports whether better-auth's changes are received, and how many
    /// cache hits they made stale, from now on.
    pub fn watch_auth_changes(&self, status: Arc<ListenerStatus>, revocations: Arc<domain::revocation::Revocations>) {
        let _ = self.auth_changes.set(status);
        let _ = self.revocations.set(revocations);
    }

    /// Reports what the lanes of `db` have batched from now on.
    pub fn watch_lanes(&self, db: infra::Db) {
        let _ = self.lanes.set(db);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        if let Some(db) = self.lanes.get() {
            let _sync = self.lane_sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let stats = db.lane_counts().stats();
            self.lane_batches
                .inc_by(stats.batches.saturating_sub(self.lane_batches.get()));
            self.lane_requests
                .inc_by(stats.jobs.saturating_sub(self.lane_requests.get()));
        }
        if let Some(stats) = crate::otel::stats() {
            let _sync = self.lane_sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.otel_exported
                .inc_by(stats.exported().saturating_sub(self.otel_exported.get()));
            self.otel_dropped
                .inc_by(stats.dropped().saturating_sub(self.otel_dropped.get()));
        }
        if let Some(status) = self.secondary_tracking.get() {
            self.secondary_tracking_up.set(i64::from(status.tracking()));
        }
        if let Some(status) = self.auth_changes.get() {
            self.auth_listening.set(i64::from(status.listening()));
            self.auth_notifications
                .set(i64::try_from(status.received()).unwrap_or(i64::MAX));
            self.auth_reconnects
                .set(i64::try_from(status.reconnects()).unwrap_or(i64::MAX));
        }
        if let Some(revocations) = self.revocations.get() {
            self.auth_distrusted
                .set(i64::try_from(revocations.distrusted()).unwrap_or(i64::MAX));
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
        {
            let _sync = self.lane_sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.process.refresh();
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
        let route = Route::of(request);
        metrics.observe(
            method_label(request.method()),
            route.0.unwrap_or("unmatched"),
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}

/// The route template a request matched (`None`: no route did), resolved
/// once per request and kept in its extensions: the metrics and the access
/// log both need it, and resolving it walks the route table and builds a
/// string.
#[derive(Debug, Clone, Copy)]
pub struct Route(pub Option<&'static str>);

impl Route {
    /// The template `request` matched, resolved on first use.
    pub fn of(request: &actix_web::HttpRequest) -> Self {
        use actix_web::HttpMessage as _;
        if let Some(route) = request.extensions().get::<Self>() {
            return *route;
        }
        let route = Self(request.match_pattern().as_deref().map(route_label));
        request.extensions_mut().insert(route);
        route
    }
}

/// `GET /metrics`.
pub async fn scrape(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}

/// A [`SessionCache`] that counts hits, misses and errors of the one it wraps.
///
/// The three series are resolved once, here: a lookup then costs one atomic
/// increment, not a label hash and a family lock per request.
pub struct CountingSessionCache {
    inner: Arc<dyn SessionCache>,
    hits: Counter,
    misses: Counter,
    errors: Counter,
}

impl CountingSessionCache {
    /// Wraps `inner`, counting into `metrics`.
    pub fn new(inner: Arc<dyn SessionCache>, metrics: Arc<Metrics>) -> Self {
        let series = |outcome| metrics.cache.get_or_create_owned(&CacheLabels { outcome });
        Self {
            inner,
            hits: series("hit"),
            misses: series("miss"),
            errors: series("error"),
        }
    }
}

#[async_trait]
impl SessionCache for CountingSessionCache {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, domain::Error> {
        let result = self.inner.get(key).await;
        let outcome = match &result {
            Ok(Some(_)) => {
                self.hits.inc();
                "hit"
            }
            Ok(None) => {
                self.misses.inc();
                "miss"
            }
            Err(_) => {
                self.errors.inc();
                "error"
            }
        };
        // On the authentication span, when traces are exported.
        if infra::db::in_traced_request() {
            tracing::Span::current().record("saas.session_cache", outcome);
        }
        result
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), domain::Error> {
        self.inner.put(key, session, ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(metrics: &Metrics, series: &str) -> Option<String> {
        metrics
            .render()
            .lines()
            .find(|line| line.starts_with(series))
            .map(|line| line.rsplit(' ').next().unwrap_or_default().to_owned())
    }

    #[test]
    fn each_instance_counts_its_own_answers_through_the_per_thread_handles() {
        let (first, second) = (Metrics::new(None), Metrics::new(None));
        let series = r#"http_requests_total{method="GET",route="/api/v1/users/me",status="200"}"#;
        for _ in 0..3 {
            first.observe("GET", "/api/v1/users/me", 200, Duration::from_millis(1));
        }
        second.observe("GET", "/api/v1/users/me", 200, Duration::from_millis(1));
        assert_eq!(count(&first, series).as_deref(), Some("3"));
        assert_eq!(count(&second, series).as_deref(), Some("1"));
        let latency = r#"http_request_duration_seconds_count{method="GET",route="/api/v1/users/me"}"#;
        assert_eq!(count(&first, latency).as_deref(), Some("3"));

        // Another thread has its own handles onto the same series.
        let shared = Arc::clone(&first);
        std::thread::spawn(move || shared.observe("GET", "/api/v1/users/me", 200, Duration::from_millis(1)))
            .join()
            .unwrap();
        assert_eq!(count(&first, series).as_deref(), Some("4"));
        assert_eq!(count(&first, latency).as_deref(), Some("4"));
    }

    #[test]
    fn a_route_label_is_the_same_static_string_on_every_thread() {
        let here = route_label("/api/v1/items/{id}");
        let there = std::thread::spawn(|| route_label("/api/v1/items/{id}")).join().unwrap();
        assert!(std::ptr::eq(here, there), "interned once for the process");
        assert_eq!(here, "/api/v1/items/{id}");
    }

    #[tokio::test]
    async fn session_cache_outcomes_are_counted_from_the_start() {
        use domain::auth::SessionToken;
        use domain::auth::port::MockSessionCache;

        let metrics = Metrics::new(None);
        let series = |outcome: &str| format!(r#"session_cache_lookups_total{{outcome="{outcome}"}}"#);
        let mut inner = MockSessionCache::new();
        let mut answers = vec![
            Err(domain::Error::Unavailable(anyhow::anyhow!("down"))),
            Ok(None),
            Ok(None),
        ]
        .into_iter();
        inner.expect_get().returning(move |_| answers.next().unwrap());
        let cache = CountingSessionCache::new(Arc::new(inner), Arc::clone(&metrics));
        for outcome in ["hit", "miss", "error"] {
            assert_eq!(count(&metrics, &series(outcome)).as_deref(), Some("0"), "{outcome}");
        }
        let key = SessionToken::parse("countingCache0123456789abcdefghi").unwrap().hash();
        for _ in 0..3 {
            let _ = cache.get(&key).await;
        }
        assert_eq!(count(&metrics, &series("miss")).as_deref(), Some("2"));
        assert_eq!(count(&metrics, &series("error")).as_deref(), Some("1"));
        assert_eq!(count(&metrics, &series("hit")).as_deref(), Some("0"));
    }
}
