//! A two-level session cache: an in-process first level in front of Redis.
//!
//! A hot session is answered from memory without a Redis round trip. The first
//! level keeps an entry for at most `l1_ttl` (≤ 5 s), so it adds at most that
//! much to how long a signed-out session keeps working on one instance — and
//! never extends it past the session's own expiry or the overall
//! `SESSION_CACHE_TTL` bound, since an entry is only ever copied from Redis
//! with the smaller of the remaining TTLs.

use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::auth::{CachedSession, SessionCache, TokenHash};

use super::{MemorySessionCache, RedisSessionCache};

/// Memory first, then Redis.
#[derive(Debug, Clone)]
pub struct TieredSessionCache {
    l1: MemorySessionCache,
    l1_ttl: Duration,
    l2: RedisSessionCache,
}

impl TieredSessionCache {
    /// `l1_ttl` bounds how long an entry lives in memory.
    pub fn new(l2: RedisSessionCache, l1_ttl: Duration, l1_entries: u64) -> Self {
        Self {
            l1: MemorySessionCache::new(l1_entries),
            l1_ttl,
            l2,
        }
    }
}

#[async_trait]
impl SessionCache for TieredSessionCache {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        if let Some(hit) = self.l1.get(key).await? {
            return Ok(Some(hit));
        }
        let Some((hit, remaining)) = self.l2.get_with_ttl(key).await? else {
            return Ok(None);
        };
        let ttl = remaining.min(self.l1_ttl);
        if !ttl.is_zero() {
            self.l1.put(key, &hit, ttl).await?;
        }
        Ok(Some(hit))
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        self.l1.put(key, session, ttl.min(self.l1_ttl)).await?;
        self.l2.put(key, session, ttl).await
    }
}
