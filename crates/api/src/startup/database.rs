//! Start-up, database side: connect (with retries), then make sure the schema
//! is what the service needs, in this order:
//!
//! 1. in development on SQLite, create empty better-auth tables if missing
//!    (the embedded default needs no setup);
//! 2. detect better-auth's tables and their naming — *before* migrating, so a
//!    database without them gets the prepared message naming what to do, not
//!    `relation "user" does not exist` from the items migration;
//! 3. apply migrations (`AUTO_MIGRATE`), or refuse to serve with pending ones.

use anyhow::Context as _;
use infra::better_auth::dev::DevBetterAuth;
use infra::better_auth::{BetterAuthSchema, NamingStyle};
use infra::db::DbOptions;
use infra::{Db, DbBackendKind};
use migration::{Migrator, MigratorTrait};

use crate::settings::Settings;
use std::time::Duration;

/// Connects to the configured database once.
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect_database(settings: &Settings) -> anyhow::Result<Db> {
    if let Some(dir) = sqlite_parent_dir(&settings.database.url) {
        std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    let options = DbOptions {
        max_connections: settings.database.pool_max,
        acquire_timeout: settings.database.timeout,
    };
    Db::connect(&settings.database.url, &options).await
}

/// Connects, retrying with exponential backoff (250 ms doubling to 5 s) for up
/// to `DB_STARTUP_TIMEOUT`, logging each failed attempt: in a fresh deployment
/// the database often comes up after the service.
///
/// # Errors
/// When the database is still unreachable at the deadline.
pub async fn connect_database_with_retry(settings: &Settings) -> anyhow::Result<Db> {
    let started = tokio::time::Instant::now();
    let deadline = started + settings.database.startup_timeout;
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        match connect_database(settings).await {
            Ok(db) => return Ok(db),
            Err(error) => {
                let now = tokio::time::Instant::now();
                if now + backoff > deadline {
                    return Err(error.context(format!(
                        "database unreachable after {attempt} attempt(s) over {:.1} s (DB_STARTUP_TIMEOUT={} s)",
                        (now - started).as_secs_f64(),
                        settings.database.startup_timeout.as_secs()
                    )));
                }
                tracing::warn!(
                    attempt,
                    retry_in_ms = backoff.as_millis(),
                    error = format!("{error:#}"),
                    "database not reachable yet"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
        }
    }
}

/// The directory a relative or absolute SQLite file lives in, to create it.
fn sqlite_parent_dir(url: &str) -> Option<std::path::PathBuf> {
    let normalized = infra::db::normalize_url(url);
    let path = normalized
        .strip_prefix("sqlite://")
        .or_else(|| normalized.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(ToOwned::to_owned)
}

/// Prepares the schema (see the module docs) and returns what was detected.
///
/// # Errors
/// Missing better-auth tables, a failed migration, or pending migrations
/// while `AUTO_MIGRATE` is off.
pub async fn prepare_schema(settings: &Settings, db: &Db) -> anyhow::Result<BetterAuthSchema> {
    let schema = better_auth_schema(settings, db).await?;
    if settings.database.auto_migrate {
        Migrator::up(db.conn(), None)
            .await
            .context("running migrations failed")?;
        tracing::info!("migrations applied");
    } else {
        // Serving without the app's tables would only produce 500s.
        let pending = Migrator::get_pending_migrations(db.conn())
            .await
            .context("reading migration status failed")?;
        if !pending.is_empty() {
            let names: Vec<&str> = pending.iter().map(|m| m.name()).collect();
            anyhow::bail!(
                "{} migration(s) pending ({}): run `saas-api migrate up` (or set AUTO_MIGRATE=true) before serving",
                names.len(),
                names.join(", ")
            );
        }
    }
    Ok(schema)
}

/// better-auth's tables as start-up and `saas-api migrate` see them: on the
/// embedded default (SQLite, development) empty ones are created when
/// missing; anywhere else their absence is one clear error.
///
/// # Errors
/// Missing better-auth tables, or an unreadable catalogue.
pub async fn better_auth_schema(settings: &Settings, db: &Db) -> anyhow::Result<BetterAuthSchema> {
    if !settings.is_production() && db.kind() == DbBackendKind::Sqlite {
        let dev = DevBetterAuth::new(db.clone(), NamingStyle::CamelCase);
        if !dev.tables_exist().await? {
            tracing::warn!("better-auth tables missing: creating empty development tables (SQLite, development only)");
            dev.create_tables(true).await?;
        }
    }
    // Sessions kept only in better-auth's secondary storage need no `session` table.
    let sessions_in_table = settings
        .auth
        .secondary_storage
        .as_ref()
        .is_none_or(|storage| storage.store_session_in_database);
    let schema = BetterAuthSchema::detect_with(db, sessions_in_table).await?;
    tracing::info!(
        style = schema.style.as_str(),
        ban_columns = schema.has_ban_columns,
        naive_timestamps = ?schema.naive_timestamps,
        "better-auth schema detected"
    );
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_directories_are_derived_from_the_url() {
        assert_eq!(sqlite_parent_dir("sqlite://data/saas.db"), Some("data".into()));
        assert_eq!(
            sqlite_parent_dir("sqlite+aiosqlite:///data/x.db?mode=rwc"),
            Some("data".into())
        );
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_parent_dir("sqlite://app.db"), None);
        assert_eq!(sqlite_parent_dir("postgres://h/db"), None);
    }
}
