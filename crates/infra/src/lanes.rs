//! Lanes: a batching executor through which any repository's reads and
//! inserts reach PostgreSQL under load. A repository says what its jobs are
//! and how one statement answers a batch of them ([`Batches`]; the kit's is
//! [`crate::resource::ScopedStatements`], for every scoped table); the
//! lanes own the connections, the batching, the budget and the failures.
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
//! statement per kind ([`Batches::run`]) on one of its connections,
//! while the next batch gathers. Nothing waits for
//! a batch to fill: a lone request is sent at once, alone; batches form only
//! while the lane's connections are busy. A `201` still means committed.
//!
//! Bounds: the lanes of every repository together open at most the
//! database's lane budget (half of `DB_POOL_MAX`, the pool has the rest; see
//! [`crate::db::Db`]); a lane that
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
//! of its batch with 503 once (as a pooled one would) and is discarded; a
//! connection that was idle when one broke, or idle for [`SUSPECT_AFTER`],
//! is pinged before its next batch and replaced if dead (see
//! [`crate::breaks`]), so a database that is back answers every request.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::Error;
use domain::log_throttle::Throttle;
use sea_orm::sqlx;
use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::db::Db;

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

/// A lane's connection idle this long is pinged before its next batch
/// (the pool's threshold too; see [`crate::db::Db`]).
const SUSPECT_AFTER: Duration = Duration::from_secs(10);

/// A lane without work for this long closes its connections.
pub const IDLE: Duration = Duration::from_secs(30);

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's read and write lanes of each [`Lanes`] (by id).
    static LANES: RefCell<HashMap<(u64, Kind), Box<dyn Queue>>> = RefCell::new(HashMap::new());
}

/// A lane's queue, whatever its job type.
trait Queue {
    fn is_closed(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<J: Send + 'static> Queue for mpsc::Sender<J> {
    fn is_closed(&self) -> bool {
        mpsc::Sender::is_closed(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Reads and writes have lanes of their own, so a read never waits behind a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Answered on the read lane.
    Read,
    /// Answered on the write lane (a commit).
    Write,
}

/// Where a job's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What a repository runs on lanes: its jobs, and how one statement per
/// kind answers a batch of them on a connection.
pub trait Batches: Send + Sync + 'static {
    /// One request's job (it carries its [`Reply`]).
    type Job: Send + 'static;

    /// Which lane answers `job`.
    fn kind(job: &Self::Job) -> Kind;

    /// Answers every job of `jobs` (all of one [`Kind`]) on `conn`,
    /// sending each its answer. Returns whether the connection is still
    /// usable (after it broke, the jobs not yet answered must get
    /// [`Error::Unavailable`]).
    fn run<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        jobs: Vec<Self::Job>,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

    /// Answers `job` with `error`.
    fn fail(job: Self::Job, error: Error);
}

/// What every lane of one repository shares.
struct Shared<B> {
    id: u64,
    options: Arc<PgConnectOptions>,
    budget: Arc<Semaphore>,
    pool: PgPool,
    /// For the resource permits of batches run on the pool.
    db: Db,
    batches: Arc<B>,
    /// Dropped with the last [`Lanes`] handle: the lanes then stop.
    alive: watch::Sender<()>,
    connect_warnings: Arc<Throttle>,
}

/// What the lanes of a process have done since it started.
#[derive(Debug, Default)]
pub struct Counts {
    batches: AtomicU64,
    jobs: AtomicU64,
}

impl Counts {
    /// How much batching has happened so far.
    pub fn stats(&self) -> LaneStats {
        LaneStats {
            batches: self.batches.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
        }
    }
}

/// How much batching happened: `jobs` requests were answered by `batches` batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneStats {
    /// Batches run (each one statement per kind of job in it).
    pub batches: u64,
    /// Requests answered.
    pub jobs: u64,
}

/// The lanes of one repository (a cheap handle; see the module docs).
pub struct Lanes<B> {
    shared: Arc<Shared<B>>,
}

impl<B> Clone for Lanes<B> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B> std::fmt::Debug for Lanes<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl<B: Batches> Lanes<B> {
    /// Lanes over `db` (PostgreSQL; `None` otherwise) answering with `batches`.
    pub fn new(db: &Db, batches: B) -> Option<Self> {
        let pool = db.postgres_pool()?;
        Some(Self {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                options: pool.connect_options(),
                budget: db.lane_budget(),
                pool,
                db: db.clone(),
                batches: Arc::new(batches),
                alive: watch::channel(()).0,
                connect_warnings: Arc::new(Throttle::default()),
            }),
        })
    }

    /// Queues the job `job` makes of its reply on this thread's lane of its
    /// kind, and waits for the answer.
    ///
    /// # Errors
    /// The job's own error; [`Error::Unavailable`] when its batch was
    /// abandoned (the database did not answer within the deadline, or the
    /// runtime is shutting down): an insert in it may or may not have been
    /// committed, as with any request that times out (retry it with an
    /// `Idempotency-Key`).
    pub async fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> B::Job) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.submit(job(reply)).await;
        answer
            .await
            .map_err(|_| Error::Unavailable(anyhow::anyhow!("the database did not answer in time")))?
    }

    /// Queues `job` on this thread's lane, starting the lane if there is
    /// none (or the old one stopped with its runtime).
    async fn submit(&self, job: B::Job) {
        let kind = B::kind(&job);
        let key = (self.shared.id, kind);
        let queue = LANES.with(|lanes| {
            let mut lanes = lanes.borrow_mut();
            let current = lanes
                .get(&key)
                .and_then(|queue| queue.as_any().downcast_ref::<mpsc::Sender<B::Job>>())
                .filter(|queue| !queue.is_closed())
                .cloned();
            current.unwrap_or_else(|| {
                lanes.retain(|_, queue| !queue.is_closed());
                let queue = self.start(kind);
                lanes.insert(key, Box::new(queue.clone()));
                queue
            })
        });
        if let Err(mpsc::error::SendError(job)) = queue.send(job).await {
            B::fail(job, Error::Unavailable(anyhow::anyhow!("the lane has stopped")));
        }
    }

    fn start(&self, kind: Kind) -> mpsc::Sender<B::Job> {
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
            batches: self.shared.batches.clone(),
            connect_warnings: self.shared.connect_warnings.clone(),
        };
        tokio::spawn(lane.run(jobs, self.shared.alive.subscribe()));
        queue
    }
}

/// A connection a lane holds, and its share of the budget.
struct Held {
    conn: PgConnection,
    /// When it last answered (or opened).
    used: tokio::time::Instant,
    _permit: OwnedSemaphorePermit,
}

impl Held {
    /// Whether it may have broken unnoticed while idle: a connection was
    /// found broken meanwhile (see [`crate::breaks`]), or it sat idle as
    /// long as the pool's idle connections may before they are pinged.
    fn suspect(&self) -> bool {
        let idle = self.used.elapsed();
        idle >= SUSPECT_AFTER || crate::breaks::since(idle)
    }
}

/// One thread's read or write lane.
struct Lane<B> {
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
    batches: Arc<B>,
    connect_warnings: Arc<Throttle>,
}

impl<B: Batches> Lane<B> {
    async fn run(self, mut jobs: mpsc::Receiver<B::Job>, mut alive: watch::Receiver<()>) {
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
                if let Some(held) = idle.pop() {
                    match self.proven(held).await {
                        Some(held) => break Some(held),
                        None => continue,
                    }
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
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let counts = self.db.lane_counts();
            counts.batches.fetch_add(1, Ordering::Relaxed);
            counts.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
            let batches = self.batches.clone();
            match conn {
                Some(mut held) => {
                    busy += 1;
                    let back = back.clone();
                    let deadline = self.deadline;
                    tokio::spawn(async move {
                        // Past the deadline the batch is dropped (its requests get 503)
                        // and so is the connection: its state is unknown.
                        let healthy = match tokio::time::timeout(deadline, batches.run(&mut held.conn, batch)).await {
                            Ok(true) => true,
                            Ok(false) => {
                                crate::breaks::note();
                                false
                            }
                            Err(_) => false,
                        };
                        held.used = tokio::time::Instant::now();
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
                            Err(error) => {
                                return fail_all::<B>(batch, || Error::Unavailable(anyhow::anyhow!("{error}")));
                            }
                        };
                        match pool.acquire().await {
                            Ok(mut conn) => match tokio::time::timeout(deadline, batches.run(&mut conn, batch)).await {
                                Ok(true) => {}
                                Ok(false) => {
                                    crate::breaks::note();
                                    conn.close_on_drop();
                                }
                                Err(_) => conn.close_on_drop(),
                            },
                            Err(error) => fail_all::<B>(batch, || translate(&error)),
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
            Ok(conn) => Ok(Some(Held {
                conn,
                used: tokio::time::Instant::now(),
                _permit: permit,
            })),
            Err(error) => {
                if let Some(suppressed) = self.connect_warnings.admit() {
                    tracing::warn!(error = %error, suppressed, "a lane could not open a connection; using the pool");
                }
                Err(())
            }
        }
    }

    /// `held`, unless it is [suspect](Held::suspect) and does not answer a
    /// ping within the deadline (then it is dropped: the lane opens another
    /// rather than fail a batch on it).
    async fn proven(&self, mut held: Held) -> Option<Held> {
        if !held.suspect() {
            return Some(held);
        }
        match tokio::time::timeout(self.deadline, held.conn.ping()).await {
            Ok(Ok(())) => {
                held.used = tokio::time::Instant::now();
                Some(held)
            }
            Ok(Err(_)) => {
                crate::breaks::note();
                None
            }
            Err(_) => None,
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

/// Answers every job of `jobs` with an `error` (no connection for them).
fn fail_all<B: Batches>(jobs: Vec<B::Job>, error: impl Fn() -> Error) {
    for job in jobs {
        B::fail(job, error());
    }
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
/// [`Error::Unavailable`] (503, retry), a foreign-key violation (only an
/// insert's `owner_id` has one) an unknown user, anything else unexpected.
pub fn translate(error: &sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = error
        && db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation
    {
        return Error::Unauthenticated(domain::error::AuthFailure::UnknownUser);
    }
    if broken(error) || matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) {
        Error::Unavailable(anyhow::anyhow!("database unavailable: {error}"))
    } else {
        Error::Unexpected(anyhow::anyhow!("database error: {error}"))
    }
}

/// Answers every reply with `error`; returns whether the connection is still usable.
pub fn fail<T>(replies: impl Iterator<Item = Reply<T>>, error: &sqlx::Error) -> bool {
    for reply in replies {
        let _ = reply.send(Err(translate(error)));
    }
    !broken(error)
}
