//! The security layer through the real app: rate limits (shared through
//! Redis, degraded without it), client IPs, CORS, headers, body limits, CSRF
//! and the dev-only docs.

use infra::better_auth::NamingStyle;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Options, OwnRedis, TestApp, redis_or_skip, second_instance, send, spawn_app, spawn_app_with,
};

fn limited(limit: u32) -> Options {
    Options {
        extra: vec![
            ("RATE_LIMIT_REQUESTS".into(), limit.to_string()),
            ("RATE_LIMIT_WINDOW".into(), "60".into()),
        ],
        ..Options::default()
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_rate_limit_budget_through_redis() {
    let test = "two_instances_share_one_rate_limit_budget_through_redis";
    if redis_or_skip(test).is_none() {
        return;
    }
    let Some(app) = spawn_app_with(Backend::Postgres(NamingStyle::CamelCase), test, limited(6)).await else {
        return;
    };
    let other = second_instance(&app).await;
    let mut remaining = Vec::new();
    for i in 0..6 {
        let url = if i % 2 == 0 {
            format!("{}/api/v1/users/me", app.address)
        } else {
            format!("{}/api/v1/users/me", other.address)
        };
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&response, "ratelimit-limit"), Some("6"));
        remaining.push(
            header(&response, "ratelimit-remaining")
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    assert_eq!(remaining, vec![5, 4, 3, 2, 1, 0], "both instances drew from one budget");
    for address in [&app.address, &other.address] {
        let response = reqwest::get(format!("{address}/api/v1/items")).await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = header(&response, "retry-after").unwrap().parse().unwrap();
        assert!((1..=10).contains(&retry), "Retry-After {retry}");
        assert!(header(&response, "ratelimit-reset").is_some());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["message"], "Too many requests");
    }
    let health = reqwest::get(format!("{}/health", app.address)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "/health is not rate limited");
    assert!(header(&health, "ratelimit-limit").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_client_is_served_from_reserved_slots_and_the_shared_budget_stays_exact() {
    let test = "a_busy_client_is_served_from_reserved_slots";
    if redis_or_skip(test).is_none() {
        return;
    }
    // 64 an hour: nothing refills while the test runs.
    let options = Options {
        extra: vec![
            ("RATE_LIMIT_REQUESTS".into(), "64".into()),
            ("RATE_LIMIT_WINDOW".into(), "3600".into()),
        ],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Postgres(NamingStyle::SnakeCase), test, options).await else {
        return;
    };
    let other = second_instance(&app).await;
    // One client per instance; reservations are kept per instance, so it
    // does not matter which worker a connection lands on.
    let (here, there) = (reqwest::Client::new(), reqwest::Client::new());
    let remaining = |client: &reqwest::Client, address: &str| {
        let request = client.get(format!("{address}/api/v1/users/me"));
        async move {
            let response = request.send().await.unwrap();
            let left: u32 = header(&response, "ratelimit-remaining").unwrap().parse().unwrap();
            response.bytes().await.unwrap();
            left
        }
    };
    assert_eq!(
        remaining(&here, &app.address).await,
        63,
        "a lone request is counted alone"
    );
    assert_eq!(remaining(&here, &app.address).await, 62);
    assert_eq!(
        remaining(&there, &other.address).await,
        59,
        "the busy client's second request reserved 3 slots (63 / 16) in Redis, so the other instance sees them spent"
    );

    let mut allowed = 3;
    for i in 0..150 {
        let (client, address) = if i % 2 == 0 {
            (&here, &app.address)
        } else {
            (&there, &other.address)
        };
        let response = client.get(format!("{address}/api/v1/users/me")).send().await.unwrap();
        match response.status() {
            StatusCode::UNAUTHORIZED => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => assert!(header(&response, "retry-after").is_some()),
            other => panic!("unexpected {other}"),
        }
        response.bytes().await.unwrap();
    }
    assert_eq!(
        allowed, 64,
        "two instances with reservations let through exactly the budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_mid_test_requests_fall_back_to_in_process_limits_never_500() {
    let test = "with_redis_stopped_mid_test_requests_fall_back";
    let Some(mut redis) = OwnRedis::start(test) else { return };
    let options = Options {
        use_redis: false,
        extra: vec![
            ("REDIS_URL".into(), redis.url()),
            ("RATE_LIMIT_REQUESTS".into(), "20".into()),
            ("RATE_LIMIT_WINDOW".into(), "60".into()),
        ],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Postgres(NamingStyle::SnakeCase), test, options).await else {
        return;
    };
    let user = app.signed_in_user("steady").await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        if i == 5 {
            redis.stop();
        }
        let response = app.as_user(Method::GET, "/api/v1/items", &user).send().await.unwrap();
        assert!(response.headers().contains_key("ratelimit-remaining"));
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(statuses[..5].iter().all(|s| *s == 200));
    assert!(
        statuses.contains(&429),
        "the in-process fallback still limits: {statuses:?}"
    );
    let (status, body) = send(app.request(Method::GET, "/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["redis"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let test = "forwarded_for_is_believed_only_from_trusted_proxies";
    let mut options = limited(2);
    options.extra.push(("TRUSTED_PROXIES".into(), "127.0.0.1/32".into()));
    let Some(trusting) = spawn_app_with(Backend::Sqlite, test, options).await else {
        return;
    };
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            let (status, _) = send(
                trusting
                    .request(Method::GET, "/api/v1/users/me")
                    .header("X-Forwarded-For", client),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "each forwarded client has its own budget"
            );
        }
    }
    let forged = "6.6.6.6, 198.51.100.1";
    let (status, _) = send(
        trusting
            .request(Method::GET, "/api/v1/users/me")
            .header("X-Forwarded-For", forged),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged left-most hop does not make a new bucket"
    );

    let Some(direct) = spawn_app_with(Backend::Sqlite, test, limited(2)).await else {
        return;
    };
    let mut last = StatusCode::OK;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        last = send(
            direct
                .request(Method::GET, "/api/v1/users/me")
                .header("X-Forwarded-For", client),
        )
        .await
        .0;
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "an untrusted peer cannot pick its bucket"
    );
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.request(Method::OPTIONS, "/api/v1/items")
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_frontend_origins_with_credentials() {
    let options = Options {
        extra: vec![(
            "FRONTEND_URL".into(),
            "http://localhost:5173, https://admin.example.com".into(),
        )],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Sqlite, "cors_allows_only_the_frontend_origins", options).await else {
        return;
    };
    let user = app.signed_in_user("cors").await;
    for origin in ["http://localhost:5173", "https://admin.example.com"] {
        let response = preflight(&app, origin).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_eq!(header(&response, "access-control-allow-origin"), Some(origin));
        assert_eq!(header(&response, "access-control-allow-credentials"), Some("true"));
        assert!(
            header(&response, "access-control-allow-methods")
                .unwrap()
                .contains("POST")
        );
        let response = app
            .as_user(Method::GET, "/api/v1/users/me", &user)
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "access-control-allow-origin"), Some(origin));
        assert!(
            header(&response, "access-control-expose-headers")
                .unwrap()
                .contains("x-request-id")
        );
    }
    for response in [
        preflight(&app, "https://evil.example").await,
        app.as_user(Method::GET, "/api/v1/users/me", &user)
            .header("Origin", "https://evil.example")
            .send()
            .await
            .unwrap(),
        app.request(Method::GET, "/health").send().await.unwrap(),
    ] {
        let cors: Vec<_> = response
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .map(|k| k.to_string())
            .collect();
        assert!(
            cors.is_empty(),
            "no CORS headers for a foreign or absent origin: {cors:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_are_on_every_answer_and_hsts_only_in_production() {
    let Some(app) = spawn_app(Backend::Sqlite, "security_headers_are_on_every_answer").await else {
        return;
    };
    let user = app.signed_in_user("headers").await;
    let answers = [
        app.as_user(Method::GET, "/api/v1/users/me", &user)
            .send()
            .await
            .unwrap(),
        app.request(Method::GET, "/api/v1/users/me").send().await.unwrap(),
        app.request(Method::GET, "/nowhere").send().await.unwrap(),
        app.request(Method::GET, "/health").send().await.unwrap(),
    ];
    for response in &answers {
        assert_eq!(header(response, "x-frame-options"), Some("DENY"));
        assert_eq!(header(response, "x-content-type-options"), Some("nosniff"));
        assert!(
            header(response, "content-security-policy")
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(header(response, "referrer-policy").is_some());
        assert!(header(response, "permissions-policy").is_some());
        assert!(header(response, "x-xss-protection").is_some());
        assert!(
            header(response, "strict-transport-security").is_none(),
            "no HSTS in development"
        );
    }
    assert_eq!(
        header(&answers[0], "cache-control"),
        Some("no-store"),
        "authenticated answers are not cached"
    );

    let production = Options {
        extra: vec![
            ("APP_ENV".into(), "production".into()),
            ("SECRET_KEY".into(), "a-production-secret-key-0123456789abcdef".into()),
            ("DEBUG".into(), "false".into()),
            ("AUTO_MIGRATE".into(), "true".into()),
        ],
        ..Options::default()
    };
    let Some(prod) = spawn_app_with(Backend::Sqlite, "security_headers_production", production).await else {
        return;
    };
    let response = prod.request(Method::GET, "/health").send().await.unwrap();
    assert!(
        header(&response, "strict-transport-security")
            .unwrap()
            .contains("max-age=")
    );
    for path in ["/docs/", "/redoc", "/openapi.json"] {
        assert_eq!(
            prod.request(Method::GET, path).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path} in production"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_with_or_without_content_length() {
    let options = Options {
        extra: vec![("MAX_REQUEST_SIZE".into(), "1024".into())],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(Backend::Sqlite, "oversized_bodies_are_413", options).await else {
        return;
    };
    let user = app.signed_in_user("big").await;
    let big = format!("{{\"name\":\"x\",\"description\":\"{}\"}}", "d".repeat(4096));
    let (status, body) = send(
        app.as_user(Method::POST, "/api/v1/items", &user)
            .header("Content-Type", "application/json")
            .body(big.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], 413);

    // Chunked: no Content-Length, the limit applies to the bytes actually read.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.as_bytes().chunks(256).map(|c| Ok(c.to_vec())).collect();
    let stream = futures_util::stream::iter(chunks);
    let request = app
        .as_user(Method::POST, "/api/v1/items", &user)
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream));
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], 413);
    let (_, listed) = app.get("/api/v1/items", &user).await;
    assert_eq!(listed, json!([]), "nothing was stored");

    let fits = json!({"name": "small", "description": "d".repeat(900)});
    assert_eq!(
        app.post("/api/v1/items", &user, fits).await.0,
        StatusCode::CREATED,
        "the JSON limit agrees with MAX_REQUEST_SIZE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_4xx_json_never_500() {
    let Some(app) = spawn_app(Backend::Sqlite, "hostile_input_gets_4xx_json_never_500").await else {
        return;
    };
    let user = app.signed_in_user("fuzz").await;
    let bodies: Vec<(&str, String)> = vec![
        ("application/json", "{".into()),
        ("application/json", "".into()),
        ("application/json", "null".into()),
        ("application/json", "[]".into()),
        ("application/json", "\"string\"".into()),
        ("application/json", "{\"name\": \"a\\u0000b\"}".into()),
        ("application/json", format!("{{\"name\": \"{}\"}}", "n".repeat(100_000))),
        ("application/json", "{\"name\": {\"nested\": true}}".into()),
        ("application/json", "{\"name\": \"\\ud800\"}".into()),
        ("text/plain", "{\"name\": \"x\"}".into()),
        ("application/x-www-form-urlencoded", "name=x".into()),
        ("application/json; charset=utf-8", "{\"name\": 1e999}".into()),
    ];
    for (content_type, body) in bodies {
        let request = app
            .as_user(Method::POST, "/api/v1/items", &user)
            .header("Content-Type", content_type)
            .body(body.clone());
        let (status, answer) = send(request).await;
        assert!(status.is_client_error(), "{content_type} {:.60} -> {status}", body);
        assert_eq!(answer["error"]["code"], status.as_u16(), "{answer}");
    }
    for query in [
        "skip=-5",
        "limit=-1",
        "limit=1e9",
        "skip=18446744073709551616",
        "limit=%00",
        "skip=%FF%FE",
    ] {
        let (status, answer) = app.get(&format!("/api/v1/items?{query}"), &user).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {answer}");
    }
    for path in [
        "/api/v1/items/%00",
        "/api/v1/items/..%2F..%2Fetc",
        "/api/v1/items/' OR 1=1 --",
    ] {
        let (status, _) = app.get(path, &user).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_cookie_writes_are_refused_but_bearer_and_headerless_calls_are_not() {
    let Some(app) = spawn_app(Backend::Sqlite, "cross_site_cookie_writes_are_refused").await else {
        return;
    };
    let user = app.signed_in_user("csrf").await;
    let body = json!({"name": "csrf"});
    let evil = app
        .as_user(Method::POST, "/api/v1/items", &user)
        .header("Origin", "https://evil.example")
        .json(&body);
    let (status, answer) = send(evil).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"]["code"], 403);
    let evil_referer = app
        .as_user(Method::POST, "/api/v1/items", &user)
        .header("Referer", "https://evil.example/form")
        .json(&body);
    assert_eq!(send(evil_referer).await.0, StatusCode::FORBIDDEN);
    let (_, listed) = app.get("/api/v1/items", &user).await;
    assert_eq!(listed, json!([]), "the refused writes stored nothing");

    let friendly = app
        .as_user(Method::POST, "/api/v1/items", &user)
        .header("Origin", "http://localhost:5173")
        .json(&body);
    assert_eq!(send(friendly).await.0, StatusCode::CREATED);
    assert_eq!(
        app.post("/api/v1/items", &user, body.clone()).await.0,
        StatusCode::CREATED,
        "no Origin, no Referer"
    );
    let bearer = app
        .request(Method::POST, "/api/v1/items")
        .header("Authorization", format!("Bearer {}", user.token))
        .header("Origin", "https://evil.example")
        .json(&body);
    assert_eq!(
        send(bearer).await.0,
        StatusCode::CREATED,
        "bearer calls carry no ambient credential"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_endpoint_in_development() {
    let Some(app) = spawn_app(Backend::Sqlite, "the_openapi_document_describes_every_endpoint").await else {
        return;
    };
    let (status, doc) = send(app.request(Method::GET, "/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, methods) in [
        ("/health", vec!["get"]),
        ("/api/v1/users/me", vec!["get"]),
        ("/api/v1/items", vec!["get", "post"]),
        ("/api/v1/items/{id}", vec!["get", "patch", "delete"]),
    ] {
        for method in methods {
            assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
        }
    }
    assert!(doc["components"]["securitySchemes"]["cookieAuth"].is_object());
    assert!(doc["components"]["schemas"]["ErrorResponse"].is_object());
    assert!(doc["components"]["schemas"]["Item"].is_object());
    let docs = app.request(Method::GET, "/docs/").send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        header(&docs, "content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    let redoc = app.request(Method::GET, "/redoc").send().await.unwrap();
    assert_eq!(redoc.status(), StatusCode::OK);
    let csp = header(&redoc, "content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        !csp.contains("http"),
        "the docs load nothing from another origin: {csp}"
    );
    let page = redoc.text().await.unwrap();
    let script = page
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the ReDoc page loads one script");
    assert!(script.starts_with("/redoc/redoc-"), "served from this origin: {script}");
    let bundle = app.request(Method::GET, script).send().await.unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(header(&bundle, "content-type").unwrap().starts_with("text/javascript"));
    assert!(header(&bundle, "cache-control").unwrap().contains("immutable"));
    assert!(bundle.bytes().await.unwrap().len() > 500_000, "the whole bundle");
}
