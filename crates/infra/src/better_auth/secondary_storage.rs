//! better-auth's secondary storage (`secondaryStorage`, usually
//! `@better-auth/redis-storage`): sessions and API keys kept in a Redis that
//! better-auth writes, read here exactly as better-auth reads them.
//!
//! - A session lives under `<prefix><token>` as `{"session":{…},"user":{…}}`.
//!   [`SecondarySessionStore`] reads it and the user's
//!   `<prefix>revoked-sessions-before-<userId>` mark in **one** round trip (a
//!   Lua script: the mark's key depends on the value), bounded in size
//!   ([`MAX_VALUE_BYTES`]) so a huge or foreign value costs one `STRLEN`, not
//!   its transfer. The domain decides (expiry, the mark, the ban).
//! - With `storeSessionInDatabase` (better-auth's option, mirrored by
//!   `BETTER_AUTH_STORE_SESSION_IN_DATABASE`) a token missing from Redis is
//!   looked up in the `session` table, as better-auth's `findSession` does;
//!   otherwise table rows are ignored (a sign-out deletes only the key, so a
//!   leftover row must not revive the session).
//! - API keys of the api-key plugin's `storage: "secondary-storage"` live under
//!   `<prefix>api-key:<hash>` (and `…:by-id:<id>`), the row as JSON.
//!   [`SecondaryApiKeyStore`] reads them, and counts a use of `remaining`
//!   with a Lua script (refill by compare-and-swap on `lastRefillAt`, as
//!   better-auth's database path does), so N parallel requests on any number
//!   of instances spend exactly the uses there are. [`LayeredApiKeyStore`]
//!   asks the `apikey` table first: with `fallbackToDatabase` the table is the
//!   source of truth.
//!
//! A session read here is reused for at most a second, and only while
//! [`super::secondary_tracking`] hears Redis' invalidations of better-auth's
//! keys (a deleted key, a mark), so revocations take effect at once; API keys
//! are read on every request. Redis unreachable is [`Error::Unavailable`] (503), never
//! a stale acceptance; an unreadable value is a 401 with a throttled WARN.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone as _, Utc};
use domain::Error;
use domain::auth::api_key::{ApiKeyRecord, ApiKeyStore, KeyStorage};
use domain::auth::{SessionRecord, SessionRevocation, SessionStore, SessionToken, UserRecord};
use domain::error::AuthFailure;
use domain::health::DependencyProbe;
use domain::log_throttle::Throttle;
use domain::user::User;
use redis::Script;
use serde::Deserialize;

use crate::redis::RedisClient;

/// The largest value read (a session with its user is well under 4 KiB;
/// better-auth's `image` may be a long URL). Larger values are refused unread.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

/// The longest `revoked-sessions-before` mark read (a millisecond timestamp is 13 digits).
const MAX_MARK_BYTES: usize = 64;

/// The start both reads share: KEYS[1] missing → `{0}`, not a string →
/// `{3}`, longer than ARGV[1] bytes → `{1, len}` (never transferred).
const BOUNDED_READ: &str = "
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {0} end
if kind ~= 'string' then return {3} end
local len = redis.call('STRLEN', KEYS[1])
if len > tonumber(ARGV[1]) then return {1, len} end
";

/// KEYS[1] = `<prefix><token>`; ARGV[1] = the largest value read, ARGV[2] =
/// the prefix, ARGV[3] = the longest mark read.
/// Returns `{0}` missing, `{1, len}` too large, `{3}` not a string,
/// `{2, value}` unreadable user id, `{2, value, mark}` (mark `""` when unset,
/// `"\0"` when not a string).
static SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            BOUNDED_READ,
            r"
local value = redis.call('GET', KEYS[1])
local ok, doc = pcall(cjson.decode, value)
if not ok or type(doc) ~= 'table' or type(doc.session) ~= 'table' or type(doc.session.userId) ~= 'string' then
  return {2, value}
end
local mark_key = ARGV[2] .. 'revoked-sessions-before-' .. doc.session.userId
local mark_kind = redis.call('TYPE', mark_key)['ok']
local mark = ''
if mark_kind == 'string' then
  mark = redis.call('GETRANGE', mark_key, 0, tonumber(ARGV[3]))
elseif mark_kind ~= 'none' then
  mark = '\0'
end
return {2, value, mark}
",
        ]
        .concat(),
    )
});

/// KEYS[1] = a key; ARGV[1] = the largest value read. Returns `{0}` missing,
/// `{1, len}` too large, `{3}` not a string, `{2, value}`.
static BOUNDED_GET: LazyLock<Script> =
    LazyLock::new(|| Script::new(&[BOUNDED_READ, "return {2, redis.call('GET', KEYS[1])}\n"].concat()));

/// Counts one use of an API key's `remaining`, atomically.
/// KEYS[1] = `<prefix>api-key:by-id:<id>`; ARGV[1] = the prefix, ARGV[2] =
/// `1` when a refill was due for the value read, ARGV[3] = that value's
/// `lastRefillAt` (`""` for null), ARGV[4] = now (ISO 8601).
/// Returns 1 when a use was counted, 0 when none is left, -1 when the key is
/// gone or unreadable. Both copies (`by-id` and by hash) are rewritten,
/// keeping their TTL; better-auth reads either.
static CONSUME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
local ok, doc = pcall(cjson.decode, raw)
if not ok or type(doc) ~= 'table' or type(doc.key) ~= 'string' then return -1 end
local remaining = tonumber(doc.remaining)
if remaining == nil then return -1 end
local last = doc.lastRefillAt
if type(last) ~= 'string' then last = '' end
local amount = tonumber(doc.refillAmount)
if ARGV[2] == '1' and last == ARGV[3] and amount ~= nil and amount > 0 then
  doc.remaining = amount - 1
  doc.lastRefillAt = ARGV[4]
elseif remaining > 0 then
  doc.remaining = remaining - 1
else
  return 0
end
local encoded = cjson.encode(doc)
redis.call('SET', KEYS[1], encoded, 'KEEPTTL')
local by_hash = ARGV[1] .. 'api-key:' .. doc.key
if redis.call('EXISTS', by_hash) == 1 then
  redis.call('SET', by_hash, encoded, 'KEEPTTL')
end
return 1
",
    )
});

/// What a bounded read found.
enum Read {
    Missing,
    Value(String, Option<String>),
    Unreadable(&'static str),
}

fn decode_read(reply: &redis::Value) -> Read {
    let redis::Value::Array(parts) = reply else {
        return Read::Unreadable("unexpected script reply");
    };
    let text = |i: usize| match parts.get(i) {
        Some(redis::Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    };
    match parts.first() {
        Some(redis::Value::Int(0)) => Read::Missing,
        Some(redis::Value::Int(1)) => Read::Unreadable("value larger than the bound"),
        Some(redis::Value::Int(3)) => Read::Unreadable("not a string value"),
        Some(redis::Value::Int(2)) => match text(1) {
            Some(value) => Read::Value(value, text(2)),
            None => Read::Unreadable("unexpected script reply"),
        },
        _ => Read::Unreadable("unexpected script reply"),
    }
}

/// A date as better-auth's JSON holds it: an ISO string (`JSON.stringify`
/// of a `Date`), or milliseconds since the epoch.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Instant {
    Iso(DateTime<Utc>),
    Millis(i64),
}

impl Instant {
    fn get(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Iso(at) => Some(*at),
            Self::Millis(ms) => Utc.timestamp_millis_opt(*ms).single(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSession {
    session: StoredSessionFields,
    user: StoredUser,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSessionFields {
    user_id: String,
    expires_at: Instant,
    created_at: Instant,
    #[serde(default)]
    active_organization_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredUser {
    id: String,
    email: String,
    name: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    image: Option<String>,
    created_at: Instant,
    updated_at: Instant,
    #[serde(default)]
    banned: Option<bool>,
    #[serde(default)]
    ban_expires: Option<Instant>,
}

/// Parses a stored session value into what the domain checks.
fn parse_session(value: &str, mark: Option<&str>) -> Result<SessionRecord, &'static str> {
    let stored: StoredSession = serde_json::from_str(value).map_err(|_| "not better-auth's session shape")?;
    if stored.session.user_id != stored.user.id {
        return Err("session and user disagree on the user id");
    }
    let instant = |at: &Instant| at.get().ok_or("timestamp out of range");
    let revoked_before = match mark.map(str::trim) {
        None | Some("") => None,
        // better-auth writes `String(Date.now())`.
        Some(ms) => Some(
            ms.parse::<i64>()
                .ok()
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                .ok_or("revoked-sessions-before mark is not a millisecond timestamp")?,
        ),
    };
    let user = stored.user;
    Ok(SessionRecord {
        expires_at: instant(&stored.session.expires_at)?,
        banned: user.banned.unwrap_or(false),
        ban_expires: user.ban_expires.as_ref().map(instant).transpose()?,
        active_organization_id: stored.session.active_organization_id,
        revocation: SessionRevocation::SecondaryStorage {
            created_at: instant(&stored.session.created_at)?,
            revoked_before,
        },
        user: User {
            id: user.id,
            email: user.email,
            name: user.name,
            email_verified: user.email_verified,
            image: user.image,
            created_at: instant(&user.created_at)?,
            updated_at: instant(&user.updated_at)?,
        },
    })
}

/// The secondary-storage Redis (its own client: its own URL and prefix).
#[derive(Debug, Clone)]
pub struct SecondaryStorage {
    client: RedisClient,
    prefix: String,
    warnings: Arc<Throttle>,
}

impl SecondaryStorage {
    /// better-auth's secondary storage at `client`, whose keys start with
    /// `prefix` (the client must carry no prefix of its own: `prefix` is
    /// applied here, as redis-storage applies its `keyPrefix`).
    pub fn new(client: RedisClient, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
            warnings: Arc::new(Throttle::default()),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn refuse(&self, what: &str, why: &str) -> Error {
        if let Some(suppressed) = self.warnings.admit() {
            tracing::warn!(
                reason = why,
                suppressed,
                "unreadable {what} in better-auth's secondary storage: refused"
            );
        }
        Error::Unauthenticated(AuthFailure::Unreadable)
    }

    async fn session(&self, token: &SessionToken) -> Result<Option<SessionRecord>, Error> {
        let key = self.key(token.expose());
        let prefix = self.prefix.clone();
        let reply: redis::Value = self
            .client
            .run(|mut conn| async move {
                SESSION
                    .key(key)
                    .arg(MAX_VALUE_BYTES)
                    .arg(prefix)
                    .arg(MAX_MARK_BYTES - 1)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        match decode_read(&reply) {
            Read::Missing => Ok(None),
            Read::Unreadable(why) => Err(self.refuse("session", why)),
            Read::Value(value, mark) => parse_session(&value, mark.as_deref())
                .map(Some)
                .map_err(|why| self.refuse("session", why)),
        }
    }

    async fn bounded_get(&self, key: String) -> Result<Read, Error> {
        let reply: redis::Value = self
            .client
            .run(|mut conn| async move { BOUNDED_GET.key(key).arg(MAX_VALUE_BYTES).invoke_async(&mut conn).await })
            .await?;
        Ok(decode_read(&reply))
    }
}

/// [`SessionStore`] over better-auth's secondary storage (see the module
/// docs); users named by other credentials (API keys, JWTs) are still read
/// from the `user` table.
pub struct SecondarySessionStore {
    storage: SecondaryStorage,
    /// `storeSessionInDatabase`: the table answers for tokens Redis lacks.
    table_fallback: bool,
    database: Arc<dyn SessionStore>,
}

impl SecondarySessionStore {
    /// Sessions from `storage`; `database` answers for users, and for
    /// sessions too when `table_fallback` (better-auth's `storeSessionInDatabase`).
    pub fn new(storage: SecondaryStorage, database: Arc<dyn SessionStore>, table_fallback: bool) -> Self {
        Self {
            storage,
            table_fallback,
            database,
        }
    }
}

#[async_trait]
impl SessionStore for SecondarySessionStore {
    async fn find_by_token(&self, token: &SessionToken) -> Result<Option<SessionRecord>, Error> {
        match self.storage.session(token).await? {
            Some(found) => Ok(Some(found)),
            None if self.table_fallback => self.database.find_by_token(token).await,
            None => Ok(None),
        }
    }

    async fn find_user(&self, user_id: &str) -> Result<Option<UserRecord>, Error> {
        self.database.find_user(user_id).await
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredApiKey {
    id: String,
    #[serde(default)]
    reference_id: Option<String>,
    /// api-key releases before 1.7 named the user `userId`.
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    expires_at: Option<Instant>,
    #[serde(default)]
    remaining: Option<i64>,
    #[serde(default)]
    refill_interval: Option<i64>,
    #[serde(default)]
    refill_amount: Option<i64>,
    #[serde(default)]
    last_refill_at: Option<Instant>,
    created_at: Instant,
    #[serde(default)]
    rate_limit_enabled: Option<bool>,
    #[serde(default)]
    rate_limit_time_window: Option<i64>,
    #[serde(default)]
    rate_limit_max: Option<i64>,
    #[serde(default)]
    permissions: Option<serde_json::Value>,
}

fn parse_api_key(value: &str) -> Result<ApiKeyRecord, &'static str> {
    let stored: StoredApiKey = serde_json::from_str(value).map_err(|_| "not the api-key plugin's shape")?;
    let instant = |at: &Instant| at.get().ok_or("timestamp out of range");
    let permissions = match stored.permissions {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(json)) => Some(json),
        Some(object) => Some(object.to_string()),
    };
    Ok(ApiKeyRecord {
        user_id: stored.reference_id.or(stored.user_id).ok_or("no referenceId")?,
        id: stored.id,
        enabled: stored.enabled.unwrap_or(true),
        expires_at: stored.expires_at.as_ref().map(instant).transpose()?,
        remaining: stored.remaining,
        refill_interval_ms: stored.refill_interval,
        refill_amount: stored.refill_amount,
        last_refill_at: stored.last_refill_at.as_ref().map(instant).transpose()?,
        created_at: instant(&stored.created_at)?,
        rate_limit_enabled: stored.rate_limit_enabled.unwrap_or(false),
        rate_limit_window_ms: stored.rate_limit_time_window,
        rate_limit_max: stored.rate_limit_max,
        permissions,
        storage: KeyStorage::SecondaryStorage,
    })
}

/// The ISO 8601 form better-auth's `Date.toISOString()` writes (milliseconds, `Z`).
fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// API keys of the api-key plugin's `storage: "secondary-storage"`.
#[derive(Debug, Clone)]
pub struct SecondaryApiKeyStore {
    storage: SecondaryStorage,
}

impl SecondaryApiKeyStore {
    /// Keys under `<prefix>api-key:` in `storage`.
    pub fn new(storage: SecondaryStorage) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl ApiKeyStore for SecondaryApiKeyStore {
    async fn find(&self, hash: &str) -> Result<Option<ApiKeyRecord>, Error> {
        match self
            .storage
            .bounded_get(self.storage.key(&format!("api-key:{hash}")))
            .await?
        {
            Read::Missing => Ok(None),
            Read::Unreadable(why) => Err(self.storage.refuse("API key", why)),
            Read::Value(value, _) => parse_api_key(&value)
                .map(Some)
                .map_err(|why| self.storage.refuse("API key", why)),
        }
    }

    async fn consume(&self, key: &ApiKeyRecord, now: DateTime<Utc>) -> Result<bool, Error> {
        let due = key.next_refill().is_some_and(|at| at <= now);
        let observed = key.last_refill_at.map(iso).unwrap_or_default();
        let by_id = self.storage.key(&format!("api-key:by-id:{}", key.id));
        let prefix = self.storage.prefix.clone();
        let counted: i64 = self
            .storage
            .client
            .run(|mut conn| async move {
                CONSUME
                    .key(by_id)
                    .arg(prefix)
                    .arg(if due { "1" } else { "0" })
                    .arg(observed)
                    .arg(iso(now))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        match counted {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(Error::Unauthenticated(AuthFailure::UnknownApiKey)),
        }
    }
}

/// The `apikey` table first (the source of truth for `storage: "database"`
/// and for `fallbackToDatabase`), then secondary storage; a use is counted
/// where the key was found.
pub struct LayeredApiKeyStore {
    table: Option<Arc<dyn ApiKeyStore>>,
    secondary: SecondaryApiKeyStore,
}

impl LayeredApiKeyStore {
    /// Keys from `table` (when the plugin's table exists), else `secondary`.
    pub fn new(table: Option<Arc<dyn ApiKeyStore>>, secondary: SecondaryApiKeyStore) -> Self {
        Self { table, secondary }
    }
}

#[async_trait]
impl ApiKeyStore for LayeredApiKeyStore {
    async fn find(&self, hash: &str) -> Result<Option<ApiKeyRecord>, Error> {
        if let Some(table) = &self.table
            && let Some(found) = table.find(hash).await?
        {
            return Ok(Some(found));
        }
        self.secondary.find(hash).await
    }

    async fn consume(&self, key: &ApiKeyRecord, now: DateTime<Utc>) -> Result<bool, Error> {
        match (key.storage, &self.table) {
            (KeyStorage::Database, Some(table)) => table.consume(key, now).await,
            _ => self.secondary.consume(key, now).await,
        }
    }
}

/// `/health`'s `session_storage`: `PING` on the secondary storage.
#[derive(Debug, Clone)]
pub struct SessionStorageProbe(pub SecondaryStorage);

#[async_trait]
impl DependencyProbe for SessionStorageProbe {
    fn name(&self) -> &'static str {
        "session_storage"
    }

    async fn check(&self) -> Result<(), Error> {
        self.0.client.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = r#"{"session":{"id":"s1","token":"t","userId":"u1","expiresAt":"2026-12-10T10:00:00.000Z","createdAt":"2026-12-03T10:00:00.000Z","updatedAt":"2026-12-03T10:00:00.000Z","ipAddress":"","userAgent":"","activeOrganizationId":"o1"},"user":{"id":"u1","name":"Ada","email":"ada@example.com","emailVerified":true,"image":null,"createdAt":"2026-12-01T00:00:00.000Z","updatedAt":"2026-12-01T00:00:00.000Z","role":"user","banned":false}}"#;

    #[test]
    fn better_auths_session_value_is_read_with_its_mark() {
        let record = parse_session(VALUE, Some("1796292000001")).unwrap();
        assert_eq!(record.user.id, "u1");
        assert_eq!(record.active_organization_id.as_deref(), Some("o1"));
        assert_eq!(record.expires_at.to_rfc3339(), "2026-12-10T10:00:00+00:00");
        assert!(!record.banned);
        let SessionRevocation::SecondaryStorage {
            created_at,
            revoked_before,
        } = record.revocation
        else {
            panic!("a secondary-storage session");
        };
        assert_eq!(created_at.timestamp_millis(), 1_796_292_000_000);
        assert_eq!(revoked_before.map(|at| at.timestamp_millis()), Some(1_796_292_000_001));
        assert!(record.revocation.revoked(), "created a millisecond before the mark");
        assert!(!parse_session(VALUE, Some("")).unwrap().revocation.revoked());
    }

    #[test]
    fn anything_else_is_unreadable() {
        for (value, mark) in [
            ("garbage", None),
            ("{}", None),
            (r#"{"session":{"userId":"u1"}}"#, None),
            (&VALUE.replace(r#""userId":"u1""#, r#""userId":"u2""#), None),
            (VALUE, Some("yesterday")),
            (VALUE, Some("\0")),
        ] {
            assert!(parse_session(value, mark).is_err(), "{value} / {mark:?}");
        }
    }

    #[test]
    fn an_api_key_row_reads_as_the_table_would() {
        let value = r#"{"id":"k1","configId":"default","key":"h","referenceId":"u1","enabled":true,"expiresAt":null,"remaining":3,"refillInterval":1000,"refillAmount":5,"lastRefillAt":null,"createdAt":"2026-12-03T10:00:00.000Z","rateLimitEnabled":false,"rateLimitTimeWindow":86400000,"rateLimitMax":10,"permissions":"{\"items\":[\"read\"]}","metadata":null}"#;
        let key = parse_api_key(value).unwrap();
        assert_eq!(key.user_id, "u1");
        assert_eq!(key.remaining, Some(3));
        assert_eq!(key.permissions.as_deref(), Some(r#"{"items":["read"]}"#));
        assert_eq!(key.storage, KeyStorage::SecondaryStorage);
        assert!(parse_api_key(r#"{"id":"k1"}"#).is_err());
    }

    #[test]
    fn instants_are_written_as_better_auth_writes_them() {
        let at = Utc.timestamp_millis_opt(1_764_756_000_123).unwrap();
        assert_eq!(iso(at), "2025-12-03T10:00:00.123Z");
    }
}
