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
mod tests {
    use super::*;
    use crate::auth::port::MockSessionStore;
    use crate::clock::MockClock;
    use crate::rate_limit::{Grant, MockRateLimiter, RateDecision};
    use chrono::TimeZone;

    const RAW: &str = "ba_live_0123456789abcdefghijklmnopqrstuvwxyz";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn record() -> ApiKeyRecord {
        ApiKeyRecord {
            id: "key-1".into(),
            user_id: "user-1".into(),
            enabled: true,
            expires_at: None,
            remaining: None,
            refill_interval_ms: None,
            refill_amount: None,
            last_refill_at: None,
            created_at: now() - chrono::Duration::days(1),
            rate_limit_enabled: false,
            rate_limit_window_ms: Some(86_400_000),
            rate_limit_max: Some(10),
            permissions: None,
            storage: KeyStorage::Database,
        }
    }

    fn user_record(banned: bool) -> UserRecord {
        UserRecord {
            user: User {
                id: "user-1".into(),
                email: "ada@example.com".into(),
                name: "Ada".into(),
                email_verified: true,
                image: None,
                created_at: now(),
                updated_at: now(),
            },
            banned,
            ban_expires: None,
        }
    }

    fn users(banned: bool) -> MockSessionStore {
        let mut users = MockSessionStore::new();
        users
            .expect_find_user()
            .returning(move |_| Ok(Some(user_record(banned))));
        users
    }

    fn empty_cache() -> MockApiKeyCache {
        let mut cache = MockApiKeyCache::new();
        cache.expect_get().returning(|_| Ok(None));
        cache
    }

    fn limiter(allowed: bool) -> Arc<RateLimitService> {
        let mut shared = MockRateLimiter::new();
        shared.expect_hit().returning(move |_, policy, _| {
            Ok(Grant {
                decision: RateDecision {
                    allowed,
                    limit: policy.limit,
                    remaining: 0,
                    reset_after: Duration::from_secs(60),
                    retry_after: Duration::from_secs(if allowed { 0 } else { 42 }),
                },
                slots: u32::from(allowed),
            })
        });
        let local = MockRateLimiter::new();
        Arc::new(RateLimitService::new(
            Some(Arc::new(shared)),
            Arc::new(local),
            RatePolicy {
                limit: 1000,
                window: Duration::from_secs(60),
            },
        ))
    }

    fn service(
        store: MockApiKeyStore,
        users: MockSessionStore,
        cache: MockApiKeyCache,
        allowed: bool,
    ) -> ApiKeyService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        ApiKeyService::new(
            Arc::new(store),
            Arc::new(users),
            Arc::new(cache),
            limiter(allowed),
            Arc::new(clock),
            Duration::from_secs(300),
        )
    }

    fn store_with(record: ApiKeyRecord) -> MockApiKeyStore {
        let mut store = MockApiKeyStore::new();
        let hashed = hash(RAW);
        store
            .expect_find()
            .withf(move |h| h == hashed)
            .returning(move |_| Ok(Some(record.clone())));
        store
    }

    fn failure(result: Result<ApiKeyIdentity, Error>) -> Error {
        result.expect_err("refused")
    }

    #[test]
    fn the_hash_is_better_auths_default() {
        // base64url(SHA-256("abc")), no padding.
        assert_eq!(hash("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert!(well_formed(RAW));
        for bad in ["", "with space", "tab\t", "nul\0", &"k".repeat(1025), "é"] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_unmetered_key_acts_as_its_user_and_is_cached() {
        let mut cache = empty_cache();
        cache
            .expect_put()
            .withf(|_, entry, ttl| entry.user.id == "user-1" && *ttl == Duration::from_secs(300))
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut store = store_with(record());
        store.expect_consume().never();
        let identity = service(store, users(false), cache, true)
            .authenticate(RAW)
            .await
            .unwrap();
        assert_eq!(identity.user.id, "user-1");
        assert_eq!(identity.permissions, None, "null permissions: full rights");
    }

    #[tokio::test]
    async fn a_key_kept_only_in_secondary_storage_is_read_every_time_never_cached() {
        // Its changes (disable, delete) are not announced: a cached copy could outlive them.
        let mut cache = empty_cache();
        cache.expect_put().never();
        let store = store_with(ApiKeyRecord {
            storage: KeyStorage::SecondaryStorage,
            ..record()
        });
        let identity = service(store, users(false), cache, true)
            .authenticate(RAW)
            .await
            .unwrap();
        assert_eq!(identity.user.id, "user-1");
    }

    #[tokio::test]
    async fn malformed_unknown_disabled_expired_and_banned_are_401_and_malformed_asks_nothing() {
        let mut store = MockApiKeyStore::new();
        store.expect_find().never();
        let mut cache = MockApiKeyCache::new();
        cache.expect_get().never();
        let refused = failure(service(store, users(false), cache, true).authenticate("bad key").await);
        assert!(matches!(refused, Error::Unauthenticated(AuthFailure::Malformed)));

        let mut store = MockApiKeyStore::new();
        store.expect_find().returning(|_| Ok(None));
        let refused = failure(
            service(store, users(false), empty_cache(), true)
                .authenticate(RAW)
                .await,
        );
        assert!(matches!(refused, Error::Unauthenticated(AuthFailure::UnknownApiKey)));

        for (record, why) in [
            (
                ApiKeyRecord {
                    enabled: false,
                    ..record()
                },
                AuthFailure::DisabledApiKey,
            ),
            (
                ApiKeyRecord {
                    expires_at: Some(now()),
                    ..record()
                },
                AuthFailure::ExpiredApiKey,
            ),
        ] {
            let refused = failure(
                service(store_with(record), users(false), empty_cache(), true)
                    .authenticate(RAW)
                    .await,
            );
            assert!(matches!(refused, Error::Unauthenticated(w) if w == why), "{refused:?}");
        }
        let refused = failure(
            service(store_with(record()), users(true), empty_cache(), true)
                .authenticate(RAW)
                .await,
        );
        assert!(matches!(refused, Error::Unauthenticated(AuthFailure::Banned)));
        let mut gone = MockSessionStore::new();
        gone.expect_find_user().returning(|_| Ok(None));
        let refused = failure(
            service(store_with(record()), gone, empty_cache(), true)
                .authenticate(RAW)
                .await,
        );
        assert!(matches!(refused, Error::Unauthenticated(AuthFailure::UnknownUser)));
    }

    #[tokio::test]
    async fn a_request_the_permissions_refuse_spends_no_use_of_the_key() {
        let read_only = ApiKeyRecord {
            remaining: Some(3),
            permissions: Some(r#"{"items":["read"]}"#.into()),
            ..record()
        };
        let create = Access {
            resource: "items",
            action: "create",
        };
        let mut store = store_with(read_only.clone());
        store.expect_consume().never();
        let refused = failure(
            service(store, users(false), empty_cache(), true)
                .authenticate_for(RAW, Some(create))
                .await,
        );
        assert!(
            matches!(refused, Error::Forbidden(Forbidden::MissingPermission)),
            "{refused:?}"
        );

        let mut store = store_with(read_only);
        store.expect_consume().times(1).returning(|_, _| Ok(true));
        let read = Access {
            resource: "items",
            action: "read",
        };
        let allowed = service(store, users(false), empty_cache(), true)
            .authenticate_for(RAW, Some(read))
            .await;
        assert!(allowed.is_ok(), "{allowed:?}");
    }

    #[tokio::test]
    async fn remaining_is_consumed_once_and_exhaustion_is_429_with_the_next_refill() {
        let metered = ApiKeyRecord {
            remaining: Some(0),
            refill_interval_ms: Some(3_600_000),
            refill_amount: Some(5),
            last_refill_at: Some(now() - chrono::Duration::minutes(45)),
            ..record()
        };
        let mut store = store_with(metered);
        store.expect_consume().times(1).returning(|_, _| Ok(false));
        let mut cache = empty_cache();
        cache.expect_put().never();
        let refused = failure(service(store, users(false), cache, true).authenticate(RAW).await);
        let Error::TooManyRequests(limit) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(limit.message, "usage exceeded");
        assert_eq!(limit.retry_after, Some(Duration::from_secs(15 * 60)));

        let mut store = store_with(ApiKeyRecord {
            remaining: Some(3),
            ..record()
        });
        store.expect_consume().times(1).returning(|_, _| Ok(true));
        let mut cache = empty_cache();
        cache.expect_put().never();
        assert!(
            service(store, users(false), cache, true)
                .authenticate(RAW)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_rate_limited_key_is_429_with_retry_after_and_never_cached() {
        let limited = ApiKeyRecord {
            rate_limit_enabled: true,
            ..record()
        };
        let mut cache = empty_cache();
        cache.expect_put().never();
        let refused = failure(
            service(store_with(limited.clone()), users(false), cache, false)
                .authenticate(RAW)
                .await,
        );
        let Error::TooManyRequests(limit) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(limit.message, "rate limit exceeded");
        assert_eq!(limit.retry_after, Some(Duration::from_secs(42)));
        assert_eq!(limit.limit, Some(10));
        let mut cache = empty_cache();
        cache.expect_put().never();
        assert!(
            service(store_with(limited), users(false), cache, true)
                .authenticate(RAW)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn permissions_are_read_from_better_auths_json() {
        let mut store = store_with(ApiKeyRecord {
            permissions: Some(r#"{"items":["read","create"]}"#.into()),
            ..record()
        });
        store.expect_consume().never();
        let mut cache = empty_cache();
        cache.expect_put().returning(|_, _, _| Ok(()));
        let identity = service(store, users(false), cache, true)
            .authenticate(RAW)
            .await
            .unwrap();
        let permissions = identity.permissions.unwrap();
        assert!(permissions.allows("items", "read"));
        assert!(permissions.allows("items", "create"));
        assert!(!permissions.allows("items", "delete"));
        assert!(!permissions.allows("projects", "read"));
        assert!(
            !Permissions::parse("not json").allows("items", "read"),
            "unreadable grants nothing"
        );
    }

    #[tokio::test]
    async fn a_cached_key_answers_without_the_database_until_it_expires() {
        let mut cache = MockApiKeyCache::new();
        cache.expect_get().returning(|_| {
            Ok(Some(CachedApiKey {
                user: user_record(false).user,
                permissions: None,
                expires_at: Some(now() + chrono::Duration::hours(1)),
                cached_at: now(),
            }))
        });
        let mut store = MockApiKeyStore::new();
        store.expect_find().never();
        assert!(
            service(store, MockSessionStore::new(), cache, true)
                .authenticate(RAW)
                .await
                .is_ok()
        );
    }
}
