//! The HTTP layer of the SaaS starter: configuration, the actix-web app, its
//! handlers and middleware, the error envelope, and the `saas-api` commands.
//! Business rules live in `domain`; storage in `infra`.

pub mod app;
pub mod commands;
pub mod conditional;
pub mod cursor;
pub mod docs;
pub mod docs_contract;
pub mod error;
pub mod error_type;
pub mod extract;
pub mod handlers;
pub mod headers;
pub mod idempotent;
pub mod json_log;
pub mod json_time;
pub mod lifecycle;
pub mod listing;
pub mod metrics;
pub mod middleware;
pub mod otel;
pub mod process_metrics;
pub mod resource;
pub mod resources;
pub mod response_cache;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use settings::Settings;
pub use startup::Application;

#[cfg(test)]
mod app_tests;
