//! The `items` table (see `migration/src/m20260101_000001_create_items.rs`).

use sea_orm::entity::prelude::*;

/// One row of `items`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "items")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Trimmed name, 1–255 characters.
    pub name: String,
    /// Optional description.
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// better-auth user id of the owner (`text`, or `uuid` read back as text).
    #[sea_orm(column_type = "Text", select_as = "text")]
    pub owner_id: String,
    /// The better-auth organization it belongs to; null for a personal item.
    #[sea_orm(column_type = "Text", nullable)]
    pub organization_id: Option<String>,
    /// Active flag.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// `items` has no relation that this service navigates.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
