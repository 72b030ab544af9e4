//! Migrations for the application's own tables.
//!
//! better-auth owns `user`, `session`, `account` and `verification`; nothing
//! here creates, alters or drops them (on PostgreSQL one migration adds
//! notification triggers to them: see [`auth_changes`]). `items.owner_id` references `"user"(id)`
//! with `ON DELETE CASCADE`, so the `user` table must exist before `up` runs on
//! PostgreSQL (better-auth's own migrations create it).
//!
//! Beware: sea-orm's generic `fresh` drops *every* table of the schema,
//! better-auth's included. `saas-api migrate fresh` instead rolls back and
//! re-applies these migrations only.

pub use sea_orm_migration::prelude::*;

pub mod auth_changes;
pub mod owner;
pub mod scoped;

mod m20260101_000001_create_items;
mod m20261130_072653_create_idempotency_keys;
mod m20261130_083424_add_organization_to_items;
mod m20261203_000001_auth_change_triggers;
mod m20261204_000001_items_list_indexes;
// saas-api generate: migration modules above this line

/// The ordered list of this application's migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_create_items::Migration),
            Box::new(m20261130_072653_create_idempotency_keys::Migration),
            Box::new(m20261130_083424_add_organization_to_items::Migration),
            Box::new(m20261203_000001_auth_change_triggers::Migration),
            Box::new(m20261204_000001_items_list_indexes::Migration),
            // saas-api generate: migrations above this line
        ]
    }
}
