//! `saas-api dev seed`: the printed curl commands work against the server.

use reqwest::StatusCode;

use crate::helpers::{Backend, Options, ScratchDb, send, settings_map};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeded_curl_command_reaches_users_me_on_a_fresh_database() {
    let scratch = ScratchDb::create(Backend::Sqlite, "dev_seed").await.unwrap();
    let vars = settings_map(&scratch.url, &Options::default(), None, "unused:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();

    // On an empty database: tables are created, then a second seed reuses the user.
    api::commands::dev_seed::seed(&settings).await.unwrap();
    let seeded = api::commands::dev_seed::seed(&settings).await.unwrap();
    assert!(seeded.curl.starts_with("curl "), "{}", seeded.curl);
    assert!(seeded.curl.contains(&seeded.cookie));
    assert!(!seeded.curl.contains('\n'));

    let server = api::Application::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}/api/v1/users/me", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    let (status, body) = send(reqwest::Client::new().get(&url).header("Cookie", &seeded.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], api::commands::dev_seed::DEMO_USER_ID);
    assert_eq!(body["email"], "demo@example.com");
    let (status, body) = send(
        reqwest::Client::new()
            .get(&url)
            .header("Authorization", format!("Bearer {}", seeded.bearer)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the printed bearer token works too: {body}");
    assert_eq!(body["id"], api::commands::dev_seed::DEMO_USER_ID);
    assert!(seeded.created_tables.is_empty(), "the second seed found them");
    let jwt = seeded.jwt.clone().expect("a JWT on the embedded default");
    let (status, body) = send(reqwest::Client::new().get(&url).bearer_auth(&jwt)).await;
    assert_eq!(status, StatusCode::OK, "the printed JWT works: {body}");
    assert_eq!(body["email"], "demo@example.com");
    let key = seeded.api_key.clone().expect("an API key on the embedded default");
    let (status, body) = send(reqwest::Client::new().get(&url).header("x-api-key", &key)).await;
    assert_eq!(status, StatusCode::OK, "the printed API key works: {body}");
    assert_eq!(body["id"], api::commands::dev_seed::DEMO_USER_ID);

    // The organization plugin's tables were made too, with a demo organization
    // the demo user owns; the printed curl line lists its items.
    let curl = seeded.organization_curl.expect("an organization curl line");
    assert!(curl.contains("X-Organization-Id: demo-org"), "{curl}");
    let client = reqwest::Client::new();
    let items = url.replace("/users/me", "/items");
    let (status, created) = send(
        client
            .post(&items)
            .header("Cookie", &seeded.cookie)
            .header("X-Organization-Id", api::commands::dev_seed::DEMO_ORGANIZATION_ID)
            .json(&serde_json::json!({"name": "team item"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["organization_id"], "demo-org");
    let (_, orgs) = send(
        client
            .get(url.replace("/users/me", "/organizations"))
            .header("Cookie", &seeded.cookie),
    )
    .await;
    assert_eq!(orgs[0]["id"], "demo-org");
    assert_eq!(orgs[0]["role"], "owner");
    handle.stop(false).await;
}

#[tokio::test]
async fn seeding_is_refused_in_production() {
    let mut vars = settings_map("sqlite://unused.db", &Options::default(), None, "unused:");
    vars.insert("APP_ENV".into(), "production".into());
    vars.insert("SECRET_KEY".into(), "a-production-secret-key-0123456789abcdef".into());
    vars.insert("DEBUG".into(), "false".into());
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let error = api::commands::dev_seed::seed(&settings).await.unwrap_err();
    assert!(error.to_string().contains("production"), "{error}");
    assert!(!std::path::Path::new("unused.db").exists(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_insert_is_reported_not_taken_for_an_existing_demo_user() {
    let scratch = ScratchDb::create(Backend::Sqlite, "dev_seed_conflict").await.unwrap();
    let db = infra::Db::connect(&scratch.url, &infra::db::DbOptions::default())
        .await
        .unwrap();
    let dev = infra::better_auth::dev::DevBetterAuth::new(db.clone(), infra::better_auth::NamingStyle::CamelCase);
    dev.create_tables(true).await.unwrap();
    // Someone else already holds the demo email (better-auth's email is unique).
    let squatter = infra::better_auth::dev::DevUser {
        id: "someone-else".into(),
        email: "demo@example.com".into(),
        name: "Someone".into(),
        email_verified: false,
    };
    dev.insert_user(&squatter, chrono::Utc::now()).await.unwrap();
    let vars = settings_map(&scratch.url, &Options::default(), None, "unused:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let error = api::commands::dev_seed::seed(&settings).await.unwrap_err();
    assert!(format!("{error:#}").contains("could not insert the user"), "{error:#}");
    db.close().await;
}

/// With `BETTER_AUTH_SECONDARY_STORAGE_URL`, the seeded session lives where
/// better-auth with `secondaryStorage` keeps it (Redis, not the table), and
/// the printed cookie works against a server configured the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeded_session_goes_to_secondary_storage_when_configured() {
    let Some(redis) = crate::helpers::redis_or_skip("dev_seed_secondary") else {
        return;
    };
    let scratch = ScratchDb::create(Backend::Sqlite, "dev_seed_secondary").await.unwrap();
    let prefix = format!("better-auth-seed:{}:", uuid::Uuid::new_v4().simple());
    let options = Options {
        extra: vec![
            ("BETTER_AUTH_SECONDARY_STORAGE_URL".into(), redis.clone()),
            ("BETTER_AUTH_SECONDARY_STORAGE_PREFIX".into(), prefix.clone()),
        ],
        ..Options::default()
    };
    let vars = settings_map(&scratch.url, &options, None, "unused:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let seeded = api::commands::dev_seed::seed(&settings).await.unwrap();
    let token = seeded.bearer.split('.').next().unwrap().to_owned();
    let mut conn = deadpool_redis::Config::from_url(&redis)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
        .get()
        .await
        .unwrap();
    let stored: Option<String> = deadpool_redis::redis::cmd("GET")
        .arg(format!("{prefix}{token}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored.expect("the session is in Redis")).unwrap();
    assert_eq!(stored["user"]["id"], api::commands::dev_seed::DEMO_USER_ID);

    let server = api::Application::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}/api/v1/users/me", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    let (status, body) = send(reqwest::Client::new().get(&url).header("Cookie", &seeded.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], api::commands::dev_seed::DEMO_USER_ID);
    handle.stop(false).await;
}
