//! New items reach PostgreSQL in batches (`infra::item_repository::batch`):
//! under concurrency many rows share one statement and one commit, every
//! `201` is stored, and a bad row fails alone (its batch is split in halves
//! until it is found).

use domain::item::{Item, ItemId, ItemName, ItemRepository};
use futures_util::future::join_all;
use infra::better_auth::NamingStyle;
use infra::item_repository::SeaOrmItemRepository;
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
    assert!(matches!(results[100], Err(domain::Error::Unexpected(_))));
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
