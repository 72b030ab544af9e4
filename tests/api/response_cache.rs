//! The Redis response cache of item lists: it really serves from Redis, a
//! write is visible on the very next read, and users never share entries.

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
