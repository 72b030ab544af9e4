//! `/health` against real dependencies.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Options, on_every_backend, send, spawn_app, spawn_app_with};

async fn health_reports_each_dependency(backend: Backend) {
    let Some(app) = spawn_app(backend, "health_reports_each_dependency").await else {
        return;
    };
    let (status, body) = send(app.request(Method::GET, "/health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let redis = if app.redis_url.is_some() { "ok" } else { "disabled" };
    assert_eq!(
        body,
        json!({"status": "healthy", "database": "ok", "redis": redis, "version": env!("CARGO_PKG_VERSION")})
    );
}

async fn an_unreachable_redis_degrades_to_the_database_and_health_says_so(backend: Backend) {
    // A port nothing listens on: Redis is configured but down from the start.
    let options = Options {
        use_redis: false,
        extra: vec![("REDIS_URL".into(), "redis://127.0.0.1:1/0".into())],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(
        backend,
        "an_unreachable_redis_degrades_to_the_database_and_health_says_so",
        options,
    )
    .await
    else {
        return;
    };
    let user = app.signed_in_user("degraded").await;
    for _ in 0..3 {
        let (status, body) = app.get("/api/v1/users/me", &user).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "sessions are checked against the database: {body}"
        );
    }
    let (status, created) = app.post("/api/v1/items", &user, json!({"name": "still works"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, body) = send(app.request(Method::GET, "/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["redis"], "error");
}

on_every_backend!(
    health_reports_each_dependency,
    an_unreachable_redis_degrades_to_the_database_and_health_says_so
);
