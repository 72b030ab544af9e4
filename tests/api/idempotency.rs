//! `Idempotency-Key` on `POST /api/v1/items`, on every backend.

use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, on_every_backend, send, spawn_app};

async fn post(app: &TestApp, user: &TestUser, key: &str, body: &str) -> (StatusCode, Option<String>, Value) {
    let response = app
        .as_user(Method::POST, "/api/v1/items", user)
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, response.json().await.unwrap_or(Value::Null))
}

async fn count(app: &TestApp, user: &TestUser) -> usize {
    app.get("/api/v1/items?limit=1000", user)
        .await
        .1
        .as_array()
        .unwrap()
        .len()
}

async fn a_retry_replays_the_first_answer_and_creates_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend, "idempotent_retry").await else {
        return;
    };
    let (alice, bob) = (app.signed_in_user("alice").await, app.signed_in_user("bob").await);
    let body = r#"{"name":"once"}"#;
    let (status, replayed, first) = post(&app, &alice, "order-42", body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None));
    let (status, replayed, again) = post(&app, &alice, "order-42", body).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::CREATED, Some("true")));
    assert_eq!(again, first, "the same answer, byte for byte");
    assert_eq!(count(&app, &alice).await, 1, "created once");

    let (status, _, error) = post(&app, &alice, "order-42", r#"{"name":"twice"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["details"]["errors"][0]["type"], "idempotency_mismatch");

    let (status, replayed, theirs) = post(&app, &bob, "order-42", body).await;
    assert_eq!(
        (status, replayed),
        (StatusCode::CREATED, None),
        "keys of different callers never collide"
    );
    assert_ne!(theirs["id"], first["id"]);

    for bad in ["", &"k".repeat(256), "has space", "tab\there"] {
        let (status, _) = send(
            app.as_user(Method::POST, "/api/v1/items", &alice)
                .header("Idempotency-Key", bad)
                .json(&json!({"name": "x"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    assert_eq!(count(&app, &alice).await, 1);
}

async fn fifty_concurrent_posts_with_one_key_create_one_item(backend: Backend) {
    let Some(app) = spawn_app(backend, "idempotent_concurrent").await else {
        return;
    };
    let user = app.signed_in_user("hasty").await;
    let body = r#"{"name":"exactly one"}"#;
    let posts = (0..50).map(|_| post(&app, &user, "checkout-7", body));
    let answers = futures_util::future::join_all(posts).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::CREATED)
        .map(|(_, _, body)| body)
        .collect();
    for (status, _, body) in &answers {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::CONFLICT,
            "{status} {body}"
        );
    }
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|b| b["id"] == created[0]["id"]),
        "every 201 is that one item"
    );
    assert_eq!(count(&app, &user).await, 1, "exactly one item");
    // Once the first is done, every retry replays it.
    let (status, replayed, body) = post(&app, &user, "checkout-7", body).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::CREATED, Some("true")));
    assert_eq!(body["id"], created[0]["id"]);
}

async fn a_key_still_in_progress_is_409_and_an_expired_one_acts_again(backend: Backend) {
    let Some(app) = spawn_app(backend, "idempotent_states").await else {
        return;
    };
    let user = app.signed_in_user("patient").await;
    let body = r#"{"name":"later"}"#;
    let (status, _, _) = post(&app, &user, "slow", body).await;
    assert_eq!(status, StatusCode::CREATED);
    // As if the first request were still running.
    app.db
        .conn()
        .execute_unprepared("UPDATE idempotency_keys SET status = NULL, body = NULL")
        .await
        .unwrap();
    let (status, _, answer) = post(&app, &user, "slow", body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(answer["error"]["type"], "idempotency_in_progress", "{answer}");
    // Older than 24 h: the key is free again.
    app.db
        .conn()
        .execute_unprepared(
            "UPDATE idempotency_keys SET created_at = '2020-01-01 00:00:00+00:00', status = 201, body = NULL",
        )
        .await
        .unwrap();
    let (status, replayed, _) = post(&app, &user, "slow", body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None));
    assert_eq!(count(&app, &user).await, 2, "an expired key creates again");

    // The periodic clean-up deletes expired keys only, in bounded batches.
    let (status, _, _) = post(&app, &user, "fresh", body).await;
    assert_eq!(status, StatusCode::CREATED);
    app.db
        .conn()
        .execute_unprepared("UPDATE idempotency_keys SET created_at = '2020-01-01 00:00:00+00:00' WHERE key = 'slow'")
        .await
        .unwrap();
    let store = infra::idempotency_store::SqlIdempotencyStore::new(app.db.clone());
    let cutoff = chrono::Utc::now() - chrono::Duration::days(1);
    use domain::idempotency::IdempotencyStore as _;
    assert_eq!(store.purge(cutoff, 10).await.unwrap(), 1);
    assert_eq!(store.purge(cutoff, 10).await.unwrap(), 0);
    let (_, replayed, _) = post(&app, &user, "fresh", body).await;
    assert_eq!(replayed.as_deref(), Some("true"), "a fresh key survives the clean-up");
}

/// The header means nothing on reads and updates: it is ignored, not refused.
async fn the_key_is_ignored_on_get_and_patch(backend: Backend) {
    let Some(app) = spawn_app(backend, "idempotent_ignored").await else {
        return;
    };
    let user = app.signed_in_user("reader").await;
    let (_, _, created) = post(&app, &user, "make", r#"{"name":"a"}"#).await;
    let path = format!("/api/v1/items/{}", created["id"].as_str().unwrap());
    for _ in 0..2 {
        let (status, body) = send(app.as_user(Method::GET, &path, &user).header("Idempotency-Key", "make")).await;
        assert_eq!((status, body["name"].as_str()), (StatusCode::OK, Some("a")));
    }
    for name in ["b", "c"] {
        let (status, body) = send(
            app.as_user(Method::PATCH, &path, &user)
                .header("Idempotency-Key", "same-key")
                .json(&json!({ "name": name })),
        )
        .await;
        assert_eq!(
            (status, body["name"].as_str()),
            (StatusCode::OK, Some(name)),
            "each PATCH applies"
        );
    }
}

on_every_backend!(
    the_key_is_ignored_on_get_and_patch,
    a_retry_replays_the_first_answer_and_creates_nothing,
    fifty_concurrent_posts_with_one_key_create_one_item,
    a_key_still_in_progress_is_409_and_an_expired_one_acts_again
);
