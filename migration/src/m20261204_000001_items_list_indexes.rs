//! Item lists sorted by `name` or `updated_at` (`?sort=`, see
//! `domain::resource::list`) are keyset scans in either scope:
//! `(owner_id, name, id)`, `(organization_id, name, id)` and the same for
//! `updated_at`. Searching by name (`q`) reads the scope's rows through
//! the scope's index and filters them; a trigram index for large scopes is
//! an operator's choice (it needs `pg_trgm`): see docs/operations.md,
//! "Searching large scopes".

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
