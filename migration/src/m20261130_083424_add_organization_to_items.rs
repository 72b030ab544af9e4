//! Items can belong to a better-auth organization: `items.organization_id`
//! (null for personal items) and an index for an organization's newest-first
//! lists. Plain `text` with no foreign key: the organization plugin's tables
//! need not exist (the service works without the plugin), and better-auth's
//! own `deleteOrganization` must not be blocked by items. Items of a deleted
//! organization are unreachable at once from every other scope (queries
//! always say which organization they read) and are removed by the service's
//! periodic clean-up (see the README, "Organizations").

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Items {
    Table,
    OrganizationId,
    CreatedAt,
}

const ORGANIZATION_CREATED_INDEX: &str = "idx_items_organization_id_created_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .add_column_if_not_exists(ColumnDef::new(Items::OrganizationId).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(ORGANIZATION_CREATED_INDEX)
                    .table(Items::Table)
                    .col(Items::OrganizationId)
                    .col(Items::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(ORGANIZATION_CREATED_INDEX)
                    .table(Items::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .drop_column(Items::OrganizationId)
                    .to_owned(),
            )
            .await
    }
}
