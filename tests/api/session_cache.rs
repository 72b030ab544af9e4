//! The Redis session cache: keyed by a hash of the token, bounded by the TTL,
//! shared by every instance.

use deadpool_redis::redis::AsyncCommands;
use infra::better_auth::NamingStyle;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, spawn_app};

async fn redis(url: &str) -> deadpool_redis::Connection {
    let pool = deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    pool.get().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_cached_in_redis_under_a_hash_of_the_token_never_the_token() {
    let Some(app) = spawn_app(
        Backend::Postgres(NamingStyle::CamelCase),
        "sessions_are_cached_in_redis_under_a_hash_of_the_token",
    )
    .await
    else {
        return;
    };
    let Some(url) = app.redis_url.clone() else {
        return;
    };
    let user = app.signed_in_user("cached").await;
    assert_eq!(app.get("/api/v1/users/me", &user).await.0, StatusCode::OK);

    let mut conn = redis(&url).await;
    let keys: Vec<String> = conn.keys(format!("{}*", app.redis_prefix)).await.unwrap();
    let expected = format!(
        "{}session:{}",
        app.redis_prefix,
        hex::encode(Sha256::digest(user.token.as_bytes()))
    );
    assert_eq!(keys, vec![expected.clone()]);
    assert!(keys.iter().all(|k| !k.contains(&user.token)));
    let value: String = conn.get(&expected).await.unwrap();
    assert!(!value.contains(&user.token), "the cached value holds no token");
    assert!(value.contains(&user.id));
    let ttl_ms: i64 = conn.pttl(&expected).await.unwrap();
    assert!(
        ttl_ms > 0 && ttl_ms <= 300_000,
        "TTL bounded by SESSION_CACHE_TTL: {ttl_ms}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cached_by_one_instance_is_served_by_another_from_redis() {
    let Some(app) = spawn_app(
        Backend::Postgres(NamingStyle::SnakeCase),
        "a_session_cached_by_one_instance_is_served_by_another",
    )
    .await
    else {
        return;
    };
    let Some(url) = app.redis_url.clone() else {
        return;
    };
    let user = app.signed_in_user("shared").await;
    assert_eq!(app.get("/api/v1/users/me", &user).await.0, StatusCode::OK);

    // Plant a cache entry naming a different user for a token with no session
    // row at all: only an instance that reads this Redis entry can accept it.
    let ghost_token = infra::better_auth::dev::generate_token();
    let mut conn = redis(&url).await;
    let real_key = format!(
        "{}session:{}",
        app.redis_prefix,
        hex::encode(Sha256::digest(user.token.as_bytes()))
    );
    let entry: String = conn.get(&real_key).await.unwrap();
    let ghost_key = format!(
        "{}session:{}",
        app.redis_prefix,
        hex::encode(Sha256::digest(ghost_token.as_bytes()))
    );
    let _: () = conn.set_ex(&ghost_key, entry, 60).await.unwrap();

    let second = crate::helpers::second_instance(&app).await;
    let (status, body) = crate::helpers::send(second.client.get(format!("{}/api/v1/users/me", second.address)).header(
        "Cookie",
        format!("better-auth.session_token={}", crate::helpers::sign(&ghost_token)),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], user.id);
}

/// In front of Redis, the in-process first level is per thread (each actix
/// worker has its own, so lookups share no lock between workers): a thread
/// that stored a session answers it from memory even after Redis lost it,
/// while a thread that never held it asks Redis — and finds nothing.
#[tokio::test]
async fn the_first_level_in_front_of_redis_is_per_thread() {
    use std::sync::Arc;
    use std::time::Duration;

    use domain::auth::{CachedSession, SessionCache, SessionToken};
    use domain::user::User;
    use infra::cache::{RedisSessionCache, TieredSessionCache};

    let Some(url) = crate::helpers::redis_or_skip("the_first_level_in_front_of_redis_is_per_thread") else {
        return;
    };
    let prefix = format!("test-l1-per-thread-{}:", uuid::Uuid::new_v4().simple());
    let client = infra::redis::RedisClient::new(&url, &prefix, Duration::from_millis(500)).unwrap();
    let cache = Arc::new(TieredSessionCache::new(
        RedisSessionCache::new(client),
        Duration::from_secs(5),
        100,
    ));
    let key = SessionToken::parse("perThreadFirstLevel0123456789abc").unwrap().hash();
    let now = chrono::Utc::now();
    let session = CachedSession {
        user: User {
            id: "l1-user".into(),
            email: "l1@example.com".into(),
            name: "L1".into(),
            email_verified: true,
            image: None,
            created_at: now,
            updated_at: now,
        },
        expires_at: now + chrono::Duration::hours(1),
        active_organization_id: None,
        cached_at: now,
    };
    cache.put(&key, &session, Duration::from_secs(60)).await.unwrap();

    // Redis loses the entry (evicted, flushed, or another instance's view).
    let mut conn = redis(&url).await;
    let keys: Vec<String> = conn.keys(format!("{prefix}*")).await.unwrap();
    assert_eq!(keys.len(), 1, "stored in Redis too: {keys:?}");
    let _: () = conn.del(&keys[0]).await.unwrap();

    assert_eq!(
        cache.get(&key).await.unwrap(),
        Some(session),
        "the storing thread answers from its memory"
    );
    let elsewhere = {
        let (cache, key) = (Arc::clone(&cache), key.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move { cache.get(&key).await.unwrap() })
        })
        .join()
        .unwrap()
    };
    assert_eq!(
        elsewhere, None,
        "another thread has its own (empty) first level and asks Redis"
    );
}
