//! What every route answers: the envelope, 404/405, trailing slashes, request ids, panics.

use super::*;

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_use_the_envelope() {
    let (status, _, body) = call(
        state(MockSessionStore::new(), MockItemRepository::new()),
        TestRequest::get().uri("/api/v2/nothing"),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["path"], "/api/v2/nothing");

    let (status, headers, body) = call(
        state(MockSessionStore::new(), MockItemRepository::new()),
        TestRequest::put().uri("/api/v1/items/abc"),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers.get(header::ALLOW).unwrap(), "GET, HEAD, PATCH, DELETE");
    assert_eq!(body["error"]["code"], 405);
}

#[actix_web::test]
async fn every_route_answers_with_one_trailing_slash_too_but_the_docs_keep_theirs() {
    let live = call(
        state(MockSessionStore::new(), MockItemRepository::new()),
        TestRequest::get().uri("/health/live/"),
        1024,
    )
    .await;
    assert_eq!(live.0, StatusCode::OK);

    let me = call(
        state(signed_in_store(), MockItemRepository::new()),
        TestRequest::get().uri("/api/v1/users/me/").insert_header(cookie()),
        1024,
    )
    .await;
    assert_eq!((me.0, &me.2["id"]), (StatusCode::OK, &json!("user-1")));

    let (status, headers, body) = call(
        state(MockSessionStore::new(), MockItemRepository::new()),
        TestRequest::put().uri("/api/v1/items/abc/"),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "matched /items/{{id}}");
    assert_eq!(headers.get(header::ALLOW).unwrap(), "GET, HEAD, PATCH, DELETE");
    assert_eq!(body["error"]["path"], "/api/v1/items/abc", "the canonical path");

    let twice = call(
        state(MockSessionStore::new(), MockItemRepository::new()),
        TestRequest::get().uri("/health//"),
        1024,
    )
    .await;
    assert_eq!(twice.0, StatusCode::NOT_FOUND, "only one slash is dropped");

    let options = crate::app::AppOptions {
        body: crate::extract::BodyConfig {
            max_bytes: 1024,
            ..Default::default()
        },
        metrics: web::Data::from(crate::metrics::Metrics::new(None)),
        serve_metrics: false,
    };
    let app = test::init_service(crate::app::build(
        state(MockSessionStore::new(), MockItemRepository::new()),
        options,
    ))
    .await;
    let docs = test::call_service(&app, TestRequest::get().uri("/docs/").to_request()).await;
    assert_eq!(
        docs.status(),
        StatusCode::OK,
        "Swagger UI is served at /docs/ (not redirected in a loop)"
    );
}

#[actix_web::test]
async fn a_well_formed_client_request_id_is_echoed() {
    let (_, headers, _) = call(
        state(MockSessionStore::new(), MockItemRepository::new()),
        TestRequest::get()
            .uri("/health")
            .insert_header(("x-request-id", "trace-42")),
        1024,
    )
    .await;
    assert_eq!(headers.get("x-request-id").unwrap(), "trace-42");
}

#[actix_web::test]
async fn a_panicking_handler_answers_500_in_the_envelope_without_detail() {
    let mut repo = MockItemRepository::new();
    repo.expect_list().returning(|_, _| panic!("secret internal detail"));
    let (status, headers, body) = call(
        state(signed_in_store(), repo),
        TestRequest::get().uri("/api/v1/items").insert_header(cookie()),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], 500);
    assert_eq!(body["error"]["message"], "Internal server error");
    assert!(!body.to_string().contains("secret internal detail"), "{body}");
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(
        headers.get("x-frame-options").unwrap(),
        "DENY",
        "security headers on errors too"
    );
}

#[actix_web::test]
async fn every_api_resource_answers_a_panic_with_500_in_the_envelope() {
    for uri in [
        "/api/v1/users/me",
        "/api/v1/organizations",
        "/api/v1/items",
        "/api/v1/items/0192f1a4-0000-7000-8000-000000000000",
    ] {
        let mut store = MockSessionStore::new();
        store
            .expect_find_by_token()
            .returning(|_| panic!("secret internal detail"));
        let (status, _, body) = call(
            state(store, MockItemRepository::new()),
            TestRequest::get().uri(uri).insert_header(cookie()),
            1024,
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(body["error"]["message"], "Internal server error", "{uri}");
        assert!(!body.to_string().contains("secret"), "{uri}: {body}");
    }
}

#[test]
fn every_api_resource_is_made_by_api_resource() {
    let source = include_str!("../app.rs");
    let scope = &source[source.find("web::scope(\"/api/v1\")").unwrap()..];
    let scope = &scope[..scope.find(".configure(").unwrap()];
    assert!(
        !scope.contains("web::resource("),
        "a resource of /api/v1 made without api_resource (no panic guard, no 405)"
    );
    assert!(scope.matches("api_resource(").count() >= 2);
    // Scoped resources are mounted by the kit, which makes its routes with api_resource too.
    let registry = include_str!("../resources.rs");
    let resources = &registry[registry.find("pub fn routes(").unwrap()..];
    let resources = &resources[..resources.find("\n}").unwrap()];
    for line in resources.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        assert!(
            line.trim().starts_with("mount::<") || line.trim().starts_with("//"),
            "a scoped resource mounted otherwise than by the kit: {line}"
        );
    }
    let kit = include_str!("../resource.rs");
    let mount = &kit[kit.find("pub fn mount<").unwrap()..];
    let mount = &mount[..mount.find("\n}").unwrap()];
    assert!(!mount.contains("web::resource(") && mount.matches("api_resource(").count() == 2);
}
