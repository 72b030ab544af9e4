//! API keys (better-auth's api-key plugin) over HTTP on every backend and
//! naming style: the refill-then-decrement write, and concurrent use.

use reqwest::{Method, StatusCode};

use crate::helpers::{Backend, Options, TestApp, now, on_every_backend, send, spawn_app_with};

async fn with_key(app: &TestApp, raw: &str) -> StatusCode {
    send(app.request(Method::GET, "/api/v1/users/me").header("x-api-key", raw))
        .await
        .0
}

async fn remaining_refills_then_counts_down_to_429(backend: Backend) {
    let options = Options {
        api_key_plugin: true,
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, "api_key_refill", options).await else {
        return;
    };
    let user = app.signed_in_user("keyholder").await;
    // Used up, with a refill of 2 per second last done two seconds ago: due.
    let ago = now() - chrono::Duration::seconds(2);
    app.dev
        .insert_api_key(&user.id, "refilling-key", Some(0), Some((2, 1000)), Some(ago), ago)
        .await
        .unwrap();
    app.dev
        .insert_api_key(&user.id, "three-uses", Some(3), None, None, now())
        .await
        .unwrap();
    app.dev
        .insert_api_key(&user.id, "unlimited", None, None, None, now())
        .await
        .unwrap();
    assert_eq!(
        with_key(&app, "refilling-key").await,
        StatusCode::OK,
        "refilled to 2, one used"
    );
    assert_eq!(with_key(&app, "refilling-key").await, StatusCode::OK);
    let response = app
        .request(Method::GET, "/api/v1/users/me")
        .header("x-api-key", "refilling-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers()["retry-after"],
        "1",
        "the next refill is within a second"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "usage exceeded");

    let statuses = futures_util::future::join_all((0..10).map(|_| with_key(&app, "three-uses"))).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        3,
        "{statuses:?}"
    );
    for _ in 0..5 {
        assert_eq!(with_key(&app, "unlimited").await, StatusCode::OK);
    }
    for bad in ["unknown-key", "has space", &"k".repeat(1025)] {
        assert_eq!(with_key(&app, bad).await, StatusCode::UNAUTHORIZED, "{bad}");
    }
}

on_every_backend!(remaining_refills_then_counts_down_to_429);
