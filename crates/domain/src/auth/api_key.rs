//! API keys of better-auth's api-key plugin (`@better-auth/api-key`).
//!
//! - The raw key travels in `x-api-key`; storage holds
//!   base64url-without-padding(SHA-256(raw key)), better-auth's default hash.
//!   A raw key over 1 KiB or with a control or space character is refused
//!   before any lookup.
//! - Unknown, disabled (`enabled` false) or expired keys are refused (401);
//!   so is a key whose user (`referenceId`) is gone or banned.
//! - `rateLimitEnabled`: at most `rateLimitMax` requests per
//!   `rateLimitTimeWindow` ms per key on the shared limiter (429 with
//!   `Retry-After`), counted once per request.
//! - `remaining` (when not null): one conditional write per accepted request
//!   that refills (to `refillAmount`, once `refillInterval` ms have passed
//!   since `lastRefillAt` or `createdAt`) and decrements atomically; 0 after
//!   refill is a 429 `usage exceeded`. The key is never disabled or deleted
//!   here (better-auth's business).
//! - Keys with neither `remaining` nor a rate limit need no write per request
//!   and are cached (by hash) for at most the session cache's TTL: disabling
//!   or deleting one takes effect within that bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::port::{SessionStore, UserRecord};
use crate::clock::Clock;
use crate::error::{AuthFailure, Error, Forbidden, Limit, TooMany};
use crate::rate_limit::{RateLimitService, RatePolicy};
use crate::revocation::{Mark, Revocations};
use crate::user::User;

/// Longest raw key accepted.
pub const MAX_KEY_BYTES: usize = 1024;

/// An `apikey` row, as this service reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key's id.
    pub id: String,
    /// The user the key acts as (`referenceId`).
    pub user_id: String,
    /// `enabled`.
    pub enabled: bool,
    /// `expiresAt`.
    pub expires_at: Option<DateTime<Utc>>,
    /// `remaining` (`None`: unlimited).
    pub remaining: Option<i64>,
    /// `refillInterval`, ms.
    pub refill_interval_ms: Option<i64>,
    /// `refillAmount`.
    pub refill_amount: Option<i64>,
    /// `lastRefillAt`.
    pub last_refill_at: Option<DateTime<Utc>>,
    /// `createdAt`.
    pub created_at: DateTime<Utc>,
    /// `rateLimitEnabled`.
    pub rate_limit_enabled: bool,
    /// `rateLimitTimeWindow`, ms.
    pub rate_limit_window_ms: Option<i64>,
    /// `rateLimitMax`.
    pub rate_limit_max: Option<i64>,
    /// `permissions`, the JSON string.
    pub permissions: Option<String>,
    /// Where the key is kept (the plugin's `storage` option).
    pub storage: KeyStorage,
}

/// Where better-auth's api-key plugin keeps a key (its `storage` option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyStorage {
    /// The `apikey` table (`storage: "database"`, or secondary storage with
    /// `fallbackToDatabase`: the table is the source of truth).
    #[default]
    Database,
    /// Only better-auth's secondary storage (`storage: "secondary-storage"`):
    /// changes there are not announced, so the key is read on every request
    /// and never cached.
    SecondaryStorage,
}

impl ApiKeyRecord {
    /// When the next refill is due, if the key refills.
    pub fn next_refill(&self) -> Option<DateTime<Utc>> {
        let interval = chrono::Duration::milliseconds(self.refill_interval_ms.filter(|ms| *ms > 0)?);
        self.refill_amount.filter(|amount| *amount > 0)?;
        self.last_refill_at
            .unwrap_or(self.created_at)
            .checked_add_signed(interval)
    }

    /// Whether the key is limited per request (so it is never cached).
    fn metered(&self) -> bool {
        self.remaining.is_some() || self.rate_limit_enabled
    }
}

/// What a key may do: resource → actions (`{"items":["read","create"]}`);
/// `None` on an identity means the user's full rights.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Permissions(HashMap<String, Vec<String>>);

impl Permissions {
    /// Parses better-auth's JSON; anything unreadable grants nothing.
    pub fn parse(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }

    /// Whether `action` on `resource` is listed.
    pub fn allows(&self, resource: &str, action: &str) -> bool {
        self.0
            .get(resource)
            .is_some_and(|actions| actions.iter().any(|a| a == action))
    }
}

/// What a request asks of an API key: `action` on `resource`, in
/// better-auth's permission names (`items` / `read`, `create`, `update`,
/// `delete`). Checked before the key is metered, as better-auth does, so a
/// refused request spends none of its `remaining` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access<'a> {
    /// The resource (`items`).
    pub resource: &'a str,
    /// The action (`read`, `create`, `update`, `delete`).
    pub action: &'a str,
}

/// [`Error::Forbidden`] when `permissions` (a key's; `None` is full rights)
/// do not allow `access`.
fn check(permissions: Option<&Permissions>, access: Option<Access<'_>>) -> Result<(), Error> {
    match (permissions, access) {
        (Some(permissions), Some(access)) if !permissions.allows(access.resource, access.action) => {
            Err(Error::Forbidden(Forbidden::MissingPermission))
        }
        _ => Ok(()),
    }
}

/// What the cache keeps for an unmetered key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedApiKey {
    /// The user the key acts as.
    pub user: User,
    /// Its permissions (`None`: full rights).
    pub permissions: Option<Permissions>,
    /// The key's own expiry; never served past it.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the decision was made (see [`crate::revocation`]).
    #[serde(default)]
    pub cached_at: DateTime<Utc>,
}

/// Who an API key acts as, and with what rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyIdentity {
    /// The user.
    pub user: User,
    /// The key's permissions (`None`: the user's full rights).
    pub permissions: Option<Permissions>,
}

/// better-auth's `apikey` table.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// The key whose stored hash is `hash`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached.
    async fn find(&self, hash: &str) -> Result<Option<ApiKeyRecord>, Error>;

    /// Counts one use of a key with `remaining`, in one conditional write:
    /// refilled first when `refill_due` (its refill time is at or before
    /// `now`), then decremented if above 0. Returns whether the use was
    /// granted (false: exhausted).
    ///
    /// # Errors
    /// As [`ApiKeyStore::find`].
    async fn consume(&self, key: &ApiKeyRecord, now: DateTime<Utc>) -> Result<bool, Error>;
}

/// A cache of unmetered keys, by hash.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ApiKeyCache: Send + Sync {
    /// The entry under `hash`, if not expired.
    ///
    /// # Errors
    /// [`Error::Unavailable`] (a miss to callers).
    async fn get(&self, hash: &str) -> Result<Option<CachedApiKey>, Error>;

    /// Stores `entry` for `ttl`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] (logged, ignored).
    async fn put(&self, hash: &str, entry: &CachedApiKey, ttl: Duration) -> Result<(), Error>;
}

/// better-auth's default key hash: base64url, no padding, of SHA-256.
pub fn hash(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(raw.as_bytes()))
}

/// Whether `raw` can be a key at all (checked before any lookup).
pub fn well_formed(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= MAX_KEY_BYTES && raw.bytes().all(|b| b.is_ascii_graphic())
}

/// Authenticates API keys (see the module docs).
pub struct ApiKeyService {
    store: Arc<dyn ApiKeyStore>,
    users: Arc<dyn SessionStore>,
    cache: Arc<dyn ApiKeyCache>,
    limiter: Arc<RateLimitService>,
    clock: Arc<dyn Clock>,
    cache_ttl: Duration,
    warnings: crate::log_throttle::Throttle,
    revocations: Arc<Revocations>,
}

impl ApiKeyService {
    /// Trusts a cached key only if no change concerning it (or its user)
    /// arrived since it was cached.
    #[must_use]
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = revocations;
        self
    }

    /// Wires the service to its ports; unmetered keys are cached for at most `cache_ttl`.
    pub fn new(
        store: Arc<dyn ApiKeyStore>,
        users: Arc<dyn SessionStore>,
        cache: Arc<dyn ApiKeyCache>,
        limiter: Arc<RateLimitService>,
        clock: Arc<dyn Clock>,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            store,
            users,
            cache,
            limiter,
            clock,
            cache_ttl,
            warnings: crate::log_throttle::Throttle::default(),
            revocations: Arc::default(),
        }
    }

    /// The identity `raw` grants.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a malformed, unknown, disabled or
    /// expired key (or one whose user is gone or banned);
    /// [`Error::TooManyRequests`] when its rate limit or its `remaining` is
    /// used up; storage errors.
    pub async fn authenticate(&self, raw: &str) -> Result<ApiKeyIdentity, Error> {
        self.authenticate_for(raw, None).await
    }

    /// As [`Self::authenticate`], for a request that needs `access`: a key
    /// whose permissions do not allow it is refused before it is metered.
    ///
    /// # Errors
    /// As [`Self::authenticate`], and [`Error::Forbidden`]
    /// (`MissingPermission`) for a key without the permission.
    pub async fn authenticate_for(&self, raw: &str, access: Option<Access<'_>>) -> Result<ApiKeyIdentity, Error> {
        if !well_formed(raw) {
            return Err(Error::Unauthenticated(AuthFailure::Malformed));
        }
        let hash = hash(raw);
        let now = self.clock.now();
        match self.cache.get(&hash).await {
            Ok(Some(hit))
                if hit.expires_at.is_none_or(|at| at > now)
                    && self
                        .revocations
                        .trusts(hit.cached_at, &[Mark::ApiKey(&hash), Mark::User(&hit.user.id)]) =>
            {
                check(hit.permissions.as_ref(), access)?;
                return Ok(ApiKeyIdentity {
                    user: hit.user,
                    permissions: hit.permissions,
                });
            }
            Ok(_) => {}
            Err(error) => self.warn(&error, "API key cache unavailable; asking the database"),
        }
        let key = self
            .store
            .find(&hash)
            .await?
            .ok_or(Error::Unauthenticated(AuthFailure::UnknownApiKey))?;
        if !key.enabled {
            return Err(Error::Unauthenticated(AuthFailure::DisabledApiKey));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::Unauthenticated(AuthFailure::ExpiredApiKey));
        }
        let UserRecord {
            user,
            banned,
            ban_expires,
        } = self
            .users
            .find_user(&key.user_id)
            .await?
            .ok_or(Error::Unauthenticated(AuthFailure::UnknownUser))?;
        if banned && ban_expires.is_none_or(|until| until > now) {
            return Err(Error::Unauthenticated(AuthFailure::Banned));
        }
        let identity = ApiKeyIdentity {
            user,
            permissions: key.permissions.as_deref().map(Permissions::parse),
        };
        if !key.metered() && key.storage == KeyStorage::Database {
            // Nothing to count: the next request may be answered from the cache.
            self.remember(&hash, &key, &identity, now).await;
        }
        check(identity.permissions.as_ref(), access)?;
        self.meter(&key, now).await?;
        Ok(identity)
    }

    /// The rate limit, then `remaining`: each counted once for this request.
    async fn meter(&self, key: &ApiKeyRecord, now: DateTime<Utc>) -> Result<(), Error> {
        if key.rate_limit_enabled {
            let limit = key.rate_limit_max.and_then(|m| u32::try_from(m).ok()).unwrap_or(0);
            let window = key
                .rate_limit_window_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map_or(Duration::ZERO, Duration::from_millis);
            if limit > 0 && !window.is_zero() {
                let decision = self
                    .limiter
                    .check_with(&format!("apikey:{}", key.id), RatePolicy { limit, window })
                    .await;
                if !decision.allowed {
                    return Err(Error::TooManyRequests(TooMany {
                        kind: Limit::Rate,
                        message: "rate limit exceeded",
                        retry_after: Some(decision.retry_after),
                        limit: Some(decision.limit),
                        reset_after: Some(decision.reset_after),
                    }));
                }
            }
        }
        if key.remaining.is_some() && !self.store.consume(key, now).await? {
            let retry_after = key
                .next_refill()
                .map(|at| (at - now).to_std().unwrap_or(Duration::from_secs(1)));
            return Err(Error::TooManyRequests(TooMany {
                kind: Limit::Usage,
                message: "usage exceeded",
                retry_after,
                limit: None,
                reset_after: None,
            }));
        }
        Ok(())
    }

    async fn remember(&self, hash: &str, key: &ApiKeyRecord, identity: &ApiKeyIdentity, now: DateTime<Utc>) {
        let until_expiry = key.expires_at.map(|at| (at - now).to_std().unwrap_or_default());
        let ttl = until_expiry.map_or(self.cache_ttl, |left| left.min(self.cache_ttl));
        if ttl.is_zero() {
            return;
        }
        let entry = CachedApiKey {
            user: identity.user.clone(),
            permissions: identity.permissions.clone(),
            expires_at: key.expires_at,
            cached_at: now,
        };
        if let Err(error) = self.cache.put(hash, &entry, ttl).await {
            self.warn(&error, "could not cache an API key");
        }
    }

    fn warn(&self, error: &Error, message: &str) {
        if let Some(suppressed) = self.warnings.admit() {
            tracing::warn!(error = %error, suppressed, "{message}");
        }
    }
}

#[cfg(test)]
#[path = "api_key_tests.rs"]
mod tests;
