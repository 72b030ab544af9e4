//! Organizations (better-auth's organization plugin) over HTTP: scope
//! choice, roles, cross-scope isolation, the active organization, removed
//! members and deleted organizations, on every backend.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Options, TestApp, TestUser, now, on_every_backend, second_instance, send, spawn_app_with,
};

const ORG: &str = "X-Organization-Id";

async fn app_with_plugin(backend: Backend, test: &str, ttl_secs: u64) -> Option<TestApp> {
    let options = Options {
        organization_plugin: true,
        session_cache_ttl_secs: ttl_secs,
        ..Options::default()
    };
    spawn_app_with(backend, test, options).await
}

/// An organization `id` with these (user, role) members.
async fn organization(app: &TestApp, id: &str, members: &[(&TestUser, &str)]) {
    app.dev
        .insert_organization(id, &format!("Org {id}"), id, now())
        .await
        .unwrap();
    for (user, role) in members {
        app.dev.insert_member(id, &user.id, role, now()).await.unwrap();
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &TestUser,
    org: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.as_user(method, path, user);
    if let Some(org) = org {
        request = request.header(ORG, org);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

async fn create(app: &TestApp, user: &TestUser, org: Option<&str>, name: &str) -> String {
    let (status, item) = call(
        app,
        Method::POST,
        "/api/v1/items",
        user,
        org,
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    item["id"].as_str().unwrap().to_owned()
}

async fn names(app: &TestApp, user: &TestUser, org: Option<&str>) -> Vec<String> {
    let (status, list) = call(app, Method::GET, "/api/v1/items", user, org, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn deactivate(app: &TestApp, user: &TestUser, id: &str) -> StatusCode {
    let body = Some(json!({"is_active": false}));
    call(
        app,
        Method::PATCH,
        &format!("/api/v1/items/{id}"),
        user,
        Some("acme"),
        body,
    )
    .await
    .0
}

async fn members_read_all_and_change_by_role(backend: Backend) {
    let Some(app) = app_with_plugin(backend, "org_roles", 300).await else {
        return;
    };
    let owner = app.signed_in_user("owner").await;
    let member = app.signed_in_user("member").await;
    let admin = app.signed_in_user("admin").await;
    let superadmin = app.signed_in_user("superadmin").await;
    let outsider = app.signed_in_user("outsider").await;
    organization(
        &app,
        "acme",
        &[
            (&owner, "owner"),
            (&member, "member"),
            (&admin, "admin,member"),
            (&superadmin, "superadmin"),
        ],
    )
    .await;

    let owners = create(&app, &owner, Some("acme"), "owner's").await;
    let members = create(&app, &member, Some("acme"), "member's").await;
    let (_, item) = call(
        &app,
        Method::GET,
        &format!("/api/v1/items/{members}"),
        &admin,
        Some("acme"),
        None,
    )
    .await;
    assert_eq!(item["organization_id"], "acme");
    assert_eq!(item["owner_id"], member.id.as_str(), "the creator");
    assert_eq!(names(&app, &member, Some("acme")).await, ["member's", "owner's"]);
    assert!(
        names(&app, &member, None).await.is_empty(),
        "organization items are not personal"
    );

    let patch = |user, id| deactivate(&app, user, id);
    assert_eq!(
        patch(&member, &members).await,
        StatusCode::OK,
        "a member edits their own"
    );
    assert_eq!(
        patch(&member, &owners).await,
        StatusCode::FORBIDDEN,
        "not another member's"
    );
    assert_eq!(
        patch(&superadmin, &owners).await,
        StatusCode::FORBIDDEN,
        "superadmin is not admin"
    );
    assert_eq!(patch(&admin, &owners).await, StatusCode::OK, "admin,member edits any");
    let (status, body) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/items/{owners}"),
        &member,
        Some("acme"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["message"],
        "only the resource's creator or an organization owner or admin may change it"
    );
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/api/v1/items/{members}"),
            &owner,
            Some("acme"),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT,
        "the owner deletes any"
    );

    for (who, org) in [(&outsider, "acme"), (&member, "no-such-org")] {
        let (status, body) = call(&app, Method::GET, "/api/v1/items", who, Some(org), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{org}");
        assert_eq!(body["error"]["message"], "not a member of this organization");
        assert_eq!(body["error"]["code"], 403);
    }
    for bad in ["", &"o".repeat(256)] {
        let (status, body) = call(&app, Method::GET, "/api/v1/items", &member, Some(bad), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, orgs) = call(&app, Method::GET, "/api/v1/organizations", &admin, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orgs[0]["id"], "acme");
    assert_eq!(orgs[0]["role"], "admin,member");
    assert_eq!(orgs[0]["slug"], "acme");
    assert!(orgs[0]["createdAt"].is_string());
    assert_eq!(orgs.as_array().unwrap().len(), 1);
}

/// Every scope against every other: nothing is ever visible or changeable
/// outside its own scope.
async fn no_item_is_reachable_from_another_scope(backend: Backend) {
    let Some(app) = app_with_plugin(backend, "org_isolation", 300).await else {
        return;
    };
    let alice = app.signed_in_user("alice").await;
    organization(&app, "acme", &[(&alice, "owner")]).await;
    organization(&app, "globex", &[(&alice, "owner")]).await;
    let scopes = [None, Some("acme"), Some("globex")];
    let mut items = Vec::new();
    for scope in scopes {
        items.push((scope, create(&app, &alice, scope, &format!("in {scope:?}")).await));
    }
    for scope in scopes {
        assert_eq!(
            names(&app, &alice, scope).await,
            [format!("in {scope:?}")],
            "{scope:?} lists only its own"
        );
        for (home, id) in &items {
            if *home == scope {
                continue;
            }
            let path = format!("/api/v1/items/{id}");
            for (method, body) in [
                (Method::GET, None),
                (Method::PATCH, Some(json!({"name": "moved"}))),
                (Method::DELETE, None),
            ] {
                let (status, _) = call(&app, method.clone(), &path, &alice, scope, body).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {home:?} item from {scope:?}");
            }
        }
    }
    for scope in scopes {
        assert_eq!(
            names(&app, &alice, scope).await,
            [format!("in {scope:?}")],
            "nothing moved or went"
        );
    }
}

async fn the_active_organization_scopes_session_requests(backend: Backend) {
    let Some(app) = app_with_plugin(backend, "org_active", 1).await else {
        return;
    };
    let alice = app.signed_in_user("alice").await;
    let bob = app.signed_in_user("bob").await;
    organization(&app, "acme", &[(&alice, "owner"), (&bob, "member")]).await;
    create(&app, &alice, Some("acme"), "shared").await;
    create(&app, &bob, None, "bob's own").await;
    app.dev.set_active_organization(&bob.token, Some("acme")).await.unwrap();
    // Seen once the session cache's bound (1 s here) has passed, as documented.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, me) = app.get("/api/v1/users/me", &bob).await;
    assert_eq!(me["activeOrganizationId"], "acme");
    assert_eq!(
        names(&app, &bob, None).await,
        ["shared"],
        "the active organization is the scope"
    );
    assert_eq!(names(&app, &bob, Some("acme")).await, ["shared"]);

    // Removed (better-auth leaves the active organization on the removed
    // member's other sessions): refused, never silently personal, once the
    // membership cache's bound (1 s here) has passed.
    app.dev.delete_member("acme", &bob.id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = call(&app, Method::GET, "/api/v1/items", &bob, None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["message"], "not a member of this organization");
    let (status, _) = call(&app, Method::GET, "/api/v1/items", &bob, Some("acme"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Deleting the organization (members cascade) makes its items
    // unreachable, and the clean-up removes them.
    app.dev.delete_organization("acme").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = call(&app, Method::GET, "/api/v1/items", &alice, Some("acme"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let schema = infra::better_auth::BetterAuthSchema::detect(&app.db).await.unwrap();
    let store = infra::better_auth::SqlMembershipStore::new(app.db.clone(), &schema).unwrap();
    assert_eq!(store.delete_items_of_deleted_organizations(1000).await.unwrap(), 1);
    assert_eq!(store.delete_items_of_deleted_organizations(1000).await.unwrap(), 0);
    app.dev.set_active_organization(&bob.token, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(names(&app, &bob, None).await, ["bob's own"], "personal items untouched");
}

on_every_backend!(
    members_read_all_and_change_by_role,
    no_item_is_reachable_from_another_scope,
    the_active_organization_scopes_session_requests,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_an_organization_is_seen_by_every_members_next_read_across_instances() {
    let options = Options {
        organization_plugin: true,
        extra: vec![("RESPONSE_CACHE_TTL".into(), "60".into())],
        ..Options::default()
    };
    let backend = Backend::Postgres(infra::better_auth::NamingStyle::CamelCase);
    let Some(app) = spawn_app_with(backend, "org_cache", options).await else {
        return;
    };
    let second = second_instance(&app).await;
    let alice = app.signed_in_user("alice").await;
    let bob = app.signed_in_user("bob").await;
    organization(&app, "acme", &[(&alice, "owner"), (&bob, "member")]).await;
    create(&app, &alice, Some("acme"), "first").await;
    assert_eq!(names(&app, &bob, Some("acme")).await, ["first"]);
    assert_eq!(
        names(&app, &bob, Some("acme")).await,
        ["first"],
        "served from the cache"
    );
    let (status, _) = send(
        second
            .client
            .post(format!("{}/api/v1/items", second.address))
            .header("Cookie", &alice.cookie)
            .header(ORG, "acme")
            .json(&json!({"name": "second"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        names(&app, &bob, Some("acme")).await,
        ["first", "second"],
        "fresh for every member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_plugin_an_organization_is_refused_and_the_list_is_empty() {
    let Some(app) = spawn_app_with(Backend::Sqlite, "org_absent", Options::default()).await else {
        return;
    };
    let alice = app.signed_in_user("alice").await;
    let (status, body) = call(&app, Method::GET, "/api/v1/items", &alice, Some("acme"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["message"], "not a member of this organization");
    let (status, orgs) = call(&app, Method::GET, "/api/v1/organizations", &alice, None, None).await;
    assert_eq!((status, orgs), (StatusCode::OK, json!([])));
    let (_, me) = app.get("/api/v1/users/me", &alice).await;
    assert_eq!(me["activeOrganizationId"], Value::Null);
    let id = create(&app, &alice, None, "mine").await;
    let (_, item) = app.get(&format!("/api/v1/items/{id}"), &alice).await;
    assert_eq!(item["organization_id"], Value::Null);
}
