//! TLS to managed services: `rediss://` (rustls) for `REDIS_URL` and
//! `BETTER_AUTH_SECONDARY_STORAGE_URL`, trusting the CA of
//! `REDIS_TLS_CA_FILE`, against a local `redis-server --tls-port` whose
//! certificate a CA made by the test signed; a server signed by another CA
//! stops start-up with one clear line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use infra::better_auth::NamingStyle;
use infra::better_auth::dev::{DevUser, generate_token};
use infra::redis::{RedisClient, RedisTls};
use reqwest::StatusCode;

use crate::helpers::{Backend, Options, ScratchDb, free_port, now, send, settings_map, sign, spawn_app_with};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate it signs for `localhost` / 127.0.0.1, in `dir`:
/// `<name>-ca.crt`, `<name>-server.crt`, `<name>-server.key`.
fn certificates(dir: &Path, name: &str) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.crt");
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&[
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=saas-api test CA",
    ]);
    openssl(dir, &args);
    let key = format!("{name}-server.key");
    let csr = format!("{name}-server.csr");
    let mut args = vec!["req"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    openssl(dir, &args);
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &format!("{name}-server.crt"),
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

/// `redis-server` speaking only TLS, with `name`'s server certificate.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(dir: &Path, name: &str) -> Self {
        let port = free_port();
        let file = |suffix: &str| dir.join(format!("{name}-{suffix}")).display().to_string();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--tls-cert-file",
                &file("server.crt"),
                "--tls-key-file",
                &file("server.key"),
            ])
            .args(["--tls-ca-cert-file", &file("ca.crt"), "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saas-tls-{test}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The service on `rediss://` for both its own Redis and better-auth's
/// secondary storage: health, a cached database session, and a session read
/// from secondary storage all work over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_serves_over_rediss_with_a_private_ca() {
    let dir = scratch_dir("rediss");
    certificates(&dir, "good");
    let redis = TlsRedis::start(&dir, "good");
    let ca = dir.join("good-ca.crt").display().to_string();
    let own = format!("rediss://127.0.0.1:{}/0", redis.port);
    // By name: the certificate's DNS entry is checked too.
    let secondary = format!("rediss://localhost:{}/1", redis.port);
    let prefix = "better-auth:";
    let Some(app) = spawn_app_with(
        Backend::Postgres(NamingStyle::CamelCase),
        "tls_rediss",
        Options {
            use_redis: false,
            extra: vec![
                ("REDIS_URL".into(), own.clone()),
                ("REDIS_TLS_CA_FILE".into(), ca.clone()),
                ("BETTER_AUTH_SECONDARY_STORAGE_URL".into(), secondary.clone()),
                ("BETTER_AUTH_STORE_SESSION_IN_DATABASE".into(), "true".into()),
            ],
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (status, body) = send(app.request(reqwest::Method::GET, "/health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((&body["redis"], &body["session_storage"]), (&"ok".into(), &"ok".into()));

    // A session in the table (BETTER_AUTH_STORE_SESSION_IN_DATABASE): looked up after secondary storage.
    let tabled = app.signed_in_user("tabled").await;
    assert_eq!(app.get("/api/v1/users/me", &tabled).await.0, StatusCode::OK);

    // A session only in secondary storage, written over TLS as better-auth would.
    let tls = RedisTls {
        ca_pem: Some(std::fs::read(&ca).unwrap().into()),
    };
    let client = RedisClient::with_tls(&secondary, "", Duration::from_secs(2), &tls).unwrap();
    let user = DevUser {
        id: format!("tls-{}", uuid::Uuid::new_v4().simple()),
        email: format!("tls-{}@example.com", uuid::Uuid::new_v4().simple()),
        name: "Over TLS".into(),
        email_verified: true,
    };
    let signed = app.user_in_secondary_storage(&user, &client, prefix).await;
    let (status, body) = app.get("/api/v1/users/me", &signed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Over TLS");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `rediss://` server signed by a CA the service was not told to trust:
/// start-up stops with one line naming the variable and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediss_server_signed_by_another_ca_stops_start_up_with_one_clear_line() {
    let dir = scratch_dir("wrong_ca");
    certificates(&dir, "server");
    certificates(&dir, "other");
    let redis = TlsRedis::start(&dir, "server");
    for (variable, extra) in [
        (
            "REDIS_URL",
            vec![("REDIS_URL", format!("rediss://127.0.0.1:{}/0", redis.port))],
        ),
        (
            "BETTER_AUTH_SECONDARY_STORAGE_URL",
            vec![(
                "BETTER_AUTH_SECONDARY_STORAGE_URL",
                format!("rediss://127.0.0.1:{}/0", redis.port),
            )],
        ),
    ] {
        let scratch = ScratchDb::create(Backend::Sqlite, "tls_wrong_ca").await.unwrap();
        let mut vars: Vec<(String, String)> = extra.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        vars.push((
            "REDIS_TLS_CA_FILE".into(),
            dir.join("other-ca.crt").display().to_string(),
        ));
        let options = Options {
            extra: vars,
            ..Options::default()
        };
        let vars = settings_map(&scratch.url, &options, None, "tls:");
        let (settings, _) = api::Settings::from_map(&vars).unwrap();
        let error = match api::Application::build(settings).await {
            Ok(_) => panic!("{variable}: started against an untrusted certificate"),
            Err(error) => format!("{error:#}"),
        };
        let first = error.lines().next().unwrap();
        eprintln!("start-up refused: {first}");
        assert!(
            first.starts_with(&format!(
                "{variable}: TLS to rediss://127.0.0.1:{}/0 failed (",
                redis.port
            )),
            "{first}"
        );
        assert!(first.contains("REDIS_TLS_CA_FILE"), "says what to do: {first}");
        assert_eq!(error.lines().count(), 1, "one line: {error}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// PostgreSQL's own binaries (`initdb`, `pg_ctl`): Debian keeps them out of `PATH`.
fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Runs a PostgreSQL binary as `postgres` when the test runs as root (it refuses root).
fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let mut command = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    command.args(args).output().expect("PostgreSQL binary runs")
}

/// A throw-away PostgreSQL cluster (`initdb`) that accepts only TLS
/// connections (`hostssl` in `pg_hba.conf`), with `name`'s certificate.
struct TlsPostgres {
    data: PathBuf,
    port: u16,
    pg_ctl: PathBuf,
}

impl TlsPostgres {
    fn start(dir: &Path, name: &str) -> Option<Self> {
        let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
            assert!(
                std::env::var("CI").is_err(),
                "CI=true but PostgreSQL's initdb is not installed"
            );
            eprintln!("SKIPPED PostgreSQL TLS: no initdb");
            return None;
        };
        if running_as_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir)
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let key = dir.join(format!("{name}-server.key"));
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let data = dir.join("data");
        let out = as_postgres(
            &initdb,
            &["-D", &data.display().to_string(), "-A", "trust", "-U", "postgres"],
        );
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        let port = free_port();
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}",
            dir = dir.display(),
            cert = dir.join(format!("{name}-server.crt")).display(),
            key = key.display(),
        );
        let log = dir.join("postgres.log").display().to_string();
        let out = as_postgres(
            &pg_ctl,
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &log,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(Self { data, port, pg_ctl })
    }

    fn url(&self, ca: &Path) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
            self.port,
            ca.display()
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(
            &self.pg_ctl,
            &["-D", &self.data.display().to_string(), "-m", "immediate", "stop"],
        );
    }
}

/// `sslmode=verify-full` with a private CA (`sslrootcert`): the pool, the
/// lanes and the auth-change listener all connect over TLS (the cluster
/// refuses anything else), and `users/me`, item writes and lists work; a
/// server signed by another CA stops start-up with one line naming TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_serves_over_postgres_verify_full_with_a_private_ca() {
    let dir = scratch_dir("postgres");
    certificates(&dir, "pg");
    certificates(&dir, "other");
    let Some(cluster) = TlsPostgres::start(&dir, "pg") else {
        return;
    };
    let url = cluster.url(&dir.join("pg-ca.crt"));
    let db = infra::Db::connect(&url, &infra::db::DbOptions::default())
        .await
        .expect("the test itself connects over TLS");
    let dev = infra::better_auth::dev::DevBetterAuth::new(db.clone(), NamingStyle::CamelCase);
    dev.create_tables(true).await.unwrap();
    let user = DevUser {
        id: "tls-pg-user".into(),
        email: "tls-pg@example.com".into(),
        name: "Verified".into(),
        email_verified: true,
    };
    dev.insert_user(&user, now()).await.unwrap();
    let token = generate_token();
    dev.insert_session(&user.id, &token, now() + chrono::Duration::hours(1), now())
        .await
        .unwrap();

    let options = Options {
        use_redis: false,
        ..Options::default()
    };
    let vars = settings_map(&url, &options, None, "tls-pg:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let server = api::Application::build(settings).await.expect("starts over TLS");
    let base = format!("http://127.0.0.1:{}", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    let client = reqwest::Client::new();
    let cookie = format!("better-auth.session_token={}", sign(&token));
    let (status, body) = send(client.get(format!("{base}/api/v1/users/me")).header("Cookie", &cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Verified");
    let (status, body) = send(
        client
            .post(format!("{base}/api/v1/items"))
            .bearer_auth(sign(&token))
            .json(&serde_json::json!({"name": "over TLS"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(client.get(format!("{base}/api/v1/items")).header("Cookie", &cookie)).await;
    assert_eq!(
        (status, body.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
    let started = std::time::Instant::now();
    loop {
        let (_, health) = send(client.get(format!("{base}/health"))).await;
        if health["auth_changes"] == "listening" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the listener connects over TLS: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    use sea_orm::ConnectionTrait as _;
    let row = db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*) FILTER (WHERE s.ssl) AS tls, count(*) FILTER (WHERE NOT s.ssl) AS plain \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'client backend'",
        ))
        .await
        .unwrap()
        .unwrap();
    let (tls, plain): (i64, i64) = (row.try_get("", "tls").unwrap(), row.try_get("", "plain").unwrap());
    assert_eq!(plain, 0, "no connection without TLS");
    assert!(tls >= 3, "the test's, the pool's and the listener's at least: {tls}");
    handle.stop(false).await;
    db.close().await;

    // Signed by another CA than sslrootcert's: one line, naming TLS.
    let wrong = cluster.url(&dir.join("other-ca.crt"));
    let options = Options {
        use_redis: false,
        extra: vec![("DB_STARTUP_TIMEOUT".into(), "1".into())],
        ..Options::default()
    };
    let vars = settings_map(&wrong, &options, None, "tls-pg:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let error = match api::Application::build(settings).await {
        Ok(_) => panic!("started against an untrusted certificate"),
        Err(error) => format!("{error:#}"),
    };
    eprintln!("start-up refused: {error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains("TLS failed (") && error.contains("sslrootcert"),
        "{error}"
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
