//! Adapters for the domain's ports.
//!
//! - [`db`]: connecting to PostgreSQL or SQLite and translating storage errors;
//! - [`item_repository`]: items through sea-orm, on either backend;
//! - [`resource`]: what every resource's repository gets (the generic
//!   repository, batching through [`lanes`], tracing);
//! - [`better_auth`]: read-only access to better-auth's `session`/`user` tables,
//!   whose column naming (camelCase or snake_case) is detected at start-up;
//! - [`cache`]: the session cache in Redis (shared by every instance) or in
//!   process (the embedded default);
//! - [`redis`]: the Redis connection pool.

pub mod better_auth;
pub mod breaks;
pub mod cache;
pub mod db;
pub mod entities;
pub mod idempotency_store;
pub mod item_repository;
pub mod lanes;
pub mod owner;
pub mod probes;
pub mod rate_limit;
pub mod redis;
pub mod resource;
// saas-api generate: modules above this line

pub use db::{Db, DbBackendKind};
pub use item_repository::SeaOrmItemRepository;
pub use owner::OwnerIdType;
