//! The API from where its user stands: a frontend on its own origin
//! (`tests/frontend`, plain TypeScript bundled by esbuild) signs up and
//! creates an organization through the **real better-auth** (its handler
//! mounted on the frontend's server, as a Next.js app mounts it), then, in
//! headless Chromium and through the typed client with the browser's cookie,
//! pages with `Link`, creates with `Idempotency-Key` (and a replay), edits
//! with `If-Match` (and a 412), switches organization with
//! `X-Organization-Id`, reads error types, and sees better-auth's sign-out.
//! No request may be blocked by CORS.
//!
//! The frontend is `http://localhost:<port>` and the API
//! `http://localhost:<port>`: two origins of one site, as
//! `app.example.com` and `api.example.com` are with better-auth's
//! `crossSubDomainCookies` (cookies ignore ports, so the session cookie set
//! by the frontend's better-auth reaches the API, and only CORS decides
//! whether the page may read the answers).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{Backend, Options, SECRET, ScratchDb, free_port, node_json, services, settings_map};

const FRONTEND_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/frontend");
const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/typescript");

fn frontend_ready(test: &str) -> bool {
    let installed = |dir: &str, package: &str| {
        Path::new(dir)
            .join("node_modules")
            .join(package)
            .join("package.json")
            .exists()
    };
    let ready = [
        installed(FRONTEND_DIR, "better-auth"),
        installed(FRONTEND_DIR, "esbuild"),
        installed(FRONTEND_DIR, "playwright-core"),
        installed(CLIENT_DIR, "openapi-fetch"),
        Path::new(&std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into())).exists(),
        Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
    ];
    let all = ready.iter().all(|r| *r);
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        assert!(
            all,
            "CI=true but the frontend test cannot run: needs node, `npm ci` in tests/frontend and clients/typescript, and /usr/bin/chromium ({ready:?})"
        );
    }
    if !all {
        eprintln!(
            "SKIPPED {test}: needs node, `npm ci` in tests/frontend and clients/typescript, and /usr/bin/chromium"
        );
    }
    all
}

fn node(database_url: &str, args: &[&str]) -> Value {
    node_json(
        FRONTEND_DIR,
        "run.mjs",
        args,
        &[("DATABASE_URL", database_url), ("BETTER_AUTH_SECRET", SECRET)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_on_another_origin_uses_every_feature_through_better_auth_and_the_typed_client() {
    let test = "a_frontend_on_another_origin_uses_every_feature";
    if !frontend_ready(test) {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "frontend",
    )
    .await
    else {
        return;
    };
    assert_eq!(node(&scratch.url, &["migrate"])["migrated"], true);

    let frontend_port = free_port();
    let options = Options {
        session_cache_ttl_secs: 1,
        extra: vec![("FRONTEND_URL".into(), format!("http://localhost:{frontend_port}"))],
        ..Options::default()
    };
    let prefix = format!("frontend:{}:", uuid::Uuid::new_v4().simple());
    let vars = settings_map(&scratch.url, &options, services().redis.as_deref(), &prefix);
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let server = api::Application::build(settings)
        .await
        .expect("the API starts on the schema better-auth made");
    let api_base = format!("http://localhost:{}", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());

    let url = scratch.url.clone();
    let port = frontend_port.to_string();
    let result = tokio::task::spawn_blocking(move || node(&url, &["drive", &port, &api_base]))
        .await
        .unwrap();
    handle.stop(false).await;

    let steps = result["steps"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] != true).collect();
    assert!(
        failed.is_empty() && result["error"].is_null(),
        "steps failed: {failed:#?}\nerror: {}\nall: {steps:#?}",
        result["error"]
    );
    assert!(steps.len() >= 16, "every step ran: {steps:#?}");
    let blocked = result["blocked"].as_array().unwrap();
    assert!(blocked.is_empty(), "requests failed in the browser: {blocked:?}");
    let cors: Vec<&Value> = result["consoleErrors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m.as_str()
                .is_some_and(|m| m.contains("CORS") || m.contains("Access-Control"))
        })
        .collect();
    assert!(cors.is_empty(), "Chromium reported CORS refusals: {cors:?}");
}

/// The same page against an API whose `FRONTEND_URL` does not list the
/// frontend: the browser must refuse to let it read anything (so the test
/// above would notice a CORS regression rather than pass around it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_frontend_is_blocked_when_its_origin_is_not_in_frontend_url() {
    let test = "the_same_frontend_is_blocked_when_its_origin_is_not_in_frontend_url";
    if !frontend_ready(test) {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "frontend_blocked",
    )
    .await
    else {
        return;
    };
    assert_eq!(node(&scratch.url, &["migrate"])["migrated"], true);
    let options = Options {
        extra: vec![("FRONTEND_URL".into(), "http://localhost:1".into())],
        ..Options::default()
    };
    let prefix = format!("frontend:{}:", uuid::Uuid::new_v4().simple());
    let vars = settings_map(&scratch.url, &options, services().redis.as_deref(), &prefix);
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let server = api::Application::build(settings).await.unwrap();
    let api_base = format!("http://localhost:{}", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    let (url, port) = (scratch.url.clone(), free_port().to_string());
    let result = tokio::task::spawn_blocking(move || node(&url, &["drive", &port, &api_base]))
        .await
        .unwrap();
    handle.stop(false).await;

    let steps = result["steps"].as_array().unwrap();
    assert_eq!(
        steps[0]["ok"], true,
        "better-auth is on the frontend's own origin: {steps:?}"
    );
    assert!(
        result["error"].as_str().is_some_and(|e| e.contains("Failed to fetch")),
        "the first API call fails in the browser: {result}"
    );
    assert!(
        result["consoleErrors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().is_some_and(|m| m.contains("CORS"))),
        "Chromium says why: {result}"
    );
}
