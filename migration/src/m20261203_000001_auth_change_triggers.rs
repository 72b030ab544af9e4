//! Triggers on better-auth's tables that notify every instance of a change
//! a cached decision depends on (see [`crate::auth_changes`]). PostgreSQL
//! only: SQLite has no notifications, and the service keeps
//! `SESSION_CACHE_TTL` as the bound there. `down` removes the function and
//! every trigger.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::auth_changes::{INSTALL, UNINSTALL};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // A role that may not create triggers on better-auth's tables must
        // not block the app's own migrations: the service says so at start-up
        // and `saas-api migrate up` run as the tables' owner installs them.
        if let Err(error) = manager.get_connection().execute_unprepared(INSTALL).await {
            eprintln!("warning: auth-change triggers not installed: {error}");
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(UNINSTALL).await?;
        Ok(())
    }
}
