//! Sessions and organization memberships cached in Redis, shared by every
//! instance of the service.
//!
//! Keys are `<prefix>session:<sha256 of token>` — never the token itself —
//! `<prefix>member:<user and organization>` and `<prefix>apikey:<key hash>`, each holding the JSON of the
//! cached value with a millisecond TTL (`SET … PX`).

use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::auth::api_key::{ApiKeyCache, CachedApiKey};
use domain::auth::{CachedSession, SessionCache, TokenHash};
use domain::organization::{CachedMembership, MembershipCache};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::redis::RedisClient;

/// Values of type `V` cached in Redis under one key family.
#[derive(Debug, Clone)]
pub struct RedisTtlCache<V> {
    client: RedisClient,
    family: &'static str,
    value: PhantomData<fn() -> V>,
}

/// Sessions cached in Redis (`session:` keys).
pub type RedisSessionCache = RedisTtlCache<CachedSession>;
/// Organization memberships cached in Redis (`member:` keys).
pub type RedisMembershipCache = RedisTtlCache<CachedMembership>;
/// Unmetered API keys cached in Redis (`apikey:` keys, by the key's hash).
pub type RedisApiKeyCache = RedisTtlCache<CachedApiKey>;

impl RedisTtlCache<CachedApiKey> {
    /// An API-key cache on `client`.
    pub fn api_keys(client: RedisClient) -> Self {
        Self::with_family(client, "apikey:")
    }
}

impl RedisTtlCache<CachedSession> {
    /// A session cache on `client`.
    pub fn new(client: RedisClient) -> Self {
        Self::with_family(client, "session:")
    }
}

impl RedisTtlCache<CachedMembership> {
    /// A membership cache on `client`.
    pub fn memberships(client: RedisClient) -> Self {
        Self::with_family(client, "member:")
    }
}

impl<V: Serialize + DeserializeOwned + Send + Sync> RedisTtlCache<V> {
    fn with_family(client: RedisClient, family: &'static str) -> Self {
        Self {
            client,
            family,
            value: PhantomData,
        }
    }

    fn key(&self, key: &str) -> String {
        self.client.key(&format!("{}{key}", self.family))
    }

    /// The entry and its remaining time to live, in one round trip (`GET` and
    /// `PTTL` pipelined).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis cannot be reached.
    pub async fn get_with_ttl(&self, key: &str) -> Result<Option<(V, Duration)>, Error> {
        let key = self.key(key);
        let (raw, pttl): (Option<Vec<u8>>, i64) = self
            .client
            .run(|mut conn| async move { redis::pipe().get(&key).pttl(&key).query_async(&mut conn).await })
            .await?;
        let Some(bytes) = raw else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some((value, Duration::from_millis(u64::try_from(pttl).unwrap_or(0))))),
            Err(error) => {
                // An entry written by an incompatible version: a miss, not a failure.
                tracing::warn!(error = %error, family = self.family, "undecodable cache entry ignored");
                Ok(None)
            }
        }
    }

    /// Stores `value` under `key` for `ttl`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis cannot be reached.
    pub async fn set(&self, key: &str, value: &V, ttl: Duration) -> Result<(), Error> {
        let body = serde_json::to_vec(value).map_err(|e| Error::Unexpected(e.into()))?;
        self.client.set_with_ttl(self.key(key), body, ttl).await
    }
}

#[async_trait]
impl SessionCache for RedisTtlCache<CachedSession> {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        Ok(self.get_with_ttl(key.as_str()).await?.map(|(session, _)| session))
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        self.set(key.as_str(), session, ttl).await
    }
}

#[async_trait]
impl MembershipCache for RedisTtlCache<CachedMembership> {
    async fn get(&self, key: &str) -> Result<Option<CachedMembership>, Error> {
        Ok(self.get_with_ttl(key).await?.map(|(entry, _)| entry))
    }

    async fn put(&self, key: &str, entry: &CachedMembership, ttl: Duration) -> Result<(), Error> {
        self.set(key, entry, ttl).await
    }
}

#[async_trait]
impl ApiKeyCache for RedisTtlCache<CachedApiKey> {
    async fn get(&self, hash: &str) -> Result<Option<CachedApiKey>, Error> {
        Ok(self.get_with_ttl(hash).await?.map(|(entry, _)| entry))
    }

    async fn put(&self, hash: &str, entry: &CachedApiKey, ttl: Duration) -> Result<(), Error> {
        self.set(hash, entry, ttl).await
    }
}
