//! Items' [`ScopedRepository`]: the generic [`SeaOrmRepository`] over the
//! `items` table ([`ItemsTable`]), and on PostgreSQL the item lanes in front
//! of it for lists (but keyset pages), finds and inserts: batched, on
//! connections of their own (see [`lanes`]).

pub mod lanes;
mod statements;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::item::{Item, ItemChanges, ItemDescription, ItemId, ItemName, ItemPatch, Page, ScopedRepository};
use domain::scope::Owner;
use sea_orm::sea_query::Expr;
use sea_orm::{Set, UpdateMany};

use crate::db::Db;
use crate::entities::items::{self, Column, Entity};
pub use crate::owner::OwnerIdType;
use crate::resource::{ScopedColumns, ScopedTable, SeaOrmRepository};
use lanes::Lanes;

/// The `items` table.
#[derive(Debug, Clone, Copy)]
pub struct ItemsTable;

impl ScopedTable for ItemsTable {
    type Record = Item;
    type Entity = Entity;
    const TABLE: &'static str = "items";

    fn columns() -> ScopedColumns<Column> {
        ScopedColumns {
            id: Column::Id,
            owner_id: Column::OwnerId,
            organization_id: Column::OrganizationId,
            created_at: Column::CreatedAt,
            updated_at: Column::UpdatedAt,
        }
    }

    fn to_record(row: items::Model) -> Item {
        Item {
            id: ItemId::from(row.id),
            name: ItemName::from_trusted(row.name),
            description: row.description.map(ItemDescription::from_trusted),
            owner_id: row.owner_id,
            organization_id: row.organization_id,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    fn to_row(item: &Item) -> items::ActiveModel {
        items::ActiveModel {
            id: Set(item.id.as_uuid()),
            name: Set(item.name.as_str().to_owned()),
            description: Set(item.description.as_ref().map(|d| d.as_str().to_owned())),
            owner_id: Set(item.owner_id.clone()),
            organization_id: Set(item.organization_id.clone()),
            is_active: Set(item.is_active),
            created_at: Set(item.created_at),
            updated_at: Set(item.updated_at),
        }
    }

    fn patch(mut update: UpdateMany<Entity>, patch: &ItemPatch) -> UpdateMany<Entity> {
        if let Some(name) = &patch.name {
            update = update.col_expr(Column::Name, Expr::value(name.as_str()));
        }
        if let Some(description) = &patch.description {
            let value: Option<String> = description.as_ref().map(|d| d.as_str().to_owned());
            update = update.col_expr(Column::Description, Expr::value(value));
        }
        if let Some(is_active) = patch.is_active {
            update = update.col_expr(Column::IsActive, Expr::value(is_active));
        }
        update
    }
}

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
