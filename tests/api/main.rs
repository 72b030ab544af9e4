//! Black-box tests: the real server on a random port, spoken to over HTTP,
//! against SQLite always and PostgreSQL + Redis (`TEST_DATABASE_URL`,
//! `TEST_REDIS_URL`) in both better-auth naming styles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod helpers;

mod api_keys;
mod auth;
mod browser;
mod conditional;
mod connection_budget;
mod cors;
mod credentials;
mod dev_seed;
mod error_types;
mod frontend;
mod gcra_agreement;
mod hardening;
mod health;
mod idempotency;
mod interop;
mod item_lanes;
mod items;
mod list_queries;
mod migrations;
mod organizations;
mod pagination;
mod resilience;
mod resource_contract;
mod response_cache;
mod revocation;
mod scoped_repository;
mod secondary_interop;
mod secondary_storage;
mod security;
mod session_cache;
mod settings_effects;
mod tls;
// saas-api generate: modules above this line
