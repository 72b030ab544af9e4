//! The connection budget is shared fairly: however saturated resource
//! traffic is (items here: lanes, their pool fallback, and the kit's
//! repository), the pool keeps connections for credential lookups, so a
//! session still answers within `DB_TIMEOUT_MS`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::auth::{SessionStore as _, SessionToken};
use domain::item::{Item, ItemChanges, ItemId, ItemName, ItemPatch, Page, Position, ScopedRepository as _};
use domain::scope::Owner;
use infra::Db;
use infra::better_auth::NamingStyle;
use infra::better_auth::schema::BetterAuthSchema;
use infra::better_auth::session_store::SqlSessionStore;
use infra::db::DbOptions;
use infra::item_repository::SeaOrmItemRepository;
use sea_orm::{ConnectionTrait as _, TransactionTrait as _};

use crate::helpers::{Backend, now, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_lookup_answers_while_item_traffic_holds_every_connection_it_may() {
    let test = "a_session_lookup_answers_while_item_traffic_saturates";
    let Some(app) = spawn_app(Backend::Postgres(NamingStyle::CamelCase), test).await else {
        return;
    };
    let user = app.signed_in_user("ann").await;
    let timeout = Duration::from_secs(2);
    // DB_POOL_MAX=4: two lane connections, a pool of two, one of them kept for lookups.
    let options = DbOptions {
        max_connections: 4,
        acquire_timeout: timeout,
    };
    let url = app.vars["DATABASE_URL"].clone();
    let db = Db::connect(&url, &options).await.unwrap();
    let schema = BetterAuthSchema::detect(&db).await.unwrap();
    let sessions = SqlSessionStore::new(db.clone(), &schema);
    let items = Arc::new(SeaOrmItemRepository::detect(db.clone()).await.unwrap());
    let owner = Owner::User(user.id.clone());
    let token = SessionToken::parse(&user.token).unwrap();
    assert!(sessions.find_by_token(&token).await.unwrap().is_some());

    // Every item statement now waits on a lock another session holds, and
    // keeps whatever connection it got meanwhile.
    let locker = Db::connect(&url, &DbOptions::default()).await.unwrap();
    let lock = locker.conn().begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let traffic: Vec<_> = (0..40usize)
        .map(|i| {
            let (items, owner, user) = (items.clone(), owner.clone(), user.id.clone());
            tokio::spawn(async move {
                let id = ItemId::generate();
                let result = match i % 4 {
                    0 => items.list(&owner, Page::default()).await.map(drop),
                    1 => {
                        let after = Position {
                            key: domain::page::SortKey::Time(now()),
                            id,
                        };
                        let page = Page::default().starting_after(Some(after));
                        items.list(&owner, page).await.map(drop)
                    }
                    2 => {
                        let item = Item {
                            id,
                            name: ItemName::parse("queued").unwrap(),
                            description: None,
                            owner_id: user,
                            organization_id: None,
                            is_active: true,
                            created_at: now(),
                            updated_at: now(),
                        };
                        items.insert(&item).await
                    }
                    _ => {
                        let changes = ItemChanges {
                            patch: ItemPatch::default(),
                            updated_at: now(),
                            unless_changed_since: None,
                        };
                        items.update(&owner, id, &changes).await.map(drop)
                    }
                };
                // Served once the lock goes, or 503 when it outlasted DB_TIMEOUT_MS.
                assert!(
                    matches!(result, Ok(()) | Err(domain::Error::Unavailable(_))),
                    "{result:?}"
                );
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let found = sessions.find_by_token(&token).await;
    let took = started.elapsed();
    assert!(
        matches!(found, Ok(Some(_))),
        "the session lookup failed while items saturated the pool: {found:?}"
    );
    assert!(took < timeout / 2, "the session lookup took {took:?}");
    let budget = db.resource_budget().unwrap();
    assert_eq!(budget.available_permits(), 0, "item traffic did hold all it may");

    lock.rollback().await.unwrap();
    for task in traffic {
        task.await.unwrap();
    }
    db.close().await;
    locker.close().await;
}
