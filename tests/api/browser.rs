//! Real-browser tests in headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `tests/browser`): CORS with credentials from the
//! frontend's origin and from a foreign one, and Swagger UI and ReDoc
//! rendering with no network beyond this service, under the docs CSP.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{Backend, Options, free_port, node_json, sign, spawn_app, spawn_app_with};

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/browser");

fn browser_ready(test: &str) -> bool {
    let installed = Path::new(BROWSER_DIR)
        .join("node_modules/playwright-core/package.json")
        .exists();
    let chromium = Path::new(&std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into())).exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        assert!(
            node && installed && chromium,
            "CI=true but the browser test cannot run (node {node}, playwright-core {installed}, chromium {chromium})"
        );
    }
    if !(node && installed && chromium) {
        eprintln!("SKIPPED {test}: needs node, `npm ci` in tests/browser and /usr/bin/chromium");
    }
    node && installed && chromium
}

fn run_browser(args: &[&str]) -> Value {
    node_json(BROWSER_DIR, "browser.mjs", args, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_the_frontend_origin_reads_the_api_with_cookies_and_another_origin_is_blocked() {
    let test = "a_browser_on_the_frontend_origin_reads_the_api";
    if !browser_ready(test) {
        return;
    }
    let (allowed, other) = (free_port(), free_port());
    let options = Options {
        extra: vec![("FRONTEND_URL".into(), format!("http://127.0.0.1:{allowed}"))],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Sqlite, test, options).await else {
        return;
    };
    let user = app.signed_in_user("browser").await;
    let (address, value) = (app.address.clone(), sign(&user.token));
    let result = tokio::task::spawn_blocking(move || {
        run_browser(&[
            "cors",
            &address,
            "better-auth.session_token",
            &value,
            &allowed.to_string(),
            &other.to_string(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(result["allowed"]["outcome"], "response", "{result}");
    assert_eq!(result["allowed"]["status"], 200, "{result}");
    assert_eq!(
        result["allowed"]["body"]["id"], user.id,
        "the cookie went along: {result}"
    );
    assert_eq!(
        result["other"]["outcome"], "blocked",
        "the browser withholds the answer from a foreign origin: {result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_renders_every_operation_without_internet() {
    let test = "swagger_ui_renders_every_operation_without_internet";
    if !browser_ready(test) {
        return;
    }
    let Some(app) = spawn_app(Backend::Sqlite, test).await else {
        return;
    };
    let address = app.address.clone();
    let result = tokio::task::spawn_blocking(move || run_browser(&["docs", &address]))
        .await
        .unwrap();
    let operations: Vec<String> = result["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().replace('\u{200b}', ""))
        .collect();
    for expected in [
        "GET /health",
        "GET /api/v1/users/me",
        "GET /api/v1/items",
        "POST /api/v1/items",
        "GET /api/v1/items/{id}",
        "PATCH /api/v1/items/{id}",
        "DELETE /api/v1/items/{id}",
    ] {
        assert!(
            operations.iter().any(|o| o == expected),
            "{expected} not rendered: {operations:?}"
        );
    }
    assert_eq!(result["errors"], serde_json::json!([]), "no script errors: {result}");
    assert_eq!(
        result["external"],
        serde_json::json!([]),
        "nothing from another origin: {result}"
    );
    assert_eq!(result["csp"], serde_json::json!([]), "no CSP violation: {result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redoc_renders_every_operation_from_the_binary_under_a_self_only_csp() {
    let test = "redoc_renders_every_operation_from_the_binary";
    if !browser_ready(test) {
        return;
    }
    let Some(app) = spawn_app(Backend::Sqlite, test).await else {
        return;
    };
    let address = app.address.clone();
    let result = tokio::task::spawn_blocking(move || run_browser(&["redoc", &address]))
        .await
        .unwrap();
    let document: serde_json::Value = serde_json::from_str(&api::docs::openapi_json().unwrap()).unwrap();
    let expected: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    assert!(expected.len() >= 9, "the document lists its operations: {expected:?}");
    let rendered = result["operations"].as_array().unwrap();
    for operation in expected {
        assert!(
            rendered.iter().any(|r| r == operation),
            "{operation} not rendered by ReDoc: {result}"
        );
    }
    assert_eq!(result["errors"], serde_json::json!([]), "no script errors: {result}");
    assert_eq!(
        result["external"],
        serde_json::json!([]),
        "nothing from a CDN: {result}"
    );
    // The one thing ReDoc tries to load from elsewhere is its attribution logo
    // (an <img> it removes on error, by design): the CSP blocks it; nothing else.
    let blocked: Vec<&Value> = result["csp"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !v.as_str().unwrap().contains("https://cdn.redoc.ly/redoc/logo-mini.svg"))
        .collect();
    assert!(blocked.is_empty(), "no CSP violation that breaks the page: {result}");
}
