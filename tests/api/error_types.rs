//! Every status the API answers carries its stable `error.type`, walked one
//! by one through the real server; in development a 401/403 says why in
//! `details.reason`, in production it never does. (408, 409, 500 and 503
//! are walked where their set-up lives: hardening, idempotency, the app's
//! unit tests and resilience.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, now, send, spawn_app_with};

fn expect(what: &str, (status, body): (StatusCode, Value), code: u16, kind: &str) -> Value {
    assert_eq!(status.as_u16(), code, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert_eq!(body["error"]["type"], kind, "{what}: {body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}"
    );
    body
}

async fn app(test: &str, extra: Vec<(String, String)>) -> Option<TestApp> {
    let options = Options {
        organization_plugin: true,
        api_key_plugin: true,
        extra: [
            vec![
                ("RATE_LIMIT_REQUESTS".into(), "1000".into()),
                ("MAX_REQUEST_SIZE".into(), "4096".into()),
            ],
            extra,
        ]
        .concat(),
        ..Options::default()
    };
    spawn_app_with(Backend::Sqlite, test, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_status_answers_its_type_and_development_says_why() {
    let Some(app) = app("each_error_status_answers_its_type", Vec::new()).await else {
        return;
    };
    let alice = app.signed_in_user("alice").await;
    let bob = app.signed_in_user("bob").await;
    let items = "/api/v1/items";

    let bad_json = app
        .as_user(Method::POST, items, &alice)
        .header("Content-Type", "application/json")
        .body("{");
    expect("malformed JSON", send(bad_json).await, 400, "bad_request");
    let bad_tag = app
        .as_user(Method::GET, items, &alice)
        .header("If-None-Match", "unquoted");
    expect("malformed If-None-Match", send(bad_tag).await, 400, "bad_request");

    let body = expect(
        "no credential",
        send(app.request(Method::GET, items)).await,
        401,
        "not_authenticated",
    );
    assert_eq!(body["error"]["details"]["reason"], "missing credential");
    let expired = app
        .user_with_session("expired", now() - chrono::Duration::minutes(1))
        .await;
    let body = expect(
        "expired session",
        app.get(items, &expired).await,
        401,
        "not_authenticated",
    );
    assert_eq!(body["error"]["details"]["reason"], "expired session");
    let forged = app
        .request(Method::GET, items)
        .header("Cookie", format!("better-auth.session_token={}.AAAA", "a".repeat(32)));
    let body = expect("forged cookie", send(forged).await, 401, "not_authenticated");
    assert!(body["error"]["details"]["reason"].as_str().is_some(), "{body}");

    let cross_site = app
        .as_user(Method::POST, items, &alice)
        .header("Origin", "https://evil.example")
        .json(&json!({"name": "x"}));
    let body = expect("cross-site write", send(cross_site).await, 403, "csrf_origin_rejected");
    assert!(
        body["error"]["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("FRONTEND_URL")
    );

    let foreign = app
        .as_user(Method::GET, items, &alice)
        .header("X-Organization-Id", "nowhere");
    let body = expect("not a member", send(foreign).await, 403, "not_a_member");
    assert!(body["error"]["details"]["reason"].as_str().is_some(), "{body}");

    app.dev
        .insert_organization("acme", "Acme", "acme", now())
        .await
        .unwrap();
    app.dev.insert_member("acme", &alice.id, "member", now()).await.unwrap();
    app.dev.insert_member("acme", &bob.id, "member", now()).await.unwrap();
    let in_acme = app
        .as_user(Method::POST, items, &alice)
        .header("X-Organization-Id", "acme")
        .json(&json!({"name": "alice's"}));
    let (_, created) = send(in_acme).await;
    let path = format!("{items}/{}", created["id"].as_str().unwrap());
    let by_bob = app
        .as_user(Method::DELETE, &path, &bob)
        .header("X-Organization-Id", "acme");
    let body = expect("another member's item", send(by_bob).await, 403, "forbidden");
    assert!(
        body["error"]["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("owner or admin")
    );

    expect(
        "unknown item",
        app.get(&format!("{items}/not-an-id"), &alice).await,
        404,
        "not_found",
    );
    expect(
        "unknown route",
        send(app.request(Method::GET, "/nowhere")).await,
        404,
        "not_found",
    );
    let put = app.as_user(Method::PUT, items, &alice).json(&json!({}));
    expect("wrong method", send(put).await, 405, "method_not_allowed");

    let (_, mine) = app.post(items, &alice, json!({"name": "mine"})).await;
    let mine = format!("{items}/{}", mine["id"].as_str().unwrap());
    let stale = app
        .as_user(Method::PATCH, &mine, &alice)
        .header("If-Match", "\"stale\"")
        .json(&json!({"name": "x"}));
    expect("stale If-Match", send(stale).await, 412, "precondition_failed");

    let big = app
        .as_user(Method::POST, items, &alice)
        .json(&json!({"name": "x", "description": "d".repeat(10_000)}));
    expect("too large", send(big).await, 413, "payload_too_large");
    let text = app
        .as_user(Method::POST, items, &alice)
        .header("Content-Type", "text/plain")
        .body("name=x");
    expect("not JSON", send(text).await, 415, "unsupported_media_type");

    let body = expect(
        "invalid field",
        app.post(items, &alice, json!({"name": ""})).await,
        422,
        "validation_failed",
    );
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "name");
    let once = |name: &str| {
        app.as_user(Method::POST, items, &alice)
            .header("Idempotency-Key", "walk-1")
            .json(&json!({"name": name}))
    };
    assert_eq!(send(once("first")).await.0, StatusCode::CREATED);
    expect("reused key", send(once("second")).await, 422, "idempotency_key_reused");

    app.dev
        .insert_api_key(&alice.id, "spent-key", Some(0), None, None, now())
        .await
        .unwrap();
    let spent = app
        .request(Method::GET, "/api/v1/users/me")
        .header("x-api-key", "spent-key");
    expect("spent API key", send(spent).await, 429, "usage_exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_rate_limit_is_rate_limited() {
    let extra = vec![
        ("RATE_LIMIT_REQUESTS".into(), "2".into()),
        ("RATE_LIMIT_WINDOW".into(), "60".into()),
    ];
    let Some(app) = app("a_spent_rate_limit_is_rate_limited", extra).await else {
        return;
    };
    let mut last = (StatusCode::OK, Value::Null);
    for _ in 0..3 {
        last = send(app.request(Method::GET, "/api/v1/items")).await;
    }
    expect("third request of two", last, 429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_keeps_the_type_but_never_says_why() {
    let extra = vec![
        ("APP_ENV".into(), "production".into()),
        ("SECRET_KEY".into(), "a-production-secret-key-0123456789abcdef".into()),
        ("DEBUG".into(), "false".into()),
        ("AUTO_MIGRATE".into(), "true".into()),
    ];
    let Some(app) = app("production_keeps_the_type_but_never_says_why", extra).await else {
        return;
    };
    let alice = app.signed_in_user("alice").await;
    let expired = app
        .user_with_session("expired", now() - chrono::Duration::minutes(1))
        .await;
    for (what, answer, code, kind) in [
        (
            "no credential",
            send(app.request(Method::GET, "/api/v1/items")).await,
            401,
            "not_authenticated",
        ),
        (
            "expired",
            app.get("/api/v1/items", &expired).await,
            401,
            "not_authenticated",
        ),
        (
            "not a member",
            send(
                app.as_user(Method::GET, "/api/v1/items", &alice)
                    .header("X-Organization-Id", "nowhere"),
            )
            .await,
            403,
            "not_a_member",
        ),
    ] {
        let body = expect(what, answer, code, kind);
        assert!(body["error"].get("details").is_none(), "{what}: {body}");
    }
}
