//! better-auth's secondary storage (`BETTER_AUTH_SECONDARY_STORAGE_URL`):
//! sessions and API keys read from the Redis better-auth writes, on every
//! backend. Values are written here in better-auth's shape
//! (`infra::better_auth::dev::secondary`); `secondary_interop.rs` proves the
//! same against the real better-auth and `@better-auth/redis-storage`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_redis::redis::AsyncCommands;
use infra::better_auth::NamingStyle;
use infra::better_auth::dev::secondary::DevSecondarySession;
use infra::better_auth::dev::{DevUser, generate_token};
use infra::redis::RedisClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Options, OwnRedis, TestApp, TestUser, now, on_every_backend, redis_or_skip, second_instance, send, sign,
    spawn_app_with,
};

struct Secondary {
    app: TestApp,
    client: RedisClient,
    conn: deadpool_redis::Connection,
    prefix: String,
}

async fn connection(url: &str) -> deadpool_redis::Connection {
    deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
        .get()
        .await
        .unwrap()
}

/// A server whose sessions live in secondary storage on the shared Redis,
/// under a prefix of its own.
async fn spawn(backend: Backend, test: &str, extra: &[(&str, &str)], options: Options) -> Option<Secondary> {
    let url = redis_or_skip(test)?;
    let prefix = format!("better-auth-test:{}:", uuid::Uuid::new_v4().simple());
    let mut all = vec![
        ("BETTER_AUTH_SECONDARY_STORAGE_URL".to_owned(), url.clone()),
        ("BETTER_AUTH_SECONDARY_STORAGE_PREFIX".to_owned(), prefix.clone()),
    ];
    all.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let app = spawn_app_with(backend, test, Options { extra: all, ..options }).await?;
    Some(Secondary {
        app,
        client: RedisClient::new(&url, "", Duration::from_secs(2)).unwrap(),
        conn: connection(&url).await,
        prefix,
    })
}

fn dev_user(name: &str) -> DevUser {
    let id = format!("{name}-{}", uuid::Uuid::new_v4().simple());
    DevUser {
        email: format!("{id}@example.com"),
        id,
        name: name.to_owned(),
        email_verified: true,
    }
}

impl Secondary {
    /// A user in the `user` table whose session lives only in secondary storage.
    async fn user(&self, name: &str, active_organization_id: Option<&str>) -> (DevUser, TestUser) {
        let user = dev_user(name);
        self.app.dev.insert_user(&user, now()).await.unwrap();
        let token = generate_token();
        self.store(&user, &token, now(), active_organization_id, false).await;
        let signed = TestUser {
            id: user.id.clone(),
            cookie: format!("better-auth.session_token={}", sign(&token)),
            token,
        };
        (user, signed)
    }

    async fn store(&self, user: &DevUser, token: &str, created_at: DateTime<Utc>, active: Option<&str>, banned: bool) {
        DevSecondarySession {
            user,
            token,
            created_at,
            expires_at: now() + chrono::Duration::hours(1),
            active_organization_id: active,
            banned,
        }
        .store(&self.client, &self.prefix, now())
        .await
        .unwrap();
    }

    async fn set(&mut self, key: &str, value: &str) {
        let key = format!("{}{key}", self.prefix);
        let _: () = self.conn.set(key, value).await.unwrap();
    }

    /// An API key row as the api-key plugin keeps it with `storage: "secondary-storage"`.
    async fn put_key(&mut self, user_id: &str, raw: &str, fields: Value) {
        let hash = domain::auth::api_key::hash(raw);
        let id = format!("key-{}", uuid::Uuid::new_v4().simple());
        let mut row = json!({
            "id": id, "configId": "default", "name": null, "start": &raw[..6], "prefix": null,
            "key": hash, "referenceId": user_id, "refillInterval": null, "refillAmount": null,
            "lastRefillAt": null, "enabled": true, "rateLimitEnabled": false,
            "rateLimitTimeWindow": 86_400_000, "rateLimitMax": 10, "requestCount": 0,
            "remaining": null, "lastRequest": null, "expiresAt": null,
            "createdAt": "2026-12-01T00:00:00.000Z", "updatedAt": "2026-12-01T00:00:00.000Z",
            "permissions": null, "metadata": null,
        });
        for (k, v) in fields.as_object().unwrap() {
            row[k] = v.clone();
        }
        self.set(&format!("api-key:{hash}"), &row.to_string()).await;
        self.set(&format!("api-key:by-id:{id}"), &row.to_string()).await;
    }

    async fn me(&self, user: &TestUser) -> (StatusCode, Value) {
        self.app.get("/api/v1/users/me", user).await
    }

    async fn me_bearer(&self, user: &TestUser) -> StatusCode {
        let request = self
            .app
            .request(reqwest::Method::GET, "/api/v1/users/me")
            .bearer_auth(sign(&user.token));
        send(request).await.0
    }
}

fn assert_refused(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["error"]["code"], 401, "{what}: the error envelope, {body}");
}

/// Cookie and bearer answer from the Redis value; deleting the key (a
/// sign-out), the user's revoked-before mark (revokeSessions, ban) and a
/// banned user in the value are each refused on the very next request.
async fn sessions_are_read_from_secondary_storage_and_revoked_at_once(backend: Backend) {
    let Some(mut s) = spawn(backend, "secondary_sessions", &[], Options::default()).await else {
        return;
    };
    let (_, ada) = s.user("ada", None).await;
    let (status, body) = s.me(&ada).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], ada.id.as_str());
    assert_eq!(body["name"], "ada");
    assert_eq!(body["activeOrganizationId"], Value::Null);
    assert_eq!(
        s.me_bearer(&ada).await,
        StatusCode::OK,
        "the bearer plugin's signed token"
    );

    // Sign-out: better-auth deletes the key.
    let _: () = s.conn.del(format!("{}{}", s.prefix, ada.token)).await.unwrap();
    let (status, body) = s.me(&ada).await;
    assert_refused(status, &body, "a deleted key");

    // revokeSessions / banUser: the mark, later than the session's creation.
    let (bob_user, bob) = s.user("bob", None).await;
    let created = now() - chrono::Duration::minutes(5);
    s.store(&bob_user, &bob.token, created, None, false).await;
    assert_eq!(s.me(&bob).await.0, StatusCode::OK);
    let mark = (created + chrono::Duration::milliseconds(1))
        .timestamp_millis()
        .to_string();
    s.set(&format!("revoked-sessions-before-{}", bob.id), &mark).await;
    let (status, body) = s.me(&bob).await;
    assert_refused(status, &body, "created before the mark");
    // A session made after the mark (a new sign-in) works.
    let newer = generate_token();
    s.store(&bob_user, &newer, now(), None, false).await;
    let bob_again = TestUser {
        id: bob.id.clone(),
        cookie: format!("better-auth.session_token={}", sign(&newer)),
        token: newer,
    };
    assert_eq!(s.me(&bob_again).await.0, StatusCode::OK);

    // A banned user in the stored value.
    let (carol_user, carol) = s.user("carol", None).await;
    s.store(&carol_user, &carol.token, now(), None, true).await;
    let (status, body) = s.me(&carol).await;
    assert_refused(status, &body, "a banned user");
}

/// The session's `activeOrganizationId` chooses the scope; memberships stay
/// in the database.
async fn the_stored_active_organization_is_honoured(backend: Backend) {
    let Some(s) = spawn(
        backend,
        "secondary_active_organization",
        &[],
        Options {
            organization_plugin: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let org = format!("org-{}", uuid::Uuid::new_v4().simple());
    s.app.dev.insert_organization(&org, "Acme", &org, now()).await.unwrap();
    let (_, member) = s.user("member", Some(&org)).await;
    s.app
        .dev
        .insert_member(&org, &member.id, "member", now())
        .await
        .unwrap();
    let (status, body) = s.me(&member).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["activeOrganizationId"], org.as_str());
    let (status, created) = s.app.post("/api/v1/items", &member, json!({"name": "shared"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["organization_id"],
        org.as_str(),
        "created in the active organization"
    );

    let (_, outsider) = s.user("outsider", Some(&org)).await;
    let (status, body) = s.app.get("/api/v1/items", &outsider).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not a member: {body}");
}

/// Without `BETTER_AUTH_STORE_SESSION_IN_DATABASE`, better-auth ignores the
/// table, and so does this service: a row there revives nothing. With it, a
/// token Redis lacks is looked up in the table.
async fn the_session_table_is_read_only_when_better_auth_stores_sessions_there(backend: Backend) {
    for (store_in_database, expected) in [("false", StatusCode::UNAUTHORIZED), ("true", StatusCode::OK)] {
        let Some(s) = spawn(
            backend,
            "secondary_table_fallback",
            &[("BETTER_AUTH_STORE_SESSION_IN_DATABASE", store_in_database)],
            Options::default(),
        )
        .await
        else {
            return;
        };
        let table_only = s.app.signed_in_user("table-only").await;
        let (status, body) = s.me(&table_only).await;
        assert_eq!(status, expected, "store in database {store_in_database}: {body}");
        let (_, redis_only) = s.user("redis-only", None).await;
        assert_eq!(s.me(&redis_only).await.0, StatusCode::OK);
    }
}

/// API keys of `storage: "secondary-storage"`: accepted, disabled refused,
/// permissions applied, and `remaining` spent exactly once per success
/// across two instances.
async fn api_keys_in_secondary_storage(backend: Backend) {
    let Some(mut s) = spawn(backend, "secondary_api_keys", &[], Options::default()).await else {
        return;
    };
    let (_, owner) = s.user("key-owner", None).await;
    let plain = format!("ba_{}", generate_token());
    let disabled = format!("ba_{}", generate_token());
    let read_only = format!("ba_{}", generate_token());
    let limited = format!("ba_{}", generate_token());
    s.put_key(&owner.id, &plain, json!({})).await;
    s.put_key(&owner.id, &disabled, json!({"enabled": false})).await;
    s.put_key(&owner.id, &read_only, json!({"permissions": "{\"items\":[\"read\"]}"}))
        .await;
    s.put_key(&owner.id, &limited, json!({"remaining": 5})).await;
    let with_key = |raw: &str| {
        s.app
            .request(reqwest::Method::GET, "/api/v1/users/me")
            .header("x-api-key", raw.to_owned())
    };

    let (status, body) = send(with_key(&plain)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], owner.id.as_str());
    let (status, body) = send(with_key(&disabled)).await;
    assert_refused(status, &body, "a disabled key");
    let (status, body) = send(with_key("ba_unknown_key_0123456789")).await;
    assert_refused(status, &body, "an unknown key");
    let create = s
        .app
        .request(reqwest::Method::POST, "/api/v1/items")
        .header("x-api-key", read_only.clone())
        .json(&json!({"name": "nope"}));
    assert_eq!(
        send(create).await.0,
        StatusCode::FORBIDDEN,
        "read-only key may not create"
    );

    // 20 parallel requests on two instances for 5 uses: exactly 5 succeed.
    let other = second_instance(&s.app).await;
    let requests = (0..20).map(|i| {
        let (client, base) = if i % 2 == 0 {
            (s.app.client.clone(), s.app.address.clone())
        } else {
            (other.client.clone(), other.address.clone())
        };
        let key = limited.clone();
        async move {
            client
                .get(format!("{base}/api/v1/users/me"))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let exhausted = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((ok, exhausted), (5, 15), "{statuses:?}");
    let hash = domain::auth::api_key::hash(&limited);
    let stored: String = s.conn.get(format!("{}api-key:{hash}", s.prefix)).await.unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["remaining"], 0, "better-auth reads what was spent: {stored}");
    assert_eq!(stored["referenceId"], owner.id.as_str(), "the rest of the row is kept");
}

/// Whatever sits under a session key, a 401 with the envelope: never a 500,
/// and a 10 MB value is refused without being read.
async fn unreadable_values_are_refused_never_a_500(backend: Backend) {
    let Some(mut s) = spawn(backend, "secondary_bad_values", &[], Options::default()).await else {
        return;
    };
    let (user, victim) = s.user("victim", None).await;
    let good = DevSecondarySession {
        user: &user,
        token: &victim.token,
        created_at: now(),
        expires_at: now() + chrono::Duration::hours(1),
        active_organization_id: None,
        banned: false,
    }
    .value();
    let mut without_user: Value = serde_json::from_str(&good).unwrap();
    without_user.as_object_mut().unwrap().remove("user");
    let huge = format!("{{\"session\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    for (what, value) in [
        ("garbage", "garbage".to_owned()),
        ("a value without its user", without_user.to_string()),
        ("a 10 MB value", huge),
        ("JSON of another shape", "[1,2,3]".to_owned()),
    ] {
        s.set(&victim.token, &value).await;
        let started = std::time::Instant::now();
        let (status, body) = s.me(&victim).await;
        assert_refused(status, &body, what);
        assert!(started.elapsed() < Duration::from_secs(2), "{what} answered at once");
    }
    // A hash where a string belongs.
    let key = format!("{}{}", s.prefix, victim.token);
    let _: () = s.conn.del(&key).await.unwrap();
    let _: () = s.conn.hset(&key, "f", "v").await.unwrap();
    let (status, body) = s.me(&victim).await;
    assert_refused(status, &body, "a hash under the key");
    // A good value with a mark that is not a timestamp.
    let _: () = s.conn.del(&key).await.unwrap();
    s.set(&victim.token, &good).await;
    assert_eq!(s.me(&victim).await.0, StatusCode::OK);
    s.set(&format!("revoked-sessions-before-{}", victim.id), "not-json{")
        .await;
    let (status, body) = s.me(&victim).await;
    assert_refused(status, &body, "an unreadable revoked-before mark");
}

on_every_backend!(
    sessions_are_read_from_secondary_storage_and_revoked_at_once,
    the_stored_active_organization_is_honoured,
    the_session_table_is_read_only_when_better_auth_stores_sessions_there,
    api_keys_in_secondary_storage,
    unreadable_values_are_refused_never_a_500,
    a_warm_cache_never_outlives_a_revocation,
);

/// A deployment whose database has no `session` table at all starts, and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_a_session_table_is_served() {
    let Some(s) = spawn(
        Backend::Postgres(NamingStyle::SnakeCase),
        "secondary_no_session_table",
        &[],
        Options {
            session_table: false,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, user) = s.user("tableless", None).await;
    let (status, body) = s.me(&user).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The secondary Redis down: requests that need a session are 503 with the
/// envelope (never a stale acceptance), `/health` names it, readiness stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_storage_down_is_503_and_named_by_health() {
    let Some(mut redis) = OwnRedis::start("secondary_storage_down") else {
        return;
    };
    let prefix = "better-auth:";
    let url = redis.url();
    let Some(app) = spawn_app_with(
        Backend::Postgres(NamingStyle::CamelCase),
        "secondary_storage_down",
        Options {
            extra: vec![("BETTER_AUTH_SECONDARY_STORAGE_URL".into(), url.clone())],
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let client = RedisClient::new(&url, "", Duration::from_secs(2)).unwrap();
    let signed = app
        .user_in_secondary_storage(&dev_user("outage"), &client, prefix)
        .await;
    assert_eq!(app.get("/api/v1/users/me", &signed).await.0, StatusCode::OK);
    let (status, body) = send(app.request(reqwest::Method::GET, "/health")).await;
    assert_eq!((status, &body["session_storage"]), (StatusCode::OK, &json!("ok")));

    redis.stop();
    for _ in 0..3 {
        let (status, body) = app.get("/api/v1/users/me", &signed).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], 503, "{body}");
    }
    let (status, body) = send(app.request(reqwest::Method::GET, "/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["session_storage"], "error", "{body}");
    let (status, _) = send(app.request(reqwest::Method::GET, "/health/ready")).await;
    assert_eq!(status, StatusCode::OK, "the database answers: still ready");

    redis.restart().unwrap();
    // Redis keeps nothing here: the session is gone with it, but the answer is honest again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = app.get("/api/v1/users/me", &signed).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status} after Redis returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The metric line `name{labels} value` (or `name value`) as a number, 0 when absent.
async fn series(app: &TestApp, line_prefix: &str) -> f64 {
    let response = app.request(reqwest::Method::GET, "/metrics").send().await.unwrap();
    let text = response.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// With Redis' tracking up, a session is served from memory for up to a
/// second — and still refused on the very next request after better-auth
/// deletes its key or sets its user's mark, 50 times in a row each.
async fn a_warm_cache_never_outlives_a_revocation(backend: Backend) {
    let Some(mut s) = spawn(backend, "secondary_tracking", &[], Options::default()).await else {
        return;
    };
    let started = std::time::Instant::now();
    while s.app.gauge("session_storage_tracking_up").await != 1 {
        assert!(started.elapsed() < Duration::from_secs(5), "tracking comes up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hits = "session_cache_lookups_total{outcome=\"hit\"} ";
    let (user, _) = s.user("tracked", None).await;
    let before = series(&s.app, hits).await;
    for round in 0..50 {
        let token = generate_token();
        s.store(&user, &token, now(), None, false).await;
        let signed = TestUser {
            id: user.id.clone(),
            cookie: format!("better-auth.session_token={}", sign(&token)),
            token: token.clone(),
        };
        for _ in 0..3 {
            assert_eq!(s.me(&signed).await.0, StatusCode::OK, "round {round}");
        }
        let _: () = s.conn.del(format!("{}{token}", s.prefix)).await.unwrap();
        let (status, body) = s.me(&signed).await;
        assert_refused(status, &body, &format!("round {round}: signed out with a warm cache"));
    }
    assert!(
        series(&s.app, hits).await - before >= 50.0,
        "the cache answered the warm requests"
    );
    for round in 0..50 {
        let (other_user, other) = s.user("marked", None).await;
        let created = now() - chrono::Duration::seconds(5);
        s.store(&other_user, &other.token, created, None, false).await;
        for _ in 0..3 {
            assert_eq!(s.me(&other).await.0, StatusCode::OK);
        }
        let mark = now().timestamp_millis().to_string();
        s.set(&format!("revoked-sessions-before-{}", other.id), &mark).await;
        let (status, body) = s.me(&other).await;
        assert_refused(
            status,
            &body,
            &format!("round {round}: revoked in bulk with a warm cache"),
        );
    }
}
