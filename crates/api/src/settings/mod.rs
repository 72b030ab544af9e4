//! Typed configuration, built once from the environment (and `.env`).
//!
//! Every variable of the Python original keeps its name and default. Each
//! group of variables is read by its own module ([`server`], [`database`],
//! [`cache`], [`auth`], [`security`], [`telemetry`]); a malformed value is one
//! line naming the variable and stops start-up (exit code 2) in every
//! environment. [`policy`] decides what is unsafe: fatal in production, a
//! loud warning in development, where a public development secret stands in
//! for a missing `BETTER_AUTH_SECRET` so `dev seed` and the server agree.

pub mod auth;
pub mod cache;
pub mod database;
pub mod policy;
pub mod reader;
pub mod security;
pub mod server;
pub mod telemetry;

use std::collections::HashMap;

pub use auth::{Auth, DEV_BETTER_AUTH_SECRET, MIN_SECRET_BYTES};
pub use cache::Cache;
pub use database::{Database, EMBEDDED_DATABASE_URL};
pub use reader::Secret;
pub use security::Security;
pub use server::Server;
pub use telemetry::{LogFormat, Telemetry};

/// `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local work: migrations at start-up, docs served, dev secret allowed.
    Development,
    /// Strict: configuration checked, no internals in responses.
    Production,
}

/// The whole configuration, by group.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_ENV`.
    pub environment: Environment,
    /// Listener and lifecycle.
    pub server: Server,
    /// The database.
    pub database: Database,
    /// Redis and caches.
    pub cache: Cache,
    /// better-auth and the service's own secret.
    pub auth: Auth,
    /// Origins, proxies, rate limits.
    pub security: Security,
    /// Logs, metrics, error detail.
    pub telemetry: Telemetry,
}

/// What validation found: fatal problems and warnings, one line each.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems that stop start-up.
    pub errors: Vec<String>,
    /// Problems tolerated in development.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Reads `.env` (if present; real environment variables win) and the environment.
    ///
    /// # Errors
    /// The validation report when any fatal problem was found.
    pub fn from_env() -> Result<(Self, Report), Report> {
        // A missing .env is normal; a malformed one is worth a warning but not fatal.
        let dotenv_warning = match dotenvy::dotenv() {
            Ok(_) => None,
            Err(e) if e.not_found() => None,
            Err(e) => Some(format!(".env: could not be read ({e})")),
        };
        let vars: HashMap<String, String> = std::env::vars().collect();
        let mut result = Self::from_map(&vars);
        if let Some(w) = dotenv_warning {
            match &mut result {
                Ok((_, report)) | Err(report) => report.warnings.push(w),
            }
        }
        result
    }

    /// Builds settings from explicit variables (tests pass their own map).
    ///
    /// # Errors
    /// The validation report when any fatal problem was found.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<(Self, Report), Report> {
        let mut r = reader::Reader::new(vars);
        let environment = match r.get("APP_ENV").map(str::to_ascii_lowercase).as_deref() {
            None | Some("development" | "dev" | "local" | "test") => Environment::Development,
            Some("production" | "prod") => Environment::Production,
            Some(other) => {
                r.errors
                    .push(format!("APP_ENV: expected development or production, got {other:?}"));
                Environment::Development
            }
        };
        let production = environment == Environment::Production;
        let settings = Settings {
            environment,
            server: server::read(&mut r),
            database: database::read(&mut r, production),
            cache: cache::read(&mut r),
            auth: auth::read(&mut r),
            security: security::read(&mut r),
            telemetry: telemetry::read(&mut r, production),
        };
        let mut report = Report {
            errors: r.errors,
            warnings: Vec::new(),
        };
        let problems = policy::unsafe_choices(&settings);
        if production {
            report.errors.extend(problems);
        } else {
            report.warnings.extend(problems);
        }
        if report.errors.is_empty() {
            Ok((settings, report))
        } else {
            Err(report)
        }
    }

    /// True in production.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

#[cfg(test)]
mod tests;
