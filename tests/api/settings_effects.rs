//! Every configuration variable does what docs/configuration.md says: the
//! ones whose effect no other test observes are checked here, each against
//! the running server. (`BETTER_AUTH_URL` is the default JWT issuer and
//! audience: the JWT tests observe it.)

use std::time::{Duration, Instant};

use deadpool_redis::redis::AsyncCommands;
use domain::auth::SignatureVerifier;
use infra::better_auth::NamingStyle;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait as _;
use serde_json::json;

use crate::helpers::{Backend, Options, send, spawn_app_with};

fn with(vars: &[(&str, &str)]) -> Options {
    Options {
        extra: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..Options::default()
    }
}

const NEW: &str = "the-new-rotated-secret-0123456789abcdef";
const OLD: &str = "the-old-rotated-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secrets_and_a_custom_cookie_prefix_are_honoured() {
    let options = with(&[
        ("BETTER_AUTH_SECRETS", &format!("2:{NEW},1:{OLD}")),
        ("BETTER_AUTH_COOKIE_PREFIX", "myapp"),
    ]);
    let app = spawn_app_with(Backend::Sqlite, "settings_secrets_prefix", options)
        .await
        .unwrap();
    let user = app.signed_in_user("rotated").await;
    let signed = |secret: &str| {
        SignatureVerifier::new(&[secret])
            .signed_cookie_value(&user.token)
            .unwrap()
    };
    let me = |cookie: String| send(app.request(Method::GET, "/api/v1/users/me").header("Cookie", cookie));
    assert_eq!(
        me(format!("myapp.session_token={}", signed(NEW))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        me(format!("myapp.session_token={}", signed(OLD))).await.0,
        StatusCode::OK,
        "rotated secret"
    );
    assert_eq!(
        me(format!(
            "myapp.session_token={}",
            signed("some-other-secret-0123456789abcdefgh")
        ))
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(format!("better-auth.session_token={}", signed(NEW))).await.0,
        StatusCode::UNAUTHORIZED,
        "the default prefix is not read when another is configured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_require_signature_refuses_bare_tokens_only() {
    for (required, bare_status) in [("false", StatusCode::OK), ("true", StatusCode::UNAUTHORIZED)] {
        let options = with(&[("BEARER_REQUIRE_SIGNATURE", required)]);
        let app = spawn_app_with(Backend::Sqlite, "settings_bearer", options)
            .await
            .unwrap();
        let user = app.signed_in_user("bearer").await;
        let bearer = |value: String| {
            send(
                app.request(Method::GET, "/api/v1/users/me")
                    .header("Authorization", format!("Bearer {value}")),
            )
        };
        assert_eq!(bearer(user.token.clone()).await.0, bare_status, "required={required}");
        assert_eq!(bearer(crate::helpers::sign(&user.token)).await.0, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_enabled_false_takes_metrics_away() {
    for (enabled, status) in [("true", StatusCode::OK), ("false", StatusCode::NOT_FOUND)] {
        let app = spawn_app_with(
            Backend::Sqlite,
            "settings_metrics",
            with(&[("METRICS_ENABLED", enabled)]),
        )
        .await
        .unwrap();
        let response = app.request(Method::GET, "/metrics").send().await.unwrap();
        assert_eq!(response.status(), status, "METRICS_ENABLED={enabled}");
    }
}

/// In production `/metrics` is private: not on the public port, only on its
/// own listener (`METRICS_ADDR`, loopback by default), unless
/// `METRICS_PUBLIC=true`; it carries the process and build-info series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_serves_metrics_only_on_the_private_listener_unless_public() {
    let production = |extra: &[(&str, &str)]| {
        let mut all = vec![
            ("APP_ENV", "production"),
            ("SECRET_KEY", "a-production-secret-key-0123456789abcdef"),
            ("DEBUG", "false"),
            ("AUTO_MIGRATE", "true"),
        ];
        all.extend_from_slice(extra);
        with(&all)
    };
    let app = spawn_app_with(Backend::Sqlite, "metrics_private", production(&[]))
        .await
        .unwrap();
    let public = app.request(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND, "not on the public port");
    let port = app.metrics_port.expect("a listener of its own");
    let scrape = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
    assert_eq!(scrape.status(), StatusCode::OK);
    let text = scrape.text().await.unwrap();
    for series in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "saas_api_build_info{version=\"",
        "http_requests_total{",
    ] {
        assert!(text.contains(series), "{series} missing");
    }

    let app = spawn_app_with(
        Backend::Sqlite,
        "metrics_public",
        production(&[("METRICS_PUBLIC", "true")]),
    )
    .await
    .unwrap();
    let public = app.request(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(public.status(), StatusCode::OK, "METRICS_PUBLIC=true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_pool_max_bounds_the_open_connections() {
    let Some(app) = spawn_app_with(
        Backend::Postgres(NamingStyle::CamelCase),
        "settings_pool_max",
        Options {
            use_redis: false,
            ..with(&[("DB_POOL_MAX", "2")])
        },
    )
    .await
    else {
        return;
    };
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(app.signed_in_user(&format!("pool{i}")).await);
    }
    let requests = users.iter().map(|user| app.get("/api/v1/items", user));
    for (status, _) in futures_util::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK);
    }
    let open = app.gauge("db_pool_connections").await;
    assert!((1..=2).contains(&open), "{open} connections open with DB_POOL_MAX=2");
}

/// A Redis that accepts connections and never answers: every call must give
/// up after REDIS_TIMEOUT_MS and the request go on without Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_timeout_bounds_each_call_to_a_redis_that_never_answers() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let options = Options {
        use_redis: false,
        ..with(&[
            ("REDIS_URL", &format!("redis://127.0.0.1:{silent_port}/0")),
            ("REDIS_TIMEOUT_MS", "100"),
        ])
    };
    let started = Instant::now();
    let Some(app) = spawn_app_with(
        Backend::Postgres(NamingStyle::CamelCase),
        "settings_redis_timeout",
        options,
    )
    .await
    else {
        return;
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "start-up did not wait on Redis"
    );
    let user = app.signed_in_user("patient").await;
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/users/me", &user).await.0, StatusCode::OK);
        let (status, _) = app.post("/api/v1/items", &user, json!({"name": "still works"})).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "10 requests took {:?}: each Redis call gives up after 100 ms",
        started.elapsed()
    );
}

/// With Redis, a session is also kept in process memory for at most
/// SESSION_L1_TTL_MS: it outlives its Redis entry that long, no longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_l1_ttl_bounds_how_long_memory_alone_serves_a_session() {
    let Some(app) = spawn_app_with(
        Backend::Postgres(NamingStyle::SnakeCase),
        "settings_l1_ttl",
        with(&[("SESSION_L1_TTL_MS", "500")]),
    )
    .await
    else {
        return;
    };
    let Some(url) = app.redis_url.clone() else {
        return;
    };
    let user = app.signed_in_user("l1").await;
    assert_eq!(app.get("/api/v1/users/me", &user).await.0, StatusCode::OK);
    // Sign out behind the service's back and drop the shared cache entry.
    assert!(app.dev.delete_session(&user.token).await.unwrap());
    let mut conn = deadpool_redis::Config::from_url(&url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
        .get()
        .await
        .unwrap();
    let keys: Vec<String> = conn.keys(format!("{}*", app.redis_prefix)).await.unwrap();
    for key in keys {
        let _: () = conn.del(key).await.unwrap();
    }
    assert_eq!(
        app.get("/api/v1/users/me", &user).await.0,
        StatusCode::OK,
        "memory still has it"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.get("/api/v1/users/me", &user).await.0, StatusCode::UNAUTHORIZED);
}

/// RESPONSE_CACHE_TTL=0 turns the response cache off: a change made outside
/// the API (here, straight in SQL) shows at once, where the default TTL
/// serves the cached answer until a write through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_cache_ttl_zero_turns_the_cache_off() {
    for (ttl, expected) in [("30", "before"), ("0", "after")] {
        let Some(app) = spawn_app_with(
            Backend::Postgres(NamingStyle::CamelCase),
            "settings_response_cache_ttl",
            with(&[("RESPONSE_CACHE_TTL", ttl)]),
        )
        .await
        else {
            return;
        };
        if app.redis_url.is_none() {
            return;
        }
        let user = app.signed_in_user("cached").await;
        let (_, created) = app.post("/api/v1/items", &user, json!({"name": "before"})).await;
        let path = format!("/api/v1/items/{}", created["id"].as_str().unwrap());
        assert_eq!(app.get(&path, &user).await.1["name"], "before");
        app.db
            .conn()
            .execute_unprepared("UPDATE items SET name = 'after'")
            .await
            .unwrap();
        assert_eq!(
            app.get(&path, &user).await.1["name"],
            expected,
            "RESPONSE_CACHE_TTL={ttl}"
        );
    }
}

/// SECRET_KEY signs pagination cursors: every instance sharing it accepts a
/// cursor, an instance with another key refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_key_signs_cursors_for_every_instance_that_shares_it() {
    let options = with(&[("SECRET_KEY", "the-shared-secret-key-0123456789abcdef")]);
    let Some(app) = spawn_app_with(
        Backend::Postgres(NamingStyle::CamelCase),
        "settings_secret_key",
        options,
    )
    .await
    else {
        return;
    };
    let user = app.signed_in_user("pager").await;
    for name in ["one", "two"] {
        app.post("/api/v1/items", &user, json!({ "name": name })).await;
    }
    let response = app
        .as_user(Method::GET, "/api/v1/items?limit=1", &user)
        .send()
        .await
        .unwrap();
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_owned();

    let other = crate::helpers::second_instance(&app).await;
    let (status, page) = send(
        other
            .client
            .get(format!("{}{next}", other.address))
            .header("Cookie", &user.cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "same SECRET_KEY, another instance: {page}");
    assert_eq!(page[0]["name"], "one");

    let elsewhere = spawn_app_with(
        Backend::Sqlite,
        "settings_secret_key_other",
        with(&[("SECRET_KEY", "a-different-secret-key-0123456789abcd")]),
    )
    .await
    .unwrap();
    let stranger = elsewhere.signed_in_user("pager").await;
    let (status, _) = send(elsewhere.as_user(Method::GET, &next, &stranger)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another key does not verify it"
    );
}
