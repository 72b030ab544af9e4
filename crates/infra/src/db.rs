//! Database connections and the translation of storage errors into domain errors.
//!
//! One pool per process, and on PostgreSQL a budget of connections for the
//! lanes of every repository (see [`crate::lanes`]): of `DB_POOL_MAX`,
//! half (rounded down) may be held by lanes, the pool has the rest, so the
//! process never opens more than `DB_POOL_MAX`. URLs in SQLAlchemy style (`postgresql+asyncpg://…`,
//! `sqlite+aiosqlite:///…`) are normalised, so a `.env` from the Python
//! original works unchanged. sqlx's statement logging is switched off: a query
//! log could otherwise print a session token.

use std::sync::Arc;
use std::time::Duration;

use domain::Error;
use sea_orm::sqlx::postgres::PgPool;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, QueryResult, RuntimeErr, Statement,
};
use tokio::sync::Semaphore;

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbBackendKind {
    /// PostgreSQL (production).
    Postgres,
    /// SQLite (the embedded default and tests).
    Sqlite,
}

/// Pool tunables.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long to wait for a connection (from the pool or a new one) before giving up.
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// A database handle: the sea-orm connection and its dialect.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    kind: DbBackendKind,
    /// Connections the lanes of every repository may hold (none on SQLite).
    lanes: Arc<Semaphore>,
    lane_budget: u32,
    /// What those lanes have batched.
    lane_counts: Arc<crate::lanes::Counts>,
    /// Pooled connections resource traffic may hold at once (PostgreSQL):
    /// the rest of the pool is kept for credential and membership lookups.
    resources: Option<Arc<Semaphore>>,
    acquire_timeout: Duration,
}

/// Pooled connections kept for credential and membership lookups: half the
/// pool (after the lanes' share), at least one when the pool has two or more.
pub fn reserved_for_lookups(pool: u32) -> u32 {
    if pool < 2 { 0 } else { (pool / 2).max(1) }
}

impl Db {
    /// Connects to `url` (normalised with [`normalize_url`]).
    ///
    /// # Errors
    /// When the URL's scheme is not PostgreSQL or SQLite, or the first
    /// connection cannot be made within the acquire timeout.
    pub async fn connect(url: &str, options: &DbOptions) -> anyhow::Result<Self> {
        let url = normalize_url(url);
        let lane_budget = if url.starts_with("sqlite:") {
            0
        } else {
            options.max_connections / 2
        };
        let mut connect = ConnectOptions::new(url.clone());
        connect
            .max_connections(options.max_connections - lane_budget)
            .min_connections(1)
            .connect_timeout(options.acquire_timeout)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(Duration::from_secs(300))
            // Pinging on every checkout costs a round trip per query; only a
            // connection idle long enough to have been dropped is checked,
            // or one that was idle when another was found broken (see
            // [`crate::breaks`]). A connection that breaks mid-use errors
            // once (503) and is discarded.
            .test_before_acquire_if_idle_for(Duration::from_secs(10))
            .map_sqlx_postgres_before_acquire(|conn, meta| {
                Box::pin(async move {
                    if crate::breaks::since(meta.idle_for) {
                        sea_orm::sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            // WAL lets readers proceed while a writer commits; foreign keys
            // make the cascade from `user` real.
            connect.map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
            });
        }
        let conn = match Database::connect(connect).await {
            Ok(conn) => conn,
            Err(error) => {
                // The pool reports only that it timed out waiting: one direct
                // attempt names the cause (refused, unknown host, password,
                // missing database) instead.
                let cause = match direct_cause(&url, options.acquire_timeout).await {
                    Some(cause) => anyhow::anyhow!(cause),
                    None => anyhow::Error::new(error),
                };
                return Err(cause.context(format!("could not connect to the database at {}", redact(&url))));
            }
        };
        let kind = match conn.get_database_backend() {
            DbBackend::Postgres => DbBackendKind::Postgres,
            DbBackend::Sqlite => DbBackendKind::Sqlite,
            other => {
                anyhow::bail!("unsupported database backend {other:?}: use PostgreSQL or SQLite")
            }
        };
        let pool = options.max_connections - lane_budget;
        let resources = (kind == DbBackendKind::Postgres)
            .then(|| Arc::new(Semaphore::new((pool - reserved_for_lookups(pool)) as usize)));
        Ok(Self {
            conn,
            kind,
            lanes: Arc::new(Semaphore::new(lane_budget as usize)),
            lane_budget,
            lane_counts: Arc::default(),
            resources,
            acquire_timeout: options.acquire_timeout,
        })
    }

    /// Waits for room to use a pooled connection for resource traffic
    /// (items and every scoped resource; held until the permit drops). On
    /// PostgreSQL at most the pool minus [`reserved_for_lookups`] connections
    /// serve resources at once, so however saturated resource traffic is,
    /// sessions, API keys and memberships still find a connection. `None`
    /// on SQLite (one writer at a time; nothing to share fairly).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when no room frees within `DB_TIMEOUT_MS` (the
    /// pool's acquire timeout), as a pool timeout would be.
    pub async fn resource_permit(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Error> {
        let Some(resources) = &self.resources else {
            return Ok(None);
        };
        match tokio::time::timeout(self.acquire_timeout, resources.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(Error::Unavailable(anyhow::anyhow!(
                "no database connection for resource traffic within {:?}",
                self.acquire_timeout
            ))),
        }
    }

    /// The permits of resource traffic on the pool (`None` on SQLite).
    pub fn resource_budget(&self) -> Option<Arc<Semaphore>> {
        self.resources.clone()
    }

    /// The sqlx pool under the sea-orm connection, on PostgreSQL.
    pub fn postgres_pool(&self) -> Option<PgPool> {
        (self.kind == DbBackendKind::Postgres).then(|| self.conn.get_postgres_connection_pool().clone())
    }

    /// The permits of the lanes' connections (each held connection holds one).
    pub fn lane_budget(&self) -> Arc<Semaphore> {
        self.lanes.clone()
    }

    /// What the lanes of every repository have batched.
    pub fn lane_counts(&self) -> &crate::lanes::Counts {
        &self.lane_counts
    }

    /// At most one row of `stmt`, the statement traced as `operation` (see
    /// [`span`]) with the rows it returned.
    ///
    /// # Errors
    /// As [`translate`].
    pub async fn query_one(&self, stmt: Statement, operation: &'static str) -> Result<Option<QueryResult>, Error> {
        let span = span(self.kind, operation);
        let row = tracing::Instrument::instrument(self.conn.query_one_raw(stmt), span.clone())
            .await
            .map_err(translate)?;
        span.record("db.response.returned_rows", i64::from(row.is_some()));
        Ok(row)
    }

    /// Every row of `stmt`, the statement traced as `operation`.
    ///
    /// # Errors
    /// As [`translate`].
    pub async fn query_all(&self, stmt: Statement, operation: &'static str) -> Result<Vec<QueryResult>, Error> {
        let span = span(self.kind, operation);
        let rows = tracing::Instrument::instrument(self.conn.query_all_raw(stmt), span.clone())
            .await
            .map_err(translate)?;
        span.record(
            "db.response.returned_rows",
            i64::try_from(rows.len()).unwrap_or(i64::MAX),
        );
        Ok(rows)
    }

    /// The sea-orm connection.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// The dialect.
    pub fn kind(&self) -> DbBackendKind {
        self.kind
    }

    /// The sea-orm backend enum, for building raw statements.
    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Runs `SELECT 1`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database does not answer.
    pub async fn ping(&self) -> Result<(), Error> {
        self.conn.ping().await.map_err(translate)
    }

    /// `(open connections, idle connections)` of the pool, for metrics; the
    /// open ones include those the lanes hold.
    pub fn pool_stats(&self) -> (u32, usize) {
        match self.kind {
            DbBackendKind::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                let lanes = self.lane_budget - u32::try_from(self.lanes.available_permits()).unwrap_or(0);
                (pool.size() + lanes, pool.num_idle())
            }
            DbBackendKind::Sqlite => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }

    /// The most connections this process opens (`DB_POOL_MAX`): the pool's and the lanes'.
    pub fn max_connections(&self) -> u32 {
        self.lane_budget
            + match self.kind {
                DbBackendKind::Postgres => self.conn.get_postgres_connection_pool().options().get_max_connections(),
                DbBackendKind::Sqlite => self.conn.get_sqlite_connection_pool().options().get_max_connections(),
            }
    }

    /// Closes the pool, waiting for checked-out connections to return.
    pub async fn close(self) {
        if let Err(error) = self.conn.close().await {
            tracing::warn!(error = %error, "closing the database pool failed");
        }
    }

    /// Runs a raw statement that returns nothing (used for schema set-up in dev and tests).
    ///
    /// # Errors
    /// Any database error.
    pub async fn execute_unprepared(&self, sql: &str) -> Result<(), DbErr> {
        self.conn.execute_unprepared(sql).await.map(|_| ())
    }
}

/// Whether this process exports traces (set once, when the global
/// subscriber is installed with an OpenTelemetry layer).
static TRACES_EXPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that the process's global subscriber exports traces.
pub fn set_traces_exported() {
    TRACES_EXPORTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the process exports traces: one load of a flag (`tracing::enabled!`
/// asks every layer's filter each time, which cost every request).
pub fn traces_exported() -> bool {
    TRACES_EXPORTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the caller runs inside a request whose trace is exported: trace
/// export on and a request span current. Child spans are opened only then.
pub fn in_traced_request() -> bool {
    // The current span's id, without cloning a handle to it (`Span::current`
    // takes a reference on the span and on the dispatcher).
    traces_exported() && tracing::dispatcher::get_default(|dispatch| dispatch.current_span().id().is_some())
}

/// An OpenTelemetry span (target `otel`, off unless trace export is on) for
/// one database statement, or one wait for a lane batch, named `operation`;
/// none outside a traced request (an unsampled one opens no span at all).
pub fn span(kind: DbBackendKind, operation: &'static str) -> tracing::Span {
    if !in_traced_request() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: "otel",
        "db",
        otel.name = operation,
        otel.kind = "client",
        db.system.name = match kind {
            DbBackendKind::Postgres => "postgresql",
            DbBackendKind::Sqlite => "sqlite",
        },
        db.operation.name = operation,
        db.response.returned_rows = tracing::field::Empty,
    )
}

/// [`span`] for `operation` on the records of `collection` (a resource's
/// table): named `<collection>.<operation>`, with `db.collection.name`.
pub fn record_span(kind: DbBackendKind, collection: &'static str, operation: &'static str) -> tracing::Span {
    if !in_traced_request() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: "otel",
        "db",
        otel.name = %format_args!("{collection}.{operation}"),
        otel.kind = "client",
        db.system.name = match kind {
            DbBackendKind::Postgres => "postgresql",
            DbBackendKind::Sqlite => "sqlite",
        },
        db.collection.name = collection,
        db.operation.name = operation,
        db.response.returned_rows = tracing::field::Empty,
    )
}

/// Turns SQLAlchemy-style URLs into sqlx ones: `postgresql+asyncpg://` →
/// `postgres://`, `sqlite+aiosqlite:///x` → `sqlite://x`.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let base = scheme.split('+').next().unwrap_or(scheme);
    match base {
        "postgresql" | "postgres" => format!("postgres://{rest}"),
        // SQLAlchemy (`sqlite+driver:///x.db`) puts one more slash before the
        // path than sqlx does (`sqlite://x.db`); a plain `sqlite:` URL is sqlx's.
        "sqlite" if scheme.contains('+') => {
            format!("sqlite://{}", rest.strip_prefix('/').unwrap_or(rest))
        }
        _ => url.to_owned(),
    }
}

/// Why one direct PostgreSQL connection to `url` fails, in words an operator
/// acts on; `None` when it succeeds (or for SQLite).
async fn direct_cause(url: &str, timeout: Duration) -> Option<String> {
    use sea_orm::sqlx::Connection as _;
    use sea_orm::sqlx::postgres::PgConnection;
    if !url.starts_with("postgres") {
        return None;
    }
    let error = match tokio::time::timeout(timeout, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return None;
        }
        Ok(Err(error)) => error,
        Err(_) => return Some(format!("no answer within {} ms", timeout.as_millis())),
    };
    let text = error.to_string();
    let tls = matches!(error, sea_orm::sqlx::Error::Tls(_))
        || ["certificate", "handshake"]
            .iter()
            .any(|needle| text.to_ascii_lowercase().contains(needle));
    if tls {
        return Some(format!(
            "TLS failed ({}): is the server's certificate signed by the CA of sslrootcert (or, without it, by one the system trusts), and does it name the URL's host?",
            text.trim_start_matches("error communicating with database: ")
        ));
    }
    Some(match &error {
        sea_orm::sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is PostgreSQL running and listening on that host and port?)".to_owned()
        }
        sea_orm::sqlx::Error::Io(io) if io.to_string().contains("failed to lookup address") => {
            format!("host not found ({io})")
        }
        sea_orm::sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => format!("authentication failed: {}", db.message()),
            Some("3D000") => format!("{} (create it, or fix the URL's database name)", db.message()),
            _ => db.message().to_owned(),
        },
        other => other.to_string(),
    })
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Maps a sea-orm error to the domain: connection-level failures are
/// [`Error::Unavailable`] (503, retry later), everything else is unexpected.
/// A broken connection is noted (see [`crate::breaks`]).
pub fn translate(error: DbErr) -> Error {
    if let DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) = &error
        && crate::lanes::broken(e)
    {
        crate::breaks::note();
    }
    if is_unavailable(&error) {
        Error::Unavailable(anyhow::Error::new(error).context("database unavailable"))
    } else {
        Error::Unexpected(anyhow::Error::new(error).context("database error"))
    }
}

fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_urls_are_accepted() {
        assert_eq!(
            normalize_url("postgresql+asyncpg://u:p@h:5432/db"),
            "postgres://u:p@h:5432/db"
        );
        assert_eq!(normalize_url("postgresql://h/db"), "postgres://h/db");
        assert_eq!(normalize_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(normalize_url("sqlite+aiosqlite:///data/app.db"), "sqlite://data/app.db");
        assert_eq!(normalize_url("sqlite+aiosqlite:////abs/app.db"), "sqlite:///abs/app.db");
        assert_eq!(normalize_url("sqlite:///abs/app.db"), "sqlite:///abs/app.db");
        assert_eq!(
            normalize_url("sqlite://data/app.db?mode=rwc"),
            "sqlite://data/app.db?mode=rwc"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://user:secret@host/db"), "postgres://user:***@host/db");
        assert_eq!(redact("sqlite://data/app.db"), "sqlite://data/app.db");
    }
}
