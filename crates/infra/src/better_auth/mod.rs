//! better-auth's tables, read-only.
//!
//! better-auth creates `user`, `session`, `account` and `verification`; how
//! their columns are named depends on how the frontend set it up: its own
//! migrator writes quoted camelCase (`"expiresAt"`), its Drizzle generator
//! snake_case (`expires_at`), and Drizzle also tends to use naive `timestamp`
//! columns (read here as UTC). [`schema::BetterAuthSchema::detect`] inspects
//! the live database once at start-up; [`session_store::SqlSessionStore`] then
//! runs one prepared query per cold session. [`dev`] creates compatible tables
//! and rows for the dev seed and the tests — never in production.
//! [`secondary_storage`] reads sessions and API keys better-auth keeps in
//! its Redis secondary storage. [`auth_changes`] hears about better-auth's writes (PostgreSQL
//! notifications), so cached decisions do not outlive them.

pub mod api_key_store;
pub mod auth_changes;
pub mod dev;
pub mod jwks;
pub mod membership_store;
pub mod schema;
pub mod secondary_storage;
pub mod secondary_tracking;
pub mod session_store;

pub use api_key_store::SqlApiKeyStore;
pub use jwks::{HttpKeySource, SqlKeySource};
pub use membership_store::SqlMembershipStore;
pub use schema::{ApiKeySchema, BetterAuthSchema, JwksSchema, NamingStyle, OrganizationSchema};
pub use secondary_storage::{
    LayeredApiKeyStore, SecondaryApiKeyStore, SecondarySessionStore, SecondaryStorage, SessionStorageProbe,
};
pub use session_store::SqlSessionStore;
