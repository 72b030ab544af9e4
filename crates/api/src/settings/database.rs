//! The database: `DATABASE_URL`, `DB_POOL_MAX`, `DB_TIMEOUT_MS`,
//! `DB_STARTUP_TIMEOUT`, `AUTO_MIGRATE`.

use std::time::Duration;

use super::reader::Reader;

/// Where the embedded default keeps its database.
pub const EMBEDDED_DATABASE_URL: &str = "sqlite://data/saas.db";

/// How the database is reached.
#[derive(Debug, Clone)]
pub struct Database {
    /// `DATABASE_URL`, as given (a SQLAlchemy-style URL is accepted).
    pub url: String,
    /// `DB_POOL_MAX`.
    pub pool_max: u32,
    /// `DB_TIMEOUT_MS`: bound on acquiring a database connection.
    pub timeout: Duration,
    /// `DB_STARTUP_TIMEOUT` (seconds): how long start-up retries an unreachable database.
    pub startup_timeout: Duration,
    /// `AUTO_MIGRATE`: run migrations at start-up (default: in development).
    pub auto_migrate: bool,
}

/// Reads the group.
pub fn read(r: &mut Reader<'_>, production: bool) -> Database {
    let url = r.string("DATABASE_URL", EMBEDDED_DATABASE_URL);
    let scheme = url.split([':', '+']).next().unwrap_or_default();
    if !matches!(scheme, "postgres" | "postgresql" | "sqlite") {
        r.errors
            .push("DATABASE_URL: expected a postgres:// or sqlite:// URL".to_owned());
    }
    Database {
        url,
        pool_max: r.bounded("DB_POOL_MAX", 10u32, 1, 10_000, "a number of connections"),
        timeout: Duration::from_millis(r.parse("DB_TIMEOUT_MS", 3000u64, "milliseconds")),
        startup_timeout: Duration::from_secs(r.parse("DB_STARTUP_TIMEOUT", 30u64, "seconds")),
        auto_migrate: r.flag("AUTO_MIGRATE", !production),
    }
}
