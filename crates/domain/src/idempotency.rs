//! Idempotent creates: a client's `Idempotency-Key` makes a retried request
//! replay the first answer instead of acting twice.
//!
//! The first request with a (scope, key) *claims* it with a fingerprint of
//! its body; when it has an answer it *completes* the claim with the status
//! and body, kept for [`KEEP_FOR`]. A request finding the key claimed gets:
//! the stored answer (same fingerprint, completed), [`Claim::InProgress`]
//! (not completed yet), or [`Claim::Mismatch`] (another body). A request
//! that fails without an answer to keep *abandons* the claim, so a retry can
//! try again. Claims older than [`KEEP_FOR`] count as absent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::error::Error;

/// How long an answer is kept for replays.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 60 * 60);

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The HTTP status of the first answer.
    pub status: u16,
    /// Its body.
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is now this request's: act, then complete or abandon.
    Claimed,
    /// Answered before, for the same body: replay this.
    Replay(StoredAnswer),
    /// Claimed by a request still being processed.
    InProgress,
    /// Claimed for a different body.
    Mismatch,
}

/// Storage of idempotency claims: every method acts on one (scope, key).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Atomically claims (scope, key) for `fingerprint` at `now` unless a
    /// claim made after `fresh_after` exists, and reports what it found.
    /// An older claim is replaced.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when storage cannot be reached (the caller must
    /// not act: a second create could follow), [`Error::Unexpected`] otherwise.
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        fresh_after: DateTime<Utc>,
    ) -> Result<Claim, Error>;

    /// Stores the answer of a claimed key.
    ///
    /// # Errors
    /// As [`IdempotencyStore::claim`].
    async fn complete(&self, scope: &str, key: &str, answer: &StoredAnswer) -> Result<(), Error>;

    /// Releases a claim that got no answer to keep.
    ///
    /// # Errors
    /// As [`IdempotencyStore::claim`].
    async fn abandon(&self, scope: &str, key: &str) -> Result<(), Error>;

    /// Deletes up to `limit` claims made before `before`; returns how many.
    ///
    /// # Errors
    /// As [`IdempotencyStore::claim`].
    async fn purge(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, Error>;
}

/// Claims with the keep-for rule and the clock applied.
pub struct IdempotencyService {
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
}

impl IdempotencyService {
    /// Wires the service.
    pub fn new(store: Arc<dyn IdempotencyStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    fn cutoff(&self) -> DateTime<Utc> {
        self.clock.now() - chrono::Duration::from_std(KEEP_FOR).unwrap_or(chrono::Duration::days(1))
    }

    /// See [`IdempotencyStore::claim`].
    ///
    /// # Errors
    /// As the store's.
    pub async fn claim(&self, scope: &str, key: &str, fingerprint: &str) -> Result<Claim, Error> {
        self.store
            .claim(scope, key, fingerprint, self.clock.now(), self.cutoff())
            .await
    }

    /// See [`IdempotencyStore::complete`].
    ///
    /// # Errors
    /// As the store's.
    pub async fn complete(&self, scope: &str, key: &str, answer: &StoredAnswer) -> Result<(), Error> {
        self.store.complete(scope, key, answer).await
    }

    /// See [`IdempotencyStore::abandon`].
    ///
    /// # Errors
    /// As the store's.
    pub async fn abandon(&self, scope: &str, key: &str) -> Result<(), Error> {
        self.store.abandon(scope, key).await
    }

    /// Deletes expired claims, at most `limit` (called periodically, off the request path).
    ///
    /// # Errors
    /// As the store's.
    pub async fn purge_expired(&self, limit: u32) -> Result<u64, Error> {
        self.store.purge(self.cutoff(), limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;
    use chrono::TimeZone;

    #[tokio::test]
    async fn claims_older_than_a_day_count_as_absent() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().returning(move || now);
        let mut store = MockIdempotencyStore::new();
        store
            .expect_claim()
            .withf(move |scope, key, fp, at, fresh_after| {
                scope == "alice"
                    && key == "k"
                    && fp == "f"
                    && *at == now
                    && *fresh_after == now - chrono::Duration::days(1)
            })
            .returning(|_, _, _, _, _| Ok(Claim::Claimed));
        store
            .expect_purge()
            .withf(move |before, limit| *before == now - chrono::Duration::days(1) && *limit == 500)
            .returning(|_, _| Ok(3));
        let service = IdempotencyService::new(Arc::new(store), Arc::new(clock));
        assert_eq!(service.claim("alice", "k", "f").await.unwrap(), Claim::Claimed);
        assert_eq!(service.purge_expired(500).await.unwrap(), 3);
    }
}
