//! Trusting better-auth: `BETTER_AUTH_SECRET`, `BETTER_AUTH_SECRETS`,
//! `BETTER_AUTH_URL`, `BETTER_AUTH_COOKIE_PREFIX`, `BEARER_REQUIRE_SIGNATURE`,
//! the jwt plugin's `JWKS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_KEY_GRACE`,
//! the api-key plugin's `API_KEY_HEADER`, better-auth's secondary storage
//! (`BETTER_AUTH_SECONDARY_STORAGE_URL`, `BETTER_AUTH_SECONDARY_STORAGE_PREFIX`,
//! `BETTER_AUTH_STORE_SESSION_IN_DATABASE`), and the service's own `SECRET_KEY`.
//!
//! Secrets follow better-auth: `BETTER_AUTH_SECRETS` (`"2:new,1:old"` or
//! `"new,old"`) lists versioned secrets, the first being current; when it is
//! set, `BETTER_AUTH_SECRET` is still accepted (as better-auth keeps it for
//! values signed before the rotation). Every secret is checked for length;
//! which problems are fatal is decided by [`super::policy`].

use super::reader::{Reader, Secret};

/// Secret used in development when no better-auth secret is set. Public on
/// purpose: it must never protect anything real, and production refuses it.
pub const DEV_BETTER_AUTH_SECRET: &str = "dev-only-better-auth-secret-do-not-use-in-production";
/// Shortest acceptable secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// What it takes to verify better-auth's credentials.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The secrets cookies may be signed with, the current one first.
    pub better_auth_secrets: Vec<Secret>,
    /// True when no secret was configured and the public development one stands in.
    pub using_dev_secret: bool,
    /// `BETTER_AUTH_URL`: where better-auth runs (the default JWT issuer and audience).
    pub better_auth_url: String,
    /// `BETTER_AUTH_COOKIE_PREFIX` (better-auth's `advanced.cookiePrefix`).
    pub cookie_prefix: String,
    /// `BEARER_REQUIRE_SIGNATURE`.
    pub bearer_require_signature: bool,
    /// `SECRET_KEY`: signs this service's own opaque values (pagination cursors,
    /// see `crate::cursor`); unset in development = a random key per process.
    pub secret_key: Option<Secret>,
    /// Short secrets, one line each (never the value): fatal in production.
    pub weak_secrets: Vec<String>,
    /// `JWKS_URL`: where the jwt plugin's keys are served (else its `jwks` table).
    pub jwks_url: Option<String>,
    /// `JWT_ISSUER` (default `BETTER_AUTH_URL`).
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE` (default `BETTER_AUTH_URL`).
    pub jwt_audience: String,
    /// `JWT_KEY_GRACE` (seconds, default 30 days): a rotated key's grace period.
    pub jwt_key_grace: std::time::Duration,
    /// `API_KEY_HEADER` (default `x-api-key`).
    pub api_key_header: String,
    /// better-auth's `secondaryStorage`, when it keeps sessions in Redis.
    pub secondary_storage: Option<SecondaryStorage>,
}

/// better-auth's secondary storage (`@better-auth/redis-storage`).
#[derive(Debug, Clone)]
pub struct SecondaryStorage {
    /// `BETTER_AUTH_SECONDARY_STORAGE_URL`: the Redis better-auth writes to.
    pub url: String,
    /// `BETTER_AUTH_SECONDARY_STORAGE_PREFIX` (redis-storage's `keyPrefix`,
    /// default `better-auth:`; may be set empty).
    pub prefix: String,
    /// `BETTER_AUTH_STORE_SESSION_IN_DATABASE` (better-auth's
    /// `session.storeSessionInDatabase`, default false): whether the
    /// `session` table answers for tokens Redis lacks.
    pub store_session_in_database: bool,
}

/// redis-storage's default `keyPrefix`.
pub const DEFAULT_SECONDARY_PREFIX: &str = "better-auth:";
/// Longest accepted prefix.
const MAX_PREFIX_BYTES: usize = 256;

fn secondary_storage(r: &mut Reader<'_>) -> Option<SecondaryStorage> {
    let store_session_in_database = r.flag("BETTER_AUTH_STORE_SESSION_IN_DATABASE", false);
    let prefix = r.raw("BETTER_AUTH_SECONDARY_STORAGE_PREFIX");
    let Some(url) = r.get("BETTER_AUTH_SECONDARY_STORAGE_URL") else {
        if prefix.is_some() {
            r.errors
                .push("BETTER_AUTH_SECONDARY_STORAGE_PREFIX: set without BETTER_AUTH_SECONDARY_STORAGE_URL".to_owned());
        }
        return None;
    };
    if let Err(problem) = infra::redis::check_url(url) {
        r.errors.push(format!("BETTER_AUTH_SECONDARY_STORAGE_URL: {problem}"));
    }
    let prefix = prefix.unwrap_or(DEFAULT_SECONDARY_PREFIX);
    if prefix.len() > MAX_PREFIX_BYTES || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        r.errors.push(format!(
            "BETTER_AUTH_SECONDARY_STORAGE_PREFIX: expected at most {MAX_PREFIX_BYTES} bytes without spaces or control characters, got {prefix:?}"
        ));
    }
    Some(SecondaryStorage {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        store_session_in_database,
    })
}

/// `"2:value"` → `"value"`; `"value"` unchanged.
fn unversioned(entry: &str) -> &str {
    entry
        .split_once(':')
        .filter(|(v, _)| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
        .map_or(entry, |(_, value)| value)
}

/// Reads the group.
pub fn read(r: &mut Reader<'_>) -> Auth {
    let mut secrets = Vec::new();
    let mut weak = Vec::new();
    for (position, entry) in r.list("BETTER_AUTH_SECRETS", "").iter().enumerate() {
        let value = unversioned(entry);
        if value.len() < MIN_SECRET_BYTES {
            weak.push(format!(
                "BETTER_AUTH_SECRETS: entry {} must be at least {MIN_SECRET_BYTES} bytes (has {})",
                position + 1,
                value.len()
            ));
        }
        secrets.push(Secret::new(value));
    }
    if let Some(secret) = r.get("BETTER_AUTH_SECRET") {
        if secret.len() < MIN_SECRET_BYTES {
            weak.push(format!(
                "BETTER_AUTH_SECRET: must be at least {MIN_SECRET_BYTES} bytes (has {})",
                secret.len()
            ));
        }
        if !secrets.iter().any(|s| s.expose() == secret) {
            secrets.push(Secret::new(secret));
        }
    }
    let using_dev_secret = secrets.is_empty();
    if using_dev_secret {
        secrets.push(Secret::new(DEV_BETTER_AUTH_SECRET));
    }
    let better_auth_url = r.string("BETTER_AUTH_URL", "http://localhost:3000");
    let grace = r.bounded("JWT_KEY_GRACE", 30 * 86_400u64, 0, 365 * 86_400, "seconds");
    Auth {
        better_auth_secrets: secrets,
        using_dev_secret,
        jwks_url: r.get("JWKS_URL").filter(|u| !u.is_empty()).map(str::to_owned),
        jwt_issuer: r.string("JWT_ISSUER", &better_auth_url),
        jwt_audience: r.string("JWT_AUDIENCE", &better_auth_url),
        jwt_key_grace: std::time::Duration::from_secs(grace),
        api_key_header: r.string("API_KEY_HEADER", "x-api-key").to_ascii_lowercase(),
        better_auth_url,
        cookie_prefix: r.string("BETTER_AUTH_COOKIE_PREFIX", "better-auth"),
        bearer_require_signature: r.flag("BEARER_REQUIRE_SIGNATURE", false),
        secret_key: r.get("SECRET_KEY").map(Secret::new),
        weak_secrets: weak,
        secondary_storage: secondary_storage(r),
    }
}
