//! [`VersionedCache`] in Redis.
//!
//! Keys: `<prefix>rc:<namespace>:ver` holds the namespace's version (kept a
//! day after its last bump, far beyond any entry's TTL, so a reset to 0 can
//! never resurrect an old entry); entries live at
//! `<prefix>rc:<namespace>:<version>:<key>`. A read is one script: the version
//! and the entry at that version, atomically. (The entry key is computed in
//! the script, so this needs a single Redis, not Redis Cluster.)

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::cache::VersionedCache;
use redis::{Script, Value};

use crate::redis::RedisClient;

const VERSION_TTL_SECS: u64 = 86_400;

/// KEYS[1] = version key; ARGV[1] = entry key prefix (before the version); ARGV[2] = entry key suffix.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1]) or '0'
local body = redis.call('GET', ARGV[1] .. v .. ':' .. ARGV[2])
if body then return {v, body} end
return {v}
",
    )
});

/// The Redis adapter.
#[derive(Debug, Clone)]
pub struct RedisVersionedCache {
    client: RedisClient,
}

impl RedisVersionedCache {
    /// A cache on `client`.
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }

    fn version_key(&self, namespace: &str) -> String {
        self.client.key(&format!("rc:{namespace}:ver"))
    }

    fn entry_prefix(&self, namespace: &str) -> String {
        self.client.key(&format!("rc:{namespace}:"))
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

#[async_trait]
impl VersionedCache for RedisVersionedCache {
    async fn get(&self, namespace: &str, key: &str) -> Result<(u64, Option<Vec<u8>>), Error> {
        let (version_key, prefix, suffix) = (
            self.version_key(namespace),
            self.entry_prefix(namespace),
            key.to_owned(),
        );
        let reply: Vec<Value> = self
            .client
            .run(|mut conn| async move {
                READ.key(version_key)
                    .arg(prefix)
                    .arg(suffix)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let version = reply
            .first()
            .and_then(as_text)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = match reply.get(1) {
            Some(Value::BulkString(bytes)) => Some(bytes.clone()),
            _ => None,
        };
        Ok((version, body))
    }

    async fn put(&self, namespace: &str, version: u64, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), Error> {
        let entry = format!("{}{version}:{key}", self.entry_prefix(namespace));
        self.client.set_with_ttl(entry, value, ttl).await
    }

    async fn invalidate(&self, namespace: &str) -> Result<(), Error> {
        let key = self.version_key(namespace);
        self.client
            .run(|mut conn| async move {
                redis::pipe()
                    .incr(&key, 1)
                    .ignore()
                    .expire(&key, VERSION_TTL_SECS as i64)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
    }
}
