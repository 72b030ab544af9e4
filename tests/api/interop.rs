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

use crate::helpers::{Backend, Options, SECRET, ScratchDb, send, services, settings_map};

const INTEROP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop");

fn node(database_url: &str, args: &[&str]) -> Value {
    node_with(database_url, args, &[])
}

fn node_with(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    script(database_url, "mint.mjs", args, env)
}

fn script(database_url: &str, file: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let output = Command::new("node")
        .arg(file)
        .args(args)
        .current_dir(INTEROP_DIR)
        .env("DATABASE_URL", database_url)
        .env("BETTER_AUTH_SECRET", SECRET)
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("node printed JSON")
}

fn interop_ready() -> bool {
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
    let options = Options {
        session_cache_ttl_secs: 1,
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
