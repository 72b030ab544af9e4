//! A two-level cache: an in-process first level in front of Redis, for
//! sessions and organization memberships.
//!
//! A hot entry is answered from memory without a Redis round trip. The first
//! level keeps an entry for at most `l1_ttl` (≤ 5 s), so it adds at most that
//! much to how long a signed-out session (or a removed member) keeps working
//! on one instance — and never extends it past the session's own expiry or
//! the overall `SESSION_CACHE_TTL` bound, since an entry is only ever copied
//! from Redis with the smaller of the remaining TTLs.
//!
//! The first level is kept per thread (each actix worker has its own): a
//! lookup takes no lock another worker touches, so the two workers never
//! pass the map's cache lines back and forth. A worker that has not seen an
//! entry yet reads it from Redis once; each thread holds at most
//! `l1_entries`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::auth::api_key::{ApiKeyCache, CachedApiKey};
use domain::auth::{CachedSession, SessionCache, TokenHash};
use domain::organization::{CachedMembership, MembershipCache};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{MemoryTtlCache, RedisTtlCache};

/// Memory first, then Redis.
#[derive(Clone)]
pub struct TieredCache<V: Clone + Send + Sync + 'static> {
    l1: Arc<thread_local::ThreadLocal<MemoryTtlCache<V>>>,
    l1_entries: u64,
    l1_ttl: Duration,
    l2: RedisTtlCache<V>,
}

impl<V: Clone + Send + Sync + 'static> std::fmt::Debug for TieredCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("l1_ttl", &self.l1_ttl)
            .field("l1_entries", &self.l1_entries)
            .finish_non_exhaustive()
    }
}

/// Sessions: memory, then Redis.
pub type TieredSessionCache = TieredCache<CachedSession>;
/// Memberships: memory, then Redis.
pub type TieredMembershipCache = TieredCache<CachedMembership>;
/// Unmetered API keys: memory, then Redis.
pub type TieredApiKeyCache = TieredCache<CachedApiKey>;

impl<V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> TieredCache<V> {
    /// `l1_ttl` bounds how long an entry lives in memory.
    pub fn new(l2: RedisTtlCache<V>, l1_ttl: Duration, l1_entries: u64) -> Self {
        Self {
            l1: Arc::new(thread_local::ThreadLocal::new()),
            l1_entries,
            l1_ttl,
            l2,
        }
    }

    /// This thread's first level.
    fn l1(&self) -> &MemoryTtlCache<V> {
        self.l1.get_or(|| MemoryTtlCache::new(self.l1_entries))
    }

    async fn lookup(&self, key: &str) -> Result<Option<V>, Error> {
        if let Some(hit) = self.l1().lookup(key) {
            return Ok(Some(hit));
        }
        let Some((hit, remaining)) = self.l2.get_with_ttl(key).await? else {
            return Ok(None);
        };
        let ttl = remaining.min(self.l1_ttl);
        if !ttl.is_zero() {
            self.l1().store(key, hit.clone(), ttl);
        }
        Ok(Some(hit))
    }

    async fn store(&self, key: &str, value: &V, ttl: Duration) -> Result<(), Error> {
        self.l1().store(key, value.clone(), ttl.min(self.l1_ttl));
        self.l2.set(key, value, ttl).await
    }
}

#[async_trait]
impl SessionCache for TieredCache<CachedSession> {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        self.lookup(key.as_str()).await
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        self.store(key.as_str(), session, ttl).await
    }
}

#[async_trait]
impl MembershipCache for TieredCache<CachedMembership> {
    async fn get(&self, key: &str) -> Result<Option<CachedMembership>, Error> {
        self.lookup(key).await
    }

    async fn put(&self, key: &str, entry: &CachedMembership, ttl: Duration) -> Result<(), Error> {
        self.store(key, entry, ttl).await
    }
}

#[async_trait]
impl ApiKeyCache for TieredCache<CachedApiKey> {
    async fn get(&self, hash: &str) -> Result<Option<CachedApiKey>, Error> {
        self.lookup(hash).await
    }

    async fn put(&self, hash: &str, entry: &CachedApiKey, ttl: Duration) -> Result<(), Error> {
        self.store(hash, entry, ttl).await
    }
}
