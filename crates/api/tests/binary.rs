//! The `saas-api` binary itself: configuration refusals and the access log.
//! Each run gets an empty working directory (no `.env`) and a clean environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_saas-api");

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saas-api-bin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn production_refuses_to_start_with_one_line_per_problem() {
    let dir = scratch_dir();
    let output = command(
        &dir,
        &[
            ("APP_ENV", "production"),
            ("BETTER_AUTH_SECRET", "too-short"),
            ("FRONTEND_URL", "*"),
            ("DEBUG", "true"),
            ("PORT", "http"),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for variable in ["BETTER_AUTH_SECRET", "SECRET_KEY", "FRONTEND_URL", "DEBUG", "PORT"] {
        assert_eq!(
            stderr.lines().filter(|l| l.trim_start().starts_with(variable)).count(),
            1,
            "one line for {variable} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("too-short"), "secrets are never echoed:\n{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn development_starts_with_warnings_instead() {
    let dir = scratch_dir();
    let mut child = command(&dir, &[("PORT", "0"), ("LOG_FORMAT", "json"), ("FRONTEND_URL", "*")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, _) = follow(&mut child);
    let port = wait_for_port(&lines);
    assert!(port > 0);
    let logged = lines.lock().unwrap().join("\n");
    assert!(logged.contains("FRONTEND_URL: wildcard origins"), "{logged}");
    assert!(logged.contains("\"level\":\"WARN\""), "{logged}");
    child.kill().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `saas-api dev seed` in `dir` and returns the `Cookie` header value it printed.
fn seeded_cookie(dir: &Path, vars: &[(&str, &str)]) -> String {
    let seeded = command(dir, vars).args(["dev", "seed"]).output().unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let stdout = String::from_utf8(seeded.stdout).unwrap();
    let curl = stdout.lines().find(|l| l.starts_with("curl ")).expect("a curl line");
    curl.split("Cookie: ")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_owned()
}

/// Collects the child's stderr lines as they come.
fn follow(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (lines, reader)
}

fn wait_for_port(lines: &Arc<Mutex<Vec<String>>>) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for line in lines.lock().unwrap().iter() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && v["message"] == "listening"
            {
                return u16::try_from(v["port"].as_u64().unwrap()).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not start: {:?}", lines.lock().unwrap());
}

#[tokio::test]
async fn each_request_is_one_json_log_line_without_credentials() {
    let dir = scratch_dir();
    let secret = "log-test-secret-log-test-secret-0123456789";
    let vars = [
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("BETTER_AUTH_SECRET", secret),
        ("RUST_LOG", "info"),
    ];
    let cookie = seeded_cookie(&dir, &vars);
    let signed = cookie.split_once('=').unwrap().1.to_owned();
    let token = signed.split('.').next().unwrap().to_owned();

    let mut child = command(&dir, &vars).stderr(Stdio::piped()).spawn().unwrap();
    let (lines, reader) = follow(&mut child);
    let port = wait_for_port(&lines);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let me = client
        .get(format!("{base}/api/v1/users/me"))
        .header("Cookie", &cookie)
        .header("X-Request-Id", "log-test-1");
    assert_eq!(me.send().await.unwrap().status(), 200);
    let bearer = client
        .get(format!("{base}/api/v1/items?limit=5"))
        .header("Authorization", format!("Bearer {token}"));
    assert_eq!(
        bearer
            .header("X-Request-Id", "log-test-2")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let refused = client
        .get(format!("{base}/api/v1/items"))
        .header("Cookie", "better-auth.session_token=forged.value");
    assert_eq!(
        refused
            .header("X-Request-Id", "log-test-3")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();

    let lines = lines.lock().unwrap();
    let access: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .collect();
    let line = |id: &str| {
        let matching: Vec<&Value> = access.iter().filter(|v| v["request_id"] == id).collect();
        assert_eq!(matching.len(), 1, "exactly one access line for {id}: {access:?}");
        matching[0].clone()
    };
    let first = line("log-test-1");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["route"], "/api/v1/users/me");
    assert_eq!(first["status"], 200);
    assert_eq!(first["client_ip"], "127.0.0.1");
    assert_eq!(first["user_id"], "demo-user");
    assert_eq!(first["level"], "INFO");
    assert!(first["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(first["timestamp"].is_string());
    assert_eq!(first["credential"], "cookie");
    assert_eq!(line("log-test-2")["user_id"], "demo-user");
    assert_eq!(line("log-test-2")["credential"], "bearer");
    assert_eq!(line("log-test-3")["status"], 401);
    assert!(line("log-test-3")["user_id"].is_null(), "no user for a refused request");
    assert!(line("log-test-3")["credential"].is_null());

    let everything = lines.join("\n");
    for secret_value in [
        token.as_str(),
        signed.as_str(),
        cookie.as_str(),
        "forged.value",
        "Bearer",
    ] {
        assert!(!everything.contains(secret_value), "{secret_value} leaked into the log");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn test_database_url(test: &str) -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty());
    assert!(url.is_some() || !ci(), "CI=true but TEST_DATABASE_URL is not set");
    if url.is_none() {
        eprintln!("SKIPPED {test}: no TEST_DATABASE_URL");
    }
    url
}

/// A new, empty PostgreSQL database: (an admin connection, its name, its URL).
async fn scratch_database(test: &str) -> Option<(infra::Db, String, String)> {
    let admin_url = test_database_url(test)?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = infra::Db::connect(&admin_url, &infra::db::DbOptions::default())
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let url = with_database(&admin_url, &name);
    Some((admin, name, url))
}

fn with_database(url: &str, name: &str) -> String {
    let (server, _) = url.split('?').next().unwrap().rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

#[test]
fn start_up_retries_an_unreachable_database_then_exits_non_zero_with_a_clear_message() {
    let dir = scratch_dir();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{closed}/nothing");
    let started = Instant::now();
    let output = command(
        &dir,
        &[
            ("DATABASE_URL", url.as_str()),
            ("DB_STARTUP_TIMEOUT", "2"),
            ("DB_TIMEOUT_MS", "500"),
            ("LOG_FORMAT", "json"),
        ],
    )
    .output()
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1));
    assert!(elapsed < Duration::from_secs(10), "bounded: {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(700), "it retried: {elapsed:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let attempts = stderr
        .lines()
        .filter(|l| l.contains("database not reachable yet"))
        .count();
    assert!(attempts >= 2, "each attempt is logged:\n{stderr}");
    assert!(stderr.contains("database unreachable after"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_503_stops_accepting_and_lets_an_in_flight_request_finish() {
    use infra::better_auth::NamingStyle;
    use infra::better_auth::dev::{DevBetterAuth, DevUser, generate_token};
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let Some((admin, name, url)) = scratch_database("sigterm_graceful_shutdown").await else {
        return;
    };
    let db = infra::Db::connect(&url, &infra::db::DbOptions::default())
        .await
        .unwrap();
    let dev = DevBetterAuth::new(db.clone(), NamingStyle::CamelCase);
    dev.create_tables(false).await.unwrap();
    let now = chrono::Utc::now();
    let user = DevUser {
        id: "u1".into(),
        email: "u1@example.com".into(),
        name: "U".into(),
        email_verified: true,
    };
    dev.insert_user(&user, now).await.unwrap();
    let token = generate_token();
    dev.insert_session("u1", &token, now + chrono::Duration::hours(1), now)
        .await
        .unwrap();
    let secret = "shutdown-test-secret-shutdown-test-secret";
    let cookie = format!(
        "better-auth.session_token={}",
        domain::auth::SignatureVerifier::new(&[secret])
            .signed_cookie_value(&token)
            .unwrap()
    );

    let dir = scratch_dir();
    let vars = [
        ("DATABASE_URL", url.as_str()),
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("BETTER_AUTH_SECRET", secret),
        ("SHUTDOWN_DELAY_MS", "1500"),
        ("SHUTDOWN_TIMEOUT", "20"),
    ];
    let mut child = command(&dir, &vars).stderr(Stdio::piped()).spawn().unwrap();
    let (lines, reader) = follow(&mut child);
    let port = wait_for_port(&lines);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/api/v1/items"))
        .header("Cookie", &cookie)
        .json(&serde_json::json!({"name": "before"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    // Hold a lock so the next write is in flight while the signal arrives.
    let blocker = db.conn().begin().await.unwrap();
    blocker
        .execute_unprepared("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let in_flight = {
        let (client, url, cookie) = (client.clone(), format!("{base}/api/v1/items/{id}"), cookie.clone());
        tokio::spawn(async move {
            client
                .patch(url)
                .header("Cookie", cookie)
                .json(&serde_json::json!({"name": "after"}))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let ready = client.get(format!("{base}/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "readiness turns at once");
    assert_eq!(
        client.get(format!("{base}/health/live")).send().await.unwrap().status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let refused = reqwest::Client::new().get(format!("{base}/health/live")).send().await;
    assert!(refused.is_err(), "no longer accepting after the delay: {refused:?}");
    assert!(!in_flight.is_finished(), "the write is still waiting on the lock");

    blocker.rollback().await.unwrap();
    let response = in_flight.await.unwrap().expect("the in-flight request got its answer");
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["name"], "after");

    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit 0 after draining: {status:?}");
    reader.join().unwrap();
    assert!(lines.lock().unwrap().iter().any(|l| l.contains("database pool closed")));

    db.close().await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_healthcheck_command_reports_readiness_of_the_local_server() {
    let dir = scratch_dir();
    let mut child = command(&dir, &[("PORT", "0"), ("LOG_FORMAT", "json")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, _) = follow(&mut child);
    let port = wait_for_port(&lines).to_string();
    let ok = command(&dir, &[("PORT", port.as_str())])
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    child.kill().unwrap();
    child.wait().unwrap();
    let down = command(&dir, &[("PORT", port.as_str())])
        .arg("healthcheck")
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("unhealthy"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Hardening: malformed requests (an over-long request line, too many
/// headers, garbage) are refused by actix-http, which logs one ERROR line per
/// connection; the service turns those into at most one WARN line a second.
#[tokio::test]
async fn fifty_malformed_requests_log_at_most_a_couple_of_throttled_warnings() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = scratch_dir();
    let vars = [("PORT", "0"), ("LOG_FORMAT", "json"), ("RUST_LOG", "info")];
    let mut child = command(&dir, &vars).stderr(Stdio::piped()).spawn().unwrap();
    let (lines, reader) = follow(&mut child);
    let port = wait_for_port(&lines);
    let started = Instant::now();
    for i in 0..50 {
        let request = match i % 3 {
            0 => format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)),
            1 => format!(
                "GET / HTTP/1.1\r\n{}\r\n",
                (0..200).map(|h| format!("X-H{h}: v\r\n")).collect::<String>()
            ),
            _ => "\u{1}\u{2} garbage \r\n\r\n".to_owned(),
        };
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 4"),
            "refused with a 4xx: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        );
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();

    let lines = lines.lock().unwrap();
    let errors = lines.iter().filter(|l| l.contains("\"level\":\"ERROR\"")).count();
    assert_eq!(errors, 0, "no ERROR line for a client's malformed request: {lines:?}");
    let warnings: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "protocol")
        .collect();
    let allowed = usize::try_from(elapsed.as_secs()).unwrap() + 1;
    assert!(
        !warnings.is_empty() && warnings.len() <= allowed,
        "{} protocol warnings in {elapsed:?}: {warnings:?}",
        warnings.len()
    );
    assert_eq!(warnings[0]["level"], "WARN");
    let _ = std::fs::remove_dir_all(dir);
}

/// `HOST` and `WORKERS` as the binary applies them: the listener is on that
/// address only, with that many worker threads.
#[tokio::test]
async fn host_and_workers_shape_the_listener() {
    let dir = scratch_dir();
    let vars = [
        ("PORT", "0"),
        ("HOST", "127.0.0.2"),
        ("WORKERS", "3"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
    ];
    let mut child = command(&dir, &vars).stderr(Stdio::piped()).spawn().unwrap();
    let (lines, reader) = follow(&mut child);
    let port = wait_for_port(&lines);
    let live = reqwest::get(format!("http://127.0.0.2:{port}/health/live"))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/health/live"))
            .await
            .is_err(),
        "not listening on another address"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let logged = lines.lock().unwrap().join("\n");
    assert!(logged.contains("starting 3 workers"), "{logged}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn workers_out_of_range_is_one_line_and_exit_code_2() {
    let dir = scratch_dir();
    for workers in ["0", "513", "many"] {
        let output = command(&dir, &[("WORKERS", workers)]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "WORKERS={workers}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.lines().filter(|l| l.trim_start().starts_with("WORKERS")).count(),
            1,
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `saas-api openapi` prints the document without settings or a database.
#[test]
fn openapi_prints_the_document_without_a_server_or_a_database() {
    let dir = scratch_dir();
    let output = command(&dir, &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")])
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(document["paths"]["/api/v1/items"]["post"].is_object());
    assert!(document["components"]["schemas"]["ErrorResponse"].is_object());
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing was created");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn version_prints_the_version_and_unknown_commands_fail_before_the_configuration_is_read() {
    let dir = scratch_dir();
    for flag in ["--version", "-V"] {
        let output = command(&dir, &[]).arg(flag).output().unwrap();
        assert!(output.status.success(), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            format!("saas-api {}", env!("CARGO_PKG_VERSION"))
        );
    }
    // An unsafe production configuration would be reported if it were read: it is not.
    let unsafe_production = [("APP_ENV", "production"), ("BETTER_AUTH_SECRET", "short")];
    for words in [
        &["frobnicate"][..],
        &["migrate", "sideways"],
        &["dev", "seeds"],
        &["serve", "now"],
    ] {
        let output = command(&dir, &unsafe_production).args(words).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{words:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("usage: saas-api"), "{words:?}: {stderr}");
        assert!(!stderr.contains("configuration"), "{words:?}: {stderr}");
    }
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_a_database_without_better_auth_tables_says_so_once() {
    let Some((admin, name, url)) = scratch_database("migrate_without_better_auth").await else {
        return;
    };
    let dir = scratch_dir();
    for action in ["up", "status"] {
        let output = command(&dir, &[("DATABASE_URL", url.as_str()), ("LOG_FORMAT", "json")])
            .args(["migrate", action])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "migrate {action}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.matches("better-auth tables not found").count(),
            1,
            "migrate {action}: the start-up message, once:\n{stderr}"
        );
        assert!(!stderr.contains("does not exist"), "no raw SQL error:\n{stderr}");
    }
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unreachable_or_missing_database_is_named_by_its_cause_once() {
    let dir = scratch_dir();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("postgres://postgres@127.0.0.1:{closed}/nothing");
    let mut cases = vec![(refused, "connection refused")];
    if let Some(admin) = test_database_url("missing_database_cause") {
        cases.push((with_database(&admin, "no_such_database_here"), "does not exist"));
    }
    for (url, cause) in cases {
        let output = command(&dir, &[("DATABASE_URL", url.as_str()), ("DB_TIMEOUT_MS", "1000")])
            .args(["migrate", "status"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.matches(cause).count(), 1, "{url}: the cause, once:\n{stderr}");
        assert!(
            !stderr.contains("pool timed out"),
            "{url}: not the pool's symptom:\n{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A minimal OTLP/HTTP receiver: answers 200 to every POST and keeps the
/// decoded `ExportTraceServiceRequest`s' spans, the `service.name` of
/// each one's resource, and the header lines of each export (lower-cased).
/// Dropping it stops accepting.
struct OtlpReceiver {
    port: u16,
    spans: Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
    services: Arc<Mutex<Vec<String>>>,
    headers: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl OtlpReceiver {
    fn start() -> Self {
        Self::start_on(0)
    }

    /// On `port` (0: any), waiting for a previous receiver to let it go.
    fn start_on(port: u16) -> Self {
        let deadline = Instant::now() + Duration::from_secs(3);
        let listener = loop {
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(Instant::now() < deadline, "port {port}: {error}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let services = Arc::new(Mutex::new(Vec::new()));
        let headers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, names, lines, stopped) = (spans.clone(), services.clone(), headers.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (sink, names, lines, stopped) =
                            (sink.clone(), names.clone(), lines.clone(), stopped.clone());
                        std::thread::spawn(move || serve_otlp(stream, &sink, &names, &lines, &stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            spans,
            services,
            headers,
            stop,
        }
    }

    fn spans(&self) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
        self.spans.lock().unwrap().clone()
    }

    fn services(&self) -> Vec<String> {
        self.services.lock().unwrap().clone()
    }

    fn headers(&self) -> Vec<String> {
        self.headers.lock().unwrap().clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// HTTP/1.1 requests on one connection: headers, a `Content-Length` body, 200.
fn serve_otlp(
    stream: std::net::TcpStream,
    sink: &Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>,
    services: &Mutex<Vec<String>>,
    headers: &Mutex<Vec<String>>,
    stopped: &std::sync::atomic::AtomicBool,
) {
    use prost::Message as _;
    use std::io::{Read as _, Write as _};
    stream.set_nonblocking(false).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            headers.lock().unwrap().push(line.trim_end().to_ascii_lowercase());
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() || stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Ok(request) =
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body.as_slice())
        {
            let mut spans = sink.lock().unwrap();
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                    .map(|v| format!("{v:?}"));
                services.lock().unwrap().push(service.unwrap_or_default());
                for scope in resource.scope_spans {
                    spans.extend(scope.spans);
                }
            }
        }
        let _ =
            writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
    }
}

fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[index]
}

/// OTLP export end to end, from the binary: one request with a W3C
/// `traceparent` becomes one trace (request → authentication → database
/// statement) parented to the caller's span; the answer carries
/// `traceparent`, the access log `trace_id`/`span_id`; with the collector
/// gone requests are unaffected and the lost spans are counted.
#[tokio::test]
async fn traces_are_exported_parented_to_the_callers_traceparent_and_a_dead_collector_costs_nothing() {
    let dir = scratch_dir();
    let receiver = OtlpReceiver::start();
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let vars = [
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("BETTER_AUTH_SECRET", "otel-test-secret-otel-test-secret-0123456789"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "saas-api-under-test"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=t0k3n"),
        ("RATE_LIMIT_REQUESTS", "100000"),
    ];
    let cookie = seeded_cookie(&dir, &vars);

    let mut child = KillOnDrop(command(&dir, &vars).stderr(Stdio::piped()).spawn().unwrap());
    let (lines, _reader) = follow(&mut child.0);
    let port = wait_for_port(&lines);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let response = client
        .get(format!("{base}/api/v1/users/me"))
        .header("Cookie", &cookie)
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .header("tracestate", "frontend=t61rcWkgMzE")
        .header("X-Request-Id", "otel-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answered = response
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("traceparent answered")
        .to_owned();
    assert!(answered.starts_with(&format!("00-{trace_id}-")), "{answered}");
    let request_span_id = answered.split('-').nth(2).unwrap().to_owned();
    assert_eq!(
        response.headers().get("tracestate").and_then(|v| v.to_str().ok()),
        Some("frontend=t61rcWkgMzE"),
        "the caller's tracestate answered back"
    );
    assert_ne!(request_span_id, parent, "the request is a span of its own");

    // Exported within a couple of seconds (batches leave at least once a second).
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let deadline = Instant::now() + Duration::from_secs(5);
    let spans = loop {
        let spans: Vec<_> = receiver
            .spans()
            .into_iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .collect();
        if spans.iter().any(|s| s.name == "GET /api/v1/users/me") && spans.iter().any(|s| s.name == "session_by_token")
        {
            break spans;
        }
        assert!(Instant::now() < deadline, "spans not exported: {spans:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:?}"))
    };
    let services = receiver.services();
    assert!(
        !services.is_empty() && services.iter().all(|s| s.contains("\"saas-api-under-test\"")),
        "every export names the service (OTEL_SERVICE_NAME): {services:?}"
    );
    let headers = receiver.headers();
    for wanted in ["x-collector-token: t0k3n", "content-type: application/x-protobuf"] {
        assert!(headers.iter().any(|h| h == wanted), "{wanted} sent: {headers:?}");
    }
    let request = by_name("GET /api/v1/users/me");
    assert_eq!(hex(&request.parent_span_id), parent, "a child of the caller's span");
    assert_eq!(hex(&request.span_id), request_span_id);
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(request.flags & 0x300, 0x300, "its parent is remote");
    assert!(
        spans.iter().all(|s| s.trace_state == "frontend=t61rcWkgMzE"),
        "the trace's state is carried by each of its spans: {spans:?}"
    );
    let authenticate = by_name("authenticate");
    assert_eq!(authenticate.parent_span_id, request.span_id);
    let lookup = by_name("session_by_token");
    assert_eq!(
        lookup.parent_span_id, authenticate.span_id,
        "the database statement inside authentication"
    );
    let attributes =
        |span: &opentelemetry_proto::tonic::trace::v1::Span| -> String { format!("{:?}", span.attributes) };
    assert!(
        attributes(request).contains("/api/v1/users/me") && attributes(request).contains("200"),
        "{request:?}"
    );
    assert!(attributes(authenticate).contains("cookie"), "{authenticate:?}");
    assert!(
        !format!("{spans:?}").contains(cookie.split('=').nth(1).unwrap()),
        "no credential in any span"
    );

    // A caller that did not sample its trace: followed (parent-based), nothing exported, flag answered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let exported_before = receiver.spans().len();
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    let response = client
        .get(format!("{base}/api/v1/users/me"))
        .header("Cookie", &cookie)
        .header("traceparent", format!("00-{unsampled}-b7ad6b7169203331-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answered = response
        .headers()
        .get("traceparent")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        answered.starts_with(&format!("00-{unsampled}-")) && answered.ends_with("-00"),
        "{answered}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let spans = receiver.spans();
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) != unsampled),
        "an unsampled trace exports nothing"
    );
    assert_eq!(
        spans.len(),
        exported_before,
        "and no span of it starts a trace of its own: {:?}",
        &spans[exported_before..]
    );

    // The access log line names the trace and the request's span.
    let logged = lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["request_id"] == "otel-test-1" && v["message"] == "request")
        .expect("the access log line");
    assert_eq!(logged["trace_id"], trace_id);
    assert_eq!(logged["span_id"], request_span_id.as_str());

    // The collector gone: answers as fast as before, and the spans lost are counted.
    let timed = |n: usize| {
        let client = client.clone();
        let url = format!("{base}/api/v1/users/me");
        let cookie = cookie.clone();
        async move {
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                let status = client
                    .get(&url)
                    .header("Cookie", &cookie)
                    .send()
                    .await
                    .unwrap()
                    .status();
                samples.push(started.elapsed());
                assert_eq!(status, 200);
            }
            samples
        }
    };
    // Interleaved (up, down, up, down, …) so that whatever else the machine
    // does falls on both sides; compared at the 25th percentile, which such
    // bursts move least.
    let port = receiver.port;
    let mut receiver = Some(receiver);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        if receiver.is_none() {
            receiver = Some(OtlpReceiver::start_on(port));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        up.extend(timed(100).await);
        drop(receiver.take());
        // At least one export has met the dead collector.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        down.extend(timed(100).await);
    }
    let (up, down) = (quantile(&mut up, 0.25), quantile(&mut down, 0.25));
    eprintln!("25th-percentile latency with the collector up {up:?}, down {down:?}");
    assert!(
        down <= up.mul_f64(1.10) + Duration::from_micros(300),
        "a dead collector must cost requests nothing: {up:?} → {down:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let dropped: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("otel_spans_dropped_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        if dropped > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "dropped spans are counted:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(child);
    let _ = std::fs::remove_dir_all(dir);
}

/// A child process stopped even when the test fails half-way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
