//! What every resource's storage adapter gets: a sea-orm repository written
//! once for any scoped table ([`SeaOrmRepository`], given a [`ScopedTable`]),
//! the lanes in front of it on PostgreSQL ([`LanedRepository`], with the
//! batched statements of [`ScopedStatements`]), and tracing around its calls
//! ([`TracedRepository`]).

mod batched;
mod sea_orm;
mod traced;

pub use batched::{LanedRepository, ScopedJob, ScopedStatements};
pub use sea_orm::{ScopedColumns, ScopedTable, SeaOrmRepository};
pub use traced::TracedRepository;

/// Declares a resource's [`ScopedTable`]: the scoped columns map onto the
/// record's scoped fields, and each of the resource's own fields onto its
/// column by kind:
///
/// - `short`: a `domain::fields::ShortText` kept in a `String` column;
/// - `long`: an `Option<domain::fields::LongText>` in a nullable text column
///   (a patch of `Some(None)` clears it);
/// - `plain`: a value kept as is (`bool`, numbers).
///
/// ```ignore
/// infra::scoped_table!(ItemsTable: Item = "items" in items {
///     name: short => Name,
///     description: long => Description,
///     is_active: plain => IsActive,
/// });
/// ```
///
/// `items` is the module of the sea-orm entity; each field names its
/// `Column` variant. A patch is the record's `Patch` with an `Option` per field.
#[macro_export]
macro_rules! scoped_table {
    ($table:ident : $record:ident = $name:literal in $entity:ident {
        $($field:ident : $kind:ident => $column:ident),* $(,)?
    }) => {
        #[doc = concat!("The `", $name, "` table.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $table;

        impl $crate::resource::ScopedTable for $table {
            type Record = $record;
            type Entity = $entity::Entity;
            const TABLE: &'static str = $name;

            fn columns() -> $crate::resource::ScopedColumns<$entity::Column> {
                $crate::resource::ScopedColumns {
                    id: $entity::Column::Id,
                    owner_id: $entity::Column::OwnerId,
                    organization_id: $entity::Column::OrganizationId,
                    created_at: $entity::Column::CreatedAt,
                    updated_at: $entity::Column::UpdatedAt,
                }
            }

            fn to_record(row: $entity::Model) -> $record {
                $record {
                    id: row.id.into(),
                    $($field: $crate::scoped_table!(@read $kind row.$field),)*
                    owner_id: row.owner_id,
                    organization_id: row.organization_id,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                }
            }

            fn to_row(record: &$record) -> $entity::ActiveModel {
                $entity::ActiveModel {
                    id: ::sea_orm::Set(record.id.as_uuid()),
                    $($field: ::sea_orm::Set($crate::scoped_table!(@write $kind record.$field)),)*
                    owner_id: ::sea_orm::Set(record.owner_id.clone()),
                    organization_id: ::sea_orm::Set(record.organization_id.clone()),
                    created_at: ::sea_orm::Set(record.created_at),
                    updated_at: ::sea_orm::Set(record.updated_at),
                }
            }

            fn patch(
                mut update: ::sea_orm::UpdateMany<$entity::Entity>,
                patch: &<$record as ::domain::resource::Record>::Patch,
            ) -> ::sea_orm::UpdateMany<$entity::Entity> {
                $(
                    if let Some(value) = &patch.$field {
                        update = update.col_expr(
                            $entity::Column::$column,
                            ::sea_orm::sea_query::Expr::value($crate::scoped_table!(@write $kind *value)),
                        );
                    }
                )*
                update
            }
        }
    };
    (@read short $value:expr) => { ::domain::fields::ShortText::from_trusted($value) };
    (@read long $value:expr) => { $value.map(::domain::fields::LongText::from_trusted) };
    (@read plain $value:expr) => { $value };
    (@write short $value:expr) => { $value.as_str().to_owned() };
    (@write long $value:expr) => { $value.as_ref().map(|text| text.as_str().to_owned()) };
    (@write plain $value:expr) => { $value.clone() };
}
