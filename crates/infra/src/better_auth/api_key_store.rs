//! [`ApiKeyStore`] over the api-key plugin's `apikey` table (either naming
//! style). Reads a key by its hash; counts a use of a key with `remaining`
//! in one conditional `UPDATE … RETURNING` that refills when due and
//! decrements only above zero, so concurrent requests on any number of
//! instances can neither lose nor double a count.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::auth::api_key::{ApiKeyRecord, ApiKeyStore, KeyStorage};
use sea_orm::{QueryResult, Statement, Value};

use super::schema::{ApiKeySchema, BetterAuthSchema};
use crate::db::Db;

/// API keys with the SQL built once from the detected schema.
#[derive(Debug, Clone)]
pub struct SqlApiKeyStore {
    db: Db,
    find_sql: String,
    consume_sql: String,
    naive_last_refill: bool,
}

impl SqlApiKeyStore {
    /// A store over `db`; `None` when there is no usable `apikey` table.
    pub fn new(db: Db, schema: &BetterAuthSchema) -> Option<Self> {
        let ApiKeySchema {
            user_field,
            naive_last_refill,
        } = schema.api_keys.clone()?;
        let c = |f: &str| schema.col("k", f);
        let find_sql = format!(
            "SELECT {id} AS id, {user} AS user_id, {enabled} AS enabled, {expires} AS expires_at, \
             {remaining} AS remaining, {interval} AS refill_interval, {amount} AS refill_amount, \
             {last} AS last_refill_at, {created} AS created_at, {rl} AS rate_limit_enabled, \
             {window} AS rate_limit_window, {max} AS rate_limit_max, {permissions} AS permissions \
             FROM \"apikey\" k WHERE {key} = {p}",
            id = schema.id_text("k", "id"),
            user = schema.id_text("k", user_field),
            enabled = c("enabled"),
            expires = schema.timestamp("apikey", "k", "expiresAt"),
            remaining = schema.int64("k", "remaining"),
            interval = schema.int64("k", "refillInterval"),
            amount = schema.int64("k", "refillAmount"),
            last = schema.timestamp("apikey", "k", "lastRefillAt"),
            created = schema.timestamp("apikey", "k", "createdAt"),
            rl = c("rateLimitEnabled"),
            window = schema.int64("k", "rateLimitTimeWindow"),
            max = schema.int64("k", "rateLimitMax"),
            permissions = c("permissions"),
            key = c("key"),
            p = schema.placeholder(1),
        );
        // Unqualified columns: an UPDATE's target has no alias on either backend.
        let u = |f: &str| format!("\"{}\"", schema.style.column(f));
        let last = schema.timestamp("apikey", "\"apikey\"", "lastRefillAt");
        let created = schema.timestamp("apikey", "\"apikey\"", "createdAt");
        let (id_param, now_param, due_param) = (schema.numbered(1), schema.numbered(2), schema.numbered(3));
        let due = format!(
            "({interval} IS NOT NULL AND {amount} > 0 AND COALESCE({last}, {created}) <= {due_param})",
            interval = u("refillInterval"),
            amount = u("refillAmount"),
        );
        let id_column = if schema.is_postgres() {
            "\"id\"::text".to_owned()
        } else {
            "\"id\"".to_owned()
        };
        let consume_sql = format!(
            "UPDATE \"apikey\" SET {remaining} = CASE WHEN {due} THEN {amount} - 1 ELSE {remaining} - 1 END, \
             {last_col} = CASE WHEN {due} THEN {now_param} ELSE {last_col} END \
             WHERE {id_column} = {id_param} AND {remaining} IS NOT NULL AND ({remaining} > 0 OR {due}) \
             RETURNING {remaining}",
            remaining = u("remaining"),
            amount = u("refillAmount"),
            last_col = u("lastRefillAt"),
        );
        Some(Self {
            db,
            find_sql,
            consume_sql,
            naive_last_refill,
        })
    }

    /// An instant as the `lastRefillAt` column takes it.
    fn instant(&self, at: DateTime<Utc>) -> Value {
        if self.naive_last_refill {
            at.naive_utc().into()
        } else {
            at.into()
        }
    }
}

fn decode(row: &QueryResult) -> Result<ApiKeyRecord, sea_orm::DbErr> {
    Ok(ApiKeyRecord {
        id: row.try_get("", "id")?,
        user_id: row.try_get::<Option<String>>("", "user_id")?.unwrap_or_default(),
        enabled: row.try_get::<Option<bool>>("", "enabled")?.unwrap_or(true),
        expires_at: row.try_get("", "expires_at")?,
        remaining: row.try_get("", "remaining")?,
        refill_interval_ms: row.try_get("", "refill_interval")?,
        refill_amount: row.try_get("", "refill_amount")?,
        last_refill_at: row.try_get("", "last_refill_at")?,
        created_at: row.try_get("", "created_at")?,
        rate_limit_enabled: row.try_get::<Option<bool>>("", "rate_limit_enabled")?.unwrap_or(false),
        rate_limit_window_ms: row.try_get("", "rate_limit_window")?,
        rate_limit_max: row.try_get("", "rate_limit_max")?,
        permissions: row.try_get("", "permissions")?,
        storage: KeyStorage::Database,
    })
}

#[async_trait]
impl ApiKeyStore for SqlApiKeyStore {
    async fn find(&self, hash: &str) -> Result<Option<ApiKeyRecord>, Error> {
        let stmt = Statement::from_sql_and_values(self.db.backend(), self.find_sql.as_str(), [hash.into()]);
        let Some(row) = self.db.query_one(stmt, "api_key_by_hash").await? else {
            return Ok(None);
        };
        decode(&row)
            .map(Some)
            .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("unexpected apikey row")))
    }

    async fn consume(&self, key: &ApiKeyRecord, now: DateTime<Utc>) -> Result<bool, Error> {
        // Due when the last refill (or creation) is at least one interval ago.
        let due_before = key
            .refill_interval_ms
            .filter(|ms| *ms > 0)
            .and_then(|ms| now.checked_sub_signed(chrono::Duration::milliseconds(ms)))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        // The due comparison reads the columns as UTC instants (naive ones
        // converted), so the bound is an instant too; the written value
        // takes the column's own type.
        let values = [key.id.clone().into(), self.instant(now), due_before.into()];
        let stmt = Statement::from_sql_and_values(self.db.backend(), self.consume_sql.as_str(), values);
        let rows = self.db.query_all(stmt, "api_key_consume").await?;
        Ok(!rows.is_empty())
    }
}
