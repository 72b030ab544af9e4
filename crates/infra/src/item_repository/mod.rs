//! Items' [`ScopedRepository`]: the generic [`SeaOrmRepository`] over the
//! `items` table ([`ItemsTable`]), and on PostgreSQL the item lanes in front
//! of it for lists (but keyset pages), finds and inserts: batched, on
//! connections of their own (see [`lanes`]).

pub mod lanes;
mod statements;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::item::{Item, ItemChanges, ItemId, Page, ScopedRepository};
use domain::scope::Owner;

use crate::db::Db;
use crate::entities::items;
pub use crate::owner::OwnerIdType;
use crate::resource::{ScopedTable, SeaOrmRepository};
use lanes::Lanes;

crate::scoped_table!(ItemsTable: Item = "items" in items {
    name: short => Name,
    description: long => Description,
    is_active: plain => IsActive,
});

/// Items stored in the `items` table.
#[derive(Debug, Clone)]
pub struct SeaOrmItemRepository {
    table: SeaOrmRepository<ItemsTable>,
    /// PostgreSQL only (SQLite has one writer at a time and no network round trip).
    lanes: Option<Lanes>,
}

impl SeaOrmItemRepository {
    /// An adapter over `db`, whose `owner_id` column is of type `owner`
    /// (on PostgreSQL with its lanes, started on first use on each thread).
    pub fn new(db: Db, owner: OwnerIdType) -> Self {
        let lanes = Lanes::new(&db, owner);
        Self {
            table: SeaOrmRepository::new(db, owner),
            lanes,
        }
    }

    /// The PostgreSQL lanes (`None` on SQLite), to watch how much they batch.
    pub fn lanes(&self) -> Option<&Lanes> {
        self.lanes.as_ref()
    }

    /// [`SeaOrmItemRepository::new`] with the column type read from the database.
    ///
    /// # Errors
    /// When the catalogue cannot be read.
    pub async fn detect(db: Db) -> anyhow::Result<Self> {
        let owner = OwnerIdType::detect(&db, ItemsTable::TABLE).await?;
        Ok(Self::new(db, owner))
    }
}

#[async_trait]
impl ScopedRepository<Item> for SeaOrmItemRepository {
    async fn list(&self, owner: &Owner, page: Page) -> Result<Vec<Item>, Error> {
        match (&self.lanes, page.after()) {
            (Some(lanes), None) => lanes.list(owner, page).await,
            _ => self.table.list(owner, page).await,
        }
    }

    async fn find(&self, owner: &Owner, id: ItemId) -> Result<Option<Item>, Error> {
        match &self.lanes {
            Some(lanes) => lanes.find(owner, id).await,
            None => self.table.find(owner, id).await,
        }
    }

    async fn insert(&self, item: &Item) -> Result<(), Error> {
        match &self.lanes {
            Some(lanes) => lanes.insert(item).await,
            None => self.table.insert(item).await,
        }
    }

    async fn update(&self, owner: &Owner, id: ItemId, changes: &ItemChanges) -> Result<Option<Item>, Error> {
        self.table.update(owner, id, changes).await
    }

    async fn delete(&self, owner: &Owner, id: ItemId) -> Result<bool, Error> {
        self.table.delete(owner, id).await
    }

    async fn delete_unchanged(&self, owner: &Owner, id: ItemId, updated_at: DateTime<Utc>) -> Result<bool, Error> {
        self.table.delete_unchanged(owner, id, updated_at).await
    }
}
