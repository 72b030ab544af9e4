//! The kit's batched statements ([`ScopedStatements`]): the lanes' jobs of
//! any scoped table, each kind answered for a whole batch by one statement
//! built once from the table's sea-orm entity; and [`LanedRepository`], the
//! generic repository with the lanes in front (PostgreSQL).
//!
//! - first pages (no keyset position): one `unnest(…) CROSS JOIN LATERAL
//!   (… LIMIT …)` per scope kind, joined with `UNION ALL`; each request's
//!   page is served by the same `(owner_id, created_at)` /
//!   `(organization_id, created_at)` index as a single list (checked with
//!   `EXPLAIN` in the tests), rows are sorted per request here;
//! - finds: `WHERE id = ANY(…)`, each row handed to the request whose id and
//!   scope it matches (the scope is checked here, exactly as the single
//!   query's `WHERE` would);
//! - inserts: `INSERT … SELECT FROM unnest(…)`, one array per column typed
//!   from the entity, one commit for all rows. A batch is one statement, so
//!   it commits or fails as a whole: when it fails for any reason but a
//!   broken connection, it is split in halves and each is retried the same
//!   way, so a bad row (say, one whose owner was deleted meanwhile) fails
//!   only its own request.
//!
//! A table with a column type these arrays do not carry (see [`Array`])
//! gets no lanes: its repository runs every call on the pool.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::resource::{Changes, Id, Record, RecordPage, ScopedRepository};
use domain::scope::Owner;
use sea_orm::sea_query::ColumnType;
use sea_orm::sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sea_orm::sqlx::{self, Row as _};
use sea_orm::{ActiveModelTrait, ActiveValue, ColumnTrait, EntityTrait, FromQueryResult, IdenStatic, Iterable, Value};

use super::{ScopedTable, SeaOrmRepository};
use crate::db::Db;
use crate::lanes::{self, Batches, Kind, Lanes, Reply};
use crate::owner::OwnerIdType;

/// A job of a scoped table's lanes.
pub enum ScopedJob<R: Record> {
    /// A first page (or a `skip` page) in the default order, unfiltered:
    /// keyset pages, other orders and filters are not batched.
    List {
        /// Whose records.
        owner: Owner,
        /// Which page.
        page: RecordPage<R>,
        /// Where the page goes.
        reply: Reply<Vec<R>>,
    },
    /// A record by id, in the owner's scope.
    Find {
        /// Whose record.
        owner: Owner,
        /// Which record.
        id: Id<R>,
        /// Where it goes (`None`: not in the owner's scope).
        reply: Reply<Option<R>>,
    },
    /// A new record; answered after the commit that holds it.
    Insert {
        /// The record.
        record: R,
        /// Told once the commit holding it is done.
        reply: Reply<()>,
    },
}

/// The kinds of column arrays an insert carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayKind {
    Bool,
    Int,
    BigInt,
    Double,
    Text,
    Uuid,
    Timestamp,
}

impl ArrayKind {
    fn of(column: &ColumnType) -> Option<Self> {
        Some(match column {
            ColumnType::Boolean => Self::Bool,
            ColumnType::Integer => Self::Int,
            ColumnType::BigInteger => Self::BigInt,
            ColumnType::Double => Self::Double,
            ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => Self::Text,
            ColumnType::Uuid => Self::Uuid,
            ColumnType::TimestampWithTimeZone => Self::Timestamp,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Bool => "bool[]",
            Self::Int => "int4[]",
            Self::BigInt => "int8[]",
            Self::Double => "float8[]",
            Self::Text => "text[]",
            Self::Uuid => "uuid[]",
            Self::Timestamp => "timestamptz[]",
        }
    }

    fn array(self, rows: usize) -> Array {
        match self {
            Self::Bool => Array::Bool(Vec::with_capacity(rows)),
            Self::Int => Array::Int(Vec::with_capacity(rows)),
            Self::BigInt => Array::BigInt(Vec::with_capacity(rows)),
            Self::Double => Array::Double(Vec::with_capacity(rows)),
            Self::Text => Array::Text(Vec::with_capacity(rows)),
            Self::Uuid => Array::Uuid(Vec::with_capacity(rows)),
            Self::Timestamp => Array::Timestamp(Vec::with_capacity(rows)),
        }
    }
}

/// One column's values across the rows of an insert (`None` is NULL).
enum Array {
    Bool(Vec<Option<bool>>),
    Int(Vec<Option<i32>>),
    BigInt(Vec<Option<i64>>),
    Double(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Uuid(Vec<Option<uuid::Uuid>>),
    Timestamp(Vec<Option<DateTime<Utc>>>),
}

impl Array {
    /// Appends `value` (`None`: the column was not set, NULL). Fails on a
    /// value of another type than the column's.
    fn push(&mut self, value: Option<Value>) -> Result<(), Error> {
        match (self, value) {
            (Self::Bool(a), None) => a.push(None),
            (Self::Int(a), None) => a.push(None),
            (Self::BigInt(a), None) => a.push(None),
            (Self::Double(a), None) => a.push(None),
            (Self::Text(a), None) => a.push(None),
            (Self::Uuid(a), None) => a.push(None),
            (Self::Timestamp(a), None) => a.push(None),
            (Self::Bool(a), Some(Value::Bool(v))) => a.push(v),
            (Self::Int(a), Some(Value::Int(v))) => a.push(v),
            (Self::BigInt(a), Some(Value::BigInt(v))) => a.push(v),
            (Self::Double(a), Some(Value::Double(v))) => a.push(v),
            (Self::Text(a), Some(Value::String(v))) => a.push(v),
            (Self::Uuid(a), Some(Value::Uuid(v))) => a.push(v),
            (Self::Timestamp(a), Some(Value::ChronoDateTimeUtc(v))) => a.push(v),
            (_, Some(other)) => {
                return Err(Error::Unexpected(anyhow::anyhow!(
                    "a batched insert got a value of an unexpected type: {other:?}"
                )));
            }
        }
        Ok(())
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
        match self {
            Self::Bool(v) => query.bind(v),
            Self::Int(v) => query.bind(v),
            Self::BigInt(v) => query.bind(v),
            Self::Double(v) => query.bind(v),
            Self::Text(v) => query.bind(v),
            Self::Uuid(v) => query.bind(v),
            Self::Timestamp(v) => query.bind(v),
        }
    }
}

/// The SQL of one table, for one `owner_id` column type. Made of the
/// entity's own identifiers (quoted) and placeholders only: no value is
/// ever written into it.
#[derive(Debug)]
struct Sql {
    list: Arc<str>,
    find: Arc<str>,
    insert: Arc<str>,
}

/// `sql` for sqlx (see [`Sql`] for why it is safe).
fn statement(sql: &Arc<str>) -> sqlx::AssertSqlSafe<Arc<str>> {
    sqlx::AssertSqlSafe(Arc::clone(sql))
}

/// The batched statements of table `T` (see the module docs).
pub struct ScopedStatements<T: ScopedTable> {
    sql: Arc<Sql>,
    /// Every column of the table, in the insert's order, with its array kind.
    columns: Arc<[(<T::Entity as EntityTrait>::Column, ArrayKind)]>,
    owner: OwnerIdType,
    table: PhantomData<fn() -> T>,
}

impl<T: ScopedTable> ScopedStatements<T> {
    /// The statements of `T` whose `owner_id` is of type `owner`; `None`
    /// when a column's type is not one an insert's arrays carry.
    pub fn new(owner: OwnerIdType) -> Option<Self> {
        let scoped = T::columns();
        let quoted = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let mut columns = Vec::new();
        let (mut names, mut selected, mut values, mut arrays) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (n, column) in <<T::Entity as EntityTrait>::Column as Iterable>::iter().enumerate() {
            let kind = ArrayKind::of(column.def().get_column_type())?;
            let name = quoted(column.as_str());
            let is_owner = column.as_str() == scoped.owner_id.as_str();
            // The owner column is read back as text, and written from text
            // cast to its type (so a `uuid` column works as a `text` one).
            selected.push(if is_owner {
                format!("i.{name}::text AS {name}")
            } else {
                format!("i.{name}")
            });
            values.push(match (is_owner, owner) {
                (true, OwnerIdType::Uuid) => format!("{name}::uuid"),
                _ => name.clone(),
            });
            arrays.push(format!("${}::{}", n + 1, kind.sql()));
            names.push(name);
            columns.push((column, kind));
        }
        let [table, id, owner_id, organization_id, created_at] = [
            T::TABLE,
            scoped.id.as_str(),
            scoped.owner_id.as_str(),
            scoped.organization_id.as_str(),
            scoped.created_at.as_str(),
        ]
        .map(quoted);
        let (names, selected, values, arrays) = (
            names.join(", "),
            selected.join(", "),
            values.join(", "),
            arrays.join(", "),
        );
        let cast = match owner {
            OwnerIdType::Text => "",
            OwnerIdType::Uuid => "::uuid",
        };
        let order = format!("ORDER BY {created_at} DESC, {id} DESC OFFSET q.skip LIMIT q.lim");
        let sql = Sql {
            list: Arc::from(format!(
                "SELECT q.job, {selected} FROM unnest($1::int4[], $2::text[], $3::int8[], $4::int8[]) AS q(job, owner, skip, lim) \
                 CROSS JOIN LATERAL (SELECT * FROM {table} WHERE {owner_id} = q.owner{cast} AND {organization_id} IS NULL \
                 {order}) i \
                 UNION ALL \
                 SELECT q.job, {selected} FROM unnest($5::int4[], $6::text[], $7::int8[], $8::int8[]) AS q(job, org, skip, lim) \
                 CROSS JOIN LATERAL (SELECT * FROM {table} WHERE {organization_id} = q.org {order}) i"
            )),
            find: Arc::from(format!(
                "SELECT {selected} FROM {table} i WHERE i.{id} = ANY($1::uuid[])"
            )),
            insert: Arc::from(format!(
                "INSERT INTO {table} ({names}) SELECT {values} FROM unnest({arrays}) AS r({names})"
            )),
        };
        Some(Self {
            sql: Arc::new(sql),
            columns: columns.into(),
            owner,
            table: PhantomData,
        })
    }
}

impl<T: ScopedTable> ScopedStatements<T> {
    /// The batched list statement (parameters: per scope kind, the jobs'
    /// numbers, keys, skips and limits), to `EXPLAIN` it.
    pub fn list_sql(&self) -> &str {
        &self.sql.list
    }
}

/// A record from `row` (the entity's columns by name).
fn record<T: ScopedTable>(row: PgRow) -> Result<T::Record, sqlx::Error> {
    let row = sea_orm::QueryResult::from(row);
    <T::Entity as EntityTrait>::Model::from_query_result(&row, "")
        .map(T::to_record)
        .map_err(|error| sqlx::Error::Decode(error.to_string().into()))
}

impl<T: ScopedTable> ScopedStatements<T>
where
    <T::Entity as EntityTrait>::ActiveModel: ActiveModelTrait<Entity = T::Entity>,
{
    /// Answers `jobs` with one statement. Returns `false` when the
    /// connection broke (every job then got [`Error::Unavailable`]).
    async fn lists(&self, conn: &mut PgConnection, jobs: Vec<ListJob<T::Record>>) -> bool {
        let mut personal = Keys::default();
        let mut organizations = Keys::default();
        for (n, (owner, page, _)) in jobs.iter().enumerate() {
            let (target, key) = match owner {
                Owner::User(user) => (&mut personal, user),
                Owner::Organization(organization) => (&mut organizations, organization),
            };
            target.job.push(i32::try_from(n).unwrap_or(i32::MAX));
            target.key.push(key.clone());
            target.skip.push(i64::try_from(page.skip()).unwrap_or(i64::MAX));
            target.limit.push(i64::try_from(page.limit()).unwrap_or(i64::MAX));
        }
        let result = sqlx::query(statement(&self.sql.list))
            .bind(personal.job)
            .bind(personal.key)
            .bind(personal.skip)
            .bind(personal.limit)
            .bind(organizations.job)
            .bind(organizations.key)
            .bind(organizations.skip)
            .bind(organizations.limit)
            .fetch_all(&mut *conn)
            .await;
        let rows = match result {
            Ok(rows) => rows,
            Err(error) => return lanes::fail(jobs.into_iter().map(|(_, _, reply)| reply), &error),
        };
        let mut pages: Vec<Vec<T::Record>> = jobs.iter().map(|_| Vec::new()).collect();
        for row in rows {
            let job = match row.try_get::<i32, _>(0) {
                Ok(job) => job,
                Err(error) => return lanes::fail(jobs.into_iter().map(|(_, _, reply)| reply), &error),
            };
            match (
                usize::try_from(job).ok().and_then(|n| pages.get_mut(n)),
                record::<T>(row),
            ) {
                (Some(page), Ok(record)) => page.push(record),
                (_, Err(error)) => return lanes::fail(jobs.into_iter().map(|(_, _, reply)| reply), &error),
                (None, Ok(_)) => {}
            }
        }
        for ((_, _, reply), mut page) in jobs.into_iter().zip(pages) {
            // Newest first, as a single list query orders them.
            page.sort_by_key(|record| std::cmp::Reverse((record.created_at(), record.id().as_uuid())));
            let _ = reply.send(Ok(page));
        }
        true
    }

    /// Answers `jobs` with one statement (see [`ScopedStatements::lists`]).
    async fn finds(&self, conn: &mut PgConnection, jobs: Vec<FindJob<T::Record>>) -> bool {
        let ids: Vec<uuid::Uuid> = jobs.iter().map(|(_, id, _)| id.as_uuid()).collect();
        let rows = match sqlx::query(statement(&self.sql.find))
            .bind(ids)
            .fetch_all(&mut *conn)
            .await
        {
            Ok(rows) => rows,
            Err(error) => return lanes::fail(jobs.into_iter().map(|(_, _, reply)| reply), &error),
        };
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            match record::<T>(row) {
                Ok(record) => records.push(record),
                Err(error) => return lanes::fail(jobs.into_iter().map(|(_, _, reply)| reply), &error),
            }
        }
        for (owner, id, reply) in jobs {
            let found = records
                .iter()
                .find(|record| record.id() == id && self.owns(&owner, *record))
                .cloned();
            let _ = reply.send(Ok(found));
        }
        true
    }

    /// Whether `record` is in `owner`'s scope, as the single-row query's
    /// `WHERE` decides it (a `uuid` owner column compares as UUIDs).
    fn owns(&self, owner: &Owner, record: &T::Record) -> bool {
        match owner {
            Owner::User(user) => {
                record.organization_id().is_none()
                    && match self.owner {
                        OwnerIdType::Text => record.owner_id() == user,
                        OwnerIdType::Uuid => {
                            uuid::Uuid::parse_str(user).ok() == uuid::Uuid::parse_str(record.owner_id()).ok()
                        }
                    }
            }
            Owner::Organization(organization) => record.organization_id() == Some(organization.as_str()),
        }
    }

    /// Inserts every job's row with one statement; on a failure that is not
    /// a broken connection, splits the batch in halves and inserts each, so
    /// one bad row costs about 2·log₂(rows) statements and fails only its
    /// own request. Returns `false` when the connection broke.
    fn inserts<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        mut jobs: Vec<InsertJob<T::Record>>,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let arrays = match self.arrays(&jobs) {
                Ok(arrays) => arrays,
                Err(error) => {
                    let text = error.to_string();
                    for (_, reply) in jobs {
                        let _ = reply.send(Err(Error::Unexpected(anyhow::anyhow!("{text}"))));
                    }
                    return true;
                }
            };
            let query = arrays
                .into_iter()
                .fold(sqlx::query(statement(&self.sql.insert)), |query, array| {
                    array.bind(query)
                });
            let error = match query.execute(&mut *conn).await {
                Ok(_) => {
                    for (_, reply) in jobs {
                        let _ = reply.send(Ok(()));
                    }
                    return true;
                }
                Err(error) => error,
            };
            if lanes::broken(&error) || jobs.len() == 1 {
                return lanes::fail(jobs.into_iter().map(|(_, reply)| reply), &error);
            }
            tracing::debug!(error = %error, rows = jobs.len(), table = T::TABLE, "a batch of new records failed; splitting it");
            let second = jobs.split_off(jobs.len() / 2);
            self.inserts(conn, jobs).await && self.inserts(conn, second).await
        })
    }

    /// One array per column, holding every job's value of it.
    fn arrays(&self, jobs: &[InsertJob<T::Record>]) -> Result<Vec<Array>, Error> {
        let mut arrays: Vec<Array> = self.columns.iter().map(|(_, kind)| kind.array(jobs.len())).collect();
        for (record, _) in jobs {
            let row = T::to_row(record);
            for ((column, _), array) in self.columns.iter().zip(&mut arrays) {
                array.push(match row.get(*column) {
                    ActiveValue::Set(value) | ActiveValue::Unchanged(value) => Some(value),
                    ActiveValue::NotSet => None,
                })?;
            }
        }
        Ok(arrays)
    }
}

type ListJob<R> = (Owner, RecordPage<R>, Reply<Vec<R>>);
type FindJob<R> = (Owner, Id<R>, Reply<Option<R>>);
type InsertJob<R> = (R, Reply<()>);

/// The per-scope-kind columns of the list statement.
#[derive(Default)]
struct Keys {
    job: Vec<i32>,
    key: Vec<String>,
    skip: Vec<i64>,
    limit: Vec<i64>,
}

impl<T: ScopedTable> Batches for ScopedStatements<T>
where
    <T::Entity as EntityTrait>::ActiveModel: ActiveModelTrait<Entity = T::Entity>,
    <T::Entity as EntityTrait>::Column: Send + Sync,
{
    type Job = ScopedJob<T::Record>;

    fn kind(job: &Self::Job) -> Kind {
        match job {
            ScopedJob::List { .. } | ScopedJob::Find { .. } => Kind::Read,
            ScopedJob::Insert { .. } => Kind::Write,
        }
    }

    fn run<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        jobs: Vec<Self::Job>,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let (mut lists, mut finds, mut inserts) = (Vec::new(), Vec::new(), Vec::new());
            for job in jobs {
                match job {
                    ScopedJob::List { owner, page, reply } => lists.push((owner, page, reply)),
                    ScopedJob::Find { owner, id, reply } => finds.push((owner, id, reply)),
                    ScopedJob::Insert { record, reply } => inserts.push((record, reply)),
                }
            }
            let mut healthy = true;
            if !inserts.is_empty() {
                healthy = self.inserts(conn, inserts).await;
            }
            if !lists.is_empty() {
                healthy = if healthy {
                    self.lists(conn, lists).await
                } else {
                    broke(lists.into_iter().map(|(_, _, reply)| reply))
                };
            }
            if !finds.is_empty() {
                healthy = if healthy {
                    self.finds(conn, finds).await
                } else {
                    broke(finds.into_iter().map(|(_, _, reply)| reply))
                };
            }
            healthy
        })
    }

    fn fail(job: Self::Job, error: Error) {
        match job {
            ScopedJob::List { reply, .. } => drop(reply.send(Err(error))),
            ScopedJob::Find { reply, .. } => drop(reply.send(Err(error))),
            ScopedJob::Insert { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// After the connection broke: the jobs not yet run get 503.
fn broke<T>(replies: impl Iterator<Item = Reply<T>>) -> bool {
    for reply in replies {
        let _ = reply.send(Err(Error::Unavailable(anyhow::anyhow!(
            "the database connection broke"
        ))));
    }
    false
}

/// The generic repository of table `T` with, on PostgreSQL, the lanes in
/// front of it for first pages, finds and inserts (batched, on connections
/// of their own; see [`crate::lanes`]); everything else, and SQLite, on
/// [`SeaOrmRepository`].
pub struct LanedRepository<T: ScopedTable> {
    table: SeaOrmRepository<T>,
    lanes: Option<Lanes<ScopedStatements<T>>>,
}

impl<T: ScopedTable> Clone for LanedRepository<T> {
    fn clone(&self) -> Self {
        Self {
            table: self.table.clone(),
            lanes: self.lanes.clone(),
        }
    }
}

impl<T: ScopedTable> std::fmt::Debug for LanedRepository<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanedRepository")
            .field("table", &T::TABLE)
            .field("lanes", &self.lanes.is_some())
            .finish()
    }
}

impl<T: ScopedTable> LanedRepository<T>
where
    ScopedStatements<T>: Batches<Job = ScopedJob<T::Record>>,
{
    /// A repository over `db`, whose `owner_id` column is of type `owner`
    /// (on PostgreSQL with its lanes, started on first use on each thread).
    pub fn new(db: Db, owner: OwnerIdType) -> Self {
        let lanes = ScopedStatements::<T>::new(owner).and_then(|statements| Lanes::new(&db, statements));
        Self {
            table: SeaOrmRepository::new(db, owner),
            lanes,
        }
    }

    /// [`LanedRepository::new`] with the column type read from the database.
    ///
    /// # Errors
    /// When the catalogue cannot be read.
    pub async fn detect(db: Db) -> anyhow::Result<Self> {
        let owner = OwnerIdType::detect(&db, T::TABLE).await?;
        Ok(Self::new(db, owner))
    }

    /// Whether reads and inserts go through lanes (PostgreSQL, and every
    /// column of a type the batched insert carries).
    pub fn has_lanes(&self) -> bool {
        self.lanes.is_some()
    }
}

#[async_trait]
impl<T: ScopedTable> ScopedRepository<T::Record> for LanedRepository<T>
where
    SeaOrmRepository<T>: ScopedRepository<T::Record>,
    ScopedStatements<T>: Batches<Job = ScopedJob<T::Record>>,
{
    async fn list(&self, owner: &Owner, page: RecordPage<T::Record>) -> Result<Vec<T::Record>, Error> {
        match (&self.lanes, page.after()) {
            // The lanes batch the default order, unfiltered (first pages).
            (Some(lanes), None) if page.query().is_default() => {
                let owner = owner.clone();
                lanes.ask(|reply| ScopedJob::List { owner, page, reply }).await
            }
            _ => self.table.list(owner, page).await,
        }
    }

    async fn find(&self, owner: &Owner, id: Id<T::Record>) -> Result<Option<T::Record>, Error> {
        match &self.lanes {
            Some(lanes) => {
                let owner = owner.clone();
                lanes.ask(|reply| ScopedJob::Find { owner, id, reply }).await
            }
            None => self.table.find(owner, id).await,
        }
    }

    async fn insert(&self, record: &T::Record) -> Result<(), Error> {
        match &self.lanes {
            Some(lanes) => {
                let record = record.clone();
                lanes.ask(|reply| ScopedJob::Insert { record, reply }).await
            }
            None => self.table.insert(record).await,
        }
    }

    async fn update(
        &self,
        owner: &Owner,
        id: Id<T::Record>,
        changes: &Changes<<T::Record as Record>::Patch>,
    ) -> Result<Option<T::Record>, Error> {
        self.table.update(owner, id, changes).await
    }

    async fn delete(&self, owner: &Owner, id: Id<T::Record>) -> Result<bool, Error> {
        self.table.delete(owner, id).await
    }

    async fn delete_unchanged(
        &self,
        owner: &Owner,
        id: Id<T::Record>,
        updated_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.table.delete_unchanged(owner, id, updated_at).await
    }
}
