//! The session cache in Redis, shared by every instance of the service.
//!
//! Keys are `<prefix>session:<sha256 of token>` — never the token itself —
//! holding the JSON of a [`CachedSession`] with a millisecond TTL (`SET … PX`).

use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::auth::{CachedSession, SessionCache, TokenHash};

use crate::redis::RedisClient;

/// Sessions cached in Redis.
#[derive(Debug, Clone)]
pub struct RedisSessionCache {
    client: RedisClient,
}

impl RedisSessionCache {
    /// A cache on `client`.
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }

    fn key(&self, key: &TokenHash) -> String {
        self.client.key(&format!("session:{}", key.as_str()))
    }
}

impl RedisSessionCache {
    /// The entry and its remaining time to live, in one round trip (`GET` and
    /// `PTTL` pipelined).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis cannot be reached.
    pub async fn get_with_ttl(&self, key: &TokenHash) -> Result<Option<(CachedSession, Duration)>, Error> {
        let key = self.key(key);
        let (raw, pttl): (Option<Vec<u8>>, i64) = self
            .client
            .run(|mut conn| async move { redis::pipe().get(&key).pttl(&key).query_async(&mut conn).await })
            .await?;
        let Some(bytes) = raw else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(session) => Ok(Some((session, Duration::from_millis(u64::try_from(pttl).unwrap_or(0))))),
            Err(error) => {
                // An entry written by an incompatible version: a miss, not a failure.
                tracing::warn!(error = %error, "undecodable session cache entry ignored");
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl SessionCache for RedisSessionCache {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        Ok(self.get_with_ttl(key).await?.map(|(session, _)| session))
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        let key = self.key(key);
        let body = serde_json::to_vec(session).map_err(|e| Error::Unexpected(e.into()))?;
        self.client.set_with_ttl(key, body, ttl).await
    }
}
