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

mod operations;
mod protocol;
mod resources;
