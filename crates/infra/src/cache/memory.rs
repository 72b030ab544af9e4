//! An in-process session cache (moka) with a per-entry time to live.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::Error;
use domain::auth::{CachedSession, SessionCache, TokenHash};
use moka::Expiry;
use moka::future::Cache;

#[derive(Clone)]
struct Entry {
    session: CachedSession,
    ttl: Duration,
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
        Self {
            cache: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }
}

#[async_trait]
impl SessionCache for MemorySessionCache {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        Ok(self.cache.get(key.as_str()).await.map(|entry| entry.session))
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        self.cache
            .insert(
                key.as_str().to_owned(),
                Entry {
                    session: session.clone(),
                    ttl,
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

    #[tokio::test]
    async fn entries_are_returned_until_their_own_ttl_passes() {
        let cache = MemorySessionCache::new(100);
        let short = SessionToken::parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap().hash();
        let long = SessionToken::parse("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap().hash();
        let entry = session();
        cache.put(&short, &entry, Duration::from_millis(50)).await.unwrap();
        cache.put(&long, &entry, Duration::from_secs(60)).await.unwrap();
        assert!(cache.get(&short).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(cache.get(&short).await.unwrap().is_none(), "short entry must expire");
        assert_eq!(cache.get(&long).await.unwrap(), Some(entry), "long entry must survive");
    }
}
