//! The resource kit's contract, over HTTP, for any scoped resource: what
//! every resource made with the kit (by hand or by `saas-api generate
//! resource`) answers, on every backend. A resource's test file describes
//! it in a [`Spec`] and invokes [`resource_contract!`]; items do too.
//!
//! - its whole life: 201 with `Location` and `ETag`, read back, patched,
//!   listed, deleted, gone;
//! - isolation: another user's record, a malformed id and a missing one are
//!   the same 404, and never listed;
//! - conditional requests: `If-None-Match` → 304, a stale `If-Match` → 412
//!   and nothing changed;
//! - `Idempotency-Key`: a retry replays, another body is 422;
//! - cursors: `Link: rel="next"` walks every record once, newest first; a
//!   tampered cursor is 422;
//! - validation: the resource's bad field and a server-set field are 422;
//! - organizations: members read each other's records, change only their
//!   own unless admin, no record crosses scopes, and a deleted
//!   organization's records are cleaned up.

use reqwest::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LINK, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, TestUser, now, spawn_app_with};

/// One resource, as its contract needs it.
#[derive(Clone, Copy)]
pub struct Spec {
    /// The collection, `/api/v1/<resource>`.
    pub path: &'static str,
    /// A valid create body, distinct for each `n`.
    pub create: fn(usize) -> Value,
    /// A valid patch that changes what a GET shows.
    pub patch: fn() -> Value,
    /// An invalid create body, and the field its error names.
    pub invalid: fn() -> (Value, &'static str),
}

async fn app(backend: Backend, spec: Spec, test: &str) -> Option<TestApp> {
    let options = Options {
        organization_plugin: true,
        ..Options::default()
    };
    spawn_app_with(backend, &format!("{}::{test}", spec.path), options).await
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &TestUser,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app.as_user(method, path, user);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, body)
}

fn header(headers: &reqwest::header::HeaderMap, name: impl reqwest::header::AsHeaderName) -> String {
    headers.get(name).unwrap().to_str().unwrap().to_owned()
}

async fn create(app: &TestApp, spec: Spec, user: &TestUser, n: usize, org: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = org.map(|o| ("X-Organization-Id", o)).into_iter().collect();
    let (status, _, body) = call(app, Method::POST, spec.path, user, &headers, Some((spec.create)(n))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The ids of every page from `path` on, following `Link: rel="next"`
/// (at most `total` records: the links must end), and the first page's link.
async fn every_page(app: &TestApp, user: &TestUser, path: String, total: usize) -> (Vec<String>, Option<String>) {
    let (mut seen, mut next, mut first_link) = (Vec::new(), Some(path), None);
    while let Some(path) = next.take() {
        let (status, headers, page) = call(app, Method::GET, &path, user, &[], None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        seen.extend(page.as_array().unwrap().iter().map(|r| id(r).to_owned()));
        next = headers.get(LINK).map(|link| {
            let link = link.to_str().unwrap();
            let url = &link[link.find('<').unwrap() + 1..link.find('>').unwrap()];
            url[url.find("/api/").unwrap()..].to_owned()
        });
        first_link = first_link.or_else(|| next.clone());
        assert!(seen.len() <= total, "the links end");
    }
    (seen, first_link)
}

fn id(record: &Value) -> &str {
    record["id"].as_str().unwrap()
}

pub async fn whole_life(backend: Backend, spec: Spec) {
    let on_postgres = matches!(backend, Backend::Postgres(_));
    let Some(app) = app(backend, spec, "whole_life").await else {
        return;
    };
    let user = app.signed_in_user("owner").await;
    let (status, headers, created) = call(&app, Method::POST, spec.path, &user, &[], Some((spec.create)(1))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["owner_id"], user.id);
    assert_eq!(created["organization_id"], Value::Null);
    assert_eq!(created["created_at"], created["updated_at"]);
    let member = format!("{}/{}", spec.path, id(&created));
    assert_eq!(header(&headers, LOCATION), member);
    if on_postgres {
        assert!(
            app.gauge("db_lane_requests_total").await >= 1,
            "on PostgreSQL the insert went through the lanes (every column of a type they carry)"
        );
    }

    let (status, read_headers, read) = call(&app, Method::GET, &member, &user, &[], None).await;
    assert_eq!(
        (status, &read),
        (StatusCode::OK, &created),
        "what was created is read back"
    );
    assert_eq!(
        header(&read_headers, ETAG),
        header(&headers, ETAG),
        "the 201's ETag is the GET's"
    );

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, patched) = app.patch(&format!("{member}/"), &user, (spec.patch)()).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_ne!(patched, created, "the patch shows");
    assert!(patched["updated_at"].as_str() > created["updated_at"].as_str());
    let (_, read) = app.get(&member, &user).await;
    assert_eq!(
        read, patched,
        "the change is seen on the next read (the response cache too)"
    );
    let (_, listed) = app.get(spec.path, &user).await;
    assert_eq!(listed, json!([patched]));

    let (status, body) = app.delete(&member, &user).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(app.get(&member, &user).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(spec.path, &user).await.1, json!([]));
    assert_eq!(app.delete(&member, &user).await.0, StatusCode::NOT_FOUND);
}

pub async fn isolation(backend: Backend, spec: Spec) {
    let Some(app) = app(backend, spec, "isolation").await else {
        return;
    };
    let (alice, bob) = (app.signed_in_user("alice").await, app.signed_in_user("bob").await);
    let record = create(&app, spec, &alice, 1, None).await;
    let mut bodies = Vec::new();
    for path in [
        format!("{}/{}", spec.path, id(&record)),
        format!("{}/{}", spec.path, uuid::Uuid::now_v7()),
        format!("{}/not-a-uuid", spec.path),
    ] {
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let body = (method == Method::PATCH).then(spec.patch);
            let (status, _, mut error) = call(&app, method.clone(), &path, &bob, &[], body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            error["error"]["request_id"] = Value::Null;
            error["error"]["path"] = Value::Null;
            bodies.push(error);
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "identical 404s: {bodies:?}");
    assert_eq!(app.get(spec.path, &bob).await.1, json!([]));
    assert_eq!(
        app.get(spec.path, &alice).await.1,
        json!([record]),
        "bob changed nothing"
    );
}

pub async fn conditional(backend: Backend, spec: Spec) {
    let Some(app) = app(backend, spec, "conditional").await else {
        return;
    };
    let user = app.signed_in_user("owner").await;
    let record = create(&app, spec, &user, 1, None).await;
    let member = format!("{}/{}", spec.path, id(&record));
    let (_, headers, _) = call(&app, Method::GET, &member, &user, &[], None).await;
    let etag = header(&headers, ETAG);
    let (status, _, body) = call(
        &app,
        Method::GET,
        &member,
        &user,
        &[(IF_NONE_MATCH.as_str(), &etag)],
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::NOT_MODIFIED, Value::Null));
    let (_, headers, _) = call(&app, Method::GET, spec.path, &user, &[], None).await;
    let list_etag = header(&headers, ETAG);
    let (status, ..) = call(
        &app,
        Method::GET,
        spec.path,
        &user,
        &[(IF_NONE_MATCH.as_str(), &list_etag)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    let stale = r#""0000""#;
    let (status, ..) = call(
        &app,
        Method::PATCH,
        &member,
        &user,
        &[(IF_MATCH.as_str(), stale)],
        Some((spec.patch)()),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, ..) = call(
        &app,
        Method::DELETE,
        &member,
        &user,
        &[(IF_MATCH.as_str(), stale)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        app.get(&member, &user).await.1,
        record,
        "a failed precondition changes nothing"
    );

    let (status, headers, patched) = call(
        &app,
        Method::PATCH,
        &member,
        &user,
        &[(IF_MATCH.as_str(), &etag)],
        Some((spec.patch)()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (status, ..) = call(
        &app,
        Method::PATCH,
        &member,
        &user,
        &[(IF_MATCH.as_str(), &etag)],
        Some((spec.patch)()),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "the old tag is stale now");
    let (status, ..) = call(
        &app,
        Method::GET,
        spec.path,
        &user,
        &[(IF_NONE_MATCH.as_str(), &list_etag)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the list's tag changed with the write");
    let (status, ..) = call(
        &app,
        Method::DELETE,
        &member,
        &user,
        &[(IF_MATCH.as_str(), &header(&headers, ETAG))],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

pub async fn idempotent(backend: Backend, spec: Spec) {
    let Some(app) = app(backend, spec, "idempotent").await else {
        return;
    };
    let user = app.signed_in_user("owner").await;
    let key = [("Idempotency-Key", "contract-1")];
    let (status, first_headers, first) = call(&app, Method::POST, spec.path, &user, &key, Some((spec.create)(1))).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, headers, replay) = call(&app, Method::POST, spec.path, &user, &key, Some((spec.create)(1))).await;
    assert_eq!(
        (status, &replay),
        (StatusCode::CREATED, &first),
        "the first answer, replayed"
    );
    assert_eq!(header(&headers, "idempotent-replayed"), "true");
    assert_eq!(header(&headers, LOCATION), header(&first_headers, LOCATION));
    let (status, ..) = call(&app, Method::POST, spec.path, &user, &key, Some((spec.create)(2))).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the same key with another body"
    );
    assert_eq!(
        app.get(spec.path, &user).await.1,
        json!([first]),
        "one record was created"
    );
}

pub async fn cursors(backend: Backend, spec: Spec) {
    let Some(app) = app(backend, spec, "cursors").await else {
        return;
    };
    let user = app.signed_in_user("owner").await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(id(&create(&app, spec, &user, n, None).await).to_owned());
    }
    created.reverse();
    let (seen, _) = every_page(&app, &user, format!("{}?limit=2", spec.path), 5).await;
    assert_eq!(seen, created, "every record once, newest first");
    let (status, _) = app.get(&format!("{}?cursor=AAAA", spec.path), &user).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The list queries every resource has (its own text sorts, flags and `q`
/// are its tests' to check): oldest first and by last change, over pages;
/// `created_after` / `created_before`; a cursor bound to its sort; a bad or
/// repeated sort is 422.
pub async fn list_queries(backend: Backend, spec: Spec) {
    let Some(app) = app(backend, spec, "list_queries").await else {
        return;
    };
    let user = app.signed_in_user("owner").await;
    let mut created = Vec::new();
    for n in 0..4 {
        created.push(create(&app, spec, &user, n, None).await);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let oldest_first: Vec<String> = created.iter().map(|r| id(r).to_owned()).collect();
    let pages = |path: String| every_page(&app, &user, path, 4);
    let (seen, link) = pages(format!("{}?sort=created_at&limit=3", spec.path)).await;
    assert_eq!(seen, oldest_first, "oldest first, over pages");

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, patched) = app
        .patch(&format!("{}/{}", spec.path, oldest_first[0]), &user, (spec.patch)())
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (seen, _) = pages(format!("{}?sort=-updated_at&limit=3", spec.path)).await;
    assert_eq!(seen[0], oldest_first[0], "the last changed first");

    let second = created[1]["created_at"].as_str().unwrap().replace('+', "%2B");
    let (seen, _) = pages(format!("{}?sort=created_at&created_after={second}", spec.path)).await;
    assert_eq!(seen, oldest_first[2..], "created strictly after the second");
    let (seen, _) = pages(format!("{}?sort=created_at&created_before={second}", spec.path)).await;
    assert_eq!(seen, oldest_first[..1]);

    let link = link.expect("a next page");
    let cursor = link.split("cursor=").nth(1).unwrap();
    for path in [
        format!("{}?sort=-created_at&limit=3&cursor={cursor}", spec.path),
        format!("{}?sort=;drop", spec.path),
        format!("{}?sort=created_at&sort=created_at", spec.path),
        format!("{}?created_after=yesterday", spec.path),
    ] {
        let (status, body) = app.get(&path, &user).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert!(body["error"]["details"]["errors"][0]["field"].is_string(), "{body}");
    }
}

pub async fn validation(backend: Backend, spec: Spec) {
    let Some(app) = app(backend, spec, "validation").await else {
        return;
    };
    let user = app.signed_in_user("owner").await;
    let (body, field) = (spec.invalid)();
    let (status, error) = app.post(spec.path, &user, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let fields: Vec<&str> = error["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, [field]);
    let mut body = (spec.create)(1);
    body["owner_id"] = json!("someone-else");
    let (status, error) = app.post(spec.path, &user, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["details"]["errors"][0]["field"], "owner_id");
    let (status, error) = app.get(&format!("{}?limit=0", spec.path), &user).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(app.get(spec.path, &user).await.1, json!([]), "nothing was created");
}

pub async fn organizations(backend: Backend, spec: Spec) {
    let Some(app) = app(backend, spec, "organizations").await else {
        return;
    };
    let (admin, member, other) = (
        app.signed_in_user("admin").await,
        app.signed_in_user("member").await,
        app.signed_in_user("other").await,
    );
    app.dev
        .insert_organization("acme", "Acme", "acme", now())
        .await
        .unwrap();
    app.dev.insert_member("acme", &admin.id, "admin", now()).await.unwrap();
    app.dev
        .insert_member("acme", &member.id, "member", now())
        .await
        .unwrap();
    app.dev.insert_member("acme", &other.id, "member", now()).await.unwrap();
    let acme = [("X-Organization-Id", "acme")];

    let mine = create(&app, spec, &member, 1, Some("acme")).await;
    assert_eq!(mine["organization_id"], "acme");
    let path = format!("{}/{}", spec.path, id(&mine));
    let (status, _, read) = call(&app, Method::GET, &path, &other, &acme, None).await;
    assert_eq!((status, &read), (StatusCode::OK, &mine), "every member reads it");
    let (status, ..) = call(&app, Method::PATCH, &path, &other, &acme, Some((spec.patch)())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another member may not change it");
    let (status, ..) = call(&app, Method::DELETE, &path, &other, &acme, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, ..) = call(&app, Method::PATCH, &path, &member, &acme, Some((spec.patch)())).await;
    assert_eq!(status, StatusCode::OK, "its creator may");
    let (status, ..) = call(&app, Method::PATCH, &path, &admin, &acme, Some((spec.patch)())).await;
    assert_eq!(status, StatusCode::OK, "an admin may");

    assert_eq!(
        app.get(&path, &member).await.0,
        StatusCode::NOT_FOUND,
        "not in personal scope"
    );
    assert_eq!(app.get(spec.path, &member).await.1, json!([]));
    let personal = create(&app, spec, &member, 2, None).await;
    let personal_path = format!("{}/{}", spec.path, id(&personal));
    let (status, ..) = call(&app, Method::GET, &personal_path, &member, &acme, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a personal record is not the organization's"
    );
    let outsider = app.signed_in_user("outsider").await;
    let (status, ..) = call(&app, Method::GET, spec.path, &outsider, &acme, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not a member");
    let (status, ..) = call(&app, Method::DELETE, &path, &admin, &acme, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A deleted organization's records are removed by the clean-up; the
    // personal ones stay.
    create(&app, spec, &member, 3, Some("acme")).await;
    app.dev.delete_organization("acme").await.unwrap();
    let table = spec.path.rsplit('/').next().unwrap();
    let schema = infra::better_auth::BetterAuthSchema::detect(&app.db).await.unwrap();
    let store = infra::better_auth::SqlMembershipStore::new(app.db.clone(), &schema).unwrap();
    assert_eq!(
        store
            .delete_records_of_deleted_organizations(table, 1000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_records_of_deleted_organizations(table, 1000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.get(spec.path, &member).await.1, json!([personal]));
}

/// The whole contract for the [`Spec`] `$spec` returns, on every backend.
macro_rules! resource_contract {
    ($spec:expr) => {
        $crate::resource_contract::resource_contract!(@each $spec;
            whole_life, isolation, conditional, idempotent, cursors, list_queries, validation, organizations);
    };
    (@each $spec:expr; $($test:ident),*) => {
        $(
            async fn $test(backend: $crate::helpers::Backend) {
                $crate::resource_contract::$test(backend, $spec).await;
            }
        )*
        $crate::helpers::on_every_backend!($($test),*);
    };
}
pub(crate) use resource_contract;
