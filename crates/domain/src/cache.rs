//! A port for caching opaque values in per-owner namespaces that can be
//! invalidated at once (the api's response cache keeps rendered answers in it).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Error;

/// Values grouped by namespace (an owner); invalidating a namespace makes
/// every value stored in it unreachable at once (a version bump).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VersionedCache: Send + Sync {
    /// The namespace's current version and the value stored under `key` at
    /// that version, if any — read together, atomically.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the cache cannot be reached (callers skip it).
    async fn get(&self, namespace: &str, key: &str) -> Result<(u64, Option<Vec<u8>>), Error>;

    /// Stores `value` under `key` at `version` for `ttl`. Storing under a
    /// version that has since been bumped is harmless: nobody reads it.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the cache cannot be reached.
    async fn put(&self, namespace: &str, version: u64, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), Error>;

    /// Makes every value of `namespace` unreachable (bumps its version).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the cache cannot be reached.
    async fn invalidate(&self, namespace: &str) -> Result<(), Error>;
}
