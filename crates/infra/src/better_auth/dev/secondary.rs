//! Sessions and API keys in better-auth's secondary storage, written as
//! better-auth 1.7 (with `@better-auth/redis-storage`) writes them, for
//! `saas-api dev seed` and the adapter tests. The interop tests use the real
//! better-auth instead.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::DevUser;
use crate::redis::RedisClient;

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A session as better-auth writes it (a session is a user's: the `user`
/// object is embedded, as better-auth does).
#[derive(Debug, Clone)]
pub struct DevSecondarySession<'a> {
    /// The session's user.
    pub user: &'a DevUser,
    /// The session token (the cookie value before its signature).
    pub token: &'a str,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// When it expires (also the key's TTL).
    pub expires_at: DateTime<Utc>,
    /// The organization plugin's active organization.
    pub active_organization_id: Option<&'a str>,
    /// The admin plugin's `banned` on the embedded user.
    pub banned: bool,
}

impl DevSecondarySession<'_> {
    /// The JSON value better-auth stores under `<prefix><token>`.
    pub fn value(&self) -> String {
        json!({
            "session": {
                "id": uuid::Uuid::new_v4().simple().to_string(),
                "token": self.token,
                "userId": self.user.id,
                "expiresAt": iso(self.expires_at),
                "createdAt": iso(self.created_at),
                "updatedAt": iso(self.created_at),
                "ipAddress": "",
                "userAgent": "",
                "activeOrganizationId": self.active_organization_id,
            },
            "user": {
                "id": self.user.id,
                "name": self.user.name,
                "email": self.user.email,
                "emailVerified": self.user.email_verified,
                "image": null,
                "createdAt": iso(self.created_at),
                "updatedAt": iso(self.created_at),
                "role": "user",
                "banned": self.banned,
                "banReason": null,
                "banExpires": null,
            },
        })
        .to_string()
    }

    /// Stores the session under `<prefix><token>` with better-auth's TTL
    /// (seconds to expiry) and lists it in `<prefix>active-sessions-<userId>`.
    ///
    /// # Errors
    /// Redis unreachable, or a session already expired.
    pub async fn store(&self, client: &RedisClient, prefix: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        let ttl = u64::try_from((self.expires_at - now).num_seconds())
            .ok()
            .filter(|s| *s > 0)
            .context("the session is already expired")?;
        let key = format!("{prefix}{}", self.token);
        let list_key = format!("{prefix}active-sessions-{}", self.user.id);
        let value = self.value();
        let entry = json!({"token": self.token, "expiresAt": self.expires_at.timestamp_millis()});
        client
            .run(|mut conn| async move {
                let listed: Option<String> = redis::cmd("GET").arg(&list_key).query_async(&mut conn).await?;
                let mut list: Vec<serde_json::Value> = listed
                    .and_then(|raw| serde_json::from_str(&raw).ok())
                    .unwrap_or_default();
                list.push(entry);
                redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl)
                    .ignore()
                    .cmd("SET")
                    .arg(&list_key)
                    .arg(serde_json::Value::Array(list).to_string())
                    .arg("EX")
                    .arg(ttl)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
            .map_err(anyhow::Error::from)
            .context("could not write the session to better-auth's secondary storage")
    }
}
