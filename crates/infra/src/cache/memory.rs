//! An in-process session cache (moka) with a per-entry time to live.
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
use domain::auth::{CachedSession, SessionCache, TokenHash};
use moka::Expiry;
use moka::future::Cache;

#[derive(Clone)]
struct Entry {
    session: CachedSession,
    ttl: Duration,
    /// When the entry stops being served, by the cache's clock.
    until: DateTime<Utc>,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Sessions cached in this process only: fine for one instance, and the
/// embedded default. Bounded in size; the least recently used entries go first.
#[derive(Clone)]
pub struct MemorySessionCache {
    cache: Cache<String, Entry>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemorySessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySessionCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl MemorySessionCache {
    /// A cache holding at most `max_entries` sessions.
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

#[async_trait]
impl SessionCache for MemorySessionCache {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        match self.cache.get(key.as_str()).await {
            Some(entry) if self.clock.now() < entry.until => Ok(Some(entry.session)),
            Some(_) => {
                self.cache.invalidate(key.as_str()).await;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        self.cache
            .insert(
                key.as_str().to_owned(),
                Entry {
                    session: session.clone(),
                    ttl,
                    until: chrono::Duration::from_std(ttl)
                        .ok()
                        .and_then(|ttl| self.clock.now().checked_add_signed(ttl))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC),
                },
            )
            .await;
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
