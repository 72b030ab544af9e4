//! [`ScopedRepository`]`<Item>` on sea-orm; the same code serves PostgreSQL and SQLite,
//! except that on PostgreSQL lists (but keyset pages), finds and inserts go
//! through the item lanes: batched, on connections of their own (see
//! [`lanes`]).
//!
//! `items.owner_id` has the type of better-auth's `"user".id` (the migration
//! follows it): `text` by default, `uuid` when better-auth is set up with
//! `advanced.database.generateId: "uuid"`. The domain's ids are text; the
//! type is detected once, values are cast to it when written or compared
//! (so the `(owner_id, created_at)` index still serves lists), and the
//! column is read back as text (`select_as` in the entity).

pub mod lanes;
mod statements;

use async_trait::async_trait;
use domain::Error;
use domain::item::{Item, ItemChanges, ItemDescription, ItemId, ItemName, Page, ScopedRepository};
use domain::scope::Owner;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::db::{Db, DbBackendKind, translate};
use crate::entities::items::{self, Column, Entity};
pub use crate::owner::OwnerIdType;
use lanes::Lanes;

/// Items stored in the `items` table.
#[derive(Debug, Clone)]
pub struct SeaOrmItemRepository {
    db: Db,
    owner: OwnerIdType,
    /// PostgreSQL only (SQLite has one writer at a time and no network round trip).
    lanes: Option<Lanes>,
}

impl SeaOrmItemRepository {
    /// An adapter over `db`, whose `owner_id` column is of type `owner`
    /// (on PostgreSQL with its lanes, started on first use on each thread).
    pub fn new(db: Db, owner: OwnerIdType) -> Self {
        let lanes = Lanes::new(&db, owner);
        Self { db, owner, lanes }
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
        let owner = OwnerIdType::detect(&db, "items").await?;
        Ok(Self::new(db, owner))
    }

    /// The rows of `owner`: a user's personal items (`owner_id = <user>`,
    /// the value cast to the column's type, and no organization), or an
    /// organization's. Each is served by its own index.
    fn owner_is(&self, owner: &Owner) -> sea_orm::Condition {
        match owner {
            Owner::User(user_id) => sea_orm::Condition::all()
                .add(self.owner.matches(Column::OwnerId, user_id))
                .add(Column::OrganizationId.is_null()),
            Owner::Organization(organization_id) => {
                sea_orm::Condition::all().add(Column::OrganizationId.eq(organization_id.as_str()))
            }
        }
    }

    fn owned(&self, owner: &Owner, id: ItemId) -> sea_orm::Condition {
        self.owner_is(owner).add(Column::Id.eq(id.as_uuid()))
    }
}

fn to_domain(model: items::Model) -> Item {
    Item {
        id: ItemId::from(model.id),
        name: ItemName::from_trusted(model.name),
        description: model.description.map(ItemDescription::from_trusted),
        owner_id: model.owner_id,
        organization_id: model.organization_id,
        is_active: model.is_active,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

#[async_trait]
impl ScopedRepository<Item> for SeaOrmItemRepository {
    async fn list(&self, owner: &Owner, page: Page) -> Result<Vec<Item>, Error> {
        if let (Some(lanes), None) = (&self.lanes, page.after()) {
            return lanes.list(owner, page).await;
        }
        let mut query = Entity::find().filter(self.owner_is(owner));
        if let Some(after) = page.after() {
            // Keyset: strictly older than the last item seen, in the same
            // (created_at, id) descending order; served by the index.
            query = query.filter(
                sea_orm::Condition::any()
                    .add(Column::CreatedAt.lt(after.created_at))
                    .add(
                        sea_orm::Condition::all()
                            .add(Column::CreatedAt.eq(after.created_at))
                            .add(Column::Id.lt(after.id.as_uuid())),
                    ),
            );
        }
        let rows = query
            .order_by_desc(Column::CreatedAt)
            .order_by_desc(Column::Id)
            .offset(page.skip())
            .limit(page.limit())
            .all(self.db.conn())
            .await
            .map_err(translate)?;
        Ok(rows.into_iter().map(to_domain).collect())
    }

    async fn find(&self, owner: &Owner, id: ItemId) -> Result<Option<Item>, Error> {
        if let Some(lanes) = &self.lanes {
            return lanes.find(owner, id).await;
        }
        let row = Entity::find()
            .filter(self.owned(owner, id))
            .one(self.db.conn())
            .await
            .map_err(translate)?;
        Ok(row.map(to_domain))
    }

    async fn insert(&self, item: &Item) -> Result<(), Error> {
        if let Some(lanes) = &self.lanes {
            return lanes.insert(item).await;
        }
        let row = items::ActiveModel {
            id: Set(item.id.as_uuid()),
            name: Set(item.name.as_str().to_owned()),
            description: Set(item.description.as_ref().map(|d| d.as_str().to_owned())),
            owner_id: Set(item.owner_id.clone()),
            organization_id: Set(item.organization_id.clone()),
            is_active: Set(item.is_active),
            created_at: Set(item.created_at),
            updated_at: Set(item.updated_at),
        };
        Entity::insert(row)
            .exec_without_returning(self.db.conn())
            .await
            .map_err(|error| match error.sql_err() {
                // The owner_id's foreign key: the user is gone.
                Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
                    Error::Unauthenticated(domain::error::AuthFailure::UnknownUser)
                }
                _ => translate(error),
            })?;
        Ok(())
    }

    async fn update(&self, owner: &Owner, id: ItemId, changes: &ItemChanges) -> Result<Option<Item>, Error> {
        let patch = &changes.patch;
        let mut update = Entity::update_many()
            .col_expr(Column::UpdatedAt, Expr::value(changes.updated_at))
            .filter(self.owned(owner, id));
        if let Some(judged) = changes.unless_changed_since {
            update = update.filter(Column::UpdatedAt.eq(judged));
        }
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
        let conn = self.db.conn();
        // PostgreSQL: one statement, `UPDATE … RETURNING`. (SQLite's
        // RETURNING does not alias `owner_id`'s `select_as` cast, so it
        // updates, then reads.)
        if self.db.kind() == DbBackendKind::Postgres && conn.support_returning() {
            let rows = update.exec_with_returning(conn).await.map_err(translate)?;
            return Ok(rows.into_iter().next().map(to_domain));
        }
        let result = update.exec(conn).await.map_err(translate)?;
        if result.rows_affected == 0 {
            return Ok(None);
        }
        self.find(owner, id).await
    }

    async fn delete_unchanged(
        &self,
        owner: &Owner,
        id: ItemId,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, Error> {
        let result = Entity::delete_many()
            .filter(self.owned(owner, id))
            .filter(Column::UpdatedAt.eq(updated_at))
            .exec(self.db.conn())
            .await
            .map_err(translate)?;
        Ok(result.rows_affected > 0)
    }

    async fn delete(&self, owner: &Owner, id: ItemId) -> Result<bool, Error> {
        let result = Entity::delete_many()
            .filter(self.owned(owner, id))
            .exec(self.db.conn())
            .await
            .map_err(translate)?;
        Ok(result.rows_affected > 0)
    }
}
