//! Item lanes: how item reads and inserts reach PostgreSQL under load.
//!
//! Three costs dominated the item path when every request ran its own
//! query on a pooled connection (measured in `make bench`, see
//! docs/performance.md):
//!
//! 1. **A second round trip per query.** sqlx returns a connection to its
//!    pool with a `Sync` message and waits for PostgreSQL's answer before
//!    the next request can have it (its "ping on release"), so each query
//!    cost PostgreSQL two wake-ups and the pool half its capacity.
//! 2. **Per-statement cost.** A one-row statement costs PostgreSQL about as
//!    much as one with dozens of rows (parse/bind/execute, a wake-up, a
//!    network write; a commit for an insert).
//! 3. **Cross-thread wake-ups.** actix runs one single-threaded runtime per
//!    worker; a pooled connection opened on one worker and used from
//!    another has its socket's readiness reported to the first, and every
//!    answer wakes two threads.
//!
//! So each worker thread has two *lanes*, one for reads and one for
//! inserts (a read never waits behind a commit): a task on that thread
//! holding up to [`READ_CONNECTIONS`] or [`WRITE_CONNECTIONS`] connections
//! of its own (never returned to a pool, so never pinged). A request queues
//! its job on its thread's lane and waits; the lane takes whatever has
//! queued (up to [`MAX_BATCH`] jobs) and answers all of it with one
//! statement per kind ([`super::statements`]) on one of its connections,
//! while the next batch gathers. Nothing waits for
//! a batch to fill: a lone request is sent at once, alone; batches form only
//! while the lane's connections are busy. A `201` still means committed.
//!
//! Bounds: lanes together open at most the database's lane budget (half of
//! `DB_POOL_MAX`, the pool has the rest; see [`crate::Db`]); a lane that
//! cannot open a connection of its own — budget spent by other threads, or
//! PostgreSQL refusing (and then for a second) — runs its batch on a
//! pooled connection instead, as resource traffic (with a
//! [`Db::resource_permit`], so never in the connections kept for
//! credential lookups), so
//! lanes are never a reason for a request to wait or fail. Opening a
//! connection and answering a batch are each bounded by `DB_TIMEOUT_MS` (the
//! pool's acquire timeout): a database that hangs costs the batch's requests
//! 503 within it and the connection is dropped (its state is unknown; an
//! insert in that batch may or may not have been committed, as with any
//! timed-out request). A lane idle for
//! [`IDLE`] closes its connections (their budget returns); lanes stop when
//! their repository is dropped. A connection that breaks fails the requests
//! of its batch with 503 once (as a pooled one would) and is discarded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::Error;
use domain::item::{Item, ItemId, Page};
use domain::log_throttle::Throttle;
use domain::scope::Owner;
use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::statements::{FindJob, InsertJob, ListJob, Statements, translate};
use crate::db::Db;
use crate::owner::OwnerIdType;

/// Most jobs answered by one batch.
pub const MAX_BATCH: usize = 256;

/// Most connections a thread's read lane holds.
pub const READ_CONNECTIONS: usize = 1;

/// Most connections a thread's write lane holds.
pub const WRITE_CONNECTIONS: usize = 1;

/// Jobs that may wait in one lane; beyond this, a request waits to queue.
const QUEUE: usize = 4096;

/// After a lane fails to open a connection, it uses the pool this long before trying again.
const OPEN_BACKOFF: Duration = Duration::from_secs(1);

/// A lane without work for this long closes its connections.
pub const IDLE: Duration = Duration::from_secs(30);

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's read and write lanes of each [`Lanes`] (by id).
    static LANES: RefCell<HashMap<(u64, Kind), mpsc::Sender<Job>>> = RefCell::new(HashMap::new());
}

/// Reads and writes have lanes of their own, so a read never waits behind a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Read,
    Write,
}

enum Job {
    List(ListJob),
    Find(FindJob),
    Insert(InsertJob),
}

impl Job {
    fn kind(&self) -> Kind {
        match self {
            Self::List(_) | Self::Find(_) => Kind::Read,
            Self::Insert(_) => Kind::Write,
        }
    }

    fn fail(self, error: Error) {
        match self {
            Self::List(job) => drop(job.reply.send(Err(error))),
            Self::Find(job) => drop(job.reply.send(Err(error))),
            Self::Insert(job) => drop(job.reply.send(Err(error))),
        }
    }
}

/// What every lane of one repository shares.
struct Shared {
    id: u64,
    options: Arc<PgConnectOptions>,
    budget: Arc<Semaphore>,
    pool: PgPool,
    /// For the resource permits of batches run on the pool.
    db: Db,
    statements: Statements,
    /// Dropped with the last [`Lanes`] handle: the lanes then stop.
    alive: watch::Sender<()>,
    connect_warnings: Arc<Throttle>,
    counts: Arc<Counts>,
}

/// What the lanes have done since they started.
#[derive(Debug, Default)]
struct Counts {
    batches: AtomicU64,
    jobs: AtomicU64,
}

/// How much batching happened: `jobs` requests were answered by `batches` batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneStats {
    /// Batches run (each one statement per kind of job in it).
    pub batches: u64,
    /// Requests answered.
    pub jobs: u64,
}

/// The lanes of one item repository (a cheap handle; see the module docs).
#[derive(Clone)]
pub struct Lanes {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl Lanes {
    /// Lanes over `db` (PostgreSQL; `None` otherwise) whose `owner_id` is of type `owner`.
    pub fn new(db: &Db, owner: OwnerIdType) -> Option<Self> {
        let pool = db.postgres_pool()?;
        Some(Self {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                options: pool.connect_options(),
                budget: db.lane_budget(),
                pool,
                db: db.clone(),
                statements: Statements::new(owner),
                alive: watch::channel(()).0,
                connect_warnings: Arc::new(Throttle::default()),
                counts: Arc::default(),
            }),
        })
    }

    /// How much batching has happened so far.
    pub fn stats(&self) -> LaneStats {
        LaneStats {
            batches: self.shared.counts.batches.load(Ordering::Relaxed),
            jobs: self.shared.counts.jobs.load(Ordering::Relaxed),
        }
    }

    /// A page of `owner`'s items (no keyset position: those are not batched).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached, [`Error::Unexpected`] otherwise.
    pub async fn list(&self, owner: &Owner, page: Page) -> Result<Vec<Item>, Error> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::List(ListJob {
            owner: owner.clone(),
            page,
            reply,
        }))
        .await;
        receive(answer).await
    }

    /// Item `id` if it is `owner`'s.
    ///
    /// # Errors
    /// As [`Lanes::list`].
    pub async fn find(&self, owner: &Owner, id: ItemId) -> Result<Option<Item>, Error> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Find(FindJob {
            owner: owner.clone(),
            id,
            reply,
        }))
        .await;
        receive(answer).await
    }

    /// Inserts `item`; returns after the commit that holds it.
    ///
    /// # Errors
    /// As [`Lanes::list`].
    pub async fn insert(&self, item: &Item) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Insert(InsertJob {
            item: item.clone(),
            reply,
        }))
        .await;
        receive(answer).await
    }

    /// Queues `job` on this thread's lane, starting the lane if there is
    /// none (or the old one stopped with its runtime).
    async fn submit(&self, job: Job) {
        let key = (self.shared.id, job.kind());
        let queue = LANES.with(|lanes| {
            let mut lanes = lanes.borrow_mut();
            match lanes.get(&key) {
                Some(queue) if !queue.is_closed() => queue.clone(),
                _ => {
                    lanes.retain(|_, queue| !queue.is_closed());
                    let queue = self.start(key.1);
                    lanes.insert(key, queue.clone());
                    queue
                }
            }
        });
        if let Err(mpsc::error::SendError(job)) = queue.send(job).await {
            job.fail(Error::Unavailable(anyhow::anyhow!("the item lane has stopped")));
        }
    }

    fn start(&self, kind: Kind) -> mpsc::Sender<Job> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let lane = Lane {
            deadline: self.shared.pool.options().get_acquire_timeout(),
            connections: match kind {
                Kind::Read => READ_CONNECTIONS,
                Kind::Write => WRITE_CONNECTIONS,
            },
            options: self.shared.options.clone(),
            budget: self.shared.budget.clone(),
            pool: self.shared.pool.clone(),
            db: self.shared.db.clone(),
            statements: self.shared.statements.clone(),
            connect_warnings: self.shared.connect_warnings.clone(),
            counts: self.shared.counts.clone(),
        };
        tokio::spawn(lane.run(jobs, self.shared.alive.subscribe()));
        queue
    }
}

/// The job's answer. A job whose batch was abandoned (the database did not
/// answer within the deadline, or the runtime is shutting down) is
/// [`Error::Unavailable`]: an insert in it may or may not have been committed,
/// as with any request that times out (retry it with an `Idempotency-Key`).
async fn receive<T>(answer: oneshot::Receiver<Result<T, Error>>) -> Result<T, Error> {
    answer
        .await
        .map_err(|_| Error::Unavailable(anyhow::anyhow!("the database did not answer in time")))?
}

/// A connection a lane holds, and its share of the budget.
struct Held {
    conn: PgConnection,
    _permit: OwnedSemaphorePermit,
}

/// One thread's read or write lane.
struct Lane {
    /// Most connections held at once.
    connections: usize,
    /// The longest a connection may take to open, or a batch to be answered
    /// (`DB_TIMEOUT_MS`, the pool's acquire timeout): an unreachable
    /// database costs a request 503 within it, as the pool's does.
    deadline: Duration,
    options: Arc<PgConnectOptions>,
    budget: Arc<Semaphore>,
    pool: PgPool,
    db: Db,
    statements: Statements,
    connect_warnings: Arc<Throttle>,
    counts: Arc<Counts>,
}

impl Lane {
    async fn run(self, mut jobs: mpsc::Receiver<Job>, mut alive: watch::Receiver<()>) {
        let mut idle: Vec<Held> = Vec::new();
        let mut busy = 0usize;
        // After a failed open, batches use the pool until then (a database
        // that hangs would otherwise cost every batch a connect timeout first).
        let mut open_after = tokio::time::Instant::now();
        // A flush sends its connection back (`None`: it broke and was dropped).
        let (back, mut returned) = mpsc::unbounded_channel::<Option<Held>>();
        loop {
            let first = tokio::select! {
                biased;
                _ = alive.changed() => {
                    close(idle).await;
                    return;
                }
                Some(conn) = returned.recv() => {
                    busy -= 1;
                    idle.extend(conn);
                    continue;
                }
                job = tokio::time::timeout(IDLE, jobs.recv()) => match job {
                    Ok(Some(job)) => job,
                    Ok(None) => {
                        close(idle).await;
                        return;
                    }
                    Err(_) => {
                        close(std::mem::take(&mut idle)).await;
                        continue;
                    }
                },
            };
            let conn = loop {
                while let Ok(conn) = returned.try_recv() {
                    busy -= 1;
                    idle.extend(conn);
                }
                if let Some(conn) = idle.pop() {
                    break Some(conn);
                }
                if busy < self.connections && tokio::time::Instant::now() >= open_after {
                    match self.open().await {
                        Ok(Some(conn)) => break Some(conn),
                        Ok(None) => {}
                        Err(()) => open_after = tokio::time::Instant::now() + OPEN_BACKOFF,
                    }
                }
                if busy == 0 {
                    break None;
                }
                // Wait for one of ours; jobs gather meanwhile.
                if let Some(conn) = returned.recv().await {
                    busy -= 1;
                    idle.extend(conn);
                }
            };
            let mut batch = Batch::default();
            batch.push(first);
            while batch.len < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.counts.batches.fetch_add(1, Ordering::Relaxed);
            self.counts.jobs.fetch_add(batch.len as u64, Ordering::Relaxed);
            let statements = self.statements.clone();
            match conn {
                Some(mut held) => {
                    busy += 1;
                    let back = back.clone();
                    let deadline = self.deadline;
                    tokio::spawn(async move {
                        // Past the deadline the batch is dropped (its requests get 503)
                        // and so is the connection: its state is unknown.
                        let healthy = tokio::time::timeout(deadline, batch.run(&statements, &mut held.conn))
                            .await
                            .unwrap_or(false);
                        let _ = back.send(healthy.then_some(held));
                    });
                }
                None => {
                    let (pool, deadline, db) = (self.pool.clone(), self.deadline, self.db.clone());
                    tokio::spawn(async move {
                        // On the pool as resource traffic: never in the
                        // connections kept for credential lookups.
                        let _permit = match db.resource_permit().await {
                            Ok(permit) => permit,
                            Err(error) => return batch.fail_unavailable(&error),
                        };
                        match pool.acquire().await {
                            Ok(mut conn) => {
                                if tokio::time::timeout(deadline, batch.run(&statements, &mut conn))
                                    .await
                                    .is_err()
                                {
                                    conn.close_on_drop();
                                }
                            }
                            Err(error) => batch.fail(&error),
                        }
                    });
                }
            }
        }
    }

    /// A new connection of this lane's own: `Ok(None)` when the budget has
    /// no room, `Err` when PostgreSQL did not accept one in time.
    async fn open(&self) -> Result<Option<Held>, ()> {
        let Ok(permit) = self.budget.clone().try_acquire_owned() else {
            return Ok(None);
        };
        let connect = tokio::time::timeout(self.deadline, PgConnection::connect_with(&self.options));
        match connect
            .await
            .unwrap_or_else(|_| Err(sea_orm::sqlx::Error::PoolTimedOut))
        {
            Ok(conn) => Ok(Some(Held { conn, _permit: permit })),
            Err(error) => {
                if let Some(suppressed) = self.connect_warnings.admit() {
                    tracing::warn!(error = %error, suppressed, "an item lane could not open a connection; using the pool");
                }
                Err(())
            }
        }
    }
}

/// Closes `connections` the polite way (PostgreSQL is told, rather than
/// finding a dropped socket and logging it).
async fn close(connections: Vec<Held>) {
    for held in connections {
        let _ = held.conn.close().await;
    }
}

/// Jobs taken together, by kind.
#[derive(Default)]
struct Batch {
    lists: Vec<ListJob>,
    finds: Vec<FindJob>,
    inserts: Vec<InsertJob>,
    len: usize,
}

impl Batch {
    fn push(&mut self, job: Job) {
        self.len += 1;
        match job {
            Job::List(job) => self.lists.push(job),
            Job::Find(job) => self.finds.push(job),
            Job::Insert(job) => self.inserts.push(job),
        }
    }

    /// Runs one statement per kind present; returns whether the connection
    /// is still usable (after it broke, the remaining kinds get 503).
    async fn run(self, statements: &Statements, conn: &mut PgConnection) -> bool {
        let Self {
            lists, finds, inserts, ..
        } = self;
        let mut healthy = true;
        if !inserts.is_empty() {
            healthy = statements.inserts(conn, inserts).await;
        }
        if !lists.is_empty() {
            healthy = if healthy {
                statements.lists(conn, lists).await
            } else {
                fail_all(lists.into_iter().map(Job::List))
            };
        }
        if !finds.is_empty() {
            healthy = if healthy {
                statements.finds(conn, finds).await
            } else {
                fail_all(finds.into_iter().map(Job::Find))
            };
        }
        healthy
    }

    /// No room for resource traffic on the pool: every job gets
    /// [`Error::Unavailable`] saying so.
    fn fail_unavailable(self, error: &Error) {
        let jobs = (self.lists.into_iter().map(Job::List))
            .chain(self.finds.into_iter().map(Job::Find))
            .chain(self.inserts.into_iter().map(Job::Insert));
        for job in jobs {
            job.fail(Error::Unavailable(anyhow::anyhow!("{error}")));
        }
    }

    /// No connection could be had: every job gets `error`'s translation.
    fn fail(self, error: &sea_orm::sqlx::Error) {
        let jobs = (self.lists.into_iter().map(Job::List))
            .chain(self.finds.into_iter().map(Job::Find))
            .chain(self.inserts.into_iter().map(Job::Insert));
        for job in jobs {
            job.fail(translate(error));
        }
    }
}

/// After the connection broke: the jobs not yet run get 503.
fn fail_all(jobs: impl Iterator<Item = Job>) -> bool {
    for job in jobs {
        job.fail(Error::Unavailable(anyhow::anyhow!("the database connection broke")));
    }
    false
}
