//! `saas-api migrate up|down|status|fresh`: the application's own tables only.

use anyhow::{Context as _, bail};
use migration::{Migrator, MigratorTrait};

use crate::settings::Settings;
use crate::startup::connect_database;
use crate::startup::database::better_auth_schema;

/// Runs one migration action against `DATABASE_URL`.
///
/// - `up`: apply every pending migration;
/// - `down`: roll back the last one;
/// - `status`: list migrations and whether each is applied;
/// - `fresh`: roll back all of ours, then apply them again (better-auth's
///   tables are untouched, unlike sea-orm's generic `fresh`).
///
/// # Errors
/// An unknown action, or a failed migration.
pub async fn run(settings: &Settings, action: &str) -> anyhow::Result<()> {
    let db = connect_database(settings).await?;
    // The same check (and message) as start-up: the app's tables reference better-auth's.
    better_auth_schema(settings, &db).await?;
    let conn = db.conn();
    match action {
        "up" => {
            Migrator::up(conn, None).await.context("migrate up failed")?;
            // Also when the migration ran earlier under a role that could not
            // create them: run as the tables' owner, this installs them.
            match infra::better_auth::auth_changes::install(&db).await {
                Ok(()) if db.kind() == infra::db::DbBackendKind::Postgres => {
                    println!("auth-change triggers on better-auth's tables: installed");
                }
                Ok(()) => {}
                Err(error) => println!(
                    "warning: {error}; run `saas-api migrate up` as the owner of better-auth's tables \
                     (until then its changes take effect within SESSION_CACHE_TTL)"
                ),
            }
        }
        "down" => Migrator::down(conn, Some(1)).await.context("migrate down failed")?,
        "fresh" => {
            Migrator::down(conn, None).await.context("rolling back failed")?;
            Migrator::up(conn, None).await.context("re-applying failed")?;
        }
        "status" => {
            for migration in Migrator::get_migration_with_status(conn)
                .await
                .context("reading status failed")?
            {
                println!("{:<10} {}", migration.status().to_string(), migration.name());
            }
        }
        other => bail!("unknown migrate action {other:?}: expected up, down, status or fresh"),
    }
    if action != "status" {
        println!("migrate {action}: done");
    }
    db.close().await;
    Ok(())
}
