//! Interop with the real better-auth 1.7.25 configured with `secondaryStorage`
//! (`@better-auth/redis-storage` 1.7.5, pinned in `tests/interop`): sessions
//! only in Redis (no `session` table at all), API keys with the api-key
//! plugin's `storage: "secondary-storage"`. Every revocation better-auth makes
//! there is honoured on the very next request: nothing is cached in front.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, Options, SECRET, ScratchDb, node_json, send, services, settings_map};
use crate::interop::{INTEROP_DIR, interop_ready};

fn run(database_url: &str, prefix: &str, args: &[&str]) -> Value {
    let redis = services().redis.clone().expect("Redis for the interop test");
    node_json(
        INTEROP_DIR,
        "secondary.mjs",
        args,
        &[
            ("DATABASE_URL", database_url),
            ("BETTER_AUTH_SECRET", SECRET),
            ("REDIS_URL", &redis),
            ("SECONDARY_PREFIX", prefix),
        ],
    )
}

/// This service beside that better-auth: the `/api/v1` base URL and a handle.
async fn serve(database_url: &str, prefix: &str, extra: &[(&str, &str)]) -> (String, actix_web::dev::ServerHandle) {
    let redis = services().redis.clone().expect("Redis for the interop test");
    let mut vars = vec![
        ("BETTER_AUTH_SECONDARY_STORAGE_URL".to_owned(), redis.clone()),
        ("BETTER_AUTH_SECONDARY_STORAGE_PREFIX".to_owned(), prefix.to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let options = Options {
        extra: vars,
        ..Options::default()
    };
    let own = format!("interop:{}:", uuid::Uuid::new_v4().simple());
    let vars = settings_map(database_url, &options, Some(&redis), &own);
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let server = api::Application::build(settings)
        .await
        .expect("serves beside a better-auth that keeps sessions in Redis");
    let base = format!("http://127.0.0.1:{}/api/v1", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    (base, handle)
}

fn scratch_prefix() -> String {
    format!("better-auth-interop:{}:", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_better_auth_with_redis_storage_sessions_organizations_and_api_keys() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "secondary_interop",
    )
    .await
    else {
        return;
    };
    let prefix = scratch_prefix();
    let made = run(&scratch.url, &prefix, &["setup"]);
    let (base, handle) = serve(&scratch.url, &prefix, &[]).await;
    let (other, other_handle) = serve(&scratch.url, &prefix, &[]).await;
    let client = reqwest::Client::new();
    let user = |name: &str, field: &str| made["users"][name][field].as_str().unwrap().to_owned();
    let me = |cookie: &str| {
        client
            .get(format!("{base}/users/me"))
            .header("Cookie", cookie.to_owned())
    };

    // Cookie and bearer (the bearer plugin's set-auth-token).
    let (status, body) = send(me(&user("alice", "cookie"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], user("alice", "id"));
    assert_eq!(body["email"], "alice@example.com");
    let bearer = client
        .get(format!("{base}/users/me"))
        .bearer_auth(user("alice", "bearer"));
    assert_eq!(send(bearer).await.0, StatusCode::OK);

    // createOrganization made it the member's active one; setActiveOrganization is seen at once.
    let organization = made["organizationId"].as_str().unwrap();
    let member = user("member", "cookie");
    let (status, body) = send(me(&member)).await;
    assert_eq!(
        (status, &body["activeOrganizationId"]),
        (StatusCode::OK, &Value::from(organization))
    );
    let (status, body) = send(
        client
            .post(format!("{base}/items"))
            .bearer_auth(user("member", "bearer"))
            .json(&serde_json::json!({"name": "in the organization"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["organization_id"], organization);
    assert_eq!(
        run(&scratch.url, &prefix, &["set-active", &member, "none"])["status"],
        200
    );
    assert_eq!(send(me(&member)).await.1["activeOrganizationId"], Value::Null);
    assert_eq!(
        run(&scratch.url, &prefix, &["set-active", &member, organization])["status"],
        200
    );
    assert_eq!(send(me(&member)).await.1["activeOrganizationId"], organization);

    // API keys kept in secondary storage.
    let key = |name: &str| made["keys"][name]["key"].as_str().unwrap().to_owned();
    let with_key = |base: &str, raw: String| client.get(format!("{base}/users/me")).header("x-api-key", raw);
    let (status, body) = send(with_key(&base, key("plain"))).await;
    assert_eq!(
        (status, &body["id"]),
        (StatusCode::OK, &Value::from(user("alice", "id"))),
        "{body}"
    );
    assert_eq!(send(with_key(&base, key("disabled"))).await.0, StatusCode::UNAUTHORIZED);
    let create = client
        .post(format!("{base}/items"))
        .header("x-api-key", key("readOnly"))
        .json(&serde_json::json!({"name": "refused"}));
    assert_eq!(send(create).await.0, StatusCode::FORBIDDEN);
    assert_eq!(send(with_key(&base, key("readOnly"))).await.0, StatusCode::OK);
    // remaining 5, 20 parallel requests on two instances: exactly 5 succeed.
    let racing = (0..20).map(|i| {
        let target = if i % 2 == 0 { base.clone() } else { other.clone() };
        let request = with_key(&target, key("limited"));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = futures_util::future::join_all(racing).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let spent = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((ok, spent), (5, 15), "{statuses:?}");
    // better-auth disables a key: refused on the next request.
    let disabled = run(
        &scratch.url,
        &prefix,
        &[
            "disable-key",
            made["keys"]["plain"]["id"].as_str().unwrap(),
            &user("alice", "id"),
        ],
    );
    assert_eq!(disabled["status"], 200, "{disabled}");
    assert_eq!(send(with_key(&other, key("plain"))).await.0, StatusCode::UNAUTHORIZED);

    // signOut, revokeSessions, banUser: each refused on the next request, on both instances.
    let alice = user("alice", "cookie");
    assert_eq!(run(&scratch.url, &prefix, &["signout", &alice])["status"], 200);
    for target in [&base, &other] {
        let request = client.get(format!("{target}/users/me")).header("Cookie", alice.clone());
        assert_eq!(
            send(request).await.0,
            StatusCode::UNAUTHORIZED,
            "signed out, on {target}"
        );
    }
    let (revoker, second) = (user("revoker", "cookie"), user("revoker", "second"));
    assert_eq!(send(me(&second)).await.0, StatusCode::OK);
    assert_eq!(
        run(&scratch.url, &prefix, &["revoke-sessions", &revoker])["status"],
        200
    );
    assert_eq!(send(me(&revoker)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(me(&second)).await.0,
        StatusCode::UNAUTHORIZED,
        "every session of the user"
    );
    let banned = user("banned", "cookie");
    assert_eq!(send(me(&banned)).await.0, StatusCode::OK);
    let ban = run(
        &scratch.url,
        &prefix,
        &["ban", &user("admin", "cookie"), &user("banned", "id")],
    );
    assert_eq!(ban["status"], 200, "{ban}");
    let (status, body) = send(me(&banned)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], 401);
    handle.stop(false).await;
    other_handle.stop(false).await;
}

/// A session only the `session` table holds (made by a better-auth without
/// secondary storage) is refused unless `BETTER_AUTH_STORE_SESSION_IN_DATABASE`
/// says better-auth stores sessions there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_only_the_table_holds_counts_only_when_better_auth_stores_sessions_there() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "secondary_interop_table",
    )
    .await
    else {
        return;
    };
    let prefix = scratch_prefix();
    let made = run(&scratch.url, &prefix, &["signup-database-only", "tabled"]);
    let cookie = made["cookie"].as_str().unwrap().to_owned();
    for (setting, expected) in [("false", StatusCode::UNAUTHORIZED), ("true", StatusCode::OK)] {
        let (base, handle) = serve(
            &scratch.url,
            &prefix,
            &[("BETTER_AUTH_STORE_SESSION_IN_DATABASE", setting)],
        )
        .await;
        let request = reqwest::Client::new()
            .get(format!("{base}/users/me"))
            .header("Cookie", cookie.clone());
        let (status, body) = send(request).await;
        assert_eq!(
            status, expected,
            "BETTER_AUTH_STORE_SESSION_IN_DATABASE={setting}: {body}"
        );
        handle.stop(false).await;
    }
}
