//! [`VersionedCache`] in Redis.
//!
//! Keys: `<prefix>rc:<namespace>:ver` holds the namespace's version (kept a
//! day after its last bump, far beyond any entry's TTL, so a reset to 0 can
//! never resurrect an old entry); the entry for `key` lives at
//! `<prefix>rc:<namespace>:e:<representation>:<key>` and ends with the
//! version it was stored under (the value, then `:<version>`: reading it
//! back truncates, it never shifts the value). The representation names the
//! build and the shape of what is cached: during a rolling deploy, instances
//! of two builds sharing this Redis never serve each other's entries (each
//! caches its own shape), while a write on either bumps the one version both
//! read, so neither serves an entry older than the write. A read is one `MGET` of both
//! keys — no script, the cheapest read Redis has — and an entry counts only
//! if its version is the namespace's current one; so a bump makes every
//! entry of the namespace unreachable at once, and an entry stored late
//! under an old version is never served. (Both keys are read in one
//! command, so this needs a single Redis, not Redis Cluster.)

use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::cache::VersionedCache;
use redis::Value;

use crate::redis::RedisClient;

const VERSION_TTL_SECS: u64 = 86_400;

/// The Redis adapter.
#[derive(Debug, Clone)]
pub struct RedisVersionedCache {
    client: RedisClient,
    representation: String,
}

impl RedisVersionedCache {
    /// A cache on `client` whose entries are those of `representation` (the
    /// build and the version of the cached shape; see the module docs).
    pub fn new(client: RedisClient, representation: impl Into<String>) -> Self {
        Self {
            client,
            representation: representation.into(),
        }
    }

    fn version_key(&self, namespace: &str) -> String {
        self.client.key(&format!("rc:{namespace}:ver"))
    }

    fn entry_key(&self, namespace: &str, key: &str) -> String {
        self.client
            .key(&format!("rc:{namespace}:e:{}:{key}", self.representation))
    }
}

fn version_of(value: &Value) -> Option<u64> {
    match value {
        Value::Nil => Some(0),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// The value of an entry stored as `<value>:<version>`, if `version` is its
/// version (the last `:` is the one the store appended).
fn entry_at(value: Value, version: u64) -> Option<Vec<u8>> {
    let Value::BulkString(mut bytes) = value else {
        return None;
    };
    let colon = bytes.iter().rposition(|b| *b == b':')?;
    let stored: u64 = std::str::from_utf8(&bytes[colon + 1..]).ok()?.parse().ok()?;
    (stored == version).then(|| {
        bytes.truncate(colon);
        bytes
    })
}

#[async_trait]
impl VersionedCache for RedisVersionedCache {
    async fn get(&self, namespace: &str, key: &str) -> Result<(u64, Option<Vec<u8>>), Error> {
        let keys = [self.version_key(namespace), self.entry_key(namespace, key)];
        let reply: Vec<Value> = self
            .client
            .run(|mut conn| async move { redis::cmd("MGET").arg(&keys).query_async(&mut conn).await })
            .await?;
        let mut reply = reply.into_iter();
        let version = reply
            .next()
            .and_then(|v| version_of(&v))
            .ok_or_else(|| Error::Unavailable(anyhow::anyhow!("malformed response-cache version")))?;
        Ok((version, reply.next().and_then(|entry| entry_at(entry, version))))
    }

    async fn put(&self, namespace: &str, version: u64, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), Error> {
        let mut entry = value;
        entry.extend_from_slice(format!(":{version}").as_bytes());
        self.client
            .set_with_ttl(self.entry_key(namespace, key), entry, ttl)
            .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_counts_only_at_the_version_it_was_stored_under() {
        let stored = || Value::BulkString(b"{\"a\":\"b:c\"}:7".to_vec());
        assert_eq!(entry_at(stored(), 7), Some(b"{\"a\":\"b:c\"}".to_vec()));
        assert_eq!(entry_at(stored(), 8), None, "a bump hides it");
        assert_eq!(entry_at(stored(), 6), None);
        assert_eq!(entry_at(Value::Nil, 0), None);
        assert_eq!(entry_at(Value::BulkString(b"no version".to_vec()), 0), None);
        assert_eq!(entry_at(Value::BulkString(b"1:x".to_vec()), 0), None);
        assert_eq!(entry_at(Value::BulkString(b":0".to_vec()), 0), Some(Vec::new()));
    }

    #[test]
    fn a_missing_version_is_zero_and_a_malformed_one_is_refused() {
        assert_eq!(version_of(&Value::Nil), Some(0));
        assert_eq!(version_of(&Value::BulkString(b"42".to_vec())), Some(42));
        assert_eq!(version_of(&Value::BulkString(b"-1".to_vec())), None);
        assert_eq!(version_of(&Value::BulkString(b"x".to_vec())), None);
    }
}
