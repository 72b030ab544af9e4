//! Item lists sorted by `name` or `updated_at` (`?sort=`, see
//! `domain::resource::list`) are keyset scans in either scope:
//! `(owner_id, name, id)`, `(organization_id, name, id)` and the same for
//! `updated_at`. Searching by name (`q`) reads the scope's rows through
//! these and filters them: a scope's items are few, so no trigram index is
//! needed (see docs/performance.md).

use sea_orm_migration::prelude::*;

use crate::scoped::{create_list_indexes, drop_list_indexes};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The text columns item lists sort by.
const SORTED: &[&str] = &["name"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_list_indexes(manager, "items", SORTED).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_list_indexes(manager, "items", SORTED).await
    }
}
