//! Handler tests through the real app factory, with mockall fakes for every
//! port: no database, no Redis.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use chrono::{TimeZone, Utc};
use domain::auth::port::{MockSessionCache, MockSessionStore};
use domain::auth::{AuthService, AuthSettings, SessionRecord, SignatureVerifier};
use domain::clock::SystemClock;
use domain::health::MockDependencyProbe;
use domain::item::ItemService;
use domain::item::MockItemRepository;
use domain::user::User;
use serde_json::{Value, json};

use crate::state::{AppState, CookieNames, SecurityPolicy};
use domain::rate_limit::{RateLimitService, RatePolicy};
use infra::rate_limit::MemoryRateLimiter;

const SECRET: &str = "unit-test-secret-unit-test-secret-0123";
const TOKEN: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz012345";

fn user() -> User {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    User {
        id: "user-1".into(),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        email_verified: true,
        image: Some("https://example.com/a.png".into()),
        created_at: at,
        updated_at: at,
    }
}

fn signed_in_store() -> MockSessionStore {
    let mut store = MockSessionStore::new();
    store.expect_find_by_token().returning(|_| {
        Ok(Some(SessionRecord {
            user: user(),
            expires_at: Utc::now() + chrono::Duration::hours(1),
            banned: false,
            ban_expires: None,
            active_organization_id: None,
            revocation: domain::auth::SessionRevocation::Row,
        }))
    });
    store
}

fn no_cache() -> MockSessionCache {
    let mut cache = MockSessionCache::new();
    cache.expect_get().returning(|_| Ok(None));
    cache.expect_put().returning(|_, _, _| Ok(()));
    cache
}

fn probe(name: &'static str, ok: bool) -> Arc<MockDependencyProbe> {
    let mut probe = MockDependencyProbe::new();
    probe.expect_name().return_const(name);
    probe.expect_check().returning(move || {
        if ok {
            Ok(())
        } else {
            Err(domain::Error::Unavailable(anyhow::anyhow!("{name} down")))
        }
    });
    Arc::new(probe)
}

fn state(store: MockSessionStore, repo: MockItemRepository) -> web::Data<AppState> {
    state_with(store, repo, |_| {})
}

/// The default test state, adjusted by `adjust`.
fn state_with(
    store: MockSessionStore,
    repo: MockItemRepository,
    adjust: impl FnOnce(&mut AppState),
) -> web::Data<AppState> {
    let clock = Arc::new(SystemClock);
    let mut state = AppState {
        auth_changes: None,
        auth: AuthService::new(
            SignatureVerifier::new(&[SECRET]),
            Arc::new(store),
            Arc::new(no_cache()),
            clock.clone(),
            AuthSettings {
                cache_ttl: Duration::from_secs(60),
                require_signed_bearer: false,
            },
        ),
        items: ItemService::new(Arc::new(repo), clock),
        response_cache: None,
        resources: crate::resource::Services::default(),
        organizations: domain::organization::OrganizationService::without_plugin(Arc::new(
            domain::organization::MockMembershipCache::new(),
        )),
        probes: vec![probe("database", true)],
        cursors: crate::cursor::CursorCodec::new(b"test-secret-key"),
        idempotency: Arc::new(domain::idempotency::IdempotencyService::new(
            Arc::new(domain::idempotency::MockIdempotencyStore::new()),
            Arc::new(SystemClock),
        )),
        redis_configured: false,
        cookies: CookieNames::new("better-auth"),
        rate_limit: generous_limits(),
        security: SecurityPolicy {
            frontend_origins: vec!["http://localhost:5173".into()],
            ..SecurityPolicy::default()
        },
        lifecycle: crate::lifecycle::Lifecycle::new(),
    };
    adjust(&mut state);
    web::Data::new(state)
}

fn generous_limits() -> RateLimitService {
    RateLimitService::new(
        None,
        Arc::new(MemoryRateLimiter::new()),
        RatePolicy {
            limit: 1000,
            window: Duration::from_secs(60),
        },
    )
}

fn cookie() -> (header::HeaderName, String) {
    let value = SignatureVerifier::new(&[SECRET]).signed_cookie_value(TOKEN).unwrap();
    (header::COOKIE, format!("better-auth.session_token={value}"))
}

async fn call(state: web::Data<AppState>, req: TestRequest, max: usize) -> (StatusCode, header::HeaderMap, Value) {
    let options = crate::app::AppOptions {
        body: crate::extract::BodyConfig {
            max_bytes: max,
            ..Default::default()
        },
        metrics: web::Data::from(crate::metrics::Metrics::new(None)),
        serve_metrics: true,
    };
    let app = test::init_service(crate::app::build(state, options)).await;
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, headers, json)
}

#[actix_web::test]
async fn me_answers_the_user_with_better_auth_field_names() {
    let (status, _, body) = call(
        state(signed_in_store(), MockItemRepository::new()),
        TestRequest::get().uri("/api/v1/users/me").insert_header(cookie()),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "user-1");
    assert_eq!(body["emailVerified"], true);
    assert_eq!(body["createdAt"], "2026-01-02T03:04:05Z");
    assert_eq!(body["image"], "https://example.com/a.png");
}

#[actix_web::test]
async fn no_credential_is_401_in_the_envelope_and_touches_nothing() {
    let mut store = MockSessionStore::new();
    store.expect_find_by_token().never();
    let mut repo = MockItemRepository::new();
    repo.expect_list().never();
    let (status, headers, body) = call(state(store, repo), TestRequest::get().uri("/api/v1/items"), 1024).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["path"], "/api/v1/items");
    assert_eq!(
        body["error"]["request_id"],
        headers.get("x-request-id").unwrap().to_str().unwrap()
    );
}

#[actix_web::test]
async fn list_passes_the_owner_and_page_to_storage() {
    let mut repo = MockItemRepository::new();
    repo.expect_list()
        // One more row than the page, to learn whether a next page exists.
        .withf(|owner, page| {
            *owner == domain::scope::Owner::User("user-1".into()) && page.skip() == 10 && page.limit() == 6
        })
        .times(1)
        .returning(|_, _| Ok(vec![]));
    let (status, _, body) = call(
        state(signed_in_store(), repo),
        TestRequest::get()
            .uri("/api/v1/items/?skip=10&limit=5")
            .insert_header(cookie()),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
}

#[actix_web::test]
async fn an_organization_header_without_the_plugin_is_403_and_a_malformed_one_400() {
    for (value, status, message) in [
        ("acme", StatusCode::FORBIDDEN, "not a member of this organization"),
        ("", StatusCode::BAD_REQUEST, "X-Organization-Id is empty"),
    ] {
        let mut repo = MockItemRepository::new();
        repo.expect_list().never();
        let (got, _, body) = call(
            state(signed_in_store(), repo),
            TestRequest::get()
                .uri("/api/v1/items")
                .insert_header(cookie())
                .insert_header(("X-Organization-Id", value)),
            1024,
        )
        .await;
        assert_eq!(got, status, "{value:?}: {body}");
        assert_eq!(body["error"]["message"], message);
    }
}

#[actix_web::test]
async fn a_member_lists_the_organizations_items_and_a_stranger_is_refused() {
    use domain::organization::{MockMembershipCache, MockMembershipStore, OrganizationService};
    let mut store = MockMembershipStore::new();
    store.expect_roles().returning(|_, organization| {
        Ok((organization.as_str() == "acme").then(|| domain::scope::Roles::new("member")))
    });
    let mut cache = MockMembershipCache::new();
    cache.expect_get().returning(|_| Ok(None));
    cache.expect_put().returning(|_, _, _| Ok(()));
    let organizations = OrganizationService::new(Arc::new(store), Arc::new(cache), Duration::from_secs(60));
    let mut repo = MockItemRepository::new();
    repo.expect_list()
        .withf(|owner, _| *owner == domain::scope::Owner::Organization("acme".into()))
        .times(1)
        .returning(|_, _| Ok(vec![]));
    let state = state_with(signed_in_store(), repo, |s| s.organizations = organizations);
    let (status, _, body) = call(
        state.clone(),
        TestRequest::get()
            .uri("/api/v1/items")
            .insert_header(cookie())
            .insert_header(("X-Organization-Id", "acme")),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = call(
        state,
        TestRequest::get()
            .uri("/api/v1/items")
            .insert_header(cookie())
            .insert_header(("X-Organization-Id", "globex")),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["message"], "not a member of this organization");
}

#[actix_web::test]
async fn create_answers_201_with_the_trimmed_item_owned_by_the_caller() {
    let mut repo = MockItemRepository::new();
    repo.expect_insert().times(1).returning(|_| Ok(()));
    let (status, _, body) = call(
        state(signed_in_store(), repo),
        TestRequest::post()
            .uri("/api/v1/items")
            .insert_header(cookie())
            .set_json(json!({"name": "  Lamp  "})),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["name"], "Lamp");
    assert_eq!(body["owner_id"], "user-1");
    assert_eq!(body["is_active"], true);
    assert_eq!(body["description"], Value::Null);
}

#[actix_web::test]
async fn body_problems_are_4xx_envelopes_never_500() {
    let cases = [
        (
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload("{nope"),
            400,
        ),
        (
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "text/plain"))
                .set_payload("{}"),
            415,
        ),
        (TestRequest::post().set_payload("{}"), 415),
        (
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload("[1]"),
            422,
        ),
        (
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(format!("{{\"name\":\"{}\"}}", "x".repeat(300))),
            413,
        ),
    ];
    for (req, expected) in cases {
        let mut repo = MockItemRepository::new();
        repo.expect_insert().never();
        let (status, _, body) = call(
            state(signed_in_store(), repo),
            req.uri("/api/v1/items").insert_header(cookie()),
            256,
        )
        .await;
        assert_eq!(status.as_u16(), expected, "{body}");
        assert_eq!(body["error"]["code"], expected);
    }
}

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
    let source = include_str!("app.rs");
    let scope = &source[source.find("web::scope(\"/api/v1\")").unwrap()..];
    let scope = &scope[..scope.find(".configure(").unwrap()];
    assert!(
        !scope.contains("web::resource("),
        "a resource of /api/v1 made without api_resource (no panic guard, no 405)"
    );
    assert!(scope.matches("api_resource(").count() >= 2);
    // Scoped resources are mounted by the kit, which makes its routes with api_resource too.
    let registry = include_str!("resources.rs");
    let resources = &registry[registry.find("pub fn routes(").unwrap()..];
    let resources = &resources[..resources.find("\n}").unwrap()];
    for line in resources.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        assert!(
            line.trim().starts_with("mount::<") || line.trim().starts_with("//"),
            "a scoped resource mounted otherwise than by the kit: {line}"
        );
    }
    let kit = include_str!("resource.rs");
    let mount = &kit[kit.find("pub fn mount<").unwrap()..];
    let mount = &mount[..mount.find("\n}").unwrap()];
    assert!(!mount.contains("web::resource(") && mount.matches("api_resource(").count() == 2);
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
