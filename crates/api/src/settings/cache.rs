//! Redis and the caches: `REDIS_URL`, `REDIS_PREFIX`, `REDIS_TIMEOUT_MS`,
//! `SESSION_CACHE_TTL`, `SESSION_L1_TTL_MS`, `RESPONSE_CACHE_TTL`,
//! `AUTH_CHANGE_NOTIFY`, `REDIS_TLS_CA_FILE`.

use std::time::Duration;

use super::reader::Reader;

/// Redis and what is cached for how long.
#[derive(Debug, Clone)]
pub struct Cache {
    /// `REDIS_URL`; `None` selects in-process caches.
    pub redis_url: Option<String>,
    /// `REDIS_PREFIX`: namespace of every Redis key.
    pub redis_prefix: String,
    /// `REDIS_TIMEOUT_MS`: bound on one Redis operation.
    pub redis_timeout: Duration,
    /// `SESSION_CACHE_TTL` (seconds).
    pub session_cache_ttl: Duration,
    /// `SESSION_L1_TTL_MS`: with Redis, how long a session may be served from
    /// this process's memory (at most 5 s: it bounds extra revocation lag).
    pub session_l1_ttl: Duration,
    /// `RESPONSE_CACHE_TTL` (seconds, ≤ 60, default 30; 0 = off): item answers cached in Redis.
    pub response_cache_ttl: Duration,
    /// `AUTH_CHANGE_NOTIFY` (default true): on PostgreSQL, install triggers on
    /// better-auth's tables and LISTEN, so its changes reach every cache within
    /// a second; false: `SESSION_CACHE_TTL` is the bound.
    pub auth_change_notify: bool,
    /// `REDIS_TLS_CA_FILE`: the CA (PEM) every `rediss://` server must be
    /// signed by, instead of the system's roots (managed Redis with a private
    /// CA, or a self-signed one).
    pub redis_tls: infra::redis::RedisTls,
}

/// Reads the group.
pub fn read(r: &mut Reader<'_>) -> Cache {
    let redis_url = r.get("REDIS_URL").map(str::to_owned);
    if let Some(url) = &redis_url
        && !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://"))
    {
        r.errors.push(format!(
            "REDIS_URL: expected redis:// or rediss://, got {:?}",
            infra::db::redact(url)
        ));
    }
    let redis_tls = infra::redis::RedisTls {
        ca_pem: r.get("REDIS_TLS_CA_FILE").and_then(|path| match std::fs::read(path) {
            Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => Some(pem.into()),
            Ok(_) => {
                r.errors
                    .push(format!("REDIS_TLS_CA_FILE: {path} holds no PEM certificate"));
                None
            }
            Err(error) => {
                r.errors.push(format!("REDIS_TLS_CA_FILE: cannot read {path}: {error}"));
                None
            }
        }),
    };
    Cache {
        redis_tls,
        redis_url,
        redis_prefix: r.string("REDIS_PREFIX", "saas:"),
        redis_timeout: Duration::from_millis(r.parse("REDIS_TIMEOUT_MS", 250u64, "milliseconds")),
        session_cache_ttl: Duration::from_secs(r.parse("SESSION_CACHE_TTL", 300u64, "seconds")),
        session_l1_ttl: Duration::from_millis(r.bounded("SESSION_L1_TTL_MS", 5000u64, 0, 5000, "milliseconds")),
        response_cache_ttl: Duration::from_secs(r.bounded("RESPONSE_CACHE_TTL", 30u64, 0, 60, "seconds")),
        auth_change_notify: r.flag("AUTH_CHANGE_NOTIFY", true),
    }
}
