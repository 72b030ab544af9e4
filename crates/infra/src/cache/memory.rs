//! An in-process cache (moka) with a per-entry time to live, for sessions
//! and organization memberships.
//!
//! Whether an entry is still valid is decided with the [`Clock`] port (so the
//! rule is testable without sleeping); moka's own expiry, on the same TTL,
//! only frees the memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::clock::{Clock, SystemClock};

use async_trait::async_trait;
use domain::Error;
use domain::auth::api_key::{ApiKeyCache, CachedApiKey};
use domain::auth::{CachedSession, SessionCache, TokenHash};
use domain::organization::{CachedMembership, MembershipCache};
use moka::Expiry;
use moka::future::Cache;

#[derive(Clone)]
struct Entry<V> {
    value: V,
    ttl: Duration,
    /// When the entry stops being served, by the cache's clock.
    until: DateTime<Utc>,
}

struct PerEntryTtl;

impl<V> Expiry<String, Entry<V>> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry<V>, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry<V>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Values cached in this process only: fine for one instance, and the
/// embedded default. Bounded in size; the least recently used entries go first.
#[derive(Clone)]
pub struct MemoryTtlCache<V: Clone + Send + Sync + 'static> {
    cache: Cache<String, Entry<V>>,
    clock: Arc<dyn Clock>,
}

/// Sessions cached in this process.
pub type MemorySessionCache = MemoryTtlCache<CachedSession>;
/// Organization memberships cached in this process.
pub type MemoryMembershipCache = MemoryTtlCache<CachedMembership>;
/// Unmetered API keys cached in this process.
pub type MemoryApiKeyCache = MemoryTtlCache<CachedApiKey>;

impl<V: Clone + Send + Sync + 'static> std::fmt::Debug for MemoryTtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTtlCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> MemoryTtlCache<V> {
    /// A cache holding at most `max_entries` values.
    pub fn new(max_entries: u64) -> Self {
        Self::with_clock(max_entries, Arc::new(SystemClock))
    }

    /// A cache whose entries expire by `clock`.
    pub fn with_clock(max_entries: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
            clock,
        }
    }
}

impl<V: Clone + Send + Sync + 'static> MemoryTtlCache<V> {
    /// The value under `key`, if its own TTL has not passed.
    pub async fn lookup(&self, key: &str) -> Option<V> {
        match self.cache.get(key).await {
            Some(entry) if self.clock.now() < entry.until => Some(entry.value),
            Some(_) => {
                self.cache.invalidate(key).await;
                None
            }
            None => None,
        }
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn store(&self, key: &str, value: V, ttl: Duration) {
        let until = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| self.clock.now().checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.cache.insert(key.to_owned(), Entry { value, ttl, until }).await;
    }
}

#[async_trait]
impl SessionCache for MemoryTtlCache<CachedSession> {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        Ok(self.lookup(key.as_str()).await)
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        self.store(key.as_str(), session.clone(), ttl).await;
        Ok(())
    }
}

#[async_trait]
impl MembershipCache for MemoryTtlCache<CachedMembership> {
    async fn get(&self, key: &str) -> Result<Option<CachedMembership>, Error> {
        Ok(self.lookup(key).await)
    }

    async fn put(&self, key: &str, entry: &CachedMembership, ttl: Duration) -> Result<(), Error> {
        self.store(key, entry.clone(), ttl).await;
        Ok(())
    }
}

#[async_trait]
impl ApiKeyCache for MemoryTtlCache<CachedApiKey> {
    async fn get(&self, hash: &str) -> Result<Option<CachedApiKey>, Error> {
        Ok(self.lookup(hash).await)
    }

    async fn put(&self, hash: &str, entry: &CachedApiKey, ttl: Duration) -> Result<(), Error> {
        self.store(hash, entry.clone(), ttl).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use domain::auth::SessionToken;
    use domain::user::User;

    fn session() -> CachedSession {
        CachedSession {
            user: User {
                id: "u".into(),
                email: "u@example.com".into(),
                name: "U".into(),
                email_verified: false,
                image: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
            expires_at: Utc::now() + chrono::Duration::hours(1),
            active_organization_id: None,
        }
    }

    /// A clock that moves only when told to.
    struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

    impl Clock for ManualClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    #[tokio::test]
    async fn entries_are_returned_until_their_own_ttl_passes() {
        let clock = Arc::new(ManualClock(std::sync::Mutex::new(Utc::now())));
        let cache = MemorySessionCache::with_clock(100, clock.clone());
        let short = SessionToken::parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap().hash();
        let long = SessionToken::parse("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap().hash();
        let entry = session();
        cache.put(&short, &entry, Duration::from_millis(50)).await.unwrap();
        cache.put(&long, &entry, Duration::from_secs(60)).await.unwrap();
        assert!(cache.get(&short).await.unwrap().is_some());
        *clock.0.lock().unwrap() += chrono::Duration::milliseconds(51);
        assert!(cache.get(&short).await.unwrap().is_none(), "short entry must expire");
        assert_eq!(cache.get(&long).await.unwrap(), Some(entry), "long entry must survive");
    }
}
