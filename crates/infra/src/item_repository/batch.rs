//! New items reach PostgreSQL in batches: one `INSERT … SELECT FROM unnest(…)`
//! and one commit for all the items created at about the same moment.
//!
//! Under load most of the cost of a single-row insert is per statement and
//! per commit, not per row (on the 2-core benchmark machine PostgreSQL spends
//! about 100 µs of CPU on a one-row insert and about 26 µs a row in batches
//! of 8). So `insert` queues the row and waits; a writer task takes whatever
//! has queued (up to [`MAX_BATCH`] rows) and inserts it with one statement,
//! while up to `flushes` such statements run at once. Nothing waits for a
//! batch to fill: a lone request is inserted at once, alone; batches form
//! only while earlier ones are being written. Every caller gets its answer
//! after the commit that holds its row, so a `201` still means stored.
//!
//! A batch is one statement, so it commits or fails as a whole. When it fails
//! for any reason but an unreachable database, it is split in halves and each
//! is retried the same way, so a bad row (say, one whose owner was deleted
//! meanwhile) fails only its own request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::Error;
use domain::item::Item;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::OwnerIdType;
use crate::db::{Db, translate};

/// Most rows in one statement (the rows travel as 10 array parameters, so
/// the protocol sets no limit; this bounds one statement's size and duration).
pub const MAX_BATCH: usize = 256;

/// Rows that may wait for a writer; beyond this, `insert` waits to queue.
const QUEUE: usize = 4096;

/// Arrays cannot carry a NULL element through sea-orm's binding, so a
/// missing description travels as `''` plus `false` in `$4`, and a missing
/// organization as `''` plus `false` in `$7`.
const INSERT: &str = r#"INSERT INTO "items" ("id", "name", "description", "owner_id", "organization_id", "is_active", "created_at", "updated_at")
SELECT id, name, CASE WHEN has_description THEN description END, owner_id, CASE WHEN has_organization THEN organization_id END, is_active, created_at, updated_at
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[], $7::bool[], $8::bool[], $9::timestamptz[], $10::timestamptz[])
  AS t(id, name, description, has_description, owner_id, organization_id, has_organization, is_active, created_at, updated_at)"#;

/// [`INSERT`] for an `owner_id` of type `uuid` (better-auth's `generateId: "uuid"`).
const INSERT_UUID_OWNER: &str = r#"INSERT INTO "items" ("id", "name", "description", "owner_id", "organization_id", "is_active", "created_at", "updated_at")
SELECT id, name, CASE WHEN has_description THEN description END, owner_id::uuid, CASE WHEN has_organization THEN organization_id END, is_active, created_at, updated_at
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::text[], $7::bool[], $8::bool[], $9::timestamptz[], $10::timestamptz[])
  AS t(id, name, description, has_description, owner_id, organization_id, has_organization, is_active, created_at, updated_at)"#;

struct Pending {
    item: Item,
    done: oneshot::Sender<Result<(), Error>>,
}

/// The queue in front of the writer task.
#[derive(Debug, Clone)]
pub struct InsertBatcher {
    queue: mpsc::Sender<Pending>,
}

impl InsertBatcher {
    /// Starts the writer task on the current Tokio runtime; it runs until
    /// every clone of the batcher is dropped. `flushes` (≥ 1) statements may
    /// run at once.
    pub fn spawn(db: Db, flushes: usize, owner: OwnerIdType) -> Self {
        let sql = match owner {
            OwnerIdType::Text => INSERT,
            OwnerIdType::Uuid => INSERT_UUID_OWNER,
        };
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(write(db, sql, pending, flushes.max(1)));
        Self { queue }
    }

    /// Inserts `item` with whatever else is queued; returns after the commit.
    ///
    /// # Errors
    /// As a single insert would: [`Error::Unavailable`] when the database
    /// cannot be reached, [`Error::Unexpected`] otherwise.
    pub async fn insert(&self, item: &Item) -> Result<(), Error> {
        let (done, result) = oneshot::channel();
        let pending = Pending {
            item: item.clone(),
            done,
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| Error::Unexpected(anyhow::anyhow!("the item writer has stopped")))?;
        result
            .await
            .map_err(|_| Error::Unexpected(anyhow::anyhow!("the item writer dropped a row")))?
    }
}

async fn write(db: Db, sql: &'static str, mut pending: mpsc::Receiver<Pending>, flushes: usize) {
    let permits = Arc::new(Semaphore::new(flushes));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = pending.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let db = db.clone();
        tokio::spawn(async move {
            flush(&db, sql, batch).await;
            drop(permit);
        });
    }
}

/// Inserts `batch`; on a failure that is not the database being unreachable,
/// splits it in halves and inserts each, so one bad row costs about
/// 2·log₂(rows) statements and fails only its own request.
fn flush<'a>(db: &'a Db, sql: &'static str, mut batch: Vec<Pending>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        match insert_rows(db, sql, batch.iter().map(|p| &p.item)).await {
            Ok(()) => {
                for p in batch {
                    let _ = p.done.send(Ok(()));
                }
            }
            Err(Error::Unavailable(error)) if batch.len() > 1 => {
                let reason = format!("{error:#}");
                for p in batch {
                    let _ = p.done.send(Err(Error::Unavailable(anyhow::anyhow!("{reason}"))));
                }
            }
            Err(error) if batch.len() == 1 => {
                if let Some(p) = batch.pop() {
                    let _ = p.done.send(Err(error));
                }
            }
            Err(error) => {
                tracing::debug!(error = %error, rows = batch.len(), "a batch of new items failed; splitting it");
                let second = batch.split_off(batch.len() / 2);
                flush(db, sql, batch).await;
                flush(db, sql, second).await;
            }
        }
    })
}

async fn insert_rows<'a>(
    db: &Db,
    sql: &'static str,
    items: impl ExactSizeIterator<Item = &'a Item>,
) -> Result<(), Error> {
    let n = items.len();
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
    for item in items {
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
    let values: [Value; 10] = [
        ids.into(),
        names.into(),
        descriptions.into(),
        has_descriptions.into(),
        owners.into(),
        organizations.into(),
        has_organizations.into(),
        active.into(),
        created.into(),
        updated.into(),
    ];
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
    db.conn().execute_raw(statement).await.map_err(translate)?;
    Ok(())
}
