//! The response cache of `GET /api/v1/items` and `GET /api/v1/items/{id}`
//! (the seed's Redis response cache, kept where it is safe).
//!
//! A serialized answer is cached per (user, skip, limit) for a list page and
//! per (user, id) for an item, in a per-user namespace; every write by that
//! user (create, update, delete) bumps the namespace's version before its
//! answer is sent, so the very next read misses and sees the write. Only
//! `200` answers are cached: a missing or foreign item is always asked of the
//! database. Entries live at most `RESPONSE_CACHE_TTL`
//! (≤ 60 s), which also bounds staleness from changes made outside this API
//! (better-auth deleting a user cascades to their items); a write made while
//! Redis is unreachable keeps retrying its invalidation in the background. Never shared across users: the user id is the
//! namespace. Only used with Redis, so all instances invalidate together.

use std::sync::Arc;
use std::time::Duration;

use domain::cache::VersionedCache;
use domain::item::{ItemId, Page};
use domain::log_throttle::Throttle;

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The cached JSON body.
    Hit(Vec<u8>),
    /// Nothing cached at this version; store the fresh answer under it.
    Miss(u64),
    /// No cache (disabled or unreachable): just answer.
    Bypass,
}

/// What an entry holds.
#[derive(Debug, Clone, Copy)]
pub enum Cached {
    /// A page of the caller's list.
    List(Page),
    /// One of the caller's items.
    Item(ItemId),
}

/// The response cache and its TTL.
pub struct ResponseCache {
    cache: Arc<dyn VersionedCache>,
    ttl: Duration,
    warnings: Throttle,
}

const RETRY_EVERY: Duration = Duration::from_millis(500);

fn key(what: Cached) -> String {
    match what {
        Cached::List(page) => format!("items:{}:{}", page.skip(), page.limit()),
        Cached::Item(id) => format!("item:{}", id.as_uuid()),
    }
}

impl ResponseCache {
    /// A cache keeping entries for `ttl`.
    pub fn new(cache: Arc<dyn VersionedCache>, ttl: Duration) -> Self {
        Self {
            cache,
            ttl,
            warnings: Throttle::default(),
        }
    }

    /// Looks up one of `owner`'s answers.
    pub async fn lookup(&self, owner: &str, what: Cached) -> Lookup {
        match self.cache.get(owner, &key(what)).await {
            Ok((_, Some(body))) => Lookup::Hit(body),
            Ok((version, None)) => Lookup::Miss(version),
            Err(error) => {
                if let Some(suppressed) = self.warnings.admit() {
                    tracing::warn!(error = %error, suppressed, "response cache unavailable; reading the database");
                }
                Lookup::Bypass
            }
        }
    }

    /// Stores a fresh answer under the version the lookup saw.
    pub async fn store(&self, owner: &str, version: u64, what: Cached, body: Vec<u8>) {
        if let Err(error) = self.cache.put(owner, version, &key(what), body, self.ttl).await
            && let Some(suppressed) = self.warnings.admit()
        {
            tracing::warn!(error = %error, suppressed, "could not store an answer in the response cache");
        }
    }

    /// Makes `owner`'s cached answers unreachable (after each of their writes).
    /// If Redis cannot be reached now, keeps retrying in the background for
    /// one TTL, so lists cached before the outage stop being served soon after
    /// Redis returns rather than when they expire.
    pub async fn invalidate(&self, owner: &str) {
        let Err(error) = self.cache.invalidate(owner).await else {
            return;
        };
        tracing::warn!(error = %error, "could not invalidate the response cache; retrying in the background");
        let (cache, owner, ttl) = (self.cache.clone(), owner.to_owned(), self.ttl);
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + ttl;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(RETRY_EVERY).await;
                if cache.invalidate(&owner).await.is_ok() {
                    return;
                }
            }
        });
    }
}
