//! Redis connections, and a guard that bounds every Redis call in time.
//!
//! Redis is an accelerator here, never a source of truth: every caller treats
//! [`domain::Error::Unavailable`] from it as "carry on without the cache". The
//! timeouts keep a dead or wedged Redis from stalling requests.
//!
//! Each worker thread keeps its own multiplexed connection (redis-rs'
//! `ConnectionManager`, which reconnects by itself after Redis restarts).
//! Concurrent commands on one thread share it and are pipelined; no pool
//! check-out, and no health-check round trip before each use (a pool's
//! recycle `PING` would double every Redis round trip). Keeping the
//! connection on the thread that uses it also avoids cross-thread wake-ups.
//!
//! After a failure the client stops trying for [`BACKOFF`] (callers get an
//! immediate `Unavailable` and fall back), so an outage costs requests
//! nothing in latency; `PING` (the health check) always tries, and any
//! success closes the breaker again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use domain::Error;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long Redis is left alone after a failure.
pub const BACKOFF: Duration = Duration::from_secs(1);

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's connection to each Redis client (by client id).
    static CONNECTIONS: RefCell<HashMap<u64, ConnectionManager>> = RefCell::new(HashMap::new());
}

/// A Redis endpoint plus the key prefix and per-operation timeout every adapter uses.
#[derive(Clone)]
pub struct RedisClient {
    id: u64,
    client: redis::Client,
    config: ConnectionManagerConfig,
    prefix: String,
    op_timeout: Duration,
    /// Microseconds since `epoch` until which Redis is not tried (0: closed).
    open_until: Arc<AtomicU64>,
    epoch: Instant,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Whom a `rediss://` server must be signed by: the system's root
/// certificates, or the CA of `REDIS_TLS_CA_FILE` (PEM) instead.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// The CA certificate(s), PEM; `None`: the system's roots.
    pub ca_pem: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("custom_ca", &self.ca_pem.is_some())
            .finish()
    }
}

/// A redis-rs client for `url` (TLS with rustls for `rediss://`, trusting `tls`).
///
/// # Errors
/// When the URL cannot be parsed.
pub fn open(url: &str, tls: &RedisTls) -> redis::RedisResult<redis::Client> {
    match &tls.ca_pem {
        Some(ca) if url.starts_with("rediss://") => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        ),
        _ => redis::Client::open(url),
    }
}

/// Whether `error` (from a first `PING`) says the server's TLS certificate is
/// not trusted, or the TLS handshake failed: a configuration error, not an
/// outage, so start-up stops on it.
pub fn tls_problem(error: &Error) -> Option<String> {
    let Error::Unavailable(cause) = error else {
        return None;
    };
    let chain = format!("{cause:#}");
    let lower = chain.to_ascii_lowercase();
    ["certificate", "unknownissuer", "handshake", "tls"]
        .iter()
        .any(|needle| lower.contains(needle))
        .then(|| {
            // The chain repeats the TLS error at several layers: say it once.
            let mut parts: Vec<&str> = Vec::new();
            for part in chain.split(": ").filter(|p| !p.starts_with("redis unavailable")) {
                if !parts.contains(&part) {
                    parts.push(part);
                }
            }
            parts.join(": ")
        })
}

impl RedisClient {
    /// A client for `url` (connections are opened on first use, per thread).
    /// `prefix` namespaces every key, so several deployments or test runs can
    /// share one Redis.
    ///
    /// # Errors
    /// When the URL cannot be parsed.
    pub fn new(url: &str, prefix: &str, op_timeout: Duration) -> anyhow::Result<Self> {
        Self::with_tls(url, prefix, op_timeout, &RedisTls::default())
    }

    /// As [`Self::new`], trusting `tls` for a `rediss://` server.
    ///
    /// # Errors
    /// When the URL cannot be parsed.
    pub fn with_tls(url: &str, prefix: &str, op_timeout: Duration, tls: &RedisTls) -> anyhow::Result<Self> {
        let client = open(url, tls).with_context(|| format!("invalid Redis URL {}", crate::db::redact(url)))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(op_timeout))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            client,
            config,
            prefix: prefix.to_owned(),
            op_timeout,
            open_until: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        })
    }

    /// `prefix` + `key`.
    pub fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        full
    }

    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(conn) = CONNECTIONS.with(|c| c.borrow().get(&self.id).cloned()) {
            return Ok(conn);
        }
        let conn = ConnectionManager::new_with_config(self.client.clone(), self.config.clone()).await?;
        CONNECTIONS.with(|c| c.borrow_mut().insert(self.id, conn.clone()));
        Ok(conn)
    }

    /// Runs `op` on this thread's connection, within the operation timeout.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when no connection can be had, the command fails,
    /// or the whole thing takes longer than the timeout.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        if self.now_micros() < self.open_until.load(Ordering::Relaxed) {
            return Err(unavailable(anyhow::anyhow!("redis recently failed; not retried yet")));
        }
        self.attempt(op).await
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    async fn attempt<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let result = self.attempt_once(op).await;
        let open_until = match &result {
            Ok(_) => 0,
            Err(_) => self.now_micros() + u64::try_from(BACKOFF.as_micros()).unwrap_or(u64::MAX),
        };
        self.open_until.store(open_until, Ordering::Relaxed);
        result
    }

    async fn attempt_once<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let work = async {
            let conn = self
                .connection()
                .await
                .map_err(|e| unavailable(anyhow::Error::new(e)))?;
            op(conn).await.map_err(|e| unavailable(anyhow::Error::new(e)))
        };
        // Inside a traced request only (see `crate::db::span`).
        let span = if !crate::db::in_traced_request() {
            tracing::Span::none()
        } else {
            tracing::info_span!(target: "otel", "redis", otel.kind = "client", db.system.name = "redis")
        };
        match tokio::time::timeout(self.op_timeout, tracing::Instrument::instrument(work, span)).await {
            Ok(result) => result,
            Err(_) => Err(unavailable(anyhow::anyhow!(
                "redis operation timed out after {:?}",
                self.op_timeout
            ))),
        }
    }

    /// `SET key value PX ttl` (at least 1 ms).
    ///
    /// # Errors
    /// As [`RedisClient::run`].
    pub async fn set_with_ttl(&self, key: String, value: Vec<u8>, ttl: Duration) -> Result<(), Error> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.run(|mut conn| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// Sends `PING`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis does not answer `PONG` in time.
    pub async fn ping(&self) -> Result<(), Error> {
        // Always tried, even while the breaker is open: this is how it closes.
        self.attempt(|mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await
            .map(|_| ())
    }

    /// One `PING` on a connection of its own allowed `patience` to connect
    /// (a TLS handshake included) and answer, for start-up: the per-call
    /// timeout (`REDIS_TIMEOUT_MS`) is tuned for requests, and a handshake
    /// cut short by it would hide an untrusted certificate.
    ///
    /// # Errors
    /// [`Error::Unavailable`] with the cause.
    pub async fn ping_patiently(&self, patience: Duration) -> Result<(), Error> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(patience))
            .set_response_timeout(Some(patience));
        let work = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(patience, work).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(unavailable(anyhow::Error::new(error))),
            Err(_) => Err(unavailable(anyhow::anyhow!("no answer within {patience:?}"))),
        }
    }
}

/// Whether `url` is a Redis URL this client can open (scheme, host, port,
/// database number); the problem in one line, the password never shown.
///
/// # Errors
/// The problem, when it is not.
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://")) {
        return Err(format!(
            "expected redis:// or rediss://, got {:?}",
            crate::db::redact(url)
        ));
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| format!("{e} in {:?}", crate::db::redact(url)))
}

fn unavailable(error: anyhow::Error) -> Error {
    Error::Unavailable(error.context("redis unavailable"))
}
