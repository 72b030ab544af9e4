//! Credential defects found by probing from outside, each refused now, on
//! every backend: a JWT of a deleted or unknown user (401, never a 500), an
//! API key whose permissions refuse a request (403 before a use is spent,
//! and no `Idempotency-Key` replay for it), and a credential header sent
//! twice (400).

use infra::better_auth::dev::DevUser;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait as _;
use serde_json::json;

use crate::helpers::{Backend, Options, TestApp, TestUser, now, on_every_backend, send, spawn_app_with};

/// better-auth's default issuer and audience (`BETTER_AUTH_URL`'s default).
const ISSUER: &str = "http://localhost:3000";

async fn app(backend: Backend, test: &str) -> Option<TestApp> {
    let options = Options {
        jwt_plugin: true,
        api_key_plugin: true,
        ..Options::default()
    };
    spawn_app_with(backend, test, options).await
}

async fn jwt_of(app: &TestApp, id: &str) -> String {
    let user = DevUser {
        id: id.to_owned(),
        email: format!("{id}@example.com"),
        name: id.to_owned(),
        email_verified: true,
    };
    app.dev
        .mint_jwt(&user, ISSUER, ISSUER, now(), chrono::Duration::minutes(15))
        .await
        .unwrap()
}

async fn with_jwt(app: &TestApp, method: Method, path: &str, jwt: &str) -> (StatusCode, serde_json::Value) {
    let mut request = app.request(method.clone(), path).bearer_auth(jwt);
    if method == Method::POST {
        request = request.json(&json!({"name": "by jwt"}));
    }
    send(request).await
}

async fn delete_user(app: &TestApp, user: &TestUser) {
    app.db
        .conn()
        .execute_unprepared(&format!("DELETE FROM \"user\" WHERE id = '{}'", user.id))
        .await
        .unwrap();
}

async fn a_jwt_of_a_deleted_or_unknown_user_is_401_never_a_500(backend: Backend) {
    let Some(app) = app(backend, "jwt_deleted_user").await else {
        return;
    };
    // Each minted token has a key of its own: mint both before the keys are first read.
    let stranger = jwt_of(&app, "no-such-user").await;
    let user = app.signed_in_user("soon-gone").await;
    let jwt = jwt_of(&app, &user.id).await;
    // Never a user: refused the first time the token is seen.
    for method in [Method::GET, Method::POST] {
        let (status, body) = with_jwt(&app, method.clone(), "/api/v1/items", &stranger).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method}: {body}");
        assert_eq!(body["error"]["type"], "not_authenticated");
    }
    // Deleted after its token was accepted (and remembered): a create is 401, not a foreign-key 500.
    assert_eq!(
        with_jwt(&app, Method::GET, "/api/v1/users/me", &jwt).await.0,
        StatusCode::OK
    );
    delete_user(&app, &user).await;
    let (status, body) = with_jwt(&app, Method::POST, "/api/v1/items", &jwt).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["type"], "not_authenticated");
}

async fn set_permissions(app: &TestApp, raw: &str, json: &str) {
    let hash = domain::auth::api_key::hash(raw);
    app.db
        .conn()
        .execute_unprepared(&format!(
            "UPDATE apikey SET permissions = '{json}' WHERE key = '{hash}'"
        ))
        .await
        .unwrap();
}

async fn a_read_only_api_key_is_refused_a_write_before_a_use_is_spent_and_gets_no_replay(backend: Backend) {
    let Some(app) = app(backend, "api_key_permission_first").await else {
        return;
    };
    let user = app.signed_in_user("keyholder").await;
    app.dev
        .insert_api_key(&user.id, "read-only-key", Some(2), None, None, now())
        .await
        .unwrap();
    set_permissions(&app, "read-only-key", r#"{"items":["read"]}"#).await;
    let with_key = |method: Method, key: Option<&str>| {
        let mut request = app
            .request(method.clone(), "/api/v1/items")
            .header("x-api-key", "read-only-key");
        if method == Method::POST {
            request = request.json(&json!({"name": "once"}));
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        send(request)
    };
    for _ in 0..3 {
        let (status, body) = with_key(Method::POST, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["type"], "forbidden");
    }
    // The user creates with a cookie; the read-only key may not replay that answer.
    let created = app
        .as_user(Method::POST, "/api/v1/items", &user)
        .header("Idempotency-Key", "shared-key")
        .json(&json!({"name": "once"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let (status, body) = with_key(Method::POST, Some("shared-key")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no replay for a key that may not create: {body}"
    );
    assert!(body.get("id").is_none());
    // The refusals spent nothing: both uses remain for reads.
    assert_eq!(with_key(Method::GET, None).await.0, StatusCode::OK);
    assert_eq!(with_key(Method::GET, None).await.0, StatusCode::OK);
    let (status, body) = with_key(Method::GET, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["type"], "usage_exceeded");
}

async fn a_credential_header_sent_twice_is_refused(backend: Backend) {
    let Some(app) = app(backend, "credential_twice").await else {
        return;
    };
    let user = app.signed_in_user("twice").await;
    app.dev
        .insert_api_key(&user.id, "a-key", None, None, None, now())
        .await
        .unwrap();
    let value = crate::helpers::sign(&user.token);
    let requests = [
        app.request(Method::GET, "/api/v1/users/me")
            .header("Authorization", format!("Bearer {value}"))
            .header("Authorization", "Bearer someone-else"),
        app.request(Method::GET, "/api/v1/users/me")
            .header("x-api-key", "a-key")
            .header("x-api-key", "another-key"),
    ];
    for request in requests {
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["type"], "bad_request");
    }
    let once = app
        .request(Method::GET, "/api/v1/users/me")
        .header("x-api-key", "a-key");
    assert_eq!(send(once).await.0, StatusCode::OK);
}

on_every_backend!(
    a_jwt_of_a_deleted_or_unknown_user_is_401_never_a_500,
    a_read_only_api_key_is_refused_a_write_before_a_use_is_spent_and_gets_no_replay,
    a_credential_header_sent_twice_is_refused,
);
