//! The service's one in-process cache with a per-entry time to live: for
//! sessions, organization memberships and unmetered API keys (the whole
//! cache on the embedded default, the first level in front of Redis
//! otherwise), and for verified JWTs (remembered until their `exp`).
//!
//! Whether an entry is still valid is decided with the [`Clock`] port (so the
//! rule is testable without sleeping).
//!
//! # Why not moka
//!
//! This was a moka cache. Every hit there also records the read for its
//! eviction policy (a channel send, and now and then the housekeeping that
//! replays those reads into its deques and frequency sketch, under an epoch
//! guard): 3.4 µs of the 58 µs a cached `GET /api/v1/users/me` cost in a
//! `perf` profile, the largest single item (docs/performance.md); this map
//! costs 0.9 µs. An entry lives at most `SESSION_CACHE_TTL` (≤ 5 s as a
//! first level), so recency and frequency buy little: entries are kept in
//! 16 shards, each a `HashMap` behind its own mutex, held for one lookup or
//! insert.
//!
//! # Bounds
//!
//! At most `max_entries` entries (rounded up to a multiple of the shard
//! count). A shard that is full when a new key arrives first drops its
//! expired entries, then — if still full — an eighth of its entries, in the
//! map's (randomly seeded) order: a full cache costs one scan per eighth of
//! a shard of inserts, never one per insert. Expired entries are also
//! dropped when read, and each shard sweeps them at most once a second on
//! insert, so memory follows the live entries rather than the peak.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::clock::{Clock, SystemClock};

use async_trait::async_trait;
use domain::Error;
use domain::auth::api_key::{ApiKeyCache, CachedApiKey};
use domain::auth::jwt::{RememberedTokens, VerifiedJwt};
use domain::auth::{CachedSession, SessionCache, TokenHash};
use domain::organization::{CachedMembership, MembershipCache};

/// Independent locks: two workers rarely wait for each other.
const SHARDS: usize = 16;

/// How often a shard drops its expired entries on insert, at most.
const SWEEP_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

struct Entry<V> {
    value: V,
    /// When the entry stops being served, by the cache's clock.
    until: DateTime<Utc>,
}

/// foldhash, seeded per cache: keys are digests of verified credentials or
/// ids of authenticated users' memberships, and a shard is bounded anyway, so
/// `SipHash`'s stronger flooding resistance is not needed — and it cost more
/// than the rest of a lookup.
type Hasher = foldhash::fast::RandomState;

struct Shard<V> {
    map: HashMap<Box<str>, Entry<V>, Hasher>,
    next_sweep: DateTime<Utc>,
}

impl<V> Shard<V> {
    /// Makes room for one more entry (see the module docs).
    fn make_room(&mut self, capacity: usize, now: DateTime<Utc>) {
        self.map.retain(|_, entry| now < entry.until);
        if self.map.len() >= capacity {
            let victims: Vec<Box<str>> = self.map.keys().take(capacity / 8 + 1).cloned().collect();
            for key in victims {
                self.map.remove(&key);
            }
        }
    }
}

struct Inner<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    shard_capacity: usize,
    hasher: Hasher,
    clock: Arc<dyn Clock>,
}

/// Values cached in this process only: fine for one instance, and the
/// embedded default. Bounded in size (see the module docs).
pub struct MemoryTtlCache<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for MemoryTtlCache<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Sessions cached in this process.
pub type MemorySessionCache = MemoryTtlCache<CachedSession>;
/// Organization memberships cached in this process.
pub type MemoryMembershipCache = MemoryTtlCache<CachedMembership>;
/// Unmetered API keys cached in this process.
pub type MemoryApiKeyCache = MemoryTtlCache<CachedApiKey>;
/// Verified JWTs remembered in this process.
pub type MemoryJwtCache = MemoryTtlCache<VerifiedJwt>;

impl<V> std::fmt::Debug for MemoryTtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTtlCache").field("entries", &self.len()).finish()
    }
}

impl<V> MemoryTtlCache<V> {
    /// A cache holding at most `max_entries` values (rounded up to a multiple of 16).
    pub fn new(max_entries: u64) -> Self {
        Self::with_clock(max_entries, Arc::new(SystemClock))
    }

    /// A cache whose entries expire by `clock`.
    pub fn with_clock(max_entries: u64, clock: Arc<dyn Clock>) -> Self {
        let max_entries = usize::try_from(max_entries).unwrap_or(usize::MAX);
        let now = clock.now();
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::with_hasher(Hasher::default()),
                    next_sweep: now,
                })
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                shards,
                shard_capacity: max_entries.div_ceil(SHARDS).max(1),
                hasher: Hasher::default(),
                clock,
            }),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard<V>> {
        let hash = self.inner.hasher.hash_one(key);
        // The high bits: the map inside the shard uses its own seed, so its
        // buckets do not correlate with the shard choice anyway.
        let index = usize::try_from(hash >> 60).unwrap_or(0) % SHARDS;
        self.inner.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `value` under `key` for `ttl`.
    pub fn store(&self, key: &str, value: V, ttl: Duration) {
        let now = self.inner.clock.now();
        let until = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let capacity = self.inner.shard_capacity;
        let mut shard = self.shard(key);
        if now >= shard.next_sweep {
            shard.map.retain(|_, entry| now < entry.until);
            shard.next_sweep = now + SWEEP_EVERY;
        }
        if let Some(entry) = shard.map.get_mut(key) {
            *entry = Entry { value, until };
            return;
        }
        if shard.map.len() >= capacity {
            shard.make_room(capacity, now);
        }
        shard.map.insert(key.into(), Entry { value, until });
    }

    /// How many entries are held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V: Clone> MemoryTtlCache<V> {
    /// The value under `key`, if its own TTL has not passed.
    pub fn lookup(&self, key: &str) -> Option<V> {
        let now = self.inner.clock.now();
        let mut shard = self.shard(key);
        let entry = shard.map.get(key)?;
        if now < entry.until {
            return Some(entry.value.clone());
        }
        shard.map.remove(key);
        None
    }
}

#[async_trait]
impl SessionCache for MemoryTtlCache<CachedSession> {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        Ok(self.lookup(key.as_str()))
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        self.store(key.as_str(), session.clone(), ttl);
        Ok(())
    }
}

#[async_trait]
impl MembershipCache for MemoryTtlCache<CachedMembership> {
    async fn get(&self, key: &str) -> Result<Option<CachedMembership>, Error> {
        Ok(self.lookup(key))
    }

    async fn put(&self, key: &str, entry: &CachedMembership, ttl: Duration) -> Result<(), Error> {
        self.store(key, entry.clone(), ttl);
        Ok(())
    }
}

#[async_trait]
impl ApiKeyCache for MemoryTtlCache<CachedApiKey> {
    async fn get(&self, hash: &str) -> Result<Option<CachedApiKey>, Error> {
        Ok(self.lookup(hash))
    }

    async fn put(&self, hash: &str, entry: &CachedApiKey, ttl: Duration) -> Result<(), Error> {
        self.store(hash, entry.clone(), ttl);
        Ok(())
    }
}

impl RememberedTokens for MemoryTtlCache<VerifiedJwt> {
    fn recall(&self, token: &TokenHash) -> Option<VerifiedJwt> {
        self.lookup(token.as_str())
    }

    fn remember(&self, token: &TokenHash, verified: &VerifiedJwt, ttl: Duration) {
        self.store(token.as_str(), verified.clone(), ttl);
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
            cached_at: chrono::DateTime::default(),
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

    fn manual_clock() -> Arc<ManualClock> {
        Arc::new(ManualClock(std::sync::Mutex::new(Utc::now())))
    }

    #[test]
    fn a_flood_of_keys_a_thousand_times_the_capacity_stays_within_it() {
        let cache = MemoryTtlCache::with_clock(160, manual_clock());
        for i in 0..160_000 {
            cache.store(&format!("key-{i}"), i, Duration::from_secs(60));
            assert!(cache.len() <= 160, "{} entries after {i} inserts", cache.len());
        }
        assert!(
            cache.len() >= 100,
            "room is made an eighth at a time, not by emptying: {}",
            cache.len()
        );
        assert_eq!(cache.lookup("key-159999"), Some(159_999), "the newest entry is kept");
    }

    #[test]
    fn a_full_shard_drops_expired_entries_first_and_otherwise_an_eighth() {
        let now = Utc::now();
        let entry = |value: u32, seconds: i64| Entry {
            value,
            until: now + chrono::Duration::seconds(seconds),
        };
        let mut shard = Shard {
            map: HashMap::with_hasher(Hasher::default()),
            next_sweep: now,
        };
        for (key, value, seconds) in [("a", 1, -1), ("b", 2, 60), ("c", 3, -5), ("d", 4, 60)] {
            shard.map.insert(key.into(), entry(value, seconds));
        }
        shard.make_room(4, now);
        let mut left: Vec<&str> = shard.map.keys().map(|k| &**k).collect();
        left.sort_unstable();
        assert_eq!(left, ["b", "d"], "only the expired entries go when that is enough");

        for i in 0..14 {
            shard.map.insert(format!("live-{i}").into(), entry(i, 60));
        }
        shard.make_room(16, now);
        assert_eq!(
            shard.map.len(),
            16 - (16 / 8 + 1),
            "then an eighth of the live ones (and one)"
        );
    }

    #[test]
    fn expired_entries_are_swept_on_insert_so_memory_follows_the_live_ones() {
        let clock = manual_clock();
        let cache = MemoryTtlCache::with_clock(100_000, clock.clone());
        for i in 0..1_000 {
            cache.store(&format!("old-{i}"), i, Duration::from_millis(500));
        }
        assert_eq!(cache.len(), 1_000);
        *clock.0.lock().unwrap() += chrono::Duration::seconds(2);
        // One insert per shard (keys spread over all 16 with overwhelming probability).
        for i in 0..1_000 {
            cache.store(&format!("new-{i}"), i, Duration::from_secs(60));
        }
        assert_eq!(cache.len(), 1_000, "only the new entries are left");
    }

    #[test]
    fn storing_a_key_again_replaces_its_value_and_ttl() {
        let clock = manual_clock();
        let cache = MemoryTtlCache::with_clock(100, clock.clone());
        cache.store("k", 1, Duration::from_millis(10));
        cache.store("k", 2, Duration::from_secs(60));
        *clock.0.lock().unwrap() += chrono::Duration::milliseconds(11);
        assert_eq!(cache.lookup("k"), Some(2));
        assert_eq!(cache.len(), 1);
    }
}
