//! The Redis connection pool and a guard that bounds every Redis call in time.
//!
//! Redis is an accelerator here, never a source of truth: every caller treats
//! [`domain::Error::Unavailable`] from it as "carry on without the cache". The
//! timeouts keep a dead or wedged Redis from stalling requests.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use deadpool_redis::{Config, Connection, Pool, Runtime, Timeouts};
use domain::Error;

/// Default bound on a single Redis operation, pool wait included.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(250);

/// A Redis pool plus the key prefix and per-operation timeout every adapter uses.
#[derive(Clone)]
pub struct RedisClient {
    pool: Pool,
    prefix: String,
    op_timeout: Duration,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisClient {
    /// Builds a pool for `url` (connections are opened lazily). `prefix`
    /// namespaces every key, so several deployments or test runs can share one Redis.
    ///
    /// # Errors
    /// When the URL cannot be parsed.
    pub fn new(url: &str, prefix: &str, max_size: usize, op_timeout: Duration) -> anyhow::Result<Self> {
        let mut config = Config::from_url(url);
        let mut pool_config = deadpool_redis::PoolConfig::new(max_size);
        pool_config.timeouts = Timeouts {
            wait: Some(op_timeout),
            create: Some(op_timeout),
            recycle: Some(op_timeout),
        };
        config.pool = Some(pool_config);
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .with_context(|| format!("invalid REDIS_URL {}", crate::db::redact(url)))?;
        Ok(Self {
            pool,
            prefix: prefix.to_owned(),
            op_timeout,
        })
    }

    /// `prefix` + `key`.
    pub fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        full
    }

    /// Runs `op` on a pooled connection, within the operation timeout.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when no connection can be had, the command fails,
    /// or the whole thing takes longer than the timeout.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<T, deadpool_redis::redis::RedisError>>,
    {
        let work = async {
            let conn = self.pool.get().await.map_err(|e| unavailable(anyhow::Error::new(e)))?;
            op(conn).await.map_err(|e| unavailable(anyhow::Error::new(e)))
        };
        match tokio::time::timeout(self.op_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(unavailable(anyhow::anyhow!(
                "redis operation timed out after {:?}",
                self.op_timeout
            ))),
        }
    }

    /// Sends `PING`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis does not answer `PONG` in time.
    pub async fn ping(&self) -> Result<(), Error> {
        self.run(|mut conn| async move {
            deadpool_redis::redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
        })
        .await
        .map(|_| ())
    }
}

fn unavailable(error: anyhow::Error) -> Error {
    Error::Unavailable(error.context("redis unavailable"))
}
