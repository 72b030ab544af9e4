//! Items over HTTP: the CRUD contract, ownership, validation and pagination.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, on_every_backend, send, spawn_app};

fn without_request_id(mut body: Value) -> Value {
    body["error"]["request_id"] = Value::Null;
    body["error"]["path"] = Value::Null;
    body
}

async fn an_item_goes_through_its_whole_life(backend: Backend) {
    let Some(app) = spawn_app(backend, "an_item_goes_through_its_whole_life").await else {
        return;
    };
    let user = app.signed_in_user("owner").await;

    let (status, created) = app
        .post(
            "/api/v1/items",
            &user,
            json!({"name": "  Lamp  ", "description": "bright"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "Lamp", "stored trimmed");
    assert_eq!(created["owner_id"], user.id);
    assert_eq!(created["is_active"], true);
    assert_eq!(created["created_at"], created["updated_at"]);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());

    let (status, fetched) = app.get(&format!("/api/v1/items/{id}"), &user).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created, "what was created is what is read back");

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, patched) = app
        .patch(
            &format!("/api/v1/items/{id}/"),
            &user,
            json!({"description": null, "is_active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["description"], Value::Null, "null clears the description");
    assert_eq!(patched["is_active"], false);
    assert_eq!(patched["name"], "Lamp", "absent fields are left alone");
    assert_eq!(patched["created_at"], created["created_at"]);
    assert!(
        patched["updated_at"].as_str().unwrap() > created["updated_at"].as_str().unwrap(),
        "updated_at moves"
    );

    let (status, _) = app
        .patch(&format!("/api/v1/items/{id}"), &user, json!({"name": "Desk lamp"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = app.get("/api/v1/items/", &user).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "Desk lamp");

    let (status, body) = app.delete(&format!("/api/v1/items/{id}"), &user).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = app.get(&format!("/api/v1/items/{id}"), &user).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&format!("/api/v1/items/{id}"), &user).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn another_users_item_a_malformed_id_and_a_missing_one_look_the_same(backend: Backend) {
    let Some(app) = spawn_app(
        backend,
        "another_users_item_a_malformed_id_and_a_missing_one_look_the_same",
    )
    .await
    else {
        return;
    };
    let alice = app.signed_in_user("alice").await;
    let bob = app.signed_in_user("bob").await;
    let (_, item) = app.post("/api/v1/items", &alice, json!({"name": "secret"})).await;
    let id = item["id"].as_str().unwrap();
    let missing = uuid::Uuid::now_v7().to_string();

    let mut bodies = Vec::new();
    for path in [
        format!("/api/v1/items/{id}"),
        format!("/api/v1/items/{missing}"),
        "/api/v1/items/not-a-uuid".to_owned(),
    ] {
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let mut request = app.as_user(method.clone(), &path, &bob);
            if method == Method::PATCH {
                request = request.json(&json!({"name": "pwned"}));
            }
            let (status, body) = send(request).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            bodies.push(without_request_id(body));
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical 404 bodies: {bodies:?}"
    );
    let (_, listed) = app.get("/api/v1/items", &bob).await;
    assert_eq!(listed, json!([]), "bob sees none of alice's items");
    let (status, still) = app.get(&format!("/api/v1/items/{id}"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["name"], "secret", "bob's PATCH changed nothing");
}

async fn lists_are_newest_first_and_paginated(backend: Backend) {
    let Some(app) = spawn_app(backend, "lists_are_newest_first_and_paginated").await else {
        return;
    };
    let user = app.signed_in_user("lister").await;
    for i in 0..5 {
        let (status, _) = app
            .post("/api/v1/items", &user, json!({"name": format!("item {i}")}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let names = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (_, all) = app.get("/api/v1/items", &user).await;
    assert_eq!(names(&all), vec!["item 4", "item 3", "item 2", "item 1", "item 0"]);
    let (_, page) = app.get("/api/v1/items?skip=1&limit=2", &user).await;
    assert_eq!(names(&page), vec!["item 3", "item 2"]);
    let (_, beyond) = app.get("/api/v1/items?skip=100", &user).await;
    assert_eq!(beyond, json!([]));
    let (status, _) = app
        .get("/api/v1/items?skip=9223372036854775807&limit=1000", &user)
        .await;
    assert_eq!(status, StatusCode::OK, "the largest skip is still a valid query");

    for query in [
        "skip=-1",
        "limit=0",
        "limit=1001",
        "limit=abc",
        "skip=1e3",
        "limit=99999999999999999999",
    ] {
        let (status, body) = app.get(&format!("/api/v1/items?{query}"), &user).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(
            body["error"]["details"]["errors"][0]["field"],
            query.split('=').next().unwrap()
        );
    }
}

async fn invalid_bodies_get_422_with_field_details_and_store_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend, "invalid_bodies_get_422_with_field_details_and_store_nothing").await else {
        return;
    };
    let user = app.signed_in_user("validator").await;
    let cases = [
        (json!({}), "name", "missing"),
        (json!({"name": "   "}), "name", "too_short"),
        (json!({"name": "x".repeat(256)}), "name", "too_long"),
        (json!({"name": "nul\u{0}byte"}), "name", "nul_character"),
        (json!({"name": 42}), "name", "type_error"),
        (
            json!({"name": "ok", "description": "d".repeat(65_536)}),
            "description",
            "too_long",
        ),
        (
            json!({"name": "ok", "description": "a\u{0}"}),
            "description",
            "nul_character",
        ),
        (
            json!({"name": "ok", "owner_id": "someone-else"}),
            "owner_id",
            "unknown_field",
        ),
        (json!({"name": "ok", "id": uuid::Uuid::nil()}), "id", "unknown_field"),
        (json!({"name": "ok", "is_active": "true"}), "is_active", "type_error"),
    ];
    for (body, field, kind) in cases {
        let (status, answer) = app.post("/api/v1/items", &user, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer["error"]["message"], "Validation error");
        let errors = answer["error"]["details"]["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == field && e["type"] == kind),
            "{body} -> {answer}"
        );
    }
    let (status, ok) = app
        .post(
            "/api/v1/items",
            &user,
            json!({"name": "é".repeat(255), "description": "d".repeat(65_535)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "limits are inclusive, in characters");
    let id = ok["id"].as_str().unwrap();
    let (status, answer) = app
        .patch(&format!("/api/v1/items/{id}"), &user, json!({"name": null}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (_, listed) = app.get("/api/v1/items", &user).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "no invalid item was stored");

    let (status, body) = send(
        app.as_user(Method::POST, "/api/v1/items", &user)
            .header("Content-Type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 400);
}

on_every_backend!(
    an_item_goes_through_its_whole_life,
    another_users_item_a_malformed_id_and_a_missing_one_look_the_same,
    lists_are_newest_first_and_paginated,
    invalid_bodies_get_422_with_field_details_and_store_nothing,
);

/// The resource kit's contract, on items.
mod contract {
    use serde_json::json;

    use crate::resource_contract::{Spec, resource_contract};

    const SPEC: Spec = Spec {
        path: "/api/v1/items",
        create: |n| json!({"name": format!("item {n}"), "description": "made by the contract"}),
        patch: || json!({"name": "renamed", "is_active": false}),
        invalid: || (json!({"name": " ", "description": "x"}), "name"),
    };

    resource_contract!(SPEC);
}
