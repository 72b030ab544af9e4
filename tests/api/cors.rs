//! CORS as a browser on a `FRONTEND_URL` origin meets it: every method and
//! every request header the API reads passes the preflight (the configured
//! API-key header included), and every response header a client relies on
//! is exposed to scripts, on successes and errors alike.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};

const APP: &str = "http://localhost:5173";
const ADMIN: &str = "https://admin.example.com";

/// What a browser's script sends besides the CORS-safelisted headers.
const REQUEST_HEADERS: [&str; 9] = [
    "authorization",
    "content-type",
    "accept",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "x-organization-id",
    "x-request-id",
    "x-tenant-key",
];

/// What the API answers that a script needs to read.
const EXPOSED: [&str; 10] = [
    "etag",
    "link",
    "location",
    "idempotent-replayed",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
    "x-request-id",
    "allow",
];

async fn app(test: &str) -> Option<TestApp> {
    let options = Options {
        extra: vec![
            ("FRONTEND_URL".into(), format!("{APP},{ADMIN}/")),
            ("API_KEY_HEADER".into(), "X-Tenant-Key".into()),
        ],
        ..Options::default()
    };
    spawn_app_with(Backend::Sqlite, test, options).await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn listed(response: &reqwest::Response, list: &str) -> Vec<String> {
    header(response, list)
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

async fn preflight(app: &TestApp, origin: &str, method: &str, path: &str, headers: &str) -> reqwest::Response {
    app.request(Method::OPTIONS, path)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_and_request_header_passes_the_preflight_from_each_frontend_origin() {
    let Some(app) = app("every_method_and_request_header_passes_the_preflight").await else {
        return;
    };
    let item = "/api/v1/items/00000000-0000-0000-0000-000000000000";
    let routes = [
        ("GET", "/api/v1/items"),
        ("POST", "/api/v1/items"),
        ("GET", item),
        ("PATCH", item),
        ("DELETE", item),
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/organizations"),
    ];
    let all = REQUEST_HEADERS.join(",");
    let each_then_all: Vec<&str> = REQUEST_HEADERS.iter().copied().chain([all.as_str()]).collect();
    for origin in [APP, ADMIN] {
        for (method, path) in routes {
            for &requested in &each_then_all {
                let response = preflight(&app, origin, method, path, requested).await;
                assert_eq!(
                    response.status(),
                    StatusCode::OK,
                    "{origin} {method} {path} with {requested}"
                );
                assert_eq!(header(&response, "access-control-allow-origin"), Some(origin));
                assert_eq!(header(&response, "access-control-allow-credentials"), Some("true"));
                assert!(listed(&response, "access-control-allow-methods").contains(&method.to_ascii_lowercase()));
                let allowed = listed(&response, "access-control-allow-headers");
                for one in requested.split(',') {
                    assert!(allowed.contains(&one.to_owned()), "{one} not in {allowed:?}");
                }
                assert!(header(&response, "access-control-max-age").is_some());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_the_api_does_not_read_and_a_foreign_origin_get_no_cors_grant() {
    let Some(app) = app("a_header_the_api_does_not_read_and_a_foreign_origin_get_no_cors_grant").await else {
        return;
    };
    // The default API-key header is not read once API_KEY_HEADER renames it.
    let response = preflight(&app, APP, "GET", "/api/v1/items", "x-api-key").await;
    assert!(
        header(&response, "access-control-allow-origin").is_none() || !response.status().is_success(),
        "x-api-key allowed though the API reads x-tenant-key"
    );
    let response = preflight(&app, "http://localhost:5174", "GET", "/api/v1/items", "if-match").await;
    let granted: Vec<_> = response
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .collect();
    assert!(granted.is_empty(), "a foreign origin got {granted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_expose_every_header_a_client_relies_on_including_errors() {
    let Some(app) = app("answers_expose_every_header_a_client_relies_on").await else {
        return;
    };
    let user = app.signed_in_user("cors-exposed").await;
    let created = app
        .as_user(Method::POST, "/api/v1/items", &user)
        .header("Origin", ADMIN)
        .header("Idempotency-Key", "cors-exposed-1")
        .json(&json!({"name": "lamp"}))
        .send()
        .await
        .unwrap();
    let unknown = app
        .as_user(Method::GET, "/api/v1/items/not-an-id", &user)
        .header("Origin", APP)
        .send()
        .await
        .unwrap();
    let anonymous = app
        .request(Method::GET, "/api/v1/items")
        .header("Origin", APP)
        .send()
        .await
        .unwrap();
    for (response, status) in [
        (created, StatusCode::CREATED),
        (unknown, StatusCode::NOT_FOUND),
        (anonymous, StatusCode::UNAUTHORIZED),
    ] {
        assert_eq!(response.status(), status);
        assert!(header(&response, "access-control-allow-origin").is_some(), "{status}");
        let exposed = listed(&response, "access-control-expose-headers");
        for name in EXPOSED {
            assert!(
                exposed.contains(&name.to_owned()),
                "{status}: {name} not in {exposed:?}"
            );
        }
    }
}
