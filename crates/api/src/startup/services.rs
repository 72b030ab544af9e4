//! Start-up, composition root: every port gets its adapter here, once.
//!
//! - Redis, when `REDIS_URL` is set: the session cache (an in-process first
//!   level in front of it), the shared rate limiter and the response cache;
//!   otherwise in-process versions of the first two and no response cache.
//! - Each decorator wraps the adapter it improves (metrics around the
//!   session cache, outage handling around the response cache), so services
//!   see one port each.

use std::sync::Arc;

use anyhow::Context as _;
use domain::auth::api_key::{ApiKeyCache, ApiKeyService, ApiKeyStore};
use domain::auth::jwt::{JwtSettings, JwtVerifier, KeySource};
use domain::auth::{AuthService, AuthSettings, SessionCache, SessionStore, SignatureVerifier};
use domain::clock::{Clock, SystemClock};
use domain::health::DependencyProbe;
use domain::idempotency::IdempotencyService;
use domain::item::ItemService;
use domain::organization::{MembershipCache, OrganizationService};
use domain::rate_limit::{RateLimitService, RateLimiter, RatePolicy};
use domain::revocation::Revocations;
use infra::better_auth::auth_changes;
use infra::better_auth::secondary_tracking::{self, TrackedSessionCache};
use infra::better_auth::{
    BetterAuthSchema, HttpKeySource, LayeredApiKeyStore, SecondaryApiKeyStore, SecondarySessionStore, SecondaryStorage,
    SessionStorageProbe, SqlApiKeyStore, SqlKeySource, SqlMembershipStore, SqlSessionStore,
};
use infra::cache::{
    MemoryApiKeyCache, MemoryJwtCache, MemoryMembershipCache, MemorySessionCache, RedisApiKeyCache,
    RedisMembershipCache, RedisSessionCache, RedisVersionedCache, ResilientVersionedCache, TieredApiKeyCache,
    TieredMembershipCache, TieredSessionCache,
};
use infra::idempotency_store::SqlIdempotencyStore;
use infra::probes::{DatabaseProbe, RedisProbe};
use infra::rate_limit::{MemoryRateLimiter, RedisRateLimiter};
use infra::redis::RedisClient;
use infra::{Db, SeaOrmItemRepository};

use crate::cursor::CursorCodec;
use crate::lifecycle::Lifecycle;
use crate::metrics::{CountingSessionCache, Metrics};
use crate::settings::Settings;
use crate::state::{AppState, CookieNames, SecurityPolicy};

/// Entries the in-process session cache holds at most.
const MEMORY_CACHE_ENTRIES: u64 = 100_000;

/// The first level in front of Redis is kept per worker thread: each holds
/// its share of [`MEMORY_CACHE_ENTRIES`], so the process keeps the same bound
/// (threads that are not workers — start-up, tests — hold a share too).
fn first_level_entries(settings: &Settings) -> u64 {
    let workers = settings
        .server
        .workers
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(std::num::NonZeroUsize::get)
        })
        .unwrap_or(1);
    (MEMORY_CACHE_ENTRIES / u64::try_from(workers).unwrap_or(1).max(1)).max(1_000)
}

/// Scopes and memberships: the plugin's tables when found, the membership
/// cache beside the session cache (same bounds).
fn organizations(
    settings: &Settings,
    db: &Db,
    schema: &BetterAuthSchema,
    redis: Option<&RedisClient>,
) -> OrganizationService {
    let ttl = settings.cache.session_cache_ttl;
    let cache: Arc<dyn MembershipCache> = match redis {
        Some(client) => Arc::new(TieredMembershipCache::new(
            RedisMembershipCache::memberships(client.clone()),
            settings.cache.session_l1_ttl.min(ttl),
            first_level_entries(settings),
        )),
        None => Arc::new(MemoryMembershipCache::new(MEMORY_CACHE_ENTRIES)),
    };
    match SqlMembershipStore::new(db.clone(), schema) {
        Some(store) => OrganizationService::new(Arc::new(store), cache, ttl),
        None => OrganizationService::without_plugin(cache),
    }
}

/// How long a JWKS fetch may take.
const JWKS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// JWTs of better-auth's jwt plugin: keys from `JWKS_URL`, else from its
/// `jwks` table; `None` (JWTs refused) with neither.
fn jwt_verifier(
    settings: &Settings,
    db: &Db,
    schema: &BetterAuthSchema,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<JwtVerifier>> {
    let source: Arc<dyn KeySource> = match (&settings.auth.jwks_url, SqlKeySource::new(db.clone(), schema)) {
        (Some(url), _) => {
            tracing::info!(url = %url, "JWTs: keys from JWKS_URL");
            Arc::new(HttpKeySource::new(url, JWKS_TIMEOUT)?)
        }
        (None, Some(table)) => Arc::new(table),
        (None, None) => {
            tracing::info!("JWTs: off (no JWKS_URL and no jwks table)");
            return Ok(None);
        }
    };
    Ok(Some(JwtVerifier::new(
        source,
        clock,
        JwtSettings {
            issuer: settings.auth.jwt_issuer.clone(),
            audience: settings.auth.jwt_audience.clone(),
            key_grace: settings.auth.jwt_key_grace,
        },
        Arc::new(MemoryJwtCache::new(domain::auth::jwt::REMEMBERED_MAX)),
    )))
}

/// On PostgreSQL (unless `AUTH_CHANGE_NOTIFY=false`): installs the triggers on
/// better-auth's tables and listens for their notifications. A role that may
/// not create triggers costs one WARN (the listener still runs: triggers
/// installed by `migrate up` as the tables' owner are heard).
async fn listen_for_auth_changes(
    settings: &Settings,
    db: &Db,
    targets: auth_changes::Targets,
) -> Option<Arc<auth_changes::ListenerStatus>> {
    if db.kind() != infra::db::DbBackendKind::Postgres {
        tracing::info!(
            "better-auth changes (sign-out, bans, removed members, API keys) take effect within SESSION_CACHE_TTL: SQLite has no notifications"
        );
        return None;
    }
    if !settings.cache.auth_change_notify {
        tracing::info!(
            "AUTH_CHANGE_NOTIFY=false: better-auth changes take effect within SESSION_CACHE_TTL ({} s)",
            settings.cache.session_cache_ttl.as_secs()
        );
        return None;
    }
    if let Err(error) = auth_changes::install(db).await {
        tracing::warn!(
            error = %error,
            "could not install the triggers on better-auth's tables: run `saas-api migrate up` as their owner; until then better-auth's changes take effect within SESSION_CACHE_TTL ({} s)",
            settings.cache.session_cache_ttl.as_secs()
        );
    }
    auth_changes::spawn(db, targets)
}

/// better-auth's secondary storage, when `BETTER_AUTH_SECONDARY_STORAGE_URL`
/// is set: its own client (its own URL; the prefix is better-auth's, not
/// `REDIS_PREFIX`), reported by `/health` as `session_storage`.
async fn secondary_storage(
    settings: &Settings,
    probes: &mut Vec<Arc<dyn DependencyProbe>>,
) -> anyhow::Result<Option<SecondaryStorage>> {
    let Some(config) = &settings.auth.secondary_storage else {
        return Ok(None);
    };
    let client = RedisClient::with_tls(&config.url, "", settings.cache.redis_timeout, &settings.cache.redis_tls)
        .context("BETTER_AUTH_SECONDARY_STORAGE_URL")?;
    first_ping(&client, "BETTER_AUTH_SECONDARY_STORAGE_URL", &config.url).await?;
    let storage = SecondaryStorage::new(client, &config.prefix);
    probes.push(Arc::new(SessionStorageProbe(storage.clone())));
    tracing::info!(
        prefix = %config.prefix,
        session_table = config.store_session_in_database,
        "sessions: better-auth's secondary storage (reused at most a second, while its changes are tracked)"
    );
    Ok(Some(storage))
}

/// How long start-up waits for Redis' first answer (a TLS handshake on a
/// busy machine can outlast `REDIS_TIMEOUT_MS`).
const FIRST_PING_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// A first `PING`: an untrusted TLS certificate (or a failed handshake) is a
/// configuration error that stops start-up with one line; any other failure
/// is an outage the service rides out (warned, retried on use).
async fn first_ping(client: &RedisClient, variable: &str, url: &str) -> anyhow::Result<()> {
    let Err(error) = client.ping_patiently(FIRST_PING_PATIENCE).await else {
        return Ok(());
    };
    if let Some(problem) = infra::redis::tls_problem(&error) {
        anyhow::bail!(
            "{variable}: TLS to {} failed ({problem}): is the server's certificate signed by the CA in REDIS_TLS_CA_FILE (or, unset, by a CA the system trusts)?",
            infra::db::redact(url)
        );
    }
    tracing::warn!(variable, error = %error, "Redis is not answering yet; the service degrades until it does");
    Ok(())
}

/// Builds the application state from the settings and the prepared database.
///
/// # Errors
/// An unusable `REDIS_URL`.
pub async fn compose(
    settings: &Settings,
    db: &Db,
    schema: &BetterAuthSchema,
    metrics: Arc<Metrics>,
    lifecycle: Arc<Lifecycle>,
) -> anyhow::Result<AppState> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut probes: Vec<Arc<dyn DependencyProbe>> = vec![Arc::new(DatabaseProbe(db.clone()))];
    let redis = match &settings.cache.redis_url {
        Some(url) => {
            let client = RedisClient::with_tls(
                url,
                &settings.cache.redis_prefix,
                settings.cache.redis_timeout,
                &settings.cache.redis_tls,
            )?;
            first_ping(&client, "REDIS_URL", url).await?;
            probes.push(Arc::new(RedisProbe(client.clone())));
            tracing::info!("session cache and rate limits: Redis (shared by all instances)");
            Some(client)
        }
        None => {
            tracing::info!("session cache and rate limits: in process (no REDIS_URL)");
            None
        }
    };
    let cache: Arc<dyn SessionCache> = match &redis {
        Some(client) => Arc::new(TieredSessionCache::new(
            RedisSessionCache::new(client.clone()),
            settings.cache.session_l1_ttl.min(settings.cache.session_cache_ttl),
            first_level_entries(settings),
        )),
        None => Arc::new(MemorySessionCache::new(MEMORY_CACHE_ENTRIES)),
    };
    // Every cache keeps a decision at most SESSION_CACHE_TTL: marks older than that are moot.
    let revocations = Arc::new(Revocations::new(settings.cache.session_cache_ttl));
    let organizations =
        organizations(settings, db, schema, redis.as_ref()).with_revocations(revocations.clone(), clock.clone());
    let shared_limiter = redis
        .as_ref()
        .map(|c| Arc::new(RedisRateLimiter::new(c.clone())) as Arc<dyn RateLimiter>);
    let rate_limit = RateLimitService::new(
        shared_limiter.clone(),
        Arc::new(MemoryRateLimiter::new()),
        RatePolicy {
            limit: settings.security.rate_limit_requests,
            window: settings.security.rate_limit_window,
        },
    );
    let secrets: Vec<&str> = settings.auth.better_auth_secrets.iter().map(|s| s.expose()).collect();
    let mut sessions: Arc<dyn SessionStore> = Arc::new(SqlSessionStore::new(db.clone(), schema));
    let secondary = secondary_storage(settings, &mut probes).await?;
    let mut cache_ttl = settings.cache.session_cache_ttl;
    let cache = match (&secondary, &settings.auth.secondary_storage) {
        (Some(storage), Some(config)) => {
            sessions = Arc::new(SecondarySessionStore::new(
                storage.clone(),
                sessions,
                config.store_session_in_database,
            ));
            // better-auth revokes there without telling anyone but Redis' tracking:
            // reused at most a second, and only while tracking is heard.
            let tracking = secondary_tracking::spawn(
                &config.url,
                &settings.cache.redis_tls,
                &config.prefix,
                revocations.clone(),
                clock.clone(),
            )?;
            metrics.watch_secondary_tracking(tracking.clone());
            cache_ttl = cache_ttl.min(secondary_tracking::REUSE_AT_MOST);
            Arc::new(TrackedSessionCache::new(
                Arc::new(MemorySessionCache::new(MEMORY_CACHE_ENTRIES)),
                tracking,
            )) as Arc<dyn SessionCache>
        }
        _ => cache,
    };
    let cache: Arc<dyn SessionCache> = Arc::new(CountingSessionCache::new(cache, metrics.clone()));
    let mut auth = AuthService::new(
        SignatureVerifier::new(&secrets),
        sessions.clone(),
        cache,
        clock.clone(),
        AuthSettings {
            cache_ttl,
            require_signed_bearer: settings.auth.bearer_require_signature,
        },
    );
    auth = auth.with_revocations(revocations.clone());
    let mut jwt = None;
    if let Some(verifier) = jwt_verifier(settings, db, schema, clock.clone())? {
        // A token's user is looked up once per token: deleted or banned users are refused.
        let verifier = Arc::new(
            verifier
                .with_users(sessions.clone())
                .with_revocations(revocations.clone()),
        );
        auth = auth.with_jwt(verifier.clone());
        jwt = Some(verifier);
    }
    let table_keys = SqlApiKeyStore::new(db.clone(), schema).map(|s| Arc::new(s) as Arc<dyn ApiKeyStore>);
    let api_keys: Option<Arc<dyn ApiKeyStore>> = match (table_keys, &secondary) {
        (table, Some(storage)) => Some(Arc::new(LayeredApiKeyStore::new(
            table,
            SecondaryApiKeyStore::new(storage.clone()),
        ))),
        (table, None) => table,
    };
    if let Some(store) = api_keys {
        let limiter = RateLimitService::new(
            shared_limiter.clone(),
            Arc::new(MemoryRateLimiter::new()),
            RatePolicy {
                limit: settings.security.rate_limit_requests,
                window: settings.security.rate_limit_window,
            },
        );
        let cache: Arc<dyn ApiKeyCache> = match &redis {
            Some(client) => Arc::new(TieredApiKeyCache::new(
                RedisApiKeyCache::api_keys(client.clone()),
                settings.cache.session_l1_ttl.min(settings.cache.session_cache_ttl),
                first_level_entries(settings),
            )),
            None => Arc::new(MemoryApiKeyCache::new(MEMORY_CACHE_ENTRIES)),
        };
        auth = auth.with_api_keys(Arc::new(
            ApiKeyService::new(
                store,
                sessions,
                cache,
                Arc::new(limiter),
                clock.clone(),
                settings.cache.session_cache_ttl,
            )
            .with_revocations(revocations.clone()),
        ));
    }
    let auth_changes = listen_for_auth_changes(
        settings,
        db,
        auth_changes::Targets {
            revocations: revocations.clone(),
            jwt,
            clock: clock.clone(),
        },
    )
    .await;
    if let Some(status) = &auth_changes {
        metrics.watch_auth_changes(status.clone(), revocations);
    }
    if db.kind() == infra::db::DbBackendKind::Postgres {
        metrics.watch_lanes(db.clone());
    }
    let repository = SeaOrmItemRepository::detect(db.clone()).await?;
    let traced = infra::resource::TracedRepository::new(repository, db.kind());
    let mut items = ItemService::new(Arc::new(traced), clock.clone());
    let mut response_cache = None;
    if let (Some(client), false) = (&redis, settings.cache.response_cache_ttl.is_zero()) {
        let ttl = settings.cache.response_cache_ttl;
        tracing::info!(ttl_s = ttl.as_secs(), "response cache: on");
        let cache = ResilientVersionedCache::new(
            Arc::new(RedisVersionedCache::new(client.clone(), crate::response_cache::build())),
            ttl,
        );
        metrics.watch_response_cache(cache.clone());
        let cache = Arc::new(crate::response_cache::ResponseCache::new(Arc::new(cache), ttl));
        items = items.with_change_observer(cache.clone());
        response_cache = Some(cache);
    }
    let observer = response_cache
        .clone()
        .map(|cache| cache as Arc<dyn domain::change::ChangeObserver>);
    let resources = crate::resources::services(db, &clock, observer).await?;
    let cursors = match &settings.auth.secret_key {
        Some(key) => CursorCodec::new(key.expose().as_bytes()),
        None => {
            tracing::warn!(
                "SECRET_KEY not set: pagination cursors are signed with a key made at start-up and stop working when this process restarts (development only)"
            );
            CursorCodec::random()
        }
    };
    let idempotency = Arc::new(IdempotencyService::new(
        Arc::new(SqlIdempotencyStore::new(db.clone())),
        clock.clone(),
    ));
    Ok(AppState {
        auth_changes,
        organizations,
        cursors,
        idempotency,
        auth,
        items,
        response_cache,
        resources,
        probes,
        redis_configured: settings.cache.redis_url.is_some(),
        cookies: CookieNames::new(&settings.auth.cookie_prefix).with_api_key_header(
            actix_web::http::header::HeaderName::from_bytes(settings.auth.api_key_header.as_bytes())
                .map_err(|_| anyhow::anyhow!("API_KEY_HEADER is not a valid header name"))?,
        ),
        rate_limit,
        security: SecurityPolicy {
            frontend_origins: settings.security.frontend_origins.clone(),
            trusted_proxies: settings.security.trusted_proxies.clone(),
            production: settings.is_production(),
            expose_causes: settings.telemetry.debug && !settings.is_production(),
        },
        lifecycle,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with_workers(workers: &str) -> Settings {
        let vars = HashMap::from([("WORKERS".to_owned(), workers.to_owned())]);
        Settings::from_map(&vars).unwrap().0
    }

    #[test]
    fn the_per_thread_first_level_shares_the_process_bound_between_workers() {
        assert_eq!(first_level_entries(&with_workers("4")), MEMORY_CACHE_ENTRIES / 4);
        assert_eq!(first_level_entries(&with_workers("1")), MEMORY_CACHE_ENTRIES);
        assert_eq!(
            first_level_entries(&with_workers("512")),
            1_000,
            "never below 1,000 a thread"
        );
        let default = Settings::from_map(&HashMap::new()).unwrap().0;
        assert!(first_level_entries(&default) <= MEMORY_CACHE_ENTRIES);
    }
}
