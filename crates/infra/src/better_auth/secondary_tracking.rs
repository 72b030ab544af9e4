//! Hearing better-auth's writes to its secondary storage, so a session read
//! from there may be reused for up to a second without outliving a sign-out.
//!
//! Redis tells a client which keys change when it asks for it: `CLIENT
//! TRACKING ON BCAST PREFIX <prefix>` on a RESP3 connection of its own makes
//! Redis push an `invalidate` message naming every key under the prefix that
//! is written, deleted or expires — with no server configuration (unlike
//! keyspace notifications), on Redis 6 and later. Each message becomes a mark
//! on the domain's [`Revocations`]:
//!
//! - `<prefix><token>` (sign-out, a refreshed or rewritten session) marks that
//!   session (by the SHA-256 of its token, as the session cache keys it);
//! - `<prefix>revoked-sessions-before-<userId>` (revokeSessions, bans,
//!   deleted users, password changes) marks every session of the user;
//! - a flush distrusts everything.
//!
//! [`TrackedSessionCache`] serves cached sessions only while the tracking
//! connection is up: a lost connection (noticed at once, or by a `PING` that
//! fails within a second) distrusts everything cached before, and nothing is
//! served from the cache until tracking is back (then, again, nothing cached
//! during the gap is trusted). Reconnects back off from 100 ms to 5 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::auth::{CachedSession, SessionCache, SessionToken, TokenHash};
use domain::clock::Clock;
use domain::log_throttle::Throttle;
use domain::revocation::{Mark, Revocations};
use redis::{ProtocolVersion, PushKind, Value};

/// The longest a session read from secondary storage is reused (better-auth
/// revokes there without telling anyone but this tracking: the bound if a
/// message were ever missed).
pub const REUSE_AT_MOST: Duration = Duration::from_secs(1);

const MAX_BACKOFF: Duration = Duration::from_secs(5);
const PING_EVERY: Duration = Duration::from_secs(1);

/// Whether invalidations are being received.
#[derive(Debug, Default)]
pub struct TrackingStatus {
    tracking: AtomicBool,
    received: AtomicU64,
}

impl TrackingStatus {
    /// True while Redis pushes this instance the changes of better-auth's keys.
    pub fn tracking(&self) -> bool {
        self.tracking.load(Ordering::Acquire)
    }

    /// Invalidation messages applied since start.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Starts tracking `url`'s keys under `prefix` in the background.
///
/// # Errors
/// A URL that cannot be parsed.
pub fn spawn(
    url: &str,
    tls: &crate::redis::RedisTls,
    prefix: &str,
    revocations: Arc<Revocations>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<TrackingStatus>> {
    // The same address and TLS parameters, spoken in RESP3 (for pushes).
    let info = crate::redis::open(url, tls)?.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let status = Arc::new(TrackingStatus::default());
    let tracker = Tracker {
        client,
        prefix: prefix.to_owned(),
        revocations,
        clock,
        status: status.clone(),
        warnings: Throttle::new(Duration::from_secs(60)),
    };
    tokio::spawn(tracker.run());
    Ok(status)
}

struct Tracker {
    client: redis::Client,
    prefix: String,
    revocations: Arc<Revocations>,
    clock: Arc<dyn Clock>,
    status: Arc<TrackingStatus>,
    warnings: Throttle,
}

impl Tracker {
    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.track().await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => {
                    if let Some(suppressed) = self.warnings.admit() {
                        tracing::warn!(
                            error = %error,
                            suppressed,
                            "not tracking better-auth's secondary storage: sessions are read from it on every request until it is back"
                        );
                    }
                }
            }
            if self.status.tracking.swap(false, Ordering::AcqRel) {
                tracing::warn!("lost the tracking of better-auth's secondary storage; reconnecting");
            }
            // Whatever was cached may have been revoked unheard.
            self.revocations.distrust_all(self.clock.now());
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One tracking connection, until it is lost.
    async fn track(&self) -> Result<(), redis::RedisError> {
        let (sender, mut pushes) = tokio::sync::mpsc::unbounded_channel();
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_push_sender(sender);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut tracking = redis::cmd("CLIENT");
        tracking.arg("TRACKING").arg("ON").arg("BCAST");
        if !self.prefix.is_empty() {
            tracking.arg("PREFIX").arg(&self.prefix);
        }
        tracking.query_async::<()>(&mut conn).await?;
        // Nothing cached before now was covered by this connection.
        self.revocations.distrust_all(self.clock.now());
        self.status.tracking.store(true, Ordering::Release);
        tracing::info!(prefix = %self.prefix, "tracking better-auth's secondary storage: its revocations are honoured at once");
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) if push.kind == PushKind::Disconnection => return Ok(()),
                    Some(push) if push.kind == PushKind::Invalidate => self.invalidate(&push.data),
                    Some(_) => {}
                    None => return Ok(()),
                },
                _ = ping.tick() => {
                    redis::cmd("PING").query_async::<()>(&mut conn).await?;
                }
            }
        }
    }

    fn invalidate(&self, data: &[Value]) {
        self.status.received.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let keys = match data.first() {
            Some(Value::Array(keys)) => keys,
            // A flush (or a shape not understood): everything is suspect.
            _ => {
                self.revocations.distrust_all(now);
                return;
            }
        };
        for key in keys {
            let Value::BulkString(key) = key else {
                continue;
            };
            let Some(name) = std::str::from_utf8(key)
                .ok()
                .and_then(|k| k.strip_prefix(self.prefix.as_str()))
            else {
                continue;
            };
            if let Some(user_id) = name.strip_prefix("revoked-sessions-before-") {
                self.revocations.revoke(&[Mark::User(user_id)], now);
            } else if let Ok(token) = SessionToken::parse(name) {
                let hash = token.hash();
                self.revocations.revoke(&[Mark::Session(hash.as_str())], now);
            }
        }
    }
}

/// A session cache used only while tracking is up (see the module docs).
pub struct TrackedSessionCache {
    inner: Arc<dyn SessionCache>,
    status: Arc<TrackingStatus>,
}

impl TrackedSessionCache {
    /// `inner`, consulted and filled only while `status` says tracking is up.
    pub fn new(inner: Arc<dyn SessionCache>, status: Arc<TrackingStatus>) -> Self {
        Self { inner, status }
    }
}

#[async_trait]
impl SessionCache for TrackedSessionCache {
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error> {
        if !self.status.tracking() {
            return Ok(None);
        }
        self.inner.get(key).await
    }

    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error> {
        if !self.status.tracking() {
            return Ok(());
        }
        self.inner.put(key, session, ttl.min(REUSE_AT_MOST)).await
    }
}
