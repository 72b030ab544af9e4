//! [`SessionStore`] over better-auth's tables: one query per cold session.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::auth::{SessionRecord, SessionStore, SessionToken};
use domain::user::User;
use sea_orm::{ConnectionTrait, QueryResult, Statement};

use super::schema::BetterAuthSchema;
use crate::db::{Db, translate};

/// Looks sessions up with the SQL built once from the detected schema.
#[derive(Debug, Clone)]
pub struct SqlSessionStore {
    db: Db,
    sql: String,
    has_ban_columns: bool,
    has_active_organization: bool,
}

impl SqlSessionStore {
    /// A store over `db`, whose better-auth schema is `schema`.
    pub fn new(db: Db, schema: &BetterAuthSchema) -> Self {
        Self {
            sql: schema.session_lookup_sql(),
            has_ban_columns: schema.has_ban_columns,
            has_active_organization: schema.organizations.is_some(),
            db,
        }
    }

    fn decode(&self, row: &QueryResult) -> Result<SessionRecord, sea_orm::DbErr> {
        let user = User {
            id: row.try_get("", "id")?,
            email: row.try_get("", "email")?,
            name: row.try_get("", "name")?,
            email_verified: row.try_get("", "email_verified")?,
            image: row.try_get("", "image")?,
            created_at: row.try_get("", "created_at")?,
            updated_at: row.try_get("", "updated_at")?,
        };
        let (banned, ban_expires) = if self.has_ban_columns {
            (
                row.try_get::<Option<bool>>("", "banned")?.unwrap_or(false),
                row.try_get::<Option<DateTime<Utc>>>("", "ban_expires")?,
            )
        } else {
            (false, None)
        };
        let active_organization_id = if self.has_active_organization {
            row.try_get::<Option<String>>("", "active_organization_id")?
        } else {
            None
        };
        Ok(SessionRecord {
            user,
            expires_at: row.try_get("", "expires_at")?,
            banned,
            ban_expires,
            active_organization_id,
        })
    }
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn find_by_token(&self, token: &SessionToken) -> Result<Option<SessionRecord>, Error> {
        let stmt = Statement::from_sql_and_values(self.db.backend(), self.sql.as_str(), [token.expose().into()]);
        let Some(row) = self.db.conn().query_one_raw(stmt).await.map_err(translate)? else {
            return Ok(None);
        };
        self.decode(&row)
            .map(Some)
            .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("unexpected better-auth session row")))
    }
}
