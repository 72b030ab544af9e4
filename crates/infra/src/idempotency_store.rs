//! [`IdempotencyStore`] in the database (`idempotency_keys`, migrated), on
//! PostgreSQL and SQLite alike. A claim is one upsert: it inserts the key, or
//! takes over a claim older than the keep-for window, and affects no row when
//! a fresh claim exists — so of concurrent first requests exactly one claims.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::idempotency::{Claim, IdempotencyStore, StoredAnswer};
use sea_orm::{ConnectionTrait as _, Statement, Value};

use crate::db::{Db, DbBackendKind, translate};

/// The adapter.
#[derive(Debug, Clone)]
pub struct SqlIdempotencyStore {
    db: Db,
}

impl SqlIdempotencyStore {
    /// A store in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// `$n` placeholders (each used once, in order) as the backend writes them.
    fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        let sql = match self.db.kind() {
            DbBackendKind::Postgres => sql.to_owned(),
            DbBackendKind::Sqlite => {
                let mut out = sql.to_owned();
                for n in (1..=values.len()).rev() {
                    out = out.replace(&format!("${n}"), "?");
                }
                out
            }
        };
        Statement::from_sql_and_values(self.db.backend(), sql, values)
    }
}

#[async_trait]
impl IdempotencyStore for SqlIdempotencyStore {
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        fresh_after: DateTime<Utc>,
    ) -> Result<Claim, Error> {
        let claimed = self
            .db
            .conn()
            .execute_raw(self.statement(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, created_at) \
                 VALUES ($1, $2, $3, NULL, NULL, $4) \
                 ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = NULL, \
                 body = NULL, created_at = excluded.created_at WHERE idempotency_keys.created_at < $5",
                vec![
                    scope.into(),
                    key.into(),
                    fingerprint.into(),
                    now.into(),
                    fresh_after.into(),
                ],
            ))
            .await
            .map_err(translate)?
            .rows_affected()
            > 0;
        if claimed {
            return Ok(Claim::Claimed);
        }
        let row = self
            .db
            .conn()
            .query_one_raw(self.statement(
                "SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
                vec![scope.into(), key.into()],
            ))
            .await
            .map_err(translate)?;
        // Gone between the two statements: its request gave up; ask to retry.
        let Some(row) = row else {
            return Ok(Claim::InProgress);
        };
        let stored: String = row.try_get("", "fingerprint").map_err(translate)?;
        if stored != fingerprint {
            return Ok(Claim::Mismatch);
        }
        let status: Option<i32> = row.try_get("", "status").map_err(translate)?;
        let body: Option<Vec<u8>> = row.try_get("", "body").map_err(translate)?;
        Ok(match (status, body) {
            (Some(status), Some(body)) => Claim::Replay(StoredAnswer {
                status: u16::try_from(status).unwrap_or(500),
                body,
            }),
            _ => Claim::InProgress,
        })
    }

    async fn complete(&self, scope: &str, key: &str, answer: &StoredAnswer) -> Result<(), Error> {
        self.db
            .conn()
            .execute_raw(self.statement(
                "UPDATE idempotency_keys SET status = $1, body = $2 WHERE scope = $3 AND key = $4",
                vec![
                    i32::from(answer.status).into(),
                    answer.body.clone().into(),
                    scope.into(),
                    key.into(),
                ],
            ))
            .await
            .map_err(translate)?;
        Ok(())
    }

    async fn abandon(&self, scope: &str, key: &str) -> Result<(), Error> {
        self.db
            .conn()
            .execute_raw(self.statement(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL",
                vec![scope.into(), key.into()],
            ))
            .await
            .map_err(translate)?;
        Ok(())
    }

    async fn purge(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, Error> {
        let result = self
            .db
            .conn()
            .execute_raw(self.statement(
                "DELETE FROM idempotency_keys WHERE (scope, key) IN \
                 (SELECT scope, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
                vec![before.into(), i64::from(limit).into()],
            ))
            .await
            .map_err(translate)?;
        Ok(result.rows_affected())
    }
}
