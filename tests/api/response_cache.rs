//! The Redis response cache of item lists and items: it really serves from
//! Redis, a write is visible on the very next read, users never share
//! entries, and two builds sharing a Redis keep theirs apart.

use infra::better_auth::NamingStyle;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, redis_or_skip, spawn_app};

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_cached_per_user_and_every_write_is_visible_on_the_next_read() {
    let test = "lists_are_cached_per_user_and_every_write_is_visible";
    if redis_or_skip(test).is_none() {
        return;
    }
    let Some(app) = spawn_app(Backend::Postgres(NamingStyle::SnakeCase), test).await else {
        return;
    };
    let alice = app.signed_in_user("alice").await;
    let bob = app.signed_in_user("bob").await;
    let (_, created) = app.post("/api/v1/items", &alice, json!({"name": "first"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(names(&app.get("/api/v1/items", &alice).await.1), vec!["first"]);

    // Changed behind the API's back: the cached list is still served, which
    // proves the answer comes from the cache.
    app.db
        .execute_unprepared(&format!("UPDATE items SET name = 'renamed in SQL' WHERE id = '{id}'"))
        .await
        .unwrap();
    assert_eq!(
        names(&app.get("/api/v1/items", &alice).await.1),
        vec!["first"],
        "served from the cache"
    );
    assert_eq!(
        app.get("/api/v1/items", &bob).await.1,
        json!([]),
        "never another user's cached list"
    );

    // Each write through the API is visible on the very next read.
    let (status, _) = app.post("/api/v1/items", &alice, json!({"name": "second"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        names(&app.get("/api/v1/items", &alice).await.1),
        vec!["second", "renamed in SQL"]
    );
    app.patch(&format!("/api/v1/items/{id}"), &alice, json!({"name": "patched"}))
        .await;
    assert_eq!(
        names(&app.get("/api/v1/items", &alice).await.1),
        vec!["second", "patched"]
    );
    app.delete(&format!("/api/v1/items/{id}"), &alice).await;
    assert_eq!(names(&app.get("/api/v1/items", &alice).await.1), vec!["second"]);
    assert_eq!(
        names(&app.get("/api/v1/items?limit=1&skip=0", &alice).await.1),
        vec!["second"],
        "pages are cached apart"
    );
    assert_eq!(app.get("/api/v1/items", &bob).await.1, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_cached_per_user_and_every_write_is_visible_on_the_next_read() {
    let test = "items_are_cached_per_user_and_every_write_is_visible";
    if redis_or_skip(test).is_none() {
        return;
    }
    let Some(app) = spawn_app(Backend::Postgres(NamingStyle::CamelCase), test).await else {
        return;
    };
    let alice = app.signed_in_user("alice").await;
    let bob = app.signed_in_user("bob").await;
    let (_, created) = app.post("/api/v1/items", &alice, json!({"name": "lamp"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/items/{id}");
    assert_eq!(app.get(&path, &alice).await.1["name"], "lamp");

    app.db
        .execute_unprepared(&format!("UPDATE items SET name = 'renamed in SQL' WHERE id = '{id}'"))
        .await
        .unwrap();
    assert_eq!(app.get(&path, &alice).await.1["name"], "lamp", "served from the cache");
    let (status, _) = app.get(&path, &bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "never another user's cached item");
    let upper = format!("/api/v1/items/{}", id.to_uppercase());
    assert_eq!(
        app.get(&upper, &alice).await.1["name"],
        "lamp",
        "one entry per item, however the id is spelled"
    );

    let (status, patched) = app.patch(&path, &alice, json!({"is_active": false})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["name"], "renamed in SQL");
    let (_, read) = app.get(&path, &alice).await;
    assert_eq!(
        (read["name"].as_str(), read["is_active"].as_bool()),
        (Some("renamed in SQL"), Some(false))
    );

    app.delete(&path, &alice).await;
    let (status, _) = app.get(&path, &alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a deleted item is gone on the next read");
    let (_, other) = app.post("/api/v1/items", &bob, json!({"name": "bob's"})).await;
    let (status, _) = app
        .get(&format!("/api/v1/items/{}", other["id"].as_str().unwrap()), &alice)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A rolling deploy: two builds share one Redis. Neither serves the other's
/// cached answers (their JSON may differ), and a write through either makes
/// both builds' entries unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_builds_sharing_redis_never_serve_each_others_entries_but_share_invalidations() {
    use domain::cache::VersionedCache as _;
    use infra::cache::RedisVersionedCache;
    use infra::redis::RedisClient;
    use std::time::Duration;

    let test = "two_builds_sharing_redis_never_serve_each_others_entries";
    let Some(url) = redis_or_skip(test) else {
        return;
    };
    let prefix = format!("test-rc-builds-{}:", uuid::Uuid::new_v4().simple());
    let client = || RedisClient::new(&url, &prefix, Duration::from_secs(2)).unwrap();
    let old = RedisVersionedCache::new(client(), "0.1.0+aaaa");
    let new = RedisVersionedCache::new(client(), "0.1.0+bbbb");
    let ttl = Duration::from_secs(60);

    let (version, cached) = old.get("items:u:alice", "v1:page:0:100").await.unwrap();
    assert_eq!(cached, None);
    old.put("items:u:alice", version, "v1:page:0:100", b"old shape".to_vec(), ttl)
        .await
        .unwrap();
    assert_eq!(
        old.get("items:u:alice", "v1:page:0:100").await.unwrap().1.as_deref(),
        Some(&b"old shape"[..]),
        "each build serves its own entries"
    );
    let (same_version, cached) = new.get("items:u:alice", "v1:page:0:100").await.unwrap();
    assert_eq!(cached, None, "the other build's entry is not served");
    assert_eq!(same_version, version, "both read one version");
    new.put(
        "items:u:alice",
        same_version,
        "v1:page:0:100",
        b"new shape".to_vec(),
        ttl,
    )
    .await
    .unwrap();

    new.invalidate("items:u:alice").await.unwrap();
    assert_eq!(
        old.get("items:u:alice", "v1:page:0:100").await.unwrap().1,
        None,
        "a write on the new build hides the old build's entries"
    );
    assert_eq!(new.get("items:u:alice", "v1:page:0:100").await.unwrap().1, None);
}
