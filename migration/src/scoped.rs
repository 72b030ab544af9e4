//! The table of a scoped resource (see `domain::resource`), written once:
//! `id` (UUID primary key), the resource's own columns, `owner_id` of the
//! type of better-auth's `"user".id` with a cascading foreign key (see
//! [`crate::owner`]), `organization_id` (null for a personal record; plain
//! `text` without a foreign key, as for items: the organization plugin's
//! tables need not exist), `created_at` and `updated_at`, and the two
//! indexes that make each scope's newest-first list a keyset scan:
//! `(owner_id, created_at)` and `(organization_id, created_at)`.

use sea_orm_migration::prelude::*;

/// Creates `table` with the scoped columns around `columns`.
///
/// # Errors
/// As the statements do (the `user` table must exist on PostgreSQL).
pub async fn create_table(manager: &SchemaManager<'_>, table: &str, columns: Vec<ColumnDef>) -> Result<(), DbErr> {
    let name = Alias::new(table);
    let owner_id = crate::owner::owner_id_column(manager, Alias::new("owner_id")).await?;
    let mut create = Table::create();
    create
        .table(name.clone())
        .if_not_exists()
        .col(ColumnDef::new(Alias::new("id")).uuid().not_null().primary_key());
    for mut column in columns {
        create.col(&mut column);
    }
    create
        .col(owner_id.to_owned().not_null())
        .col(ColumnDef::new(Alias::new("organization_id")).text().null())
        .col(
            ColumnDef::new(Alias::new("created_at"))
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("updated_at"))
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name(format!("fk_{table}_owner_id_user"))
                .from(name.clone(), Alias::new("owner_id"))
                .to(Alias::new("user"), Alias::new("id"))
                .on_delete(ForeignKeyAction::Cascade)
                .on_update(ForeignKeyAction::Cascade),
        );
    manager.create_table(create.to_owned()).await?;
    for scope in ["owner_id", "organization_id"] {
        manager
            .create_index(
                Index::create()
                    .name(format!("idx_{table}_{scope}_created_at"))
                    .table(name.clone())
                    .col(Alias::new(scope))
                    .col(Alias::new("created_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// The indexes that keep each sort of a scoped table's lists a keyset scan
/// (see `domain::resource::list`): `(scope, column, id)` for both scopes and
/// `updated_at` plus each of `sorted` (the text fields its list spec sorts
/// by). `created_at` has its own since [`create_table`].
///
/// # Errors
/// As the statements do.
pub async fn create_list_indexes(manager: &SchemaManager<'_>, table: &str, sorted: &[&str]) -> Result<(), DbErr> {
    for (scope, column) in list_indexes(sorted) {
        manager
            .create_index(
                Index::create()
                    .name(format!("idx_{table}_{scope}_{column}_id"))
                    .table(Alias::new(table))
                    .col(Alias::new(scope))
                    .col(Alias::new(column))
                    .col(Alias::new("id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Drops what [`create_list_indexes`] created.
///
/// # Errors
/// As the statements do.
pub async fn drop_list_indexes(manager: &SchemaManager<'_>, table: &str, sorted: &[&str]) -> Result<(), DbErr> {
    for (scope, column) in list_indexes(sorted) {
        manager
            .drop_index(
                Index::drop()
                    .name(format!("idx_{table}_{scope}_{column}_id"))
                    .table(Alias::new(table))
                    .if_exists()
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

fn list_indexes<'a>(sorted: &'a [&'a str]) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
    std::iter::once("updated_at")
        .chain(sorted.iter().copied())
        .flat_map(|column| [("owner_id", column), ("organization_id", column)])
}

/// Drops `table` (and its indexes with it).
///
/// # Errors
/// As the statement does.
pub async fn drop_table(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Alias::new(table)).if_exists().to_owned())
        .await
}
