//! The generic repository of the resource kit (`infra::resource::SeaOrmRepository`)
//! where better-auth's user ids are PostgreSQL `uuid`s (`generateId: "uuid"`):
//! every statement casts the owner to the column's type, so inserts, reads,
//! updates and deletes work for any resource on that schema too.

use domain::item::{Item, ItemChanges, ItemId, ItemName, ItemPatch, Page, ScopedRepository};
use domain::scope::Owner;
use infra::db::DbOptions;
use infra::item_repository::ItemsTable;
use infra::resource::SeaOrmRepository;
use infra::{Db, OwnerIdType};
use migration::MigratorTrait as _;
use sea_orm::ConnectionTrait as _;

use crate::helpers::{Backend, ScratchDb, now};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uuid_owner_column_is_written_and_compared_as_uuid() {
    let backend = Backend::Postgres(infra::better_auth::NamingStyle::CamelCase);
    let Some(scratch) = ScratchDb::create(backend, "a_uuid_owner_column").await else {
        return;
    };
    let db = Db::connect(&scratch.url, &DbOptions::default()).await.unwrap();
    db.conn()
        .execute_unprepared(r#"CREATE TABLE "user" (id uuid PRIMARY KEY, name text NOT NULL)"#)
        .await
        .unwrap();
    migration::Migrator::up(db.conn(), None).await.unwrap();
    let repository = SeaOrmRepository::<ItemsTable>::detect(db.clone()).await.unwrap();
    assert_eq!(repository.owner_type(), OwnerIdType::Uuid);

    let user = uuid::Uuid::new_v4().to_string();
    db.conn()
        .execute_unprepared(&format!(r#"INSERT INTO "user" (id, name) VALUES ('{user}', 'ann')"#))
        .await
        .unwrap();
    let item = Item {
        id: ItemId::generate(),
        name: ItemName::parse("lamp").unwrap(),
        description: None,
        owner_id: user.clone(),
        organization_id: None,
        is_active: true,
        created_at: now(),
        updated_at: now(),
    };
    repository.insert(&item).await.unwrap();
    let owner = Owner::User(user.clone());
    assert_eq!(repository.find(&owner, item.id).await.unwrap().as_ref(), Some(&item));
    assert_eq!(
        repository.list(&owner, Page::default()).await.unwrap(),
        std::slice::from_ref(&item)
    );
    let changes = ItemChanges {
        patch: ItemPatch {
            is_active: Some(false),
            ..ItemPatch::default()
        },
        updated_at: now(),
        unless_changed_since: Some(item.updated_at),
    };
    let updated = repository.update(&owner, item.id, &changes).await.unwrap().unwrap();
    assert!(!updated.is_active);
    let stranger = Owner::User(uuid::Uuid::new_v4().to_string());
    assert!(
        !repository.delete(&stranger, item.id).await.unwrap(),
        "another owner deletes nothing"
    );
    assert!(repository.delete(&owner, item.id).await.unwrap());
    let unknown = Item {
        id: ItemId::generate(),
        owner_id: uuid::Uuid::new_v4().to_string(),
        ..item
    };
    assert!(
        matches!(
            repository.insert(&unknown).await,
            Err(domain::Error::Unauthenticated(_))
        ),
        "an owner who is not a user is refused by the foreign key"
    );
    db.close().await;
}
