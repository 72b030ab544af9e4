//! [`SessionStore`] over better-auth's tables: one query per cold session.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Error;
use domain::auth::{SessionRecord, SessionRevocation, SessionStore, SessionToken, UserRecord};
use domain::user::User;
use sea_orm::{QueryResult, Statement};

use super::schema::BetterAuthSchema;
use crate::db::Db;

/// Looks sessions up with the SQL built once from the detected schema.
#[derive(Debug, Clone)]
pub struct SqlSessionStore {
    db: Db,
    sql: String,
    user_sql: String,
    uuid_user_ids: bool,
    has_ban_columns: bool,
    has_active_organization: bool,
}

impl SqlSessionStore {
    /// A store over `db`, whose better-auth schema is `schema`.
    pub fn new(db: Db, schema: &BetterAuthSchema) -> Self {
        Self {
            sql: schema.session_lookup_sql(),
            user_sql: schema.user_lookup_sql(),
            uuid_user_ids: schema.uuid_user_ids,
            has_ban_columns: schema.has_ban_columns,
            has_active_organization: schema.organizations.as_ref().is_some_and(|o| o.active_column),
            db,
        }
    }

    fn decode_user(&self, row: &QueryResult) -> Result<UserRecord, sea_orm::DbErr> {
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
        Ok(UserRecord {
            user,
            banned,
            ban_expires,
        })
    }

    fn decode(&self, row: &QueryResult) -> Result<SessionRecord, sea_orm::DbErr> {
        let UserRecord {
            user,
            banned,
            ban_expires,
        } = self.decode_user(row)?;
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
            revocation: SessionRevocation::Row,
        })
    }
}

fn unexpected(error: sea_orm::DbErr) -> Error {
    Error::Unexpected(anyhow::Error::new(error).context("unexpected better-auth session row"))
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn find_by_token(&self, token: &SessionToken) -> Result<Option<SessionRecord>, Error> {
        let stmt = Statement::from_sql_and_values(self.db.backend(), self.sql.as_str(), [token.expose().into()]);
        let Some(row) = self.db.query_one(stmt, "session_by_token").await? else {
            return Ok(None);
        };
        self.decode(&row).map(Some).map_err(unexpected)
    }

    async fn find_user(&self, user_id: &str) -> Result<Option<UserRecord>, Error> {
        if self.uuid_user_ids && uuid::Uuid::try_parse(user_id).is_err() {
            return Ok(None);
        }
        let stmt = Statement::from_sql_and_values(self.db.backend(), self.user_sql.as_str(), [user_id.into()]);
        let Some(row) = self.db.query_one(stmt, "user_by_id").await? else {
            return Ok(None);
        };
        self.decode_user(&row).map(Some).map_err(unexpected)
    }
}
