//! List queries over HTTP (`sort`, `is_active`, `q`, `created_after`,
//! `created_before`) on items, each on SQLite and on PostgreSQL in both
//! naming styles: every sort in both directions over several pages with
//! ties, each filter alone and combined, `q` matching `%` and `_`
//! literally, cursors bound to their sort and filter, `Link` round trips,
//! and bad input as 422 with field details.

use reqwest::header::LINK;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, on_every_backend, spawn_app};

/// `GET path`: status, body and the `rel="next"` target, if any.
async fn list(app: &TestApp, user: &TestUser, path: &str) -> (StatusCode, Value, Option<String>) {
    let response = app.as_user(Method::GET, path, user).send().await.unwrap();
    let status = response.status();
    let next = response.headers().get(LINK).map(|link| {
        let link = link.to_str().unwrap();
        link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_owned()
    });
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, next)
}

/// Every page of `path`, following `Link` (the link keeps the query).
async fn every_page(app: &TestApp, user: &TestUser, path: &str) -> Vec<Value> {
    let (mut rows, mut next) = (Vec::new(), Some(path.to_owned()));
    while let Some(path) = next {
        let (status, body, link) = list(app, user, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        rows.extend(body.as_array().unwrap().iter().cloned());
        next = link;
    }
    rows
}

fn names(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|row| row["name"].as_str().unwrap()).collect()
}

/// The names, in Rust's order (a database's collation may order mixed case
/// and punctuation otherwise: this compares which rows, not their order).
fn which(rows: &[Value]) -> Vec<&str> {
    let mut names = names(rows);
    names.sort_unstable();
    names
}

fn field_errors(body: &Value) -> Vec<(String, String)> {
    body["error"]["details"]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no field errors in {body}"))
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn create(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let (status, created) = app.post("/api/v1/items", user, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn every_sort_pages_stably_through_ties_in_both_directions(backend: Backend) {
    let Some(app) = spawn_app(backend, "every_sort_pages_stably").await else {
        return;
    };
    let user = app.signed_in_user("sorter").await;
    let other = app.signed_in_user("other").await;
    create(&app, &other, json!({"name": "a"})).await;
    let mut items = Vec::new();
    for name in ["b", "a", "c", "a", "b", "a", "c"] {
        items.push(create(&app, &user, json!({"name": name})).await);
    }
    // Touch two so updated_at differs from created_at's order.
    for n in [1, 4] {
        let id = items[n]["id"].as_str().unwrap().to_owned();
        let (status, patched) = app
            .patch(&format!("/api/v1/items/{id}"), &user, json!({"description": "touched"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        items[n] = patched;
    }
    for (sort, field) in [
        ("created_at", "created_at"),
        ("updated_at", "updated_at"),
        ("name", "name"),
    ] {
        for descending in [false, true] {
            let mut expected = items.clone();
            // Times compare as instants (their text has as many fraction
            // digits as it needs), names as text, ties by id.
            let key = |row: &Value| {
                let value = row[field].as_str().unwrap().to_owned();
                let value = match chrono::DateTime::parse_from_rfc3339(&value) {
                    Ok(at) if field != "name" => format!("{:020}", at.timestamp_micros()),
                    _ => value,
                };
                (value, row["id"].as_str().unwrap().to_owned())
            };
            expected.sort_by_key(key);
            if descending {
                expected.reverse();
            }
            let sort = if descending {
                format!("-{sort}")
            } else {
                sort.to_owned()
            };
            let got = every_page(&app, &user, &format!("/api/v1/items?sort={sort}&limit=2")).await;
            assert_eq!(
                got, expected,
                "sort={sort}: pages of 2 in order, ties by id, nothing twice or lost"
            );
        }
    }
    let default = every_page(&app, &user, "/api/v1/items?limit=3").await;
    let newest = every_page(&app, &user, "/api/v1/items?sort=-created_at&limit=3").await;
    assert_eq!(default, newest, "newest first is the default");
}

async fn filters_work_alone_and_combined_and_q_is_literal(backend: Backend) {
    let Some(app) = spawn_app(backend, "filters_alone_and_combined").await else {
        return;
    };
    let user = app.signed_in_user("filterer").await;
    let mut created = Vec::new();
    for (name, active) in [
        ("Red lamp", true),
        ("blue LAMP", false),
        ("chair", true),
        ("100% cotton", true),
        ("a_b", true),
        ("axb", false),
        ("back\\slash", true),
    ] {
        created.push(create(&app, &user, json!({"name": name, "is_active": active})).await);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let query = |q: &str| {
        let app = &app;
        let user = &user;
        let path = format!("/api/v1/items?sort=name&{q}");
        async move { every_page(app, user, &path).await }
    };
    assert_eq!(which(&query("is_active=false").await), ["axb", "blue LAMP"]);
    assert_eq!(which(&query("q=LaMp").await), ["Red lamp", "blue LAMP"], "any case");
    assert_eq!(which(&query("q=lamp&is_active=true").await), ["Red lamp"]);
    assert_eq!(which(&query("q=%25").await), ["100% cotton"], "% is a character");
    assert_eq!(which(&query("q=_").await), ["a_b"], "_ is a character");
    assert_eq!(which(&query("q=a_b").await), ["a_b"]);
    assert_eq!(which(&query("q=%5C").await), ["back\\slash"], "\\ is a character");
    assert_eq!(which(&query("q=%20%20chair%20").await), ["chair"], "trimmed");
    assert!(query("q=nothing-like-this").await.is_empty());

    let third = created[2]["created_at"].as_str().unwrap();
    let fifth = created[4]["created_at"].as_str().unwrap();
    let encoded = |at: &str| at.replace('+', "%2B");
    assert_eq!(
        which(&query(&format!("created_after={}", encoded(third))).await),
        ["100% cotton", "a_b", "axb", "back\\slash"],
        "strictly after"
    );
    assert_eq!(
        which(&query(&format!("created_before={}", encoded(third))).await),
        ["Red lamp", "blue LAMP"]
    );
    assert_eq!(
        which(
            &query(&format!(
                "created_after={}&created_before={}&is_active=true",
                encoded(third),
                encoded(fifth)
            ))
            .await
        ),
        ["100% cotton"]
    );
    // The same instant in another offset is the same filter.
    let at = chrono::DateTime::parse_from_rfc3339(third).unwrap();
    let shifted = at
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339();
    assert_eq!(
        which(&query(&format!("created_before={}", encoded(&shifted))).await),
        ["Red lamp", "blue LAMP"]
    );
}

async fn cursors_are_bound_to_their_sort_and_filter(backend: Backend) {
    let Some(app) = spawn_app(backend, "cursors_bound_to_query").await else {
        return;
    };
    let user = app.signed_in_user("pager").await;
    for name in ["lamp one", "lamp two", "lamp three", "chair"] {
        create(&app, &user, json!({"name": name})).await;
    }
    let (status, first, next) = list(&app, &user, "/api/v1/items?sort=name&q=lamp&_=1712&limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(first.as_array().unwrap()), ["lamp one"]);
    let next = next.expect("a next page");
    assert!(
        next.contains("sort=name") && next.contains("q=lamp") && next.contains("_=1712"),
        "{next}"
    );
    let (status, second, _) = list(&app, &user, &next).await;
    assert_eq!(
        (status, names(second.as_array().unwrap())),
        (StatusCode::OK, vec!["lamp three"])
    );

    let cursor = next.split("cursor=").nth(1).unwrap().to_owned();
    for changed in [
        format!("/api/v1/items?sort=-name&q=lamp&limit=1&cursor={cursor}"),
        format!("/api/v1/items?sort=name&limit=1&cursor={cursor}"),
        format!("/api/v1/items?sort=name&q=lamps&limit=1&cursor={cursor}"),
        format!("/api/v1/items?sort=name&q=lamp&is_active=true&limit=1&cursor={cursor}"),
        format!("/api/v1/items?limit=1&cursor={cursor}"),
    ] {
        let (status, body, _) = list(&app, &user, &changed).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{changed}: {body}");
        assert_eq!(
            field_errors(&body),
            [("cursor".to_owned(), "invalid_cursor".to_owned())]
        );
    }
    // The default order's cursors are bound too.
    let (_, _, plain_next) = list(&app, &user, "/api/v1/items?limit=1").await;
    let plain_cursor = plain_next.unwrap().split("cursor=").nth(1).unwrap().to_owned();
    let (status, _, _) = list(
        &app,
        &user,
        &format!("/api/v1/items?sort=name&limit=1&cursor={plain_cursor}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn bad_queries_are_422_with_field_details(backend: Backend) {
    let Some(app) = spawn_app(backend, "bad_list_queries").await else {
        return;
    };
    let user = app.signed_in_user("bad").await;
    let long = "x".repeat(10_000);
    for (query, field, kind) in [
        ("sort=;drop", "sort", "enum"),
        ("sort=description", "sort", "enum"),
        ("sort=-", "sort", "enum"),
        ("is_active=yes", "is_active", "bool_parsing"),
        (&*format!("q={long}"), "q", "string_too_long"),
        ("q=%20", "q", "string_too_short"),
        ("q=a%00b", "q", "value_error"),
        ("created_after=yesterday", "created_after", "datetime_parsing"),
        (
            "created_before=2026-02-30T00:00:00Z",
            "created_before",
            "datetime_parsing",
        ),
        ("sort=name&sort=-name", "sort", "duplicate"),
        ("is_active=true&is_active=true", "is_active", "duplicate"),
        ("limit=5&limit=5", "limit", "duplicate"),
    ] {
        let (status, body, _) = list(&app, &user, &format!("/api/v1/items?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert!(
            field_errors(&body).contains(&(field.to_owned(), kind.to_owned())),
            "{query}: {body}"
        );
    }
    let (status, _, _) = list(&app, &user, "/api/v1/items?_=1&_=2&utm_source=x").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "unknown parameters stay ignored, repeated or not"
    );
}

async fn each_query_has_its_own_answer_and_etag_and_a_write_shows_in_all(backend: Backend) {
    let Some(app) = spawn_app(backend, "each_query_its_own_answer").await else {
        return;
    };
    let user = app.signed_in_user("cached").await;
    create(&app, &user, json!({"name": "m", "is_active": true})).await;
    create(&app, &user, json!({"name": "z", "is_active": false})).await;
    let etag = |path: &'static str| {
        let app = &app;
        let user = &user;
        async move {
            let response = app.as_user(Method::GET, path, user).send().await.unwrap();
            response.headers()["etag"].to_str().unwrap().to_owned()
        }
    };
    let by_name = etag("/api/v1/items?sort=name").await;
    assert_ne!(by_name, etag("/api/v1/items?sort=-name").await);
    assert_ne!(by_name, etag("/api/v1/items").await);
    assert_eq!(
        names(&every_page(&app, &user, "/api/v1/items?sort=name&is_active=true").await),
        ["m"]
    );
    create(&app, &user, json!({"name": "a", "is_active": true})).await;
    assert_eq!(
        names(&every_page(&app, &user, "/api/v1/items?sort=name&is_active=true").await),
        ["a", "m"],
        "a write shows in every cached query of its scope"
    );
    assert_ne!(by_name, etag("/api/v1/items?sort=name").await);
}

async fn an_organizations_list_sorts_and_filters_every_members_items_and_its_cursors_stay_in_it(backend: Backend) {
    let options = crate::helpers::Options {
        organization_plugin: true,
        ..crate::helpers::Options::default()
    };
    let Some(app) = crate::helpers::spawn_app_with(backend, "org_list_queries", options).await else {
        return;
    };
    let (ann, bob) = (app.signed_in_user("ann").await, app.signed_in_user("bob").await);
    let at = chrono::Utc::now();
    app.dev.insert_organization("acme", "Acme", "acme", at).await.unwrap();
    app.dev.insert_member("acme", &ann.id, "member", at).await.unwrap();
    app.dev.insert_member("acme", &bob.id, "member", at).await.unwrap();
    let in_acme = |user: &TestUser, method: Method, path: &str| {
        app.as_user(method, path, user).header("X-Organization-Id", "acme")
    };
    for (user, name, active) in [(&ann, "lamp b", true), (&bob, "lamp a", true), (&bob, "chair", false)] {
        let response = in_acme(user, Method::POST, "/api/v1/items")
            .json(&json!({"name": name, "is_active": active}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    create(&app, &ann, json!({"name": "lamp personal"})).await;

    let response = in_acme(
        &ann,
        Method::GET,
        "/api/v1/items?sort=name&is_active=true&q=lamp&limit=1",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let link = response.headers()[LINK].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        names(body.as_array().unwrap()),
        ["lamp a"],
        "every member's items, sorted"
    );
    let next = &link[link.find('<').unwrap() + 1..link.find('>').unwrap()];
    let response = in_acme(&ann, Method::GET, next).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(names(body.as_array().unwrap()), ["lamp b"]);
    let (status, body, _) = list(&app, &ann, next).await;
    assert_eq!(
        (status, field_errors(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![("cursor".to_owned(), "invalid_cursor".to_owned())]
        ),
        "the organization's cursor is not the personal scope's"
    );
}

on_every_backend!(
    every_sort_pages_stably_through_ties_in_both_directions,
    filters_work_alone_and_combined_and_q_is_literal,
    cursors_are_bound_to_their_sort_and_filter,
    bad_queries_are_422_with_field_details,
    each_query_has_its_own_answer_and_etag_and_a_write_shows_in_all,
    an_organizations_list_sorts_and_filters_every_members_items_and_its_cursors_stay_in_it,
);

/// On a table of 100,000 rows, every sort in both directions, in both
/// scopes, first pages and keyset pages, filtered or not, is an index scan:
/// `EXPLAIN` of the statement the repository runs shows no sequential scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sort_is_an_index_scan_on_100_000_rows() {
    use domain::item::{ITEM_LIST, ItemId, Page};
    use domain::page::{Position, SortKey};
    use domain::resource::list::{ListFilter, ListQuery, Sort};
    use domain::scope::Owner;
    use infra::item_repository::ItemsTable;
    use infra::resource::SeaOrmRepository;
    use sea_orm::ConnectionTrait as _;

    let Some(app) = spawn_app(
        Backend::Postgres(infra::better_auth::NamingStyle::CamelCase),
        "every_sort_is_an_index_scan",
    )
    .await
    else {
        return;
    };
    let (ann, bob) = (app.signed_in_user("ann").await, app.signed_in_user("bob").await);
    app.fill_100_000_items([&ann.id, &bob.id]).await;

    let repository = SeaOrmRepository::<ItemsTable>::detect(app.db.clone()).await.unwrap();
    for owner in [Owner::User(ann.id.clone()), Owner::Organization("org-5".into())] {
        for sort in ITEM_LIST.sort_values() {
            let sort = Sort::parse(&ITEM_LIST, &sort).unwrap();
            for active in [None, Some(true)] {
                let query = ListQuery {
                    sort,
                    filter: ListFilter {
                        flags: active.map(|a| ("is_active", a)).into_iter().collect(),
                        ..ListFilter::default()
                    },
                };
                let first = Page::new(None, Some(20)).unwrap().with_query(query.clone());
                let key = match sort.field.name() {
                    "name" => SortKey::Text("8".into()),
                    _ => SortKey::Time(chrono::Utc::now() - chrono::Duration::hours(3)),
                };
                let keyset = first.clone().starting_after(Some(Position {
                    key,
                    id: ItemId::generate(),
                }));
                for page in [first, keyset] {
                    let statement = repository.list_statement(&owner, &page).unwrap();
                    let explain = sea_orm::Statement::from_sql_and_values(
                        app.db.backend(),
                        format!("EXPLAIN {}", statement.sql),
                        statement.values.map(|values| values.0).unwrap_or_default(),
                    );
                    let rows = app.db.conn().query_all_raw(explain).await.unwrap();
                    let plan: Vec<String> = rows.iter().map(|row| row.try_get_by_index(0).unwrap()).collect();
                    let plan = plan.join("\n");
                    let scope = match owner {
                        Owner::User(_) => "owner_id",
                        Owner::Organization(_) => "organization_id",
                    };
                    let index = match sort.field.name() {
                        "created_at" => format!("idx_items_{scope}_created_at"),
                        column => format!("idx_items_{scope}_{column}_id"),
                    };
                    assert!(
                        !plan.contains("Seq Scan") && plan.contains(&index),
                        "{owner:?} {} {active:?}: expected a scan of {index}:\n{}\n{plan}",
                        sort.param(),
                        statement.sql
                    );
                }
            }
        }
    }
}
