//! The batched statements of the PostgreSQL item lanes (see [`super::lanes`]):
//! each answers every queued request of its kind with one statement, on one
//! connection the lane holds.
//!
//! - lists: one `unnest(…) CROSS JOIN LATERAL (… LIMIT …)` per scope kind,
//!   joined with `UNION ALL`; each request's page is served by the same
//!   `(owner_id, created_at)` / `(organization_id, created_at)` index as a
//!   single list (checked with `EXPLAIN`), rows are sorted per request here;
//! - finds: `WHERE id = ANY(…)`, each row handed to the request whose id and
//!   scope it matches (the scope is checked here, exactly as the single
//!   query's `WHERE` would);
//! - inserts: `INSERT … SELECT FROM unnest(…)`, one commit for all rows. A
//!   batch is one statement, so it commits or fails as a whole: when it fails
//!   for any reason but a broken connection, it is split in halves and each
//!   is retried the same way, so a bad row (say, one whose owner was deleted
//!   meanwhile) fails only its own request.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use domain::Error;
use domain::item::{Item, ItemDescription, ItemId, ItemName, Page};
use domain::scope::Owner;
use sea_orm::sqlx::postgres::{PgConnection, PgRow};
use sea_orm::sqlx::{self, Row as _};
use tokio::sync::oneshot;

use crate::owner::OwnerIdType;

/// Where a request's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// A list request (first pages and `skip` pages; keyset pages are not batched).
pub struct ListJob {
    pub owner: Owner,
    pub page: Page,
    pub reply: Reply<Vec<Item>>,
}

/// A find request.
pub struct FindJob {
    pub owner: Owner,
    pub id: ItemId,
    pub reply: Reply<Option<Item>>,
}

/// An insert request.
pub struct InsertJob {
    pub item: Item,
    pub reply: Reply<()>,
}

const COLUMNS: &str = "i.id, i.name, i.description, i.owner_id::text AS owner_id, i.organization_id, i.is_active, i.created_at, i.updated_at";

/// The SQL for one `owner_id` column type, built once per process.
#[derive(Debug)]
struct Sql {
    list: String,
    find: String,
    insert: String,
}

static TEXT_OWNER: LazyLock<Sql> = LazyLock::new(|| Sql::new(""));
static UUID_OWNER: LazyLock<Sql> = LazyLock::new(|| Sql::new("::uuid"));

/// The statements for one `owner_id` column type.
#[derive(Debug, Clone)]
pub struct Statements {
    list: &'static str,
    find: &'static str,
    insert: &'static str,
    owner: OwnerIdType,
}

impl Statements {
    /// The statements for an `owner_id` of type `owner`.
    pub fn new(owner: OwnerIdType) -> Self {
        let sql: &'static Sql = match owner {
            OwnerIdType::Text => &TEXT_OWNER,
            OwnerIdType::Uuid => &UUID_OWNER,
        };
        Self {
            list: &sql.list,
            find: &sql.find,
            insert: &sql.insert,
            owner,
        }
    }
}

impl Sql {
    /// `cast` turns a text parameter into the `owner_id` column's type.
    fn new(cast: &str) -> Self {
        let list = format!(
            "SELECT q.job, {COLUMNS} FROM unnest($1::int4[], $2::text[], $3::int8[], $4::int8[]) AS q(job, owner, skip, lim) \
             CROSS JOIN LATERAL (SELECT * FROM items WHERE owner_id = q.owner{cast} AND organization_id IS NULL \
             ORDER BY created_at DESC, id DESC OFFSET q.skip LIMIT q.lim) i \
             UNION ALL \
             SELECT q.job, {COLUMNS} FROM unnest($5::int4[], $6::text[], $7::int8[], $8::int8[]) AS q(job, org, skip, lim) \
             CROSS JOIN LATERAL (SELECT * FROM items WHERE organization_id = q.org \
             ORDER BY created_at DESC, id DESC OFFSET q.skip LIMIT q.lim) i"
        );
        let find = format!("SELECT {COLUMNS} FROM items i WHERE i.id = ANY($1::uuid[])");
        // Arrays cannot carry a NULL element through a plain `Vec<String>`,
        // so a missing description or organization travels as `''` plus `false`.
        let insert = format!(
            "INSERT INTO items (id, name, description, owner_id, organization_id, is_active, created_at, updated_at) \
             SELECT id, name, CASE WHEN has_description THEN description END, owner_id{cast}, \
             CASE WHEN has_organization THEN organization_id END, is_active, created_at, updated_at \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[], $7::bool[], \
             $8::bool[], $9::timestamptz[], $10::timestamptz[]) \
             AS t(id, name, description, has_description, owner_id, organization_id, has_organization, is_active, created_at, updated_at)"
        );
        Self { list, find, insert }
    }
}

impl Statements {
    /// Answers `jobs` with one statement. Returns `false` when the
    /// connection broke (every job then got [`Error::Unavailable`]).
    pub async fn lists(&self, conn: &mut PgConnection, jobs: Vec<ListJob>) -> bool {
        let mut personal = Columns::default();
        let mut organizations = Columns::default();
        for (n, job) in jobs.iter().enumerate() {
            let (target, key) = match &job.owner {
                Owner::User(user) => (&mut personal, user),
                Owner::Organization(organization) => (&mut organizations, organization),
            };
            target.job.push(i32::try_from(n).unwrap_or(i32::MAX));
            target.key.push(key.clone());
            target.skip.push(i64::try_from(job.page.skip()).unwrap_or(i64::MAX));
            target.limit.push(i64::try_from(job.page.limit()).unwrap_or(i64::MAX));
        }
        let result = sqlx::query(self.list)
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
            Err(error) => return fail(jobs.into_iter().map(|j| j.reply), error),
        };
        let mut pages: Vec<Vec<Item>> = jobs.iter().map(|_| Vec::new()).collect();
        for row in rows {
            let job: i32 = match row.try_get(0) {
                Ok(job) => job,
                Err(error) => return fail(jobs.into_iter().map(|j| j.reply), error),
            };
            match (usize::try_from(job).ok().and_then(|n| pages.get_mut(n)), item(&row, 1)) {
                (Some(page), Ok(item)) => page.push(item),
                (_, Err(error)) => return fail(jobs.into_iter().map(|j| j.reply), error),
                (None, Ok(_)) => {}
            }
        }
        for (job, mut page) in jobs.into_iter().zip(pages) {
            // Newest first, as a single list query orders them.
            page.sort_by_key(|item| std::cmp::Reverse((item.created_at, item.id.as_uuid())));
            let _ = job.reply.send(Ok(page));
        }
        true
    }

    /// Answers `jobs` with one statement (see [`Statements::lists`]).
    pub async fn finds(&self, conn: &mut PgConnection, jobs: Vec<FindJob>) -> bool {
        let ids: Vec<uuid::Uuid> = jobs.iter().map(|j| j.id.as_uuid()).collect();
        let rows = match sqlx::query(self.find).bind(ids).fetch_all(&mut *conn).await {
            Ok(rows) => rows,
            Err(error) => return fail(jobs.into_iter().map(|j| j.reply), error),
        };
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            match item(row, 0) {
                Ok(item) => items.push(item),
                Err(error) => return fail(jobs.into_iter().map(|j| j.reply), error),
            }
        }
        for job in jobs {
            let found = items
                .iter()
                .find(|item| item.id == job.id && self.owns(&job.owner, item))
                .cloned();
            let _ = job.reply.send(Ok(found));
        }
        true
    }

    /// Whether `item` is in `owner`'s scope, as the single-row query's
    /// `WHERE` decides it (a `uuid` owner column compares as UUIDs).
    fn owns(&self, owner: &Owner, item: &Item) -> bool {
        match owner {
            Owner::User(user) => {
                item.organization_id.is_none()
                    && match self.owner {
                        OwnerIdType::Text => item.owner_id == *user,
                        OwnerIdType::Uuid => {
                            uuid::Uuid::parse_str(user).ok() == uuid::Uuid::parse_str(&item.owner_id).ok()
                        }
                    }
            }
            Owner::Organization(organization) => item.organization_id.as_deref() == Some(organization.as_str()),
        }
    }

    /// Inserts every job's row with one statement; on a failure that is not
    /// a broken connection, splits the batch in halves and inserts each, so
    /// one bad row costs about 2·log₂(rows) statements and fails only its
    /// own request. Returns `false` when the connection broke.
    pub fn inserts<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        mut jobs: Vec<InsertJob>,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let error = match self.insert_rows(conn, &jobs).await {
                Ok(()) => {
                    for job in jobs {
                        let _ = job.reply.send(Ok(()));
                    }
                    return true;
                }
                Err(error) => error,
            };
            if broken(&error) || jobs.len() == 1 {
                return fail(jobs.into_iter().map(|j| j.reply), error);
            }
            tracing::debug!(error = %error, rows = jobs.len(), "a batch of new items failed; splitting it");
            let second = jobs.split_off(jobs.len() / 2);
            self.inserts(conn, jobs).await && self.inserts(conn, second).await
        })
    }

    async fn insert_rows(&self, conn: &mut PgConnection, jobs: &[InsertJob]) -> Result<(), sqlx::Error> {
        let n = jobs.len();
        let mut ids = Vec::with_capacity(n);
        let mut names = Vec::with_capacity(n);
        let mut descriptions = Vec::with_capacity(n);
        let mut has_descriptions = Vec::with_capacity(n);
        let mut owners = Vec::with_capacity(n);
        let mut organizations = Vec::with_capacity(n);
        let mut has_organizations = Vec::with_capacity(n);
        let mut active = Vec::with_capacity(n);
        let mut created = Vec::with_capacity(n);
        let mut updated = Vec::with_capacity(n);
        for item in jobs.iter().map(|j| &j.item) {
            ids.push(item.id.as_uuid());
            names.push(item.name.as_str().to_owned());
            descriptions.push(item.description.as_ref().map_or("", |d| d.as_str()).to_owned());
            has_descriptions.push(item.description.is_some());
            owners.push(item.owner_id.clone());
            organizations.push(item.organization_id.clone().unwrap_or_default());
            has_organizations.push(item.organization_id.is_some());
            active.push(item.is_active);
            created.push(item.created_at);
            updated.push(item.updated_at);
        }
        sqlx::query(self.insert)
            .bind(ids)
            .bind(names)
            .bind(descriptions)
            .bind(has_descriptions)
            .bind(owners)
            .bind(organizations)
            .bind(has_organizations)
            .bind(active)
            .bind(created)
            .bind(updated)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    }
}

/// The per-kind columns of the list statement.
#[derive(Default)]
struct Columns {
    job: Vec<i32>,
    key: Vec<String>,
    skip: Vec<i64>,
    limit: Vec<i64>,
}

/// The item in `row`, its columns from `first` on.
fn item(row: &PgRow, first: usize) -> Result<Item, sqlx::Error> {
    let id: uuid::Uuid = row.try_get(first)?;
    let name: String = row.try_get(first + 1)?;
    let description: Option<String> = row.try_get(first + 2)?;
    Ok(Item {
        id: ItemId::from(id),
        name: ItemName::from_trusted(name),
        description: description.map(ItemDescription::from_trusted),
        owner_id: row.try_get(first + 3)?,
        organization_id: row.try_get(first + 4)?,
        is_active: row.try_get(first + 5)?,
        created_at: row.try_get(first + 6)?,
        updated_at: row.try_get(first + 7)?,
    })
}

/// Whether `error` means the connection can no longer be used: the socket
/// failed, or PostgreSQL said it is ending the session (SQLSTATE class 08,
/// connection exception, or 57P, the server shutting down or an
/// administrator's `pg_terminate_backend`).
pub fn broken(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// The domain's view of `error`: a broken connection is
/// [`Error::Unavailable`] (503, retry), anything else unexpected.
pub fn translate(error: &sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = error
        && db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation
    {
        // Only an insert's owner_id has a foreign key: the user is gone.
        return Error::Unauthenticated(domain::error::AuthFailure::UnknownUser);
    }
    if broken(error) || matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) {
        Error::Unavailable(anyhow::anyhow!("database unavailable: {error}"))
    } else {
        Error::Unexpected(anyhow::anyhow!("database error: {error}"))
    }
}

/// Answers every reply with `error`; returns whether the connection is still usable.
fn fail<T>(replies: impl Iterator<Item = Reply<T>>, error: sqlx::Error) -> bool {
    for reply in replies {
        let _ = reply.send(Err(translate(&error)));
    }
    !broken(&error)
}
