//! [`ResilientVersionedCache`]: what a [`VersionedCache`] does while its
//! backend (Redis) is down.
//!
//! - Failed reads and stores are reported to the caller (who bypasses the
//!   cache) and logged at most once a second, with the count suppressed.
//! - A failed invalidation must not be forgotten: entries cached before the
//!   outage would be served again once Redis returns. The namespace is kept
//!   in a pending set — at most once, however many writes failed for it — and
//!   one background task per cache retries every pending namespace every
//!   500 ms until it succeeds or the namespace's entries have expired anyway
//!   (one TTL after the first failure). The set holds at most
//!   [`MAX_PENDING`] namespaces; beyond that a namespace's entries simply
//!   expire within the TTL, and that is logged (throttled) too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::cache::VersionedCache;
use domain::log_throttle::Throttle;
use tokio::time::Instant;

/// Most namespaces whose invalidation can wait for a retry at once.
pub const MAX_PENDING: usize = 10_000;
const RETRY_EVERY: Duration = Duration::from_millis(500);

struct Shared {
    inner: Arc<dyn VersionedCache>,
    ttl: Duration,
    /// Namespace → when its first failed invalidation happened.
    pending: Mutex<HashMap<String, Instant>>,
    retrying: AtomicBool,
    read_warnings: Throttle,
    invalidate_warnings: Throttle,
}

/// The decorator (see the module docs).
#[derive(Clone)]
pub struct ResilientVersionedCache {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ResilientVersionedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientVersionedCache")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl ResilientVersionedCache {
    /// Wraps `inner`, whose entries live `ttl`.
    pub fn new(inner: Arc<dyn VersionedCache>, ttl: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner,
                ttl,
                pending: Mutex::new(HashMap::new()),
                retrying: AtomicBool::new(false),
                read_warnings: Throttle::default(),
                invalidate_warnings: Throttle::default(),
            }),
        }
    }

    /// How many namespaces wait for their invalidation to be retried.
    pub fn pending(&self) -> usize {
        self.shared.lock().len()
    }

    /// Records a namespace to retry; starts the retry task if none runs.
    fn remember(&self, namespace: &str, error: &Error) {
        let overflow = {
            let mut pending = self.shared.lock();
            if pending.contains_key(namespace) {
                false
            } else if pending.len() >= MAX_PENDING {
                true
            } else {
                pending.insert(namespace.to_owned(), Instant::now());
                false
            }
        };
        if let Some(suppressed) = self.shared.invalidate_warnings.admit() {
            tracing::warn!(
                error = %error,
                suppressed,
                pending = self.pending(),
                overflow,
                "could not invalidate the response cache; retrying in the background (entries expire within the TTL regardless)"
            );
        }
        if !self.shared.retrying.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.shared.clone().retry());
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Retries until nothing is pending, then stops (a later failure starts it again).
    async fn retry(self: Arc<Self>) {
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            let due: Vec<String> = {
                let mut pending = self.lock();
                pending.retain(|_, since| since.elapsed() < self.ttl);
                pending.keys().cloned().collect()
            };
            for namespace in due {
                if self.inner.invalidate(&namespace).await.is_err() {
                    break; // still down: wait for the next round
                }
                self.lock().remove(&namespace);
            }
            if self.lock().is_empty() {
                self.retrying.store(false, Ordering::Release);
                // A failure may have been recorded after the check: keep going if so.
                if self.lock().is_empty() || self.retrying.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        }
    }
}

#[async_trait]
impl VersionedCache for ResilientVersionedCache {
    async fn get(&self, namespace: &str, key: &str) -> Result<(u64, Option<Vec<u8>>), Error> {
        let result = self.shared.inner.get(namespace, key).await;
        if let Err(error) = &result
            && let Some(suppressed) = self.shared.read_warnings.admit()
        {
            tracing::warn!(error = %error, suppressed, "response cache unavailable; reading the database");
        }
        result
    }

    async fn put(&self, namespace: &str, version: u64, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), Error> {
        let result = self.shared.inner.put(namespace, version, key, value, ttl).await;
        if let Err(error) = &result
            && let Some(suppressed) = self.shared.read_warnings.admit()
        {
            tracing::warn!(error = %error, suppressed, "could not store an answer in the response cache");
        }
        result
    }

    async fn invalidate(&self, namespace: &str) -> Result<(), Error> {
        let result = self.shared.inner.invalidate(namespace).await;
        if let Err(error) = &result {
            self.remember(namespace, error);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A cache whose invalidations fail while `down` is set, counting calls.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl VersionedCache for Flaky {
        async fn get(&self, _: &str, _: &str) -> Result<(u64, Option<Vec<u8>>), Error> {
            Ok((0, None))
        }
        async fn put(&self, _: &str, _: u64, _: &str, _: Vec<u8>, _: Duration) -> Result<(), Error> {
            Ok(())
        }
        async fn invalidate(&self, _: &str) -> Result<(), Error> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(Error::Unavailable(anyhow::anyhow!("connection refused")))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_failed_writes_leave_one_pending_invalidation_per_namespace() {
        let flaky = Arc::new(Flaky::default());
        flaky.down.store(true, Ordering::SeqCst);
        let cache = ResilientVersionedCache::new(flaky.clone(), Duration::from_secs(30));
        for i in 0..1000 {
            let namespace = ["alice", "bob", "carol"][i % 3];
            assert!(cache.invalidate(namespace).await.is_err());
        }
        assert_eq!(cache.pending(), 3);
        // Two retry rounds while still down: one attempt per round, not one per write.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 1000 + 2);
        flaky.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(cache.pending(), 0, "all three retried once Redis answered");
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 1000 + 2 + 3);
        assert!(!cache.shared.retrying.load(Ordering::SeqCst), "the retry task stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn pending_invalidations_are_dropped_once_their_entries_expired_and_bounded() {
        let flaky = Arc::new(Flaky::default());
        flaky.down.store(true, Ordering::SeqCst);
        let cache = ResilientVersionedCache::new(flaky.clone(), Duration::from_secs(2));
        for i in 0..(MAX_PENDING + 500) {
            let _ = cache.invalidate(&format!("user-{i}")).await;
        }
        assert_eq!(cache.pending(), MAX_PENDING, "bounded");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(cache.pending(), 0, "nothing is retried past the TTL");
    }
}
