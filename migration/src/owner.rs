//! What every table owned by a better-auth user needs: an owner column of the
//! type of better-auth's `"user".id` — `text` by default, `uuid` when
//! better-auth is set up with `advanced.database.generateId: "uuid"` — so
//! that a foreign key to it (with `ON DELETE CASCADE`) can be created.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

/// True when better-auth's `"user".id` is a PostgreSQL `uuid` column.
///
/// # Errors
/// When the catalogue cannot be read.
pub async fn user_id_is_uuid(manager: &SchemaManager<'_>) -> Result<bool, DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(false);
    }
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT data_type::text AS t FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'user' AND column_name = 'id'",
        ))
        .await?;
    Ok(row.map(|r| r.try_get::<String>("", "t")).transpose()?.as_deref() == Some("uuid"))
}

/// A column `name` of the type of `"user".id` (add `.not_null()` and a foreign key).
///
/// # Errors
/// When the catalogue cannot be read.
pub async fn owner_id_column(manager: &SchemaManager<'_>, name: impl IntoIden) -> Result<ColumnDef, DbErr> {
    let mut column = ColumnDef::new(name);
    if user_id_is_uuid(manager).await? {
        column.uuid();
    } else {
        column.text();
    }
    Ok(column)
}
