//! `/health` against real dependencies.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Options, on_every_backend, send, spawn_app, spawn_app_with};

async fn health_reports_each_dependency(backend: Backend) {
    let Some(app) = spawn_app(backend, "health_reports_each_dependency").await else {
        return;
    };
    // On PostgreSQL better-auth's changes are listened for (a moment after start).
    let auth_changes = if backend == Backend::Sqlite {
        "disabled"
    } else {
        "listening"
    };
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = send(app.request(Method::GET, "/health")).await;
        if body["auth_changes"] == auth_changes || started.elapsed() > std::time::Duration::from_secs(5) {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(status, StatusCode::OK, "{body}");
    let redis = if app.redis_url.is_some() { "ok" } else { "disabled" };
    assert_eq!(
        body,
        json!({"status": "healthy", "database": "ok", "redis": redis, "session_storage": "disabled", "auth_changes": auth_changes, "version": env!("CARGO_PKG_VERSION")})
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_move_to_their_own_address_and_count_cache_lookups() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = Options {
        extra: vec![("METRICS_ADDR".into(), format!("127.0.0.1:{port}"))],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Sqlite, "metrics_can_move_to_their_own_address", options).await else {
        return;
    };
    let user = app.signed_in_user("counted").await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/users/me", &user).await.0, StatusCode::OK);
    }
    let (status, _) = send(app.request(Method::GET, "/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not on the public listener");
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"session_cache_lookups_total{outcome="miss"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"session_cache_lookups_total{outcome="hit"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/v1/users/me",status="200"} 3"#),
        "{text}"
    );
    assert!(text.contains("db_pool_connections"), "{text}");
}
