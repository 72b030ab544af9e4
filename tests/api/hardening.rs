//! Hostile input over HTTP: bounded error reports, stalled bodies, HEAD, and
//! ambiguous JSON (issue: hardening). Each would fail without its fix.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, Options, TestApp, TestUser, send, spawn_app, spawn_app_with};

async fn sqlite_app(test: &str) -> (TestApp, TestUser) {
    let app = spawn_app(Backend::Sqlite, test)
        .await
        .expect("SQLite is always available");
    let user = app.signed_in_user("hardening").await;
    (app, user)
}

async fn post_raw(app: &TestApp, user: &TestUser, body: String) -> (StatusCode, Vec<u8>) {
    let response = app
        .as_user(Method::POST, "/api/v1/items", user)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_seventy_thousand_unknown_keys_gets_fifty_errors_and_says_more_were_dropped() {
    let (app, user) = sqlite_app("hardening_many_keys").await;
    let body = format!(
        "{{{}}}",
        (0..70_000)
            .map(|i| format!("\"{i:x}\":0"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(body.len() < 700_000, "under the item body limit");
    let (status, bytes) = post_raw(&app, &user, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bytes.len() < 8 * 1024, "the report is small: {} bytes", bytes.len());
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    let details = &answer["error"]["details"];
    assert_eq!(details["errors"].as_array().unwrap().len(), 50);
    assert_eq!(details["truncated"], true);
    let (_, listed) = app.get("/api/v1/items", &user).await;
    assert_eq!(listed, json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_key_name_is_cut_to_128_characters_in_the_report() {
    let (app, user) = sqlite_app("hardening_long_key").await;
    let key = "k".repeat(500_000);
    let (status, bytes) = post_raw(&app, &user, format!(r#"{{"name":"a","{key}":1}}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    let error = &answer["error"]["details"]["errors"][0];
    assert_eq!(error["field"].as_str().unwrap().len(), 128);
    assert_eq!(error["type"], "unknown_field");
    assert!(answer["error"]["details"].get("truncated").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_larger_than_any_valid_item_is_refused_before_it_is_buffered() {
    let (app, user) = sqlite_app("hardening_item_body_limit").await;
    let (status, bytes) = post_raw(&app, &user, format!(r#"{{"name":"{}"}}"#, "a".repeat(2_000_000))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["error"]["code"], 413);
}

/// Sends `head` (and whatever body bytes it holds) and returns everything the
/// server writes until it closes the connection, and how long that took.
async fn stall(app: &TestApp, head: String) -> (String, Duration) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

fn body_timeout() -> Options {
    Options {
        extra: vec![("REQUEST_BODY_TIMEOUT".into(), "1".into())],
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_short_of_its_content_length_gets_408_and_a_closed_connection() {
    let app = spawn_app_with(Backend::Sqlite, "hardening_stalled_body", body_timeout())
        .await
        .unwrap();
    let user = app.signed_in_user("slow").await;
    let head = format!(
        "POST /api/v1/items HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\":\"a",
        user.cookie
    );
    let (answer, took) = stall(&app, head).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":408"), "the envelope: {answer}");
    assert!(answer.contains("\"type\":\"request_timeout\""), "the type: {answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(
        took < Duration::from_secs(5),
        "answered after the 1 s timeout, took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_that_stops_mid_chunk_gets_408_and_a_closed_connection() {
    let app = spawn_app_with(Backend::Sqlite, "hardening_stalled_chunk", body_timeout())
        .await
        .unwrap();
    let user = app.signed_in_user("slow").await;
    let head = format!(
        "POST /api/v1/items HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{{\"name\":",
        user.cookie
    );
    let (answer, took) = stall(&app, head).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_answered_like_get_without_a_body() {
    let (app, user) = sqlite_app("hardening_head").await;
    for path in ["/health/live", "/health", "/health/ready"] {
        let get = app.request(Method::GET, path).send().await.unwrap();
        let head = app.request(Method::HEAD, path).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(
            head.headers().get("content-length"),
            get.headers().get("content-length"),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty());
    }
    app.post("/api/v1/items", &user, json!({"name": "one"})).await;
    let head = app.as_user(Method::HEAD, "/api/v1/items", &user).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert!(
        head.headers().get("ratelimit-remaining").is_some(),
        "rate limited like GET"
    );
    assert_eq!(head.headers().get("cache-control").unwrap(), "no-store");
    assert!(head.bytes().await.unwrap().is_empty());
    let anonymous = app.request(Method::HEAD, "/api/v1/users/me").send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "authenticated like GET");
    let put = app.request(Method::PUT, "/api/v1/items").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.headers().get("allow").unwrap(), "GET, HEAD, POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_and_invisible_names_are_refused() {
    let (app, user) = sqlite_app("hardening_ambiguous_json").await;
    for (body, field, kind) in [
        (r#"{"name":"a","name":"b"}"#, "name", "duplicate_field"),
        (
            r#"{"name":"x","is_active":"x","is_active":true}"#,
            "is_active",
            "duplicate_field",
        ),
        ("{\"name\":\"\u{200B}\"}", "name", "too_short"),
        ("{\"name\":\" \u{FEFF}\u{200C}\u{200D}\u{2060} \"}", "name", "too_short"),
    ] {
        let (status, bytes) = post_raw(&app, &user, body.to_owned()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        let errors = answer["error"]["details"]["errors"].as_array().unwrap().clone();
        assert!(
            errors.iter().any(|e| e["field"] == field && e["type"] == kind),
            "{body}: {errors:?}"
        );
    }
    let (_, listed) = app.get("/api/v1/items", &user).await;
    assert_eq!(listed, json!([]), "nothing was created");
    let (status, created) = app.post("/api/v1/items", &user, json!({"name": "\u{200B}a"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["name"], "\u{200B}a", "visible names are stored as given");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loose_media_types_numbers_and_not_found_messages_are_consistent() {
    let (app, user) = sqlite_app("hardening_small_ones").await;
    let response = app
        .as_user(Method::POST, "/api/v1/items", &user)
        .header("Content-Type", "application/+json")
        .body(r#"{"name":"a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for query in ["limit=+5", "limit=%205", "skip=%2B1"] {
        let (status, body) = app.get(&format!("/api/v1/items?{query}"), &user).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
    for path in ["/nope", "/docs/nope.js", "/api/v1/nope"] {
        let (status, body) = send(app.request(Method::GET, path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"]["message"], "Not found", "{path}");
    }
}
