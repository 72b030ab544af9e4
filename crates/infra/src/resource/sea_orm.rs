//! [`SeaOrmRepository`]: the [`ScopedRepository`] of any resource whose table
//! has the scoped columns (`id`, `owner_id`, `organization_id`,
//! `created_at`, `updated_at`), on PostgreSQL and SQLite alike. Every call
//! holds a resource permit of the database ([`Db::resource_permit`]) while it
//! uses a pooled connection, so resource traffic never takes the
//! connections kept for credential lookups. A resource
//! says how its rows and its records map onto each other ([`ScopedTable`]);
//! scoping, keyset pages, conditional writes and error mapping are written
//! once, here.
//!
//! `owner_id` has the type of better-auth's `"user".id` (the migrations
//! follow it): `text` by default, `uuid` when better-auth is set up with
//! `advanced.database.generateId: "uuid"`. The domain's ids are text; the
//! type is detected once, values are cast to it when written or compared
//! (so the `(owner_id, created_at)` index still serves lists), and the
//! column is read back as text (`select_as = "text"` in the entity).

use std::marker::PhantomData;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::resource::{Changes, Id, Record, RecordPage, ScopedRepository};
use domain::scope::Owner;
use std::str::FromStr as _;

use domain::page::SortKey;
use domain::resource::list::{ListQuery, SortField};
use sea_orm::sea_query::{Expr, ExprTrait as _, Func, LikeExpr, Order, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IdenStatic, Iterable,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait as _, Select, UpdateMany,
};

use crate::db::{Db, DbBackendKind, translate};
use crate::owner::OwnerIdType;

/// The columns every scoped table has.
#[derive(Debug, Clone, Copy)]
pub struct ScopedColumns<C> {
    /// The primary key (a UUID).
    pub id: C,
    /// The creator (better-auth user id).
    pub owner_id: C,
    /// The organization; null for a personal record.
    pub organization_id: C,
    /// Creation time.
    pub created_at: C,
    /// Last change.
    pub updated_at: C,
}

/// How a resource's table and its records map onto each other.
pub trait ScopedTable: Send + Sync + 'static {
    /// The domain record.
    type Record: Record;
    /// The sea-orm entity of the table.
    type Entity: EntityTrait;
    /// The table's name, for [`OwnerIdType::detect`].
    const TABLE: &'static str;

    /// The scoped columns.
    fn columns() -> ScopedColumns<<Self::Entity as EntityTrait>::Column>;
    /// A row read back (values were validated on the way in).
    fn to_record(row: <Self::Entity as EntityTrait>::Model) -> Self::Record;
    /// The row of a new record.
    fn to_row(record: &Self::Record) -> <Self::Entity as EntityTrait>::ActiveModel;
    /// `update` with the patch's fields set (`updated_at` and the scope are
    /// the repository's).
    fn patch(update: UpdateMany<Self::Entity>, patch: &<Self::Record as Record>::Patch) -> UpdateMany<Self::Entity>;
}

/// A resource's records in its table, through sea-orm.
pub struct SeaOrmRepository<T> {
    db: Db,
    owner: OwnerIdType,
    table: PhantomData<fn() -> T>,
}

impl<T> Clone for SeaOrmRepository<T> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            owner: self.owner,
            table: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for SeaOrmRepository<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeaOrmRepository")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl<T: ScopedTable> SeaOrmRepository<T> {
    /// A repository over `db`, whose `owner_id` column is of type `owner`.
    pub fn new(db: Db, owner: OwnerIdType) -> Self {
        Self {
            db,
            owner,
            table: PhantomData,
        }
    }

    /// [`SeaOrmRepository::new`] with the column type read from the database.
    ///
    /// # Errors
    /// When the catalogue cannot be read.
    pub async fn detect(db: Db) -> anyhow::Result<Self> {
        let owner = OwnerIdType::detect(&db, T::TABLE).await?;
        Ok(Self::new(db, owner))
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The type of the `owner_id` column.
    pub fn owner_type(&self) -> OwnerIdType {
        self.owner
    }

    /// The rows of `owner`: a user's personal records (`owner_id = <user>`,
    /// the value cast to the column's type, and no organization), or an
    /// organization's. Each is served by its own index.
    fn owner_is(&self, owner: &Owner) -> Condition {
        let columns = T::columns();
        match owner {
            Owner::User(user_id) => Condition::all()
                .add(self.owner.matches(columns.owner_id, user_id))
                .add(columns.organization_id.is_null()),
            Owner::Organization(organization_id) => {
                Condition::all().add(columns.organization_id.eq(organization_id.as_str()))
            }
        }
    }

    /// The list query of `page` in `owner`'s scope: its filter, its order
    /// (the sort column, then id, in one direction) and, for a keyset page,
    /// strictly after its position; each sort is served by a `(scope,
    /// column, id)` index.
    fn list_select(&self, owner: &Owner, page: &RecordPage<T::Record>) -> Result<Select<T::Entity>, Error> {
        let columns = T::columns();
        let query = page.query();
        let mut select = T::Entity::find()
            .filter(self.owner_is(owner))
            .filter(filter::<T>(query)?);
        let sort = sort_column::<T>(query.sort.field)?;
        let descending = query.sort.descending;
        if let Some(after) = page.after() {
            let key = match &after.key {
                SortKey::Time(at) => sea_orm::Value::from(*at),
                SortKey::Text(text) => sea_orm::Value::from(text.clone()),
            };
            let id = after.id.as_uuid();
            select = select.filter(if descending {
                Condition::any()
                    .add(Expr::col(sort).lt(key.clone()))
                    .add(Condition::all().add(Expr::col(sort).eq(key)).add(columns.id.lt(id)))
            } else {
                Condition::any()
                    .add(Expr::col(sort).gt(key.clone()))
                    .add(Condition::all().add(Expr::col(sort).eq(key)).add(columns.id.gt(id)))
            });
        }
        let order = if descending { Order::Desc } else { Order::Asc };
        Ok(select
            .order_by(sort, order.clone())
            .order_by(columns.id, order)
            .offset(page.skip())
            .limit(page.limit()))
    }

    /// The statement a list of `page` in `owner`'s scope runs (to `EXPLAIN` it).
    ///
    /// # Errors
    /// When the page's query names a column the table does not have.
    pub fn list_statement(&self, owner: &Owner, page: &RecordPage<T::Record>) -> Result<sea_orm::Statement, Error> {
        Ok(self.list_select(owner, page)?.build(self.db.backend()))
    }

    fn owned(&self, owner: &Owner, id: Id<T::Record>) -> Condition {
        self.owner_is(owner).add(T::columns().id.eq(id.as_uuid()))
    }
}

/// The column of sort field `field`.
fn sort_column<T: ScopedTable>(field: SortField) -> Result<<T::Entity as EntityTrait>::Column, Error> {
    let columns = T::columns();
    match field {
        SortField::CreatedAt => Ok(columns.created_at),
        SortField::UpdatedAt => Ok(columns.updated_at),
        SortField::Text(name) => column::<T>(name),
    }
}

/// The column named `name` (a field a [`domain::resource::list::ListSpec`] names).
fn column<T: ScopedTable>(name: &str) -> Result<<T::Entity as EntityTrait>::Column, Error> {
    <T::Entity as EntityTrait>::Column::from_str(name).map_err(|_| {
        Error::Unexpected(anyhow::anyhow!(
            "{} has no column {name} (its list spec names it)",
            T::TABLE
        ))
    })
}

/// The rows `query`'s filter keeps: flags equal, the searched column
/// containing the text in any case (`LOWER(column) LIKE pattern ESCAPE
/// '\'`, the pattern lowered, with `%`, `_` and `\` of the text escaped,
/// so they match themselves), and the creation time's bounds.
fn filter<T: ScopedTable>(query: &ListQuery) -> Result<Condition, Error> {
    let columns = T::columns();
    let filter = &query.filter;
    let mut condition = Condition::all();
    for (name, value) in &filter.flags {
        condition = condition.add(column::<T>(name)?.eq(*value));
    }
    if let Some((name, text)) = &filter.search {
        let mut pattern = String::with_capacity(text.len() + 2);
        pattern.push('%');
        // Lowered here, the column by SQL's `LOWER` (SQLite's folds ASCII only).
        for c in text.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        let searched = Func::lower(Expr::col(column::<T>(name)?));
        condition = condition.add(Expr::expr(searched).like(LikeExpr::new(pattern).escape('\\')));
    }
    if let Some(after) = filter.created_after {
        condition = condition.add(columns.created_at.gt(after));
    }
    if let Some(before) = filter.created_before {
        condition = condition.add(columns.created_at.lt(before));
    }
    Ok(condition)
}

#[async_trait]
impl<T: ScopedTable> ScopedRepository<T::Record> for SeaOrmRepository<T>
where
    <T::Entity as EntityTrait>::Model: Sync,
    <T::Entity as EntityTrait>::ActiveModel: ActiveModelTrait<Entity = T::Entity> + Send,
{
    async fn list(&self, owner: &Owner, page: RecordPage<T::Record>) -> Result<Vec<T::Record>, Error> {
        let _permit = self.db.resource_permit().await?;
        let rows = self
            .list_select(owner, &page)?
            .all(self.db.conn())
            .await
            .map_err(translate)?;
        Ok(rows.into_iter().map(T::to_record).collect())
    }

    async fn find(&self, owner: &Owner, id: Id<T::Record>) -> Result<Option<T::Record>, Error> {
        let _permit = self.db.resource_permit().await?;
        let row = T::Entity::find()
            .filter(self.owned(owner, id))
            .one(self.db.conn())
            .await
            .map_err(translate)?;
        Ok(row.map(T::to_record))
    }

    async fn insert(&self, record: &T::Record) -> Result<(), Error> {
        let _permit = self.db.resource_permit().await?;
        // The row's values, but `owner_id` cast to the column's type (a
        // `uuid` column does not take a text parameter).
        let row = T::to_row(record);
        let owner = T::columns().owner_id;
        let mut insert = Query::insert();
        insert.into_table(T::Entity::default());
        let (mut names, mut values) = (Vec::new(), Vec::new());
        for column in <<T::Entity as EntityTrait>::Column as Iterable>::iter() {
            let (ActiveValue::Set(value) | ActiveValue::Unchanged(value)) = row.get(column) else {
                continue;
            };
            values.push(if column.as_str() == owner.as_str() {
                self.owner.value(record.owner_id())
            } else {
                Expr::val(value)
            });
            names.push(column);
        }
        insert.columns(names);
        insert
            .values(values)
            .map_err(|e| Error::Unexpected(anyhow::anyhow!("insert into {}: {e}", T::TABLE)))?;
        self.db
            .conn()
            .execute(&insert)
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

    async fn update(
        &self,
        owner: &Owner,
        id: Id<T::Record>,
        changes: &Changes<<T::Record as Record>::Patch>,
    ) -> Result<Option<T::Record>, Error> {
        let permit = self.db.resource_permit().await?;
        let columns = T::columns();
        let mut update = T::Entity::update_many()
            .col_expr(columns.updated_at, Expr::value(changes.updated_at))
            .filter(self.owned(owner, id));
        if let Some(judged) = changes.unless_changed_since {
            update = update.filter(columns.updated_at.eq(judged));
        }
        let update = T::patch(update, &changes.patch);
        let conn = self.db.conn();
        // PostgreSQL: one statement, `UPDATE … RETURNING`. (SQLite's
        // RETURNING does not alias `owner_id`'s `select_as` cast, so it
        // updates, then reads.)
        if self.db.kind() == DbBackendKind::Postgres && conn.support_returning() {
            let rows = update.exec_with_returning(conn).await.map_err(translate)?;
            return Ok(rows.into_iter().next().map(T::to_record));
        }
        let result = update.exec(conn).await.map_err(translate)?;
        drop(permit);
        if result.rows_affected == 0 {
            return Ok(None);
        }
        self.find(owner, id).await
    }

    async fn delete(&self, owner: &Owner, id: Id<T::Record>) -> Result<bool, Error> {
        let _permit = self.db.resource_permit().await?;
        let result = T::Entity::delete_many()
            .filter(self.owned(owner, id))
            .exec(self.db.conn())
            .await
            .map_err(translate)?;
        Ok(result.rows_affected > 0)
    }

    async fn delete_unchanged(
        &self,
        owner: &Owner,
        id: Id<T::Record>,
        updated_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let _permit = self.db.resource_permit().await?;
        let result = T::Entity::delete_many()
            .filter(self.owned(owner, id))
            .filter(T::columns().updated_at.eq(updated_at))
            .exec(self.db.conn())
            .await
            .map_err(translate)?;
        Ok(result.rows_affected > 0)
    }
}
