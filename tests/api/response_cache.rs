//! The Redis response cache of item lists and items: it really serves from
//! Redis, a write is visible on the very next read, and users never share
//! entries.

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
