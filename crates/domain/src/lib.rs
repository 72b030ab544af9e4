//! The SaaS starter's domain: entities, validated value types, the ports the
//! outside world must implement, and the services that hold the business rules.
//!
//! This crate knows nothing about HTTP, SQL or Redis. Adapters live in `infra`,
//! the HTTP layer in `api`; both depend on this crate, never the reverse.

pub mod auth;
pub mod cache;
pub mod change;
pub mod clock;
pub mod error;
pub mod fields;
pub mod health;
pub mod idempotency;
pub mod item;
pub mod log_throttle;
pub mod organization;
pub mod page;
pub mod rate_limit;
pub mod resource;
pub mod revocation;
pub mod scope;
pub mod user;
pub mod validation;
// saas-api generate: modules above this line

pub use error::Error;
