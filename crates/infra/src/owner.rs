//! The owner column of a user-owned table has the type of better-auth's
//! `"user".id` (see `migration::owner`): `text` by default, `uuid` when
//! better-auth uses `generateId: "uuid"`. Repositories detect it once and
//! cast values to it when they write or compare.

use sea_orm::ConnectionTrait as _;
use sea_orm::sea_query::{Expr, ExprTrait as _, IntoColumnRef};

use crate::db::{Db, DbBackendKind};

/// The type of a user-owned table's `owner_id` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerIdType {
    /// `text` (better-auth's default ids; SQLite always).
    Text,
    /// `uuid` (PostgreSQL, better-auth's `generateId: "uuid"`).
    Uuid,
}

impl OwnerIdType {
    /// Reads the type of `<table>.owner_id` (migrations must have run).
    ///
    /// # Errors
    /// When the catalogue cannot be read.
    pub async fn detect(db: &Db, table: &str) -> anyhow::Result<Self> {
        if db.kind() == DbBackendKind::Sqlite {
            return Ok(Self::Text);
        }
        let row = db
            .conn()
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                db.backend(),
                "SELECT data_type::text AS t FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'owner_id'",
                [table.into()],
            ))
            .await?;
        let data_type: Option<String> = row.map(|r| r.try_get("", "t")).transpose()?;
        Ok(if data_type.as_deref() == Some("uuid") {
            Self::Uuid
        } else {
            Self::Text
        })
    }
}

impl OwnerIdType {
    /// `owner_id` as a value to write into a column of this type.
    pub fn value(self, owner_id: &str) -> Expr {
        match self {
            Self::Text => Expr::val(owner_id),
            Self::Uuid => Expr::val(owner_id).cast_as("uuid"),
        }
    }

    /// `column = owner_id`, the value cast to the column's type (so the
    /// column's index serves the comparison).
    pub fn matches(self, column: impl IntoColumnRef, owner_id: &str) -> Expr {
        Expr::col(column).eq(self.value(owner_id))
    }
}
