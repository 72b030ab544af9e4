//! The API-key rules (expiry, remaining and refill, rate limit, permissions), each on fakes.

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
        user: User::ada(now()),
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

fn service(store: MockApiKeyStore, users: MockSessionStore, cache: MockApiKeyCache, allowed: bool) -> ApiKeyService {
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
