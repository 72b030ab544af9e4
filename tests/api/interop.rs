//! Interop with the real `better-auth` npm package (pinned in
//! `tests/interop/package.json`): a session it creates is accepted, and once
//! it signs the session out the same cookie is refused within the cache TTL;
//! its organization plugin's organizations, members, roles and active
//! organization choose the scope of requests here.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::ConnectionTrait as _;
use serde_json::Value;

use crate::helpers::{Backend, Options, SECRET, ScratchDb, node_json, send, services, settings_map};

pub(crate) const INTEROP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop");

fn node(database_url: &str, args: &[&str]) -> Value {
    node_with(database_url, args, &[])
}

fn node_with(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    script(database_url, "mint.mjs", args, env)
}

fn script(database_url: &str, file: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = vec![("DATABASE_URL", database_url), ("BETTER_AUTH_SECRET", SECRET)];
    all.extend_from_slice(env);
    node_json(INTEROP_DIR, file, args, &all)
}

pub(crate) fn interop_ready() -> bool {
    let installed = Path::new(INTEROP_DIR)
        .join("node_modules/better-auth/package.json")
        .exists();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        assert!(node, "CI=true but `node` is not available");
        assert!(
            installed,
            "CI=true but better-auth is not installed: run `npm ci` in tests/interop"
        );
    }
    if !(node && installed) {
        eprintln!("SKIPPED better-auth interop: needs node and `npm ci` in tests/interop");
    }
    node && installed
}

/// This service on better-auth's database, with a 1 s session and membership
/// cache: the `/api/v1` base URL and a handle to stop it.
async fn serve_with_short_cache(database_url: &str) -> (String, actix_web::dev::ServerHandle) {
    serve_with_cache_ttl(database_url, 1).await
}

/// This service on better-auth's database, its caches keeping answers `ttl_secs`.
async fn serve_with_cache_ttl(database_url: &str, ttl_secs: u64) -> (String, actix_web::dev::ServerHandle) {
    let options = Options {
        session_cache_ttl_secs: ttl_secs,
        ..Options::default()
    };
    let prefix = format!("interop:{}:", uuid::Uuid::new_v4().simple());
    let vars = settings_map(database_url, &options, services().redis.as_deref(), &prefix);
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let server = api::Application::build(settings)
        .await
        .expect("server starts on the schema better-auth made");
    let base = format!("http://127.0.0.1:{}/api/v1", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    (base, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_minted_by_real_better_auth_authenticates_until_it_signs_out() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) =
        ScratchDb::create(Backend::Postgres(infra::better_auth::NamingStyle::CamelCase), "interop").await
    else {
        return;
    };
    // better-auth migrates its own tables and signs a user up.
    let minted = node(&scratch.url, &["signup", "interop@example.com"]);
    let cookie = minted["cookie"].as_str().unwrap().to_owned();
    let user_id = minted["userId"].as_str().unwrap();

    let (base, handle) = serve_with_short_cache(&scratch.url).await;
    let url = format!("{base}/users/me");
    let client = reqwest::Client::new();

    let (status, body) = send(client.get(&url).header("Cookie", &cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], user_id);
    assert_eq!(body["email"], "interop@example.com");
    assert_eq!(body["name"], "Interop User");

    let signed_out = node(&scratch.url, &["signout", &cookie]);
    assert_eq!(signed_out["status"], 200, "{signed_out}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = send(client.get(&url).header("Cookie", &cookie)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a signed-out session is refused once the cache TTL has passed"
    );
    handle.stop(false).await;
}

/// With a five-minute cache, better-auth's own sign-out is honoured within a
/// second anyway: its DELETE fires the trigger this service installed on its
/// `session` table, and the notification drops the cached session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_by_real_better_auth_is_honoured_within_a_second_despite_a_long_cache() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "interop_instant_sign_out",
    )
    .await
    else {
        return;
    };
    let minted = node(&scratch.url, &["signup", "instant@example.com"]);
    let cookie = minted["cookie"].as_str().unwrap().to_owned();
    let (base, handle) = serve_with_cache_ttl(&scratch.url, 300).await;
    let client = reqwest::Client::new();
    let health = base.replace("/api/v1", "/health");
    let started = std::time::Instant::now();
    while send(client.get(&health)).await.1["auth_changes"] != "listening" {
        assert!(started.elapsed() < Duration::from_secs(5), "the listener listens");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the listener's start-up distrust, so the next answers come from the cache.
    tokio::time::sleep(domain::revocation::SKEW + Duration::from_millis(100)).await;
    let url = format!("{base}/users/me");
    for _ in 0..3 {
        assert_eq!(send(client.get(&url).header("Cookie", &cookie)).await.0, StatusCode::OK);
    }
    let signed_out = node(&scratch.url, &["signout", &cookie]);
    assert_eq!(signed_out["status"], 200, "{signed_out}");
    let returned = std::time::Instant::now();
    loop {
        let (status, _) = send(client.get(&url).header("Cookie", &cookie)).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            returned.elapsed() < Duration::from_secs(1),
            "still {status} {:?} after better-auth's sign-out returned",
            returned.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop(false).await;
}

/// Polls `request` on every base until it answers `expected`: fails past a
/// second after `returned` (when better-auth's call returned).
async fn refused_within_a_second(
    what: &str,
    bases: &[String],
    returned: std::time::Instant,
    expected: StatusCode,
    request: impl Fn(&str) -> reqwest::RequestBuilder,
) {
    for base in bases {
        loop {
            let (status, body) = send(request(base)).await;
            if status == expected {
                break;
            }
            assert!(
                returned.elapsed() < Duration::from_secs(1),
                "{what}: {base} still answers {status} {body} {:?} after better-auth returned",
                returned.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// better-auth's own APIs — the admin plugin's banUser, revokeSessions, and
/// the organization plugin's removeMember, updateMemberRole and
/// deleteOrganization — are each honoured within a second on two instances
/// whose caches keep answers 300 s and were warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn better_auths_revocations_are_honoured_within_a_second_on_two_instances() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "interop_revocations",
    )
    .await
    else {
        return;
    };
    let setup = script(&scratch.url, "revoke.mjs", &["setup"], &[]);
    let org = setup["organizationId"].as_str().unwrap().to_owned();
    let user = |name: &str, field: &str| setup["users"][name][field].as_str().unwrap().to_owned();
    let (one, first) = serve_with_cache_ttl(&scratch.url, 300).await;
    let (two, second) = serve_with_cache_ttl(&scratch.url, 300).await;
    let bases = vec![one, two];
    let http = reqwest::Client::new();
    let client = &http;
    for base in &bases {
        let health = base.replace("/api/v1", "/health");
        let started = std::time::Instant::now();
        while send(client.get(&health)).await.1["auth_changes"] != "listening" {
            assert!(started.elapsed() < Duration::from_secs(5), "{base} listens");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(domain::revocation::SKEW + Duration::from_millis(100)).await;

    let me = |cookie: String| move |base: &str| client.get(format!("{base}/users/me")).header("Cookie", cookie.clone());
    let in_org = |cookie: String, method: reqwest::Method, path: String| {
        let org = org.clone();
        move |base: &str| {
            let mut request = client
                .request(method.clone(), format!("{base}{path}"))
                .header("Cookie", cookie.clone())
                .header("X-Organization-Id", org.clone());
            if method != reqwest::Method::GET {
                request = request.json(&serde_json::json!({"name": "renamed"}));
            }
            request
        }
    };
    let (_, item) = send(in_org(user("admin", "cookie"), reqwest::Method::POST, "/items".into())(
        &bases[0],
    ))
    .await;
    let item = format!("/items/{}", item["id"].as_str().unwrap());
    // Every answer below is cached on both instances first.
    type Request<'a> = Box<dyn Fn(&str) -> reqwest::RequestBuilder + 'a>;
    let warm: Vec<Request<'_>> = vec![
        Box::new(me(user("banned", "cookie"))),
        Box::new(me(user("revoker", "cookie"))),
        Box::new(me(user("revoker", "second"))),
        Box::new(in_org(user("leaver", "cookie"), reqwest::Method::GET, "/items".into())),
        Box::new(in_org(user("demoted", "cookie"), reqwest::Method::PATCH, item.clone())),
        Box::new(in_org(user("admin", "cookie"), reqwest::Method::GET, "/items".into())),
    ];
    for request in &warm {
        for base in &bases {
            for _ in 0..2 {
                assert_eq!(send(request(base)).await.0, StatusCode::OK, "{base}");
            }
        }
    }
    let admin = user("admin", "cookie");
    let run = |args: &[&str]| {
        let done = script(&scratch.url, "revoke.mjs", args, &[]);
        assert_eq!(done["status"], 200, "{args:?}: {done}");
        std::time::Instant::now()
    };

    let returned = run(&["ban", &admin, &user("banned", "id")]);
    refused_within_a_second(
        "banUser",
        &bases,
        returned,
        StatusCode::UNAUTHORIZED,
        me(user("banned", "cookie")),
    )
    .await;

    let returned = run(&["revoke-sessions", &user("revoker", "cookie")]);
    for cookie in [user("revoker", "cookie"), user("revoker", "second")] {
        refused_within_a_second("revokeSessions", &bases, returned, StatusCode::UNAUTHORIZED, me(cookie)).await;
    }

    let returned = run(&["remove-member", &admin, &org, "leaver@example.com"]);
    let leaver = in_org(user("leaver", "cookie"), reqwest::Method::GET, "/items".into());
    refused_within_a_second("removeMember", &bases, returned, StatusCode::FORBIDDEN, leaver).await;

    let returned = run(&["set-role", &admin, &org, &user("demoted", "memberId"), "member"]);
    let demoted = in_org(user("demoted", "cookie"), reqwest::Method::PATCH, item.clone());
    refused_within_a_second("updateMemberRole", &bases, returned, StatusCode::FORBIDDEN, demoted).await;

    let returned = run(&["delete-organization", &admin, &org]);
    let create = in_org(admin.clone(), reqwest::Method::POST, "/items".into());
    refused_within_a_second(
        "deleteOrganization (create)",
        &bases,
        returned,
        StatusCode::FORBIDDEN,
        create,
    )
    .await;
    first.stop(false).await;
    second.stop(false).await;
}

/// better-auth set up with `advanced.database.generateId: "uuid"` makes
/// `uuid` id columns; the items migration follows (`owner_id uuid` with its
/// foreign key and cascade) and every item operation works on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uuid_schema_made_by_real_better_auth_serves_items_and_cascades() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "interop_uuid",
    )
    .await
    else {
        return;
    };
    let minted = node_with(
        &scratch.url,
        &["signup", "uuid@example.com"],
        &[("BETTER_AUTH_ID", "uuid")],
    );
    let cookie = minted["cookie"].as_str().unwrap().to_owned();
    let user_id = minted["userId"].as_str().unwrap().to_owned();
    assert!(
        uuid::Uuid::parse_str(&user_id).is_ok(),
        "better-auth made a uuid id: {user_id}"
    );

    let prefix = format!("interop:{}:", uuid::Uuid::new_v4().simple());
    let vars = settings_map(&scratch.url, &Options::default(), services().redis.as_deref(), &prefix);
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let server = api::Application::build(settings)
        .await
        .expect("starts and migrates on a uuid schema");
    let base = format!("http://127.0.0.1:{}/api/v1", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    let client = reqwest::Client::new();
    let with_cookie = |request: reqwest::RequestBuilder| request.header("Cookie", &cookie);

    let (status, created) =
        send(with_cookie(client.post(format!("{base}/items"))).json(&serde_json::json!({"name": "uuid-owned"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["owner_id"], user_id.as_str());
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, listed) = send(with_cookie(client.get(format!("{base}/items")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["owner_id"], user_id.as_str());
    let (status, patched) =
        send(with_cookie(client.patch(format!("{base}/items/{id}"))).json(&serde_json::json!({"is_active": false})))
            .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["is_active"], false);
    let (status, _) = send(with_cookie(client.get(format!("{base}/items/{id}")))).await;
    assert_eq!(status, StatusCode::OK);

    let db = infra::Db::connect(&scratch.url, &infra::db::DbOptions::default())
        .await
        .unwrap();
    let column_type = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .conn()
                .query_one_raw(sea_orm::Statement::from_string(db.backend(), sql))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<String>("", "t").unwrap()
        }
    };
    assert_eq!(
        column_type(
            "SELECT data_type::text AS t FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'owner_id'"
        )
        .await,
        "uuid"
    );
    let second =
        send(with_cookie(client.post(format!("{base}/items"))).json(&serde_json::json!({"name": "two"}))).await;
    assert_eq!(second.0, StatusCode::CREATED);
    db.conn()
        .execute_raw(sea_orm::Statement::from_string(
            db.backend(),
            format!("DELETE FROM \"user\" WHERE id = '{user_id}'"),
        ))
        .await
        .unwrap();
    let remaining = db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            db.backend(),
            "SELECT COUNT(*)::int AS n FROM items",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i32>("", "n")
        .unwrap();
    assert_eq!(remaining, 0, "deleting the better-auth user cascades to its items");
    db.close().await;
    handle.stop(false).await;
}

/// The organization plugin of the real package: it creates the organization
/// (its creator the owner, the organization their active one), adds a
/// member, an admin and a member who will leave, switches their active
/// organization, and removes the leaver; this service follows each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_better_auth_organizations_choose_the_scope_and_the_roles() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "interop_org",
    )
    .await
    else {
        return;
    };
    let setup = script(&scratch.url, "organization.mjs", &["setup"], &[]);
    let org = setup["organizationId"].as_str().unwrap().to_owned();
    let cookie = |name: &str| setup["users"][name]["cookie"].as_str().unwrap().to_owned();

    let (base, handle) = serve_with_short_cache(&scratch.url).await;
    let client = reqwest::Client::new();
    let get = |who: &str, path: &str, scope: Option<&str>| {
        let mut request = client.get(format!("{base}{path}")).header("Cookie", cookie(who));
        if let Some(scope) = scope {
            request = request.header("X-Organization-Id", scope);
        }
        send(request)
    };

    // The owner's active organization (set by createOrganization) is the scope.
    let (_, me) = get("owner", "/users/me", None).await;
    assert_eq!(me["activeOrganizationId"], org.as_str());
    let (status, created) = send(
        client
            .post(format!("{base}/items"))
            .header("Cookie", cookie("owner"))
            .json(&serde_json::json!({"name": "owned by acme"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["organization_id"], org.as_str());
    let item = created["id"].as_str().unwrap().to_owned();

    // The member switched with setActiveOrganization: reads every item, may not change the owner's.
    let (status, listed) = get("member", "/items", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed[0]["id"], item.as_str());
    let patch = |who: &str| {
        send(
            client
                .patch(format!("{base}/items/{item}"))
                .header("Cookie", cookie(who))
                .header("X-Organization-Id", &org)
                .json(&serde_json::json!({"name": "renamed"})),
        )
    };
    assert_eq!(patch("member").await.0, StatusCode::FORBIDDEN);
    // The admin never set an active organization: personal by default, the header chooses.
    let (status, personal) = get("admin", "/items", None).await;
    assert_eq!((status, personal), (StatusCode::OK, serde_json::json!([])));
    assert_eq!(patch("admin").await.0, StatusCode::OK);
    let (_, orgs) = get("admin", "/organizations", None).await;
    assert_eq!(orgs[0]["id"], org.as_str());
    assert_eq!(orgs[0]["role"], "admin");
    assert_eq!(orgs[0]["slug"], "acme-interop");

    // better-auth removes the leaver; their session keeps the active organization, and is refused.
    assert_eq!(get("leaver", "/items", None).await.0, StatusCode::OK);
    let removed = script(
        &scratch.url,
        "organization.mjs",
        &["remove", &cookie("owner"), &org, "leaver@example.com"],
        &[],
    );
    assert_eq!(removed["status"], 200, "{removed}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = get("leaver", "/items", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["message"], "not a member of this organization");
    assert_eq!(get("leaver", "/items", Some(&org)).await.0, StatusCode::FORBIDDEN);
    handle.stop(false).await;
}

/// The jwt and api-key plugins of the real packages, with better-auth's key
/// algorithm `alg`: what they issue is accepted, and every refusal holds.
async fn credentials_of_real_better_auth(alg: &str) {
    if !interop_ready() {
        return;
    }
    let test = format!("interop_credentials_{}", alg.to_lowercase());
    let Some(scratch) = ScratchDb::create(Backend::Postgres(infra::better_auth::NamingStyle::CamelCase), &test).await
    else {
        return;
    };
    let issued = script(&scratch.url, "credentials.mjs", &["setup", alg], &[]);
    let (base, handle) = serve_with_short_cache(&scratch.url).await;
    let client = reqwest::Client::new();
    let bearer = |token: &str, path: &str| {
        send(
            client
                .get(format!("{base}{path}"))
                .header("Authorization", format!("Bearer {token}")),
        )
    };
    let jwt = issued["jwt"].as_str().unwrap();
    let (status, me) = bearer(jwt, "/users/me").await;
    assert_eq!(status, StatusCode::OK, "{alg}: {me}");
    assert_eq!(me["id"], issued["userId"]);
    assert_eq!(me["email"], "keys@example.com");
    assert_eq!(bearer(jwt, "/items").await.0, StatusCode::OK);
    assert_eq!(
        bearer(issued["expiredJwt"].as_str().unwrap(), "/users/me").await.0,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    // Same header and signature, another payload: the signature no longer holds.
    let (head, rest) = jwt.split_once('.').unwrap();
    let signature = rest.rsplit_once('.').unwrap().1;
    let claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::json!({"sub": "someone-else", "iss": "http://localhost:3000", "aud": "http://localhost:3000", "exp": 4_102_444_800u64}).to_string(),
    );
    assert_eq!(
        bearer(&format!("{head}.{claims}.{signature}"), "/users/me").await.0,
        StatusCode::UNAUTHORIZED,
        "payload swapped"
    );
    let none = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        r#"{"alg":"none","typ":"JWT"}"#,
    );
    assert_eq!(
        bearer(&format!("{none}.{claims}.c2ln"), "/users/me").await.0,
        StatusCode::UNAUTHORIZED,
        "alg none"
    );
    if alg == "EdDSA" {
        // A JWT that another better-auth (another key) issued.
        let Some(other) = ScratchDb::create(
            Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
            "interop_other_issuer",
        )
        .await
        else {
            return;
        };
        let foreign = script(&other.url, "credentials.mjs", &["setup", alg], &[]);
        assert_eq!(
            bearer(foreign["jwt"].as_str().unwrap(), "/users/me").await.0,
            StatusCode::UNAUTHORIZED,
            "signed by another key"
        );
        // A JWT chooses a scope with X-Organization-Id too (no plugin here: 403).
        let (status, body) = send(
            client
                .get(format!("{base}/items"))
                .header("Authorization", format!("Bearer {jwt}"))
                .header("X-Organization-Id", "acme"),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_of_real_better_auth_with_eddsa_are_accepted_and_forgeries_refused() {
    credentials_of_real_better_auth("EdDSA").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_of_real_better_auth_with_es256_rs256_ps256_and_es512_are_accepted() {
    for alg in ["ES256", "RS256", "PS256", "ES512"] {
        credentials_of_real_better_auth(alg).await;
    }
}

/// API keys made by the real `@better-auth/api-key`, a JWKS served over
/// HTTP, and keys past their grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_of_real_better_auth_and_jwks_url_and_retired_keys() {
    if !interop_ready() {
        return;
    }
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "interop_api_keys",
    )
    .await
    else {
        return;
    };
    let issued = script(&scratch.url, "credentials.mjs", &["setup", "EdDSA"], &[]);
    let key = |name: &str| issued["keys"][name].as_str().unwrap().to_owned();
    let (base, handle) = serve_with_short_cache(&scratch.url).await;
    let client = reqwest::Client::new();
    let with_key = |raw: String, method: reqwest::Method, path: &str| {
        let mut request = client
            .request(method.clone(), format!("{base}{path}"))
            .header("x-api-key", raw);
        if method == reqwest::Method::POST {
            request = request.json(&serde_json::json!({"name": "made with a key"}));
        }
        request.send()
    };
    let get = reqwest::Method::GET;

    let me = with_key(key("plain"), get.clone(), "/users/me").await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], issued["userId"]);
    assert_eq!(
        with_key(key("plain"), reqwest::Method::POST, "/items")
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED,
        "null permissions: the user's full rights"
    );
    assert_eq!(
        with_key(key("disabled"), get.clone(), "/users/me")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_key("not-a-key-anyone-made".into(), get.clone(), "/users/me")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Permissions {"items":["read"]}: reads, nothing else; /users/me needs none.
    assert_eq!(
        with_key(key("readOnly"), get.clone(), "/items").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        with_key(key("readOnly"), get.clone(), "/users/me")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let refused = with_key(key("readOnly"), reqwest::Method::POST, "/items")
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Rate limit 2 per minute: the third is 429 with Retry-After.
    for _ in 0..2 {
        assert_eq!(
            with_key(key("rated"), get.clone(), "/users/me").await.unwrap().status(),
            StatusCode::OK
        );
    }
    let limited = with_key(key("rated"), get.clone(), "/users/me").await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(limited.headers()["ratelimit-limit"], "2");

    // remaining 3, 20 concurrent requests over two instances: exactly 3 pass.
    let (second_base, second) = serve_with_short_cache(&scratch.url).await;
    let requests = (0..20).map(|i| {
        let url = if i % 2 == 0 { &base } else { &second_base };
        client
            .get(format!("{url}/users/me"))
            .header("x-api-key", key("limited"))
            .send()
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(),
        17,
        "{statuses:?}"
    );
    let exhausted = with_key(key("limited"), get.clone(), "/users/me").await.unwrap();
    let body: Value = exhausted.json().await.unwrap();
    assert_eq!(body["error"]["message"], "usage exceeded");
    second.stop(false).await;
    handle.stop(false).await;

    // The same keys served as a JWKS (JWKS_URL) instead of read from the table.
    let db = infra::Db::connect(&scratch.url, &infra::db::DbOptions::default())
        .await
        .unwrap();
    let rows = db
        .conn()
        .query_all_raw(sea_orm::Statement::from_string(
            db.backend(),
            r#"SELECT id, "publicKey" AS pk, alg FROM jwks"#,
        ))
        .await
        .unwrap();
    let keys: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut jwk: Value = serde_json::from_str(&row.try_get::<String>("", "pk").unwrap()).unwrap();
            jwk["kid"] = Value::from(row.try_get::<String>("", "id").unwrap());
            jwk["alg"] = Value::from(
                row.try_get::<Option<String>>("", "alg")
                    .unwrap()
                    .unwrap_or("EdDSA".into()),
            );
            jwk
        })
        .collect();
    let jwks = serde_json::json!({ "keys": keys }).to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let jwks_url = format!(
        "http://127.0.0.1:{}/api/auth/jwks",
        listener.local_addr().unwrap().port()
    );
    let jwks_server = actix_web::HttpServer::new(move || {
        let body = jwks.clone();
        actix_web::App::new().route(
            "/api/auth/jwks",
            actix_web::web::get().to(move || {
                let body = body.clone();
                async move {
                    actix_web::HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .disable_signals()
    .run();
    let jwks_handle = jwks_server.handle();
    tokio::spawn(jwks_server);
    let options = Options {
        extra: vec![("JWKS_URL".into(), jwks_url)],
        ..Options::default()
    };
    let vars = settings_map(&scratch.url, &options, None, "interop:jwks:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let server = api::Application::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}/api/v1/users/me", server.port());
    let from_url = server.handle();
    tokio::spawn(server.run_until_stopped());
    let jwt = issued["jwt"].as_str().unwrap();
    let (status, body) = send(client.get(&url).header("Authorization", format!("Bearer {jwt}"))).await;
    assert_eq!(status, StatusCode::OK, "keys from JWKS_URL: {body}");
    from_url.stop(false).await;
    jwks_handle.stop(false).await;

    // better-auth retired the key 31 days ago: past the 30-day grace, refused.
    db.conn()
        .execute_raw(sea_orm::Statement::from_string(
            db.backend(),
            r#"UPDATE jwks SET "expiresAt" = now() - interval '31 days'"#,
        ))
        .await
        .unwrap();
    let (base, handle) = serve_with_short_cache(&scratch.url).await;
    let (status, _) = send(
        client
            .get(format!("{base}/users/me"))
            .header("Authorization", format!("Bearer {jwt}")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a key past its grace period");
    handle.stop(false).await;
    db.close().await;
}
