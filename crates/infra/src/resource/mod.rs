//! What every resource's storage adapter gets: a sea-orm repository written
//! once for any scoped table ([`SeaOrmRepository`], given a [`ScopedTable`]),
//! and tracing around its calls ([`TracedRepository`]).

mod sea_orm;
mod traced;

pub use sea_orm::{ScopedColumns, ScopedTable, SeaOrmRepository};
pub use traced::TracedRepository;
