//! Interop with the real `better-auth` npm package (pinned in
//! `tests/interop/package.json`): a session it creates is accepted, and once
//! it signs the session out the same cookie is refused within the cache TTL.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, Options, SECRET, ScratchDb, send, services, settings_map};

const INTEROP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop");

fn node(database_url: &str, args: &[&str]) -> Value {
    let output = Command::new("node")
        .arg("mint.mjs")
        .args(args)
        .current_dir(INTEROP_DIR)
        .env("DATABASE_URL", database_url)
        .env("BETTER_AUTH_SECRET", SECRET)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("node printed JSON")
}

fn interop_ready() -> bool {
    let installed = Path::new(INTEROP_DIR)
        .join("node_modules/better-auth/package.json")
        .exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        assert!(node, "CI=true but `node` is not available");
        assert!(
            installed,
            "CI=true but better-auth is not installed: run `npm ci` in tests/interop"
        );
    }
    if !(node && installed) {
        eprintln!("SKIPPED better-auth interop: needs node and `npm ci` in tests/interop");
    }
    node && installed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_minted_by_real_better_auth_authenticates_until_it_signs_out() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) =
        ScratchDb::create(Backend::Postgres(infra::better_auth::NamingStyle::CamelCase), "interop").await
    else {
        return;
    };
    // better-auth migrates its own tables and signs a user up.
    let minted = node(&scratch.url, &["signup", "interop@example.com"]);
    let cookie = minted["cookie"].as_str().unwrap().to_owned();
    let user_id = minted["userId"].as_str().unwrap();

    let options = Options {
        session_cache_ttl_secs: 1,
        ..Options::default()
    };
    let prefix = format!("interop:{}:", uuid::Uuid::new_v4().simple());
    let vars = settings_map(&scratch.url, &options, services().redis.as_deref(), &prefix);
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let server = api::Application::build(settings)
        .await
        .expect("server starts on better-auth's own schema");
    let url = format!("http://127.0.0.1:{}/api/v1/users/me", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    let client = reqwest::Client::new();

    let (status, body) = send(client.get(&url).header("Cookie", &cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], user_id);
    assert_eq!(body["email"], "interop@example.com");
    assert_eq!(body["name"], "Interop User");

    let signed_out = node(&scratch.url, &["signout", &cookie]);
    assert_eq!(signed_out["status"], 200, "{signed_out}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = send(client.get(&url).header("Cookie", &cookie)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a signed-out session is refused once the cache TTL has passed"
    );
    handle.stop(false).await;
}
