//! [`NoSessionCache`]: for sessions that must be read from their source on
//! every request (better-auth's secondary storage, whose revocations are not
//! announced).

use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::auth::{CachedSession, SessionCache, TokenHash};

/// A session cache that keeps nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSessionCache;

#[async_trait]
impl SessionCache for NoSessionCache {
    async fn get(&self, _key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        Ok(None)
    }

    async fn put(&self, _key: &TokenHash, _session: &CachedSession, _ttl: Duration) -> Result<(), Error> {
        Ok(())
    }
}
