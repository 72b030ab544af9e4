//! `spawn_app` and friends: each test gets its own database (a fresh
//! PostgreSQL database or SQLite file), its own Redis key prefix, and a
//! running server on a free port.
//!
//! Services come from `TEST_DATABASE_URL` / `TEST_REDIS_URL`; without them,
//! testcontainers starts PostgreSQL and Redis when a Docker engine is there.
//! Otherwise PostgreSQL tests are skipped with a printed reason — unless
//! `CI=true`, where a missing service fails the test.

use std::collections::HashMap;
use std::sync::OnceLock;

use api::Application;
use chrono::{DateTime, Utc};
use domain::auth::SignatureVerifier;
use infra::Db;
use infra::better_auth::NamingStyle;
use infra::better_auth::dev::{DevBetterAuth, DevUser, generate_token};
use infra::db::DbOptions;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

pub const SECRET: &str = "integration-test-secret-0123456789abcdef";

/// Where the test's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres(NamingStyle),
}

/// Test services, resolved once per test binary.
#[derive(Debug, Clone)]
pub struct Services {
    pub postgres: Option<String>,
    pub redis: Option<String>,
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn docker_available() -> bool {
    std::path::Path::new("/var/run/docker.sock").exists() || std::env::var("DOCKER_HOST").is_ok()
}

/// Containers started for this run; never dropped, so they live as long as the process.
fn containers() -> Option<&'static (String, String)> {
    static STARTED: OnceLock<Option<(String, String)>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            if !docker_available() {
                return None;
            }
            // testcontainers' blocking runner drives its own runtime, which must
            // not be nested inside the test's: start the containers on a plain thread.
            std::thread::spawn(|| {
                use testcontainers::runners::SyncRunner;
                let pg = testcontainers_modules::postgres::Postgres::default().start().ok()?;
                let redis = testcontainers_modules::redis::Redis::default().start().ok()?;
                let pg_url = format!(
                    "postgres://postgres:postgres@127.0.0.1:{}/postgres",
                    pg.get_host_port_ipv4(5432).ok()?
                );
                let redis_url = format!("redis://127.0.0.1:{}", redis.get_host_port_ipv4(6379).ok()?);
                Box::leak(Box::new((pg, redis)));
                Some((pg_url, redis_url))
            })
            .join()
            .ok()
            .flatten()
        })
        .as_ref()
}

pub fn services() -> &'static Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES.get_or_init(|| {
        let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (mut postgres, mut redis) = (from_env("TEST_DATABASE_URL"), from_env("TEST_REDIS_URL"));
        if (postgres.is_none() || redis.is_none())
            && let Some((pg, r)) = containers()
        {
            postgres = postgres.or_else(|| Some(pg.clone()));
            redis = redis.or_else(|| Some(r.clone()));
        }
        if ci() {
            assert!(postgres.is_some(), "CI=true but no PostgreSQL: set TEST_DATABASE_URL");
            assert!(redis.is_some(), "CI=true but no Redis: set TEST_REDIS_URL");
        }
        Services { postgres, redis }
    })
}

/// The PostgreSQL admin URL, or `None` (test skipped, reason printed) when there is none.
pub fn postgres_or_skip(test: &str) -> Option<String> {
    let url = services().postgres.clone();
    if url.is_none() {
        eprintln!("SKIPPED {test}: no PostgreSQL (set TEST_DATABASE_URL, or run a Docker engine)");
    }
    url
}

/// The Redis URL, or `None` (test skipped, reason printed).
pub fn redis_or_skip(test: &str) -> Option<String> {
    let url = services().redis.clone();
    if url.is_none() {
        eprintln!("SKIPPED {test}: no Redis (set TEST_REDIS_URL, or run a Docker engine)");
    }
    url
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').expect("database URL has a path");
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// A scratch database: created now, dropped when this is dropped.
pub struct ScratchDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { admin_url: String, name: String },
    Sqlite { path: std::path::PathBuf },
}

impl ScratchDb {
    pub async fn create(backend: Backend, test: &str) -> Option<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("saas-api-test-{id}.db"));
                Some(Self {
                    url: format!("sqlite://{}", path.display()),
                    cleanup: Cleanup::Sqlite { path },
                })
            }
            Backend::Postgres(_) => {
                let admin_url = postgres_or_skip(test)?;
                let name = format!("t_{id}");
                let admin = Db::connect(&admin_url, &DbOptions::default())
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await;
                Some(Self {
                    url: with_database(&admin_url, &name),
                    cleanup: Cleanup::Postgres { admin_url, name },
                })
            }
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(admin) = Db::connect(&admin_url, &DbOptions::default()).await {
                            let _ = admin
                                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                                .await;
                            admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Options for one test app.
#[derive(Debug, Clone)]
pub struct Options {
    /// Reach the database through this local proxy port (see [`TcpProxy`]).
    pub database_proxy_port: Option<u16>,
    pub use_redis: bool,
    pub session_cache_ttl_secs: u64,
    pub extra: Vec<(String, String)>,
    /// Create the organization plugin's tables before the server starts.
    pub organization_plugin: bool,
    /// Create the api-key plugin's table before the server starts.
    pub api_key_plugin: bool,
    /// Create the jwt plugin's `jwks` table before the server starts.
    pub jwt_plugin: bool,
    /// Keep better-auth's `session` table (false: drop it before the server
    /// starts, as a deployment keeping sessions only in secondary storage may).
    pub session_table: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            database_proxy_port: None,
            use_redis: true,
            session_cache_ttl_secs: 300,
            extra: Vec::new(),
            organization_plugin: false,
            api_key_plugin: false,
            jwt_plugin: false,
            session_table: true,
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Db,
    pub dev: DevBetterAuth,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    /// The port of `/metrics`' own listener (`METRICS_ADDR`), when there is one.
    pub metrics_port: Option<u16>,
    /// The settings the server was started with (a second instance reuses them).
    pub vars: HashMap<String, String>,
    handle: actix_web::dev::ServerHandle,
    _scratch: ScratchDb,
}

pub struct TestUser {
    pub id: String,
    pub token: String,
    /// `Cookie` header value.
    pub cookie: String,
}

/// Settings for a test server on `database_url`.
pub fn settings_map(
    database_url: &str,
    options: &Options,
    redis: Option<&str>,
    prefix: &str,
) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("APP_ENV", "development"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("BETTER_AUTH_SECRET", SECRET),
        ("DB_POOL_MAX", "5"),
        ("WORKERS", "2"),
        ("SHUTDOWN_TIMEOUT", "1"),
        ("DB_STARTUP_TIMEOUT", "5"),
        ("REDIS_PREFIX", prefix),
        // High enough that only the rate-limit tests ever meet it.
        ("RATE_LIMIT_REQUESTS", "100000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.insert("DATABASE_URL".into(), database_url.to_owned());
    vars.insert("SESSION_CACHE_TTL".into(), options.session_cache_ttl_secs.to_string());
    if let Some(url) = redis {
        vars.insert("REDIS_URL".into(), url.to_owned());
    }
    for (k, v) in &options.extra {
        vars.insert(k.clone(), v.clone());
    }
    // Production serves /metrics on 127.0.0.1:9100 by default: tests running
    // side by side each take a free port instead.
    if vars.get("APP_ENV").is_some_and(|e| e == "production") && !vars.contains_key("METRICS_ADDR") {
        vars.insert("METRICS_ADDR".into(), "127.0.0.1:0".into());
    }
    vars
}

/// Starts a server on a fresh database whose better-auth tables are in the
/// backend's style. `None` when the backend is unavailable (skipped).
pub async fn spawn_app(backend: Backend, test: &str) -> Option<TestApp> {
    spawn_app_with(backend, test, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, test: &str, options: Options) -> Option<TestApp> {
    let scratch = ScratchDb::create(backend, test).await?;
    let style = match backend {
        Backend::Sqlite => NamingStyle::CamelCase,
        Backend::Postgres(style) => style,
    };
    let db = Db::connect(&scratch.url, &DbOptions::default())
        .await
        .expect("connect to scratch database");
    let dev = DevBetterAuth::new(db.clone(), style);
    dev.create_tables(true).await.expect("create better-auth tables");
    if options.api_key_plugin {
        dev.create_api_key_table()
            .await
            .expect("create the api-key plugin's table");
    }
    if options.jwt_plugin {
        dev.create_jwks_table().await.expect("create the jwt plugin's table");
    }
    if options.organization_plugin {
        dev.create_organization_tables()
            .await
            .expect("create the organization plugin's tables");
    }
    if !options.session_table {
        use sea_orm::ConnectionTrait as _;
        db.conn()
            .execute_unprepared("DROP TABLE \"session\"")
            .await
            .expect("drop better-auth's session table");
    }

    let redis = match (backend, options.use_redis) {
        (Backend::Postgres(_), true) => redis_or_skip(test),
        _ => None,
    };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let server_url = match options.database_proxy_port {
        Some(port) => via(&scratch.url, &host_port(&scratch.url), port),
        None => scratch.url.clone(),
    };
    let vars = settings_map(&server_url, &options, redis.as_deref(), &prefix);
    let (settings, _) = api::Settings::from_map(&vars).expect("valid test settings");
    let app = Application::build(settings).await.expect("application starts");
    let redis = vars.get("REDIS_URL").cloned();
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_port = app.metrics_port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    Some(TestApp {
        metrics_port,
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db,
        dev,
        redis_url: redis,
        redis_prefix: prefix,
        vars,
        handle,
        _scratch: scratch,
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting at once; the scratch database is dropped right after.
        drop(self.handle.stop(false));
    }
}

/// Another server on the same database, Redis and key prefix: a second instance behind a load balancer.
pub struct SecondInstance {
    pub address: String,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for SecondInstance {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

pub async fn second_instance(app: &TestApp) -> SecondInstance {
    let (settings, _) = api::Settings::from_map(&app.vars).expect("valid test settings");
    let server = Application::build(settings).await.expect("second instance starts");
    let address = format!("http://127.0.0.1:{}", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    SecondInstance {
        address,
        client: reqwest::Client::new(),
        handle,
    }
}

pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(3)
}

pub fn sign(token: &str) -> String {
    SignatureVerifier::new(&[SECRET]).signed_cookie_value(token).unwrap()
}

impl TestApp {
    /// A user with a live session (expiring in an hour) and its signed cookie.
    pub async fn signed_in_user(&self, name: &str) -> TestUser {
        self.user_with_session(name, now() + chrono::Duration::hours(1)).await
    }

    pub async fn user_with_session(&self, name: &str, expires_at: DateTime<Utc>) -> TestUser {
        let id = format!("{name}-{}", uuid::Uuid::new_v4().simple());
        let user = DevUser {
            id: id.clone(),
            email: format!("{id}@example.com"),
            name: name.to_owned(),
            email_verified: false,
        };
        self.dev.insert_user(&user, now()).await.unwrap();
        let token = generate_token();
        self.dev.insert_session(&id, &token, expires_at, now()).await.unwrap();
        TestUser {
            id,
            cookie: format!("better-auth.session_token={}", sign(&token)),
            token,
        }
    }

    /// `user` (inserted into `user`) with a live session kept only in
    /// better-auth's secondary storage at `client` under `prefix`, written as
    /// better-auth writes it.
    pub async fn user_in_secondary_storage(
        &self,
        user: &DevUser,
        client: &infra::redis::RedisClient,
        prefix: &str,
    ) -> TestUser {
        self.dev.insert_user(user, now()).await.unwrap();
        let token = generate_token();
        infra::better_auth::dev::secondary::DevSecondarySession {
            user,
            token: &token,
            created_at: now(),
            expires_at: now() + chrono::Duration::hours(1),
            active_organization_id: None,
            banned: false,
        }
        .store(client, prefix, now())
        .await
        .unwrap();
        TestUser {
            id: user.id.clone(),
            cookie: format!("better-auth.session_token={}", sign(&token)),
            token,
        }
    }

    /// Fills `items` with 100,000 rows (PostgreSQL), shared between two users
    /// (`owners`) and, one row in five, 50 organizations (`org-0` … `org-49`),
    /// with varied names, flags and times, then `ANALYZE`s it: a table large
    /// enough for the planner to show what it would really do.
    pub async fn fill_100_000_items(&self, owners: [&str; 2]) {
        let pool = self.db.postgres_pool().expect("PostgreSQL");
        let fill = format!(
            "INSERT INTO items (id, name, owner_id, organization_id, is_active, created_at, updated_at) \
             SELECT gen_random_uuid(), md5(n::text), CASE WHEN n % 2 = 0 THEN '{}' ELSE '{}' END, \
             CASE WHEN n % 5 = 0 THEN 'org-' || (n % 50) END, n % 3 = 0, \
             now() - n * interval '1 second', now() - (n % 977) * interval '1 minute' \
             FROM generate_series(1, 100000) AS n",
            owners[0], owners[1]
        );
        sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(fill))
            .execute(&pool)
            .await
            .unwrap();
        sea_orm::sqlx::query("ANALYZE items").execute(&pool).await.unwrap();
    }

    /// The value of a gauge (an unlabelled metric) scraped from `/metrics`.
    pub async fn gauge(&self, name: &str) -> i64 {
        let text = self
            .request(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no gauge {name} in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.address))
    }

    pub fn as_user(&self, method: Method, path: &str, user: &TestUser) -> RequestBuilder {
        self.request(method, path).header("Cookie", &user.cookie)
    }

    pub async fn get(&self, path: &str, user: &TestUser) -> (StatusCode, Value) {
        send(self.as_user(Method::GET, path, user)).await
    }

    pub async fn post(&self, path: &str, user: &TestUser, body: Value) -> (StatusCode, Value) {
        send(self.as_user(Method::POST, path, user).json(&body)).await
    }

    pub async fn patch(&self, path: &str, user: &TestUser, body: Value) -> (StatusCode, Value) {
        send(self.as_user(Method::PATCH, path, user).json(&body)).await
    }

    pub async fn delete(&self, path: &str, user: &TestUser) -> (StatusCode, Value) {
        send(self.as_user(Method::DELETE, path, user)).await
    }
}

pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, body)
}

/// Generates one `#[tokio::test]` per backend for each listed async fn taking a [`Backend`].
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await } )*
        }
        mod postgres_camel {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Backend::Postgres(infra::better_auth::NamingStyle::CamelCase)).await } )*
        }
        mod postgres_snake {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::Backend::Postgres(infra::better_auth::NamingStyle::SnakeCase)).await } )*
        }
    };
}
pub(crate) use on_every_backend;

/// A Redis server of the test's own, on its own port, that the test may stop
/// and start again without touching the shared one.
pub struct OwnRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// Starts `redis-server` on a free port; `None` (skipped, reason printed) when it is not installed.
    pub fn start(test: &str) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut redis = Self { port, child: None };
        if let Err(error) = redis.restart() {
            assert!(!ci(), "CI=true but redis-server cannot be started: {error}");
            eprintln!("SKIPPED {test}: redis-server not available ({error})");
            return None;
        }
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// (Re)starts the server and waits until it accepts connections.
    pub fn restart(&mut self) -> std::io::Result<()> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(std::io::Error::other("redis-server did not start listening"))
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy in front of a real server, which the test can cut (every
/// connection reset, new ones refused: the server looks dead) and restore on
/// the same port.
pub struct TcpProxy {
    pub port: u16,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TcpProxy {
    pub async fn start(target: String) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut proxy = Self {
            port,
            target,
            task: None,
        };
        proxy.restore().await;
        proxy
    }

    /// Starts forwarding again (after [`TcpProxy::cut`]).
    pub async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("proxy port free again");
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Drops the listener and every proxied connection.
    pub async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `host:port` of a PostgreSQL URL.
pub fn host_port(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let after_credentials = after_scheme.rsplit_once('@').map_or(after_scheme, |(_, rest)| rest);
    let authority = after_credentials.split(['/', '?']).next().unwrap_or_default();
    if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    }
}

/// `url` with its `host:port` replaced.
pub fn via(url: &str, host_port_now: &str, proxy_port: u16) -> String {
    url.replacen(host_port_now, &format!("127.0.0.1:{proxy_port}"), 1)
}

/// A TCP proxy that can be *frozen*: connections stay open but no byte
/// goes through either way (the server looks hung, not dead), until thawed.
pub struct FreezableProxy {
    pub port: u16,
    frozen: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FreezableProxy {
    pub async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, _) = tokio::sync::watch::channel(false);
        let watch = frozen.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (target, watch) = (target.clone(), watch.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    tokio::join!(
                        pump(from_client, to_server, watch.subscribe()),
                        pump(from_server, to_client, watch.subscribe())
                    );
                });
            }
        });
        Self { port, frozen, task }
    }

    /// Stops (`true`) or resumes (`false`) every byte in flight.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|frozen| !*frozen).await.is_err() || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `node <script> <args…>` in `dir` with `env` added, and returns the
/// JSON it printed; a failure shows the script's stderr.
pub fn node_json(dir: &str, script: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let output = std::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node {script} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("node {script} printed no JSON: {e}"))
}

/// A TCP port nothing listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
