//! Outages, DEBUG, health, readiness and metrics.

use super::*;

#[actix_web::test]
async fn a_storage_outage_is_503_without_internals() {
    let mut repo = MockItemRepository::new();
    repo.expect_list().returning(|_, _| {
        Err(domain::Error::Unavailable(anyhow::anyhow!(
            "connection refused to 10.0.0.5:5432"
        )))
    });
    let (status, _, body) = call(
        state(signed_in_store(), repo),
        TestRequest::get().uri("/api/v1/items").insert_header(cookie()),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!body.to_string().contains("10.0.0.5"), "{body}");
}

fn failing_list() -> MockItemRepository {
    let mut repo = MockItemRepository::new();
    repo.expect_list().returning(|_, _| {
        Err(domain::Error::Unexpected(
            anyhow::anyhow!("relation \"items\" does not exist").context("listing items failed"),
        ))
    });
    repo
}

#[actix_web::test]
async fn debug_adds_the_cause_chain_to_5xx_bodies_and_only_then() {
    let request = || TestRequest::get().uri("/api/v1/items").insert_header(cookie());
    let (status, _, body) = call(state(signed_in_store(), failing_list()), request(), 1024).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["type"], "internal_error");
    assert!(body["error"].get("details").is_none(), "{body}");
    assert!(!body.to_string().contains("does not exist"), "{body}");

    let debug = state_with(signed_in_store(), failing_list(), |s| s.security.expose_causes = true);
    let (status, _, body) = call(debug, request(), 1024).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body["error"]["details"]["cause"],
        "listing items failed: relation \"items\" does not exist"
    );
    assert!(body["error"]["details"].get("errors").is_none());
}

#[actix_web::test]
async fn health_names_the_dependency_that_is_down() {
    let state = state_with(MockSessionStore::new(), MockItemRepository::new(), |state| {
        state.probes = vec![probe("database", true), probe("redis", false)];
        state.redis_configured = true;
    });
    let (status, _, body) = call(state, TestRequest::get().uri("/health"), 1024).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"status": "unhealthy", "database": "ok", "redis": "error", "session_storage": "disabled", "auth_changes": "disabled", "version": env!("CARGO_PKG_VERSION")})
    );
}

#[actix_web::test]
async fn readiness_turns_503_once_shutdown_begins_while_liveness_stays_200() {
    let state = state(MockSessionStore::new(), MockItemRepository::new());
    let (status, _, body) = call(state.clone(), TestRequest::get().uri("/health/ready"), 1024).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")));
    state.lifecycle.begin_shutdown();
    let (status, _, body) = call(state.clone(), TestRequest::get().uri("/health/ready"), 1024).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("shutting_down"))
    );
    let (status, _, _) = call(state, TestRequest::get().uri("/health/live"), 1024).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let metrics = web::Data::from(crate::metrics::Metrics::new(None));
    let options = crate::app::AppOptions {
        body: crate::extract::BodyConfig {
            max_bytes: 1024,
            ..Default::default()
        },
        metrics: metrics.clone(),
        serve_metrics: true,
    };
    let app = test::init_service(crate::app::build(
        state(MockSessionStore::new(), MockItemRepository::new()),
        options,
    ))
    .await;
    for uri in ["/api/v1/items/one", "/api/v1/items/two", "/health/live"] {
        test::call_service(&app, TestRequest::get().uri(uri).to_request()).await;
    }
    for made_up in ["BREW", "WHEN"] {
        let method = actix_web::http::Method::from_bytes(made_up.as_bytes()).unwrap();
        test::call_service(&app, TestRequest::default().method(method).uri("/nowhere").to_request()).await;
    }
    let res = test::call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/v1/items/{id}",status="401"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/health/live",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
    assert!(!text.contains("/api/v1/items/one"), "raw paths never become labels");
    assert!(
        text.contains(r#"http_requests_total{method="OTHER",route="unmatched",status="404"} 2"#),
        "made-up methods share one label: {text}"
    );
    assert!(!text.contains("BREW"));
}
