//! Item reads and inserts reach PostgreSQL through the lanes (`infra::lanes`,
//! with the kit's `ScopedStatements`): under concurrency many requests share
//! one statement (and inserts one commit), every `201` is stored, a bad row
//! fails alone (its batch is split in halves until it is found), every read
//! gets exactly its own scope's rows, the lanes stay within `DB_POOL_MAX`,
//! a broken connection fails once and is replaced, and lanes close their
//! connections when their repository goes.

use std::time::Duration;

use domain::item::{Item, ItemId, ItemName, Page, ScopedRepository};
use domain::scope::Owner;
use futures_util::future::join_all;
use infra::OwnerIdType;
use infra::better_auth::NamingStyle;
use infra::db::DbOptions;
use infra::item_repository::{ItemsTable, SeaOrmItemRepository};
use infra::lanes::{READ_CONNECTIONS, WRITE_CONNECTIONS};
use infra::resource::ScopedStatements;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{Backend, now, send, spawn_app};

async fn scalar(app: &crate::helpers::TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .conn()
        .query_one_raw(Statement::from_string(app.db.backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_share_commits_and_every_answered_item_is_stored() {
    let Some(app) = spawn_app(
        Backend::Postgres(NamingStyle::CamelCase),
        "concurrent_creates_share_commits",
    )
    .await
    else {
        return;
    };
    let users = [app.signed_in_user("ann").await, app.signed_in_user("bob").await];
    let creates = (0..300).map(|i| {
        let user = &users[i % 2];
        send(
            app.as_user(Method::POST, "/api/v1/items", user)
                .json(&json!({ "name": format!("item {i}") })),
        )
    });
    let answers = join_all(creates).await;
    let mut ids = Vec::new();
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }

    assert_eq!(scalar(&app, "SELECT count(*) FROM items").await, 300);
    let transactions = scalar(&app, "SELECT count(DISTINCT xmin::text) FROM items").await;
    assert!(transactions < 150, "300 concurrent creates took {transactions} commits");
    let requests = app.gauge("db_lane_requests_total").await;
    let batches = app.gauge("db_lane_batches_total").await;
    assert!(requests >= 300, "the lanes answered {requests} requests");
    assert!(batches < 150, "and ran {batches} batches (exported in /metrics)");

    for (i, user) in users.iter().enumerate() {
        let (status, listed) = app.get("/api/v1/items?limit=1000", user).await;
        assert_eq!(status, StatusCode::OK);
        let listed: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = ids.iter().skip(i).step_by(2).map(String::as_str).collect();
        assert_eq!(listed.len(), 150);
        assert!(
            expected.iter().all(|id| listed.contains(id)),
            "each user sees exactly their items"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_cannot_be_stored_fails_alone_and_its_batch_is_stored() {
    let Some(app) = spawn_app(
        Backend::Postgres(NamingStyle::SnakeCase),
        "a_row_that_cannot_be_stored_fails_alone",
    )
    .await
    else {
        return;
    };
    let owner = app.signed_in_user("owner").await;
    let repository = SeaOrmItemRepository::detect(app.db.clone()).await.unwrap();
    let item = |i: usize| Item {
        id: ItemId::generate(),
        name: ItemName::parse(&format!("row {i}")).unwrap(),
        description: None,
        // Row 100's owner does not exist: the foreign key refuses it.
        owner_id: if i == 100 { "nobody".into() } else { owner.id.clone() },
        // Every third row belongs to an organization: batched like the rest.
        organization_id: i.is_multiple_of(3).then(|| "org-batch".to_owned()),
        is_active: true,
        created_at: now(),
        updated_at: now(),
    };
    let items: Vec<Item> = (0..200).map(item).collect();
    let results = join_all(items.iter().map(|item| repository.insert(item))).await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), i == 100, "row {i}: {result:?}");
    }
    // The owner is not a user: the caller's credential names a user that is gone.
    assert!(matches!(
        results[100],
        Err(domain::Error::Unauthenticated(domain::error::AuthFailure::UnknownUser))
    ));
    assert_eq!(scalar(&app, "SELECT count(*) FROM items").await, 199);
    let (status, listed) = app.get("/api/v1/items?limit=1000", &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().map(Vec::len), Some(132), "personal rows only");
    let page = domain::item::Page::new(None, Some(1000)).unwrap();
    let in_org = repository
        .list(&domain::scope::Owner::Organization("org-batch".into()), page)
        .await
        .unwrap();
    assert_eq!(in_org.len(), 67);
    assert!(in_org.iter().all(|i| i.organization_id.as_deref() == Some("org-batch")));
}

/// A connection of its own to the app's database, tagged with `application_name`
/// so its connections can be counted.
async fn tagged_db(app: &crate::helpers::TestApp, tag: &str, max_connections: u32) -> infra::Db {
    let url = &app.vars["DATABASE_URL"];
    let separator = if url.contains('?') { '&' } else { '?' };
    let options = DbOptions {
        max_connections,
        ..DbOptions::default()
    };
    infra::Db::connect(&format!("{url}{separator}application_name={tag}"), &options)
        .await
        .unwrap()
}

async fn connections_tagged(app: &crate::helpers::TestApp, tag: &str) -> i64 {
    scalar(
        app,
        &format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{tag}'"),
    )
    .await
}

fn new_item(owner: &str, organization: Option<&str>, i: usize) -> Item {
    Item {
        id: ItemId::generate(),
        name: ItemName::parse(&format!("item {i}")).unwrap(),
        description: i
            .is_multiple_of(2)
            .then(|| domain::item::ItemDescription::parse(&format!("d{i}")).unwrap()),
        owner_id: owner.to_owned(),
        organization_id: organization.map(str::to_owned),
        is_active: true,
        created_at: now() - chrono::Duration::seconds(i64::try_from(i % 7).unwrap()),
        updated_at: now(),
    }
}

/// Newest first, as the repository orders a page.
fn newest_first(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_by_key(|item| std::cmp::Reverse((item.created_at, item.id.as_uuid())));
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_are_batched_and_each_gets_exactly_its_own_scope() {
    let Some(app) = spawn_app(
        Backend::Postgres(NamingStyle::CamelCase),
        "concurrent_reads_are_batched",
    )
    .await
    else {
        return;
    };
    let (ann, bob) = (app.signed_in_user("ann").await, app.signed_in_user("bob").await);
    let repository = SeaOrmItemRepository::detect(app.db.clone()).await.unwrap();
    let mut anns: Vec<Item> = (0..30).map(|i| new_item(&ann.id, None, i)).collect();
    let bobs: Vec<Item> = (0..30).map(|i| new_item(&bob.id, None, i)).collect();
    let org: Vec<Item> = (0..12).map(|i| new_item(&bob.id, Some("org-x"), i)).collect();
    for result in join_all(anns.iter().chain(&bobs).chain(&org).map(|item| repository.insert(item))).await {
        result.unwrap();
    }
    anns = newest_first(anns);
    let org = newest_first(org);
    let before = app.db.lane_counts().stats();

    let (ann_owner, bob_owner) = (Owner::User(ann.id.clone()), Owner::User(bob.id.clone()));
    let org_owner = Owner::Organization("org-x".into());
    let (repository, anns, org) = (&repository, &anns, &org);
    let (ann_owner, bob_owner, org_owner) = (&ann_owner, &bob_owner, &org_owner);
    let lists = (0..200).map(|i| {
        let (owner, expected) = if i % 2 == 0 {
            (ann_owner, anns)
        } else {
            (org_owner, org)
        };
        let (skip, limit) = (i % 9, 1 + i % 6);
        let page = Page::new(Some(i64::try_from(skip).unwrap()), Some(i64::try_from(limit).unwrap())).unwrap();
        async move {
            let got = repository.list(owner, page).await.unwrap();
            let want: Vec<ItemId> = expected.iter().skip(skip).take(limit).map(|item| item.id).collect();
            assert_eq!(got.iter().map(|item| item.id).collect::<Vec<_>>(), want, "page {i}");
        }
    });
    let finds = (0..200).map(|i| {
        let (item, owner, visible) = match i % 4 {
            0 => (&anns[i % 30], ann_owner, true),
            1 => (&anns[i % 30], bob_owner, false),
            2 => (&org[i % 12], org_owner, true),
            _ => (&org[i % 12], bob_owner, false),
        };
        async move {
            let got = repository.find(owner, item.id).await.unwrap();
            assert_eq!(got.as_ref(), visible.then_some(item), "find {i}");
        }
    });
    futures_util::future::join(join_all(lists), join_all(finds)).await;

    let after = app.db.lane_counts().stats();
    let (jobs, batches) = (after.jobs - before.jobs, after.batches - before.batches);
    assert_eq!(jobs, 400);
    assert!(batches * 4 <= jobs, "400 concurrent reads took {batches} batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lanes_hold_at_most_half_of_the_connections_and_fall_back_to_the_pool() {
    let Some(app) = spawn_app(Backend::Postgres(NamingStyle::SnakeCase), "lanes_hold_at_most_half").await else {
        return;
    };
    let user = app.signed_in_user("ann").await;
    let owner = Owner::User(user.id.clone());
    for (max, tag) in [(4, "lanes-budget-4"), (1, "lanes-budget-1")] {
        let db = tagged_db(&app, tag, max).await;
        let repository = std::sync::Arc::new(SeaOrmItemRepository::detect(db.clone()).await.unwrap());
        // Tasks on four threads: eight lanes want connections; two may have them.
        let tasks = (0..400usize).map(|i| {
            let (repository, owner, user) = (repository.clone(), owner.clone(), user.id.clone());
            tokio::spawn(async move {
                if i.is_multiple_of(3) {
                    repository.insert(&new_item(&user, None, i)).await.unwrap();
                } else {
                    repository.list(&owner, Page::default()).await.unwrap();
                }
            })
        });
        for task in join_all(tasks).await {
            task.unwrap();
        }
        let open = connections_tagged(&app, tag).await;
        assert!(open <= i64::from(max), "DB_POOL_MAX {max}: {open} connections open");
        assert_eq!(db.max_connections(), max);
        if max == 1 {
            assert_eq!(db.lane_budget().available_permits(), 0, "no lane connection at all");
        }
    }
    assert_eq!(scalar(&app, "SELECT count(*) FROM items").await, 2 * 134);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_close_their_connections_when_their_repository_is_dropped() {
    let Some(app) = spawn_app(
        Backend::Postgres(NamingStyle::CamelCase),
        "lanes_close_their_connections",
    )
    .await
    else {
        return;
    };
    let user = app.signed_in_user("ann").await;
    let db = tagged_db(&app, "lanes-drop", 10).await;
    let budget = db.lane_budget();
    let repository = SeaOrmItemRepository::detect(db.clone()).await.unwrap();
    repository
        .list(&Owner::User(user.id.clone()), Page::default())
        .await
        .unwrap();
    let held = 5 - budget.available_permits();
    assert!((1..=READ_CONNECTIONS).contains(&held), "the read lane holds {held}");
    let with_lane = connections_tagged(&app, "lanes-drop").await;

    drop(repository);
    let mut open = with_lane;
    for _ in 0..50 {
        open = connections_tagged(&app, "lanes-drop").await;
        if budget.available_permits() == 5 && open == with_lane - i64::try_from(held).unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        budget.available_permits(),
        5,
        "every lane connection returned its budget"
    );
    assert_eq!(open, with_lane - i64::try_from(held).unwrap(), "and was closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_lane_connection_fails_its_request_with_503_once_and_is_replaced() {
    let Some(app) = spawn_app(
        Backend::Postgres(NamingStyle::CamelCase),
        "a_terminated_lane_connection",
    )
    .await
    else {
        return;
    };
    let user = app.signed_in_user("ann").await;
    let owner = Owner::User(user.id.clone());
    let db = tagged_db(&app, "lanes-kill", 10).await;
    let repository = SeaOrmItemRepository::detect(db).await.unwrap();
    repository.insert(&new_item(&user.id, None, 1)).await.unwrap();
    assert_eq!(repository.list(&owner, Page::default()).await.unwrap().len(), 1);

    scalar(
        &app,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'lanes-kill'",
    )
    .await;
    let mut failures = 0;
    let mut answered = None;
    for _ in 0..(2 * READ_CONNECTIONS + 2) {
        match repository.list(&owner, Page::default()).await {
            Ok(items) => {
                answered = Some(items.len());
                break;
            }
            Err(error) => {
                assert!(matches!(error, domain::Error::Unavailable(_)), "{error:?}");
                failures += 1;
            }
        }
    }
    assert_eq!(answered, Some(1), "the read lane reconnected");
    assert!(failures <= READ_CONNECTIONS, "{failures} failed reads");

    let mut failures = 0;
    let mut stored = false;
    for i in 0..(2 * WRITE_CONNECTIONS + 2) {
        match repository.insert(&new_item(&user.id, None, i)).await {
            Ok(()) => {
                stored = true;
                break;
            }
            Err(error) => {
                assert!(matches!(error, domain::Error::Unavailable(_)), "{error:?}");
                failures += 1;
            }
        }
    }
    assert!(stored, "the write lane reconnected");
    assert!(failures <= WRITE_CONNECTIONS, "{failures} failed inserts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_database_costs_lane_requests_503_within_db_timeout_and_they_resume() {
    let Some(app) = spawn_app(Backend::Postgres(NamingStyle::CamelCase), "a_hung_database_costs_503").await else {
        return;
    };
    let user = app.signed_in_user("ann").await;
    let owner = Owner::User(user.id.clone());
    let url = app.vars["DATABASE_URL"].clone();
    let target = crate::helpers::host_port(&url);
    let proxy = crate::helpers::FreezableProxy::start(target.clone()).await;
    let options = DbOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_millis(500),
    };
    let db = infra::Db::connect(&crate::helpers::via(&url, &target, proxy.port), &options)
        .await
        .unwrap();
    let repository = SeaOrmItemRepository::detect(db).await.unwrap();
    repository.insert(&new_item(&user.id, None, 1)).await.unwrap();
    assert_eq!(repository.list(&owner, Page::default()).await.unwrap().len(), 1);

    proxy.freeze(true);
    for attempt in 0..3 {
        let started = std::time::Instant::now();
        let read = repository.list(&owner, Page::default()).await;
        let write = repository.insert(&new_item(&user.id, None, attempt)).await;
        assert!(matches!(read, Err(domain::Error::Unavailable(_))), "{read:?}");
        assert!(matches!(write, Err(domain::Error::Unavailable(_))), "{write:?}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "attempt {attempt} answered within the deadlines: {:?}",
            started.elapsed()
        );
    }

    proxy.freeze(false);
    let thawed = std::time::Instant::now();
    loop {
        if repository.list(&owner, Page::default()).await.is_ok() {
            break;
        }
        assert!(thawed.elapsed() < Duration::from_secs(5), "reads resume");
    }
    repository.insert(&new_item(&user.id, None, 9)).await.unwrap();
}

#[tokio::test]
async fn every_batched_list_is_an_index_scan_on_a_table_of_100_000_rows() {
    let Some(app) = spawn_app(
        Backend::Postgres(NamingStyle::CamelCase),
        "batched_list_is_an_index_scan",
    )
    .await
    else {
        return;
    };
    let (ann, bob) = (app.signed_in_user("ann").await, app.signed_in_user("bob").await);
    app.fill_100_000_items([&ann.id, &bob.id]).await;
    let pool = app.db.postgres_pool().unwrap();

    let statements = ScopedStatements::<ItemsTable>::new(OwnerIdType::Text).unwrap();
    let explain = format!("EXPLAIN {}", statements.list_sql());
    let plan: Vec<String> = sea_orm::sqlx::query_scalar(sea_orm::sqlx::AssertSqlSafe(explain))
        .bind(vec![0_i32, 1])
        .bind(vec![ann.id.clone(), bob.id.clone()])
        .bind(vec![0_i64, 20])
        .bind(vec![20_i64, 20])
        .bind(vec![2_i32])
        .bind(vec!["org-5".to_owned()])
        .bind(vec![0_i64])
        .bind(vec![20_i64])
        .fetch_all(&pool)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(!plan.contains("Seq Scan on items"), "{plan}");
    assert_eq!(
        plan.matches("Index Scan").count(),
        2,
        "one index scan per scope kind: {plan}"
    );
}
