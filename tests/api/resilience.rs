//! Surviving dependency failures under a steady stream of requests: Redis
//! killed and restarted, PostgreSQL cut off and restored.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use infra::better_auth::NamingStyle;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{Backend, Options, OwnRedis, TcpProxy, host_port, postgres_or_skip, send, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_under_load_causes_no_5xx_and_is_used_again_when_it_returns() {
    let test = "redis_dying_under_load_causes_no_5xx";
    let Some(mut redis) = OwnRedis::start(test) else { return };
    let options = Options {
        use_redis: false,
        extra: vec![("REDIS_URL".into(), redis.url())],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Postgres(NamingStyle::CamelCase), test, options).await else {
        return;
    };
    let user = app.signed_in_user("steady").await;

    let mut statuses = Vec::new();
    for round in 0..40 {
        if round == 10 {
            redis.stop();
        }
        let (read, _) = app.get("/api/v1/items?limit=5", &user).await;
        let (write, _) = app
            .post("/api/v1/items", &user, json!({"name": format!("item {round}")}))
            .await;
        statuses.extend([read.as_u16(), write.as_u16()]);
        if round == 20 {
            let (status, body) = send(app.request(Method::GET, "/health")).await;
            assert_eq!(
                (status, body["redis"].as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, Some("error"))
            );
            assert_eq!(body["database"], "ok");
            let (ready, _) = send(app.request(Method::GET, "/health/ready")).await;
            assert_eq!(
                ready,
                StatusCode::OK,
                "a Redis outage does not take the instance out of rotation"
            );
        }
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "no 5xx (nor anything else): {statuses:?}"
    );

    redis.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = send(app.request(Method::GET, "/health")).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "Redis not used again within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new session is cached in the restarted Redis: it is really used again.
    let newcomer = app.signed_in_user("newcomer").await;
    assert_eq!(app.get("/api/v1/users/me", &newcomer).await.0, StatusCode::OK);
    let client = deadpool_redis::Config::from_url(redis.url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let mut conn = client.get().await.unwrap();
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(format!("{}session:*", app.redis_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "sessions are cached in Redis again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_answers_503_quickly_and_service_resumes_by_itself() {
    let test = "postgres_cut_off_answers_503_quickly";
    let Some(admin_url) = postgres_or_skip(test) else {
        return;
    };
    let target = host_port(&admin_url);
    let mut proxy = TcpProxy::start(target.clone()).await;
    // The test sets up its database directly; the server reaches it through the proxy.
    let options = Options {
        database_proxy_port: Some(proxy.port),
        extra: vec![("DB_TIMEOUT_MS".into(), "1000".into())],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Postgres(NamingStyle::CamelCase), test, options).await else {
        return;
    };
    let user = app.signed_in_user("survivor").await;

    let mut created = HashSet::new();
    let mut post = async |i: u32| {
        let (status, body) = app.post("/api/v1/items", &user, json!({"name": format!("n{i}")})).await;
        if status == StatusCode::CREATED {
            created.insert(body["id"].as_str().unwrap().to_owned());
        }
        (status, body)
    };
    for i in 0..5 {
        assert_eq!(post(i).await.0, StatusCode::CREATED);
    }

    proxy.cut().await;
    for i in 5..10 {
        let started = Instant::now();
        let (status, body) = post(i).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], 503);
        assert_eq!(body["error"]["type"], "service_unavailable");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "answered quickly: {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let (status, body) = send(app.request(Method::GET, "/health")).await;
    assert_eq!(
        (status, body["database"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("error"))
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "health is bounded: {:?}",
        started.elapsed()
    );

    proxy.restore().await;
    let restored = Instant::now();
    let mut i = 10;
    loop {
        let (status, _) = post(i).await;
        i += 1;
        if status == StatusCode::CREATED {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(5),
            "service resumes within 5 s (last {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for j in i..i + 5 {
        assert_eq!(post(j).await.0, StatusCode::CREATED);
    }

    // Every 201 is really stored.
    let rows = app
        .db
        .conn()
        .query_all_raw(Statement::from_string(
            app.db.backend(),
            "SELECT id::text AS id FROM items".to_owned(),
        ))
        .await
        .unwrap();
    let stored: HashSet<String> = rows.iter().map(|r| r.try_get::<String>("", "id").unwrap()).collect();
    let missing: Vec<_> = created.difference(&stored).collect();
    assert!(missing.is_empty(), "answered 201 but missing: {missing:?}");
    assert_eq!(created.len(), 11, "5 before the cut, 1 on recovery, 5 after");
}

/// After PostgreSQL comes back, the connections that sat idle through its
/// outage (pooled and the lanes' own) are dead without knowing it. Once a
/// request has found one broken, the others are pinged before their next use
/// and replaced, so no request after the recovery answers 503 — not one per
/// stale connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_idle_through_an_outage_are_replaced_before_they_fail_a_request() {
    let test = "idle_connections_replaced_after_outage";
    let Some(admin_url) = postgres_or_skip(test) else {
        return;
    };
    let mut proxy = TcpProxy::start(host_port(&admin_url)).await;
    let options = Options {
        database_proxy_port: Some(proxy.port),
        // Every request looks its session up on the pool.
        session_cache_ttl_secs: 0,
        extra: vec![
            ("DB_TIMEOUT_MS".into(), "1000".into()),
            ("DB_POOL_MAX".into(), "8".into()),
        ],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Postgres(NamingStyle::CamelCase), test, options).await else {
        return;
    };
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(app.signed_in_user(&format!("u{i}")).await);
    }
    let everyone = async || {
        let requests = users
            .iter()
            .flat_map(|user| [app.get("/api/v1/users/me", user), app.get("/api/v1/items", user)]);
        futures_util::future::join_all(requests)
            .await
            .into_iter()
            .map(|(status, _)| status)
            .collect::<Vec<_>>()
    };
    // Open the pool's and the lanes' connections, all in use at once, then idle.
    for _ in 0..3 {
        assert!(everyone().await.iter().all(|s| *s == StatusCode::OK));
    }

    proxy.cut().await;
    let (status, _) = app.get("/api/v1/users/me", &users[0]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a request finds the break");
    proxy.restore().await;

    for round in 0..3 {
        for user in &users {
            assert_eq!(
                app.get("/api/v1/users/me", user).await.0,
                StatusCode::OK,
                "round {round}"
            );
            assert_eq!(app.get("/api/v1/items", user).await.0, StatusCode::OK, "round {round}");
        }
        let statuses = everyone().await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "round {round}: {statuses:?}"
        );
    }
}

/// Under a Redis outage, failed response-cache invalidations are coalesced:
/// hundreds of writes by three users leave at most three pending
/// invalidations (not one retry task per write), and they are retried and
/// cleared once Redis returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_redis_outage_leave_one_pending_invalidation_per_user() {
    let test = "writes_during_a_redis_outage_coalesce";
    let Some(mut redis) = OwnRedis::start(test) else { return };
    let options = Options {
        use_redis: false,
        extra: vec![("REDIS_URL".into(), redis.url())],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Postgres(NamingStyle::SnakeCase), test, options).await else {
        return;
    };
    let mut users = Vec::new();
    for name in ["a", "b", "c"] {
        let user = app.signed_in_user(name).await;
        assert_eq!(app.get("/api/v1/items", &user).await.0, StatusCode::OK);
        users.push(user);
    }
    redis.stop();
    let writes = (0..300).map(|i| {
        let user = &users[i % 3];
        app.post("/api/v1/items", user, json!({"name": format!("during outage {i}")}))
    });
    for (status, body) in futures_util::future::join_all(writes).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let pending = app.gauge("response_cache_pending_invalidations").await;
    assert!(
        (1..=3).contains(&pending),
        "{pending} pending invalidations for 3 users"
    );

    redis.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if app.gauge("response_cache_pending_invalidations").await == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pending invalidations not retried within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for user in &users {
        let (_, listed) = app.get("/api/v1/items?limit=1000", user).await;
        assert_eq!(listed.as_array().unwrap().len(), 100, "every write is visible");
    }
}

/// Organization requests through a Redis outage: memberships are read from
/// the database, non-members stay refused, and nothing crosses scopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_requests_survive_a_redis_outage_with_their_rules() {
    let test = "organization_requests_survive_a_redis_outage";
    let Some(mut redis) = OwnRedis::start(test) else { return };
    let options = Options {
        use_redis: false,
        organization_plugin: true,
        extra: vec![("REDIS_URL".into(), redis.url())],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Postgres(NamingStyle::CamelCase), test, options).await else {
        return;
    };
    let member = app.signed_in_user("member").await;
    let outsider = app.signed_in_user("outsider").await;
    app.dev
        .insert_organization("acme", "Acme", "acme", crate::helpers::now())
        .await
        .unwrap();
    app.dev
        .insert_member("acme", &member.id, "member", crate::helpers::now())
        .await
        .unwrap();
    let in_org = |user: &crate::helpers::TestUser, method: Method, path: &str| {
        app.as_user(method, path, user).header("X-Organization-Id", "acme")
    };
    let (status, _) = send(in_org(&member, Method::POST, "/api/v1/items").json(&json!({"name": "before"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    redis.stop();
    for round in 0..5 {
        let (status, created) =
            send(in_org(&member, Method::POST, "/api/v1/items").json(&json!({"name": format!("during {round}")})))
                .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (status, listed) = send(in_org(&member, Method::GET, "/api/v1/items")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed.as_array().unwrap().len(), round + 2, "every write seen at once");
        let (status, body) = send(in_org(&outsider, Method::GET, "/api/v1/items")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, personal) = app.get("/api/v1/items", &member).await;
        assert_eq!(
            (status, personal),
            (StatusCode::OK, json!([])),
            "nothing leaks into personal scope"
        );
    }
    redis.restart().unwrap();
}
