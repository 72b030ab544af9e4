//! Creates `items`, owned by better-auth users, indexed for newest-first lists.
//!
//! `owner_id` takes the type of better-auth's `"user".id`: `text` by default,
//! `uuid` when better-auth is set up with `advanced.database.generateId:
//! "uuid"` — a foreign key needs both sides of one type.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Items {
    Table,
    Id,
    Name,
    Description,
    OwnerId,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

/// better-auth's user table; referenced, never modified.
#[derive(DeriveIden)]
enum User {
    Table,
    Id,
}

const OWNER_CREATED_INDEX: &str = "idx_items_owner_id_created_at";
const OWNER_FOREIGN_KEY: &str = "fk_items_owner_id_user";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut owner_id = crate::owner::owner_id_column(manager, Items::OwnerId).await?;
        manager
            .create_table(
                Table::create()
                    .table(Items::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Items::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Items::Name).string_len(255).not_null())
                    .col(ColumnDef::new(Items::Description).text().null())
                    .col(owner_id.not_null())
                    .col(ColumnDef::new(Items::IsActive).boolean().not_null().default(true))
                    .col(ColumnDef::new(Items::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Items::UpdatedAt).timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name(OWNER_FOREIGN_KEY)
                            .from(Items::Table, Items::OwnerId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OWNER_CREATED_INDEX)
                    .table(Items::Table)
                    .col(Items::OwnerId)
                    .col(Items::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Items::Table).if_exists().to_owned())
            .await
    }
}
