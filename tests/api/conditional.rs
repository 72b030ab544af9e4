//! Conditional requests on items: ETag, If-None-Match → 304, If-Match → 412
//! (atomic with the write), on every backend.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, on_every_backend, second_instance, send, spawn_app};

async fn etag_of(app: &TestApp, user: &TestUser, path: &str) -> String {
    let response = app.as_user(Method::GET, path, user).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()["etag"].to_str().unwrap().to_owned()
}

async fn conditional_get(
    app: &TestApp,
    user: &TestUser,
    path: &str,
    if_none_match: &str,
) -> (StatusCode, String, usize) {
    let response = app
        .as_user(Method::GET, path, user)
        .header("If-None-Match", if_none_match)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag, response.bytes().await.unwrap().len())
}

async fn reads_revalidate_with_if_none_match(backend: Backend) {
    let Some(app) = spawn_app(backend, "conditional_reads").await else {
        return;
    };
    let user = app.signed_in_user("reader").await;
    let (_, created) = app.post("/api/v1/items", &user, json!({"name": "tagged"})).await;
    let item = format!("/api/v1/items/{}", created["id"].as_str().unwrap());
    for path in [item.as_str(), "/api/v1/items"] {
        let etag = etag_of(&app, &user, path).await;
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "{etag}"
        );
        assert_eq!(etag_of(&app, &user, path).await, etag, "stable while nothing changes");
        for matching in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".to_owned(),
        ] {
            let (status, tag, length) = conditional_get(&app, &user, path, &matching).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{path} {matching}");
            assert_eq!((tag.as_str(), length), (etag.as_str(), 0));
        }
        let (status, _, length) = conditional_get(&app, &user, path, "\"something-else\"").await;
        assert_eq!(status, StatusCode::OK);
        assert!(length > 0);
        let (status, _, _) = conditional_get(&app, &user, path, "unquoted").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let before = etag_of(&app, &user, "/api/v1/items").await;
    app.patch(&item, &user, json!({"name": "renamed"})).await;
    assert_ne!(
        etag_of(&app, &user, "/api/v1/items").await,
        before,
        "a change changes the tag"
    );
}

async fn writes_honour_if_match(backend: Backend) {
    let Some(app) = spawn_app(backend, "conditional_writes").await else {
        return;
    };
    let user = app.signed_in_user("writer").await;
    let (_, created) = app.post("/api/v1/items", &user, json!({"name": "v1"})).await;
    let path = format!("/api/v1/items/{}", created["id"].as_str().unwrap());
    let first = etag_of(&app, &user, &path).await;
    let patch = |tag: &str, body: Value| {
        send(
            app.as_user(Method::PATCH, &path, &user)
                .header("If-Match", tag)
                .json(&body),
        )
    };

    let response = app
        .as_user(Method::PATCH, &path, &user)
        .header("If-Match", &first)
        .json(&json!({"name": "v2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let new_tag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        new_tag,
        etag_of(&app, &user, &path).await,
        "the PATCH answer carries the new ETag"
    );

    let (status, body) = patch(&first, json!({"name": "v3"})).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["error"]["code"], 412);
    let (status, body) = patch(&format!("W/{new_tag}"), json!({"name": "v3"})).await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "a weak tag never matches If-Match: {body}"
    );
    let (status, _) = patch("not-quoted", json!({"name": "v3"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&path, &user).await.1["name"], "v2", "nothing changed");
    let (status, _) = patch("*", json!({"name": "v3"})).await;
    assert_eq!(status, StatusCode::OK, "* matches any existing item");

    let delete = |tag: String| send(app.as_user(Method::DELETE, &path, &user).header("If-Match", tag));
    assert_eq!(delete(new_tag).await.0, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get(&path, &user).await.0, StatusCode::OK, "not deleted");
    let current = etag_of(&app, &user, &path).await;
    assert_eq!(delete(current).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        delete("*".to_owned()).await.0,
        StatusCode::NOT_FOUND,
        "* needs an existing item"
    );
}

async fn concurrent_patches_with_one_tag_let_exactly_one_through(backend: Backend) {
    let Some(app) = spawn_app(backend, "conditional_race").await else {
        return;
    };
    let user = app.signed_in_user("racer").await;
    let (_, created) = app.post("/api/v1/items", &user, json!({"name": "contended"})).await;
    let path = format!("/api/v1/items/{}", created["id"].as_str().unwrap());
    let tag = etag_of(&app, &user, &path).await;
    let patches = (0..10).map(|i| {
        send(
            app.as_user(Method::PATCH, &path, &user)
                .header("If-Match", &tag)
                .json(&json!({"name": format!("writer {i}")})),
        )
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(patches)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::PRECONDITION_FAILED),
        "{statuses:?}"
    );
}

/// A create answers where the item lives and the tag a GET of it answers, so
/// a client can `If-Match` at once; an idempotent replay says the same.
async fn a_create_answers_location_and_the_etag_of_the_item(backend: Backend) {
    let Some(app) = spawn_app(backend, "created_location_etag").await else {
        return;
    };
    let user = app.signed_in_user("creator").await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let response = app
            .as_user(Method::POST, "/api/v1/items/", &user)
            .header("Idempotency-Key", "created-location-1")
            .json(&json!({"name": "lamp"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(location, format!("/api/v1/items/{}", body["id"].as_str().unwrap()));
        seen.push((location, etag));
    }
    assert_eq!(seen[0], seen[1], "the replay says the same");
    let (location, etag) = &seen[0];
    assert_eq!(
        &etag_of(&app, &user, location).await,
        etag,
        "the GET answers the same tag"
    );
    let response = app
        .as_user(Method::PATCH, location, &user)
        .header("If-Match", etag.as_str())
        .json(&json!({"name": "brighter lamp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the 201's tag is good for If-Match");
    let plain = app
        .as_user(Method::POST, "/api/v1/items", &user)
        .json(&json!({"name": "no key"}))
        .send()
        .await
        .unwrap();
    let location = plain.headers()["location"].to_str().unwrap().to_owned();
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag_of(&app, &user, &location).await, etag);
}

on_every_backend!(
    a_create_answers_location_and_the_etag_of_the_item,
    reads_revalidate_with_if_none_match,
    writes_honour_if_match,
    concurrent_patches_with_one_tag_let_exactly_one_through
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_are_the_same_on_every_instance() {
    let Some(app) = spawn_app(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "conditional_instances",
    )
    .await
    else {
        return;
    };
    let other = second_instance(&app).await;
    let user = app.signed_in_user("both").await;
    let (_, created) = app.post("/api/v1/items", &user, json!({"name": "shared"})).await;
    let path = format!("/api/v1/items/{}", created["id"].as_str().unwrap());
    let here = etag_of(&app, &user, &path).await;
    let there = other
        .client
        .get(format!("{}{path}", other.address))
        .header("Cookie", &user.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(there.headers()["etag"].to_str().unwrap(), here);
}
