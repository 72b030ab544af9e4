//! The migration crate's own CLI (`cargo run -p migration -- up`), reading
//! `DATABASE_URL`. Prefer `saas-api migrate …`, which also accepts
//! SQLAlchemy-style URLs and whose `fresh` leaves better-auth's tables alone.

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
