//! better-auth sessions over HTTP: what is accepted and what is refused.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::helpers::{Backend, Options, TestApp, now, on_every_backend, send, sign, spawn_app, spawn_app_with};

async fn status_with_cookie(app: &TestApp, cookie: &str) -> StatusCode {
    send(app.request(Method::GET, "/api/v1/users/me").header("Cookie", cookie))
        .await
        .0
}

async fn a_signed_session_cookie_identifies_the_user(backend: Backend) {
    let Some(app) = spawn_app(backend, "a_signed_session_cookie_identifies_the_user").await else {
        return;
    };
    let user = app.signed_in_user("ada").await;
    let (status, body) = app.get("/api/v1/users/me", &user).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], user.id);
    assert_eq!(body["email"], format!("{}@example.com", user.id));
    assert_eq!(body["name"], "ada");
    assert_eq!(body["emailVerified"], false);
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
    // Served a second time (from the cache) the answer is identical.
    assert_eq!(app.get("/api/v1/users/me", &user).await.1, body);
}

async fn the_secure_prefixed_cookie_and_bearer_tokens_are_accepted(backend: Backend) {
    let Some(app) = spawn_app(backend, "the_secure_prefixed_cookie_and_bearer_tokens_are_accepted").await else {
        return;
    };
    let user = app.signed_in_user("bob").await;
    let secure = format!("__Secure-better-auth.session_token={}", sign(&user.token));
    assert_eq!(status_with_cookie(&app, &secure).await, StatusCode::OK);
    for bearer in [sign(&user.token), user.token.clone()] {
        let (status, body) = send(
            app.request(Method::GET, "/api/v1/users/me")
                .header("Authorization", format!("Bearer {bearer}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], user.id);
    }
}

async fn unsigned_forged_unknown_and_expired_sessions_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend, "unsigned_forged_unknown_and_expired_sessions_are_refused").await else {
        return;
    };
    let user = app.signed_in_user("eve").await;
    let expired = app.user_with_session("old", now() - chrono::Duration::minutes(1)).await;
    let forged = domain::auth::SignatureVerifier::new(&["not-the-server-secret-not-the-server-secret"])
        .signed_cookie_value(&user.token)
        .unwrap();
    let unknown = sign(&infra::better_auth::dev::generate_token());
    for cookie in [
        format!("better-auth.session_token={}", user.token),
        format!("better-auth.session_token={forged}"),
        format!("better-auth.session_token={unknown}"),
        expired.cookie.clone(),
        format!(
            "better-auth.session_token=%00'; DROP TABLE \"user\"; --.{}",
            sign(&user.token).split('.').nth(1).unwrap()
        ),
        "better-auth.session_data=eyJzZXNzaW9uIjp7fX0".to_owned(),
    ] {
        let (status, body) = send(app.request(Method::GET, "/api/v1/users/me").header("Cookie", &cookie)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cookie}");
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(
            body["error"]["message"], "Not authenticated",
            "the reason is never returned"
        );
    }
    assert_eq!(
        status_with_cookie(&app, &user.cookie).await,
        StatusCode::OK,
        "the real user still works"
    );
}

async fn a_banned_user_is_refused_until_the_ban_expires(backend: Backend) {
    let options = Options {
        session_cache_ttl_secs: 1,
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, "a_banned_user_is_refused_until_the_ban_expires", options).await else {
        return;
    };
    let user = app.signed_in_user("mallory").await;
    app.dev.set_ban(&user.id, true, None).await.unwrap();
    assert_eq!(status_with_cookie(&app, &user.cookie).await, StatusCode::UNAUTHORIZED);
    app.dev
        .set_ban(&user.id, true, Some(now() + chrono::Duration::days(1)))
        .await
        .unwrap();
    assert_eq!(status_with_cookie(&app, &user.cookie).await, StatusCode::UNAUTHORIZED);
    app.dev
        .set_ban(&user.id, true, Some(now() - chrono::Duration::days(1)))
        .await
        .unwrap();
    assert_eq!(
        status_with_cookie(&app, &user.cookie).await,
        StatusCode::OK,
        "an expired ban no longer applies"
    );
}

async fn a_signed_out_session_stops_working_within_the_cache_ttl(backend: Backend) {
    let options = Options {
        session_cache_ttl_secs: 1,
        ..Options::default()
    };
    let Some(app) = spawn_app_with(
        backend,
        "a_signed_out_session_stops_working_within_the_cache_ttl",
        options,
    )
    .await
    else {
        return;
    };
    let user = app.signed_in_user("leaver").await;
    assert_eq!(status_with_cookie(&app, &user.cookie).await, StatusCode::OK);
    assert!(app.dev.delete_session(&user.token).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status_with_cookie(&app, &user.cookie).await, StatusCode::UNAUTHORIZED);
}

async fn deleting_a_user_cascades_to_their_items(backend: Backend) {
    let Some(app) = spawn_app(backend, "deleting_a_user_cascades_to_their_items").await else {
        return;
    };
    let user = app.signed_in_user("gone").await;
    let (status, _) = app
        .post("/api/v1/items", &user, serde_json::json!({"name": "orphan?"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.db
        .execute_unprepared(&format!("DELETE FROM \"user\" WHERE id = '{}'", user.id))
        .await
        .unwrap();
    let row = sea_orm::ConnectionTrait::query_one_raw(
        app.db.conn(),
        sea_orm::Statement::from_string(
            app.db.backend(),
            format!("SELECT COUNT(*) AS n FROM items WHERE owner_id = '{}'", user.id),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
}

on_every_backend!(
    a_signed_session_cookie_identifies_the_user,
    the_secure_prefixed_cookie_and_bearer_tokens_are_accepted,
    unsigned_forged_unknown_and_expired_sessions_are_refused,
    a_banned_user_is_refused_until_the_ban_expires,
    a_signed_out_session_stops_working_within_the_cache_ttl,
    deleting_a_user_cascades_to_their_items,
);
