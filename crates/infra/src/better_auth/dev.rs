//! better-auth-compatible tables and rows for development and tests.
//!
//! The service itself never writes better-auth's tables; this module exists so
//! that `saas-api dev seed` (refused in production) and the test suite can
//! stand in for a frontend. The DDL mirrors what better-auth's migrator
//! (camelCase, `timestamptz`) and its Drizzle generator (snake_case, naive
//! `timestamp`) produce, optionally with the admin plugin's ban columns.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement, Value};

use super::schema::NamingStyle;

#[cfg(any(test, feature = "test-support"))]
mod fixtures;
mod jwt;
pub mod secondary;
use crate::db::{Db, DbBackendKind};

/// A user to insert.
#[derive(Debug, Clone)]
pub struct DevUser {
    /// better-auth user id.
    pub id: String,
    /// Email (unique).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the email is verified.
    pub email_verified: bool,
}

/// Writes better-auth-shaped rows in one naming style.
#[derive(Debug, Clone)]
pub struct DevBetterAuth {
    db: Db,
    style: NamingStyle,
}

impl DevBetterAuth {
    /// Rows will be written to `db` in `style`.
    pub fn new(db: Db, style: NamingStyle) -> Self {
        Self { db, style }
    }

    fn c(&self, field: &str) -> String {
        format!("\"{}\"", self.style.column(field))
    }

    fn timestamp_type(&self) -> &'static str {
        match (self.db.kind(), self.style) {
            (DbBackendKind::Sqlite, _) => "date",
            (DbBackendKind::Postgres, NamingStyle::CamelCase) => "timestamptz",
            (DbBackendKind::Postgres, NamingStyle::SnakeCase) => "timestamp",
        }
    }

    fn bool_type(&self) -> &'static str {
        match self.db.kind() {
            DbBackendKind::Sqlite => "integer",
            DbBackendKind::Postgres => "boolean",
        }
    }

    /// A timestamp as the column type expects it: naive (UTC) for Drizzle's
    /// `timestamp`, an instant otherwise.
    fn ts(&self, at: DateTime<Utc>) -> Value {
        match (self.db.kind(), self.style) {
            (DbBackendKind::Postgres, NamingStyle::SnakeCase) => at.naive_utc().into(),
            _ => at.into(),
        }
    }

    fn placeholders(&self, n: usize) -> String {
        (1..=n)
            .map(|i| match self.db.kind() {
                DbBackendKind::Postgres => format!("${i}"),
                DbBackendKind::Sqlite => "?".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether better-auth's `user` and `session` tables exist.
    ///
    /// # Errors
    /// When the catalogue cannot be read.
    pub async fn tables_exist(&self) -> anyhow::Result<bool> {
        let sql = match self.db.kind() {
            DbBackendKind::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name IN ('user', 'session')"
            }
            DbBackendKind::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('user', 'session')"
            }
        };
        Ok(self.count(sql, Vec::new()).await? == 2)
    }

    /// Creates `user`, `session`, `account` and `verification` if absent,
    /// with the admin plugin's ban columns when `admin_plugin` is set.
    ///
    /// # Errors
    /// Any database error.
    pub async fn create_tables(&self, admin_plugin: bool) -> anyhow::Result<()> {
        let ts = self.timestamp_type();
        let b = self.bool_type();
        let c = |f: &str| self.c(f);
        let ban = if admin_plugin {
            format!(
                ", {} {b}, {} text, {} {ts}",
                c("banned"),
                c("banReason"),
                c("banExpires")
            )
        } else {
            String::new()
        };
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS \"user\" (\"id\" text NOT NULL PRIMARY KEY, \"name\" text NOT NULL, \
                 \"email\" text NOT NULL UNIQUE, {} {b} NOT NULL, \"image\" text, {} {ts} NOT NULL, {} {ts} NOT NULL{ban})",
                c("emailVerified"),
                c("createdAt"),
                c("updatedAt")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS \"session\" (\"id\" text NOT NULL PRIMARY KEY, {} {ts} NOT NULL, \
                 \"token\" text NOT NULL UNIQUE, {} {ts} NOT NULL, {} {ts} NOT NULL, {} text, {} text, \
                 {} text NOT NULL REFERENCES \"user\" (\"id\") ON DELETE CASCADE)",
                c("expiresAt"),
                c("createdAt"),
                c("updatedAt"),
                c("ipAddress"),
                c("userAgent"),
                c("userId")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS \"account\" (\"id\" text NOT NULL PRIMARY KEY, {} text NOT NULL, \
                 {} text NOT NULL, {} text NOT NULL REFERENCES \"user\" (\"id\") ON DELETE CASCADE, {} text, \
                 {} text, {} text, {} {ts}, {} {ts}, \"scope\" text, \"password\" text, {} {ts} NOT NULL, {} {ts} NOT NULL)",
                c("accountId"),
                c("providerId"),
                c("userId"),
                c("accessToken"),
                c("refreshToken"),
                c("idToken"),
                c("accessTokenExpiresAt"),
                c("refreshTokenExpiresAt"),
                c("createdAt"),
                c("updatedAt")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS \"verification\" (\"id\" text NOT NULL PRIMARY KEY, \"identifier\" text NOT NULL, \
                 \"value\" text NOT NULL, {} {ts} NOT NULL, {} {ts} NOT NULL, {} {ts} NOT NULL)",
                c("expiresAt"),
                c("createdAt"),
                c("updatedAt")
            ),
        ];
        for sql in statements {
            self.db
                .execute_unprepared(&sql)
                .await
                .with_context(|| format!("could not run: {sql}"))?;
        }
        Ok(())
    }

    /// Creates the organization plugin's `organization`, `member` and
    /// `invitation` tables if absent, and `session.activeOrganizationId`, as
    /// better-auth 1.7's migrator (or Drizzle, in snake_case) makes them.
    ///
    /// # Errors
    /// Any database error.
    pub async fn create_organization_tables(&self) -> anyhow::Result<()> {
        let ts = self.timestamp_type();
        let c = |f: &str| self.c(f);
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS \"organization\" (\"id\" text NOT NULL PRIMARY KEY, \"name\" text NOT NULL, \
                 \"slug\" text NOT NULL UNIQUE, \"logo\" text, {} {ts} NOT NULL, \"metadata\" text)",
                c("createdAt")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS \"member\" (\"id\" text NOT NULL PRIMARY KEY, \
                 {} text NOT NULL REFERENCES \"organization\" (\"id\") ON DELETE CASCADE, \
                 {} text NOT NULL REFERENCES \"user\" (\"id\") ON DELETE CASCADE, \"role\" text NOT NULL, {} {ts} NOT NULL)",
                c("organizationId"),
                c("userId"),
                c("createdAt")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS \"invitation\" (\"id\" text NOT NULL PRIMARY KEY, \
                 {} text NOT NULL REFERENCES \"organization\" (\"id\") ON DELETE CASCADE, \"email\" text NOT NULL, \
                 \"role\" text, \"status\" text NOT NULL, {} {ts} NOT NULL, {} {ts} NOT NULL, \
                 {} text NOT NULL REFERENCES \"user\" (\"id\") ON DELETE CASCADE)",
                c("organizationId"),
                c("expiresAt"),
                c("createdAt"),
                c("inviterId")
            ),
        ];
        for sql in statements {
            self.db
                .execute_unprepared(&sql)
                .await
                .with_context(|| format!("could not run: {sql}"))?;
        }
        if !self.session_has_active_organization().await? {
            let sql = format!("ALTER TABLE \"session\" ADD COLUMN {} text", c("activeOrganizationId"));
            self.db
                .execute_unprepared(&sql)
                .await
                .context("could not add activeOrganizationId")?;
        }
        Ok(())
    }

    async fn session_has_active_organization(&self) -> anyhow::Result<bool> {
        let column = self.style.column("activeOrganizationId");
        let (sql, values): (&str, Vec<Value>) = match self.db.kind() {
            DbBackendKind::Postgres => (
                "SELECT COUNT(*) AS n FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'session' AND column_name = $1",
                vec![column.into()],
            ),
            DbBackendKind::Sqlite => (
                "SELECT COUNT(*) AS n FROM pragma_table_info('session') WHERE name = ?",
                vec![column.into()],
            ),
        };
        Ok(self.count(sql, values).await? > 0)
    }

    /// Whether an organization with this id exists.
    ///
    /// # Errors
    /// Any database error.
    pub async fn organization_exists(&self, id: &str) -> anyhow::Result<bool> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM \"organization\" WHERE \"id\" = {}",
            self.placeholders(1)
        );
        Ok(self.count(&sql, vec![id.into()]).await? > 0)
    }

    /// Inserts an organization.
    ///
    /// # Errors
    /// Any database error (a duplicate slug, for instance).
    pub async fn insert_organization(
        &self,
        id: &str,
        name: &str,
        slug: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO \"organization\" (\"id\", \"name\", \"slug\", {}) VALUES ({})",
            self.c("createdAt"),
            self.placeholders(4)
        );
        let values = vec![id.into(), name.into(), slug.into(), self.ts(now)];
        self.exec(sql, values)
            .await
            .context("could not insert the organization")?;
        Ok(())
    }

    /// Makes `user_id` a member of `organization_id` with `role` (a role
    /// list, comma-separated, as better-auth stores it).
    ///
    /// # Errors
    /// Any database error.
    pub async fn insert_member(
        &self,
        organization_id: &str,
        user_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO \"member\" (\"id\", {}, {}, \"role\", {}) VALUES ({})",
            self.c("organizationId"),
            self.c("userId"),
            self.c("createdAt"),
            self.placeholders(5)
        );
        let values = vec![
            generate_token().into(),
            organization_id.into(),
            user_id.into(),
            role.into(),
            self.ts(now),
        ];
        self.exec(sql, values).await.context("could not insert the member")?;
        Ok(())
    }

    /// Creates the api-key plugin's `apikey` table if absent, as
    /// `@better-auth/api-key` 1.7's migration (or Drizzle, in snake_case) makes it.
    ///
    /// # Errors
    /// Any database error.
    pub async fn create_api_key_table(&self) -> anyhow::Result<()> {
        let ts = self.timestamp_type();
        let b = self.bool_type();
        let c = |f: &str| self.c(f);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS \"apikey\" (\"id\" text NOT NULL PRIMARY KEY, {} text NOT NULL, \"name\" text, \
             \"start\" text, {} text NOT NULL, \"prefix\" text, \"key\" text NOT NULL, {} integer, {} integer, {} {ts}, \
             \"enabled\" {b}, {} {b}, {} integer, {} integer, {} integer, \"remaining\" integer, {} {ts}, {} {ts}, \
             {} {ts} NOT NULL, {} {ts} NOT NULL, \"permissions\" text, \"metadata\" text)",
            c("configId"),
            c("referenceId"),
            c("refillInterval"),
            c("refillAmount"),
            c("lastRefillAt"),
            c("rateLimitEnabled"),
            c("rateLimitTimeWindow"),
            c("rateLimitMax"),
            c("requestCount"),
            c("lastRequest"),
            c("expiresAt"),
            c("createdAt"),
            c("updatedAt"),
        );
        self.db
            .execute_unprepared(&sql)
            .await
            .with_context(|| format!("could not run: {sql}"))?;
        Ok(())
    }

    /// Inserts an API key for `user_id` whose raw value is `raw` (stored as
    /// better-auth stores it: the base64url SHA-256), with `remaining` and a
    /// refill of `refill` = (amount, interval ms) last done at `last_refill`.
    ///
    /// # Errors
    /// Any database error.
    pub async fn insert_api_key(
        &self,
        user_id: &str,
        raw: &str,
        remaining: Option<i32>,
        refill: Option<(i32, i32)>,
        last_refill: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO \"apikey\" (\"id\", {}, {}, \"key\", \"enabled\", {}, {}, {}, \"remaining\", {}, {}, {}, {}, {}) \
             VALUES ({})",
            self.c("configId"),
            self.c("referenceId"),
            self.c("rateLimitEnabled"),
            self.c("rateLimitTimeWindow"),
            self.c("rateLimitMax"),
            self.c("refillAmount"),
            self.c("refillInterval"),
            self.c("lastRefillAt"),
            self.c("createdAt"),
            self.c("updatedAt"),
            self.placeholders(14)
        );
        let last = match last_refill {
            Some(at) => self.ts(at),
            None => match (self.db.kind(), self.style) {
                (DbBackendKind::Postgres, NamingStyle::SnakeCase) => Value::ChronoDateTime(None),
                _ => Value::ChronoDateTimeUtc(None),
            },
        };
        let values = vec![
            generate_token().into(),
            "default".into(),
            user_id.into(),
            domain::auth::api_key::hash(raw).into(),
            true.into(),
            false.into(),
            86_400_000i32.into(),
            10i32.into(),
            remaining.into(),
            refill.map(|(amount, _)| amount).into(),
            refill.map(|(_, interval)| interval).into(),
            last,
            self.ts(now),
            self.ts(now),
        ];
        self.exec(sql, values).await.context("could not insert the API key")?;
        Ok(())
    }

    /// The `n` of a `SELECT COUNT(*) AS n …` query.
    async fn count(&self, sql: &str, values: Vec<Value>) -> anyhow::Result<i64> {
        let stmt = Statement::from_sql_and_values(self.db.backend(), sql, values);
        let row = self
            .db
            .conn()
            .query_one_raw(stmt)
            .await?
            .context("COUNT returned no row")?;
        Ok(row.try_get::<i64>("", "n")?)
    }

    async fn exec(&self, sql: String, values: Vec<Value>) -> anyhow::Result<u64> {
        let stmt = Statement::from_sql_and_values(self.db.backend(), sql, values);
        Ok(self.db.conn().execute_raw(stmt).await?.rows_affected())
    }

    /// Inserts a user created at `now`.
    ///
    /// # Errors
    /// Any database error (a duplicate email, for instance).
    pub async fn insert_user(&self, user: &DevUser, now: DateTime<Utc>) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO \"user\" (\"id\", \"name\", \"email\", {}, {}, {}) VALUES ({})",
            self.c("emailVerified"),
            self.c("createdAt"),
            self.c("updatedAt"),
            self.placeholders(6)
        );
        let values = vec![
            user.id.clone().into(),
            user.name.clone().into(),
            user.email.clone().into(),
            user.email_verified.into(),
            self.ts(now),
            self.ts(now),
        ];
        self.exec(sql, values).await.context("could not insert the user")?;
        Ok(())
    }

    /// Whether a user with this id exists.
    ///
    /// # Errors
    /// Any database error.
    pub async fn user_exists(&self, user_id: &str) -> anyhow::Result<bool> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM \"user\" WHERE \"id\" = {}",
            self.placeholders(1)
        );
        Ok(self.count(&sql, vec![user_id.to_owned().into()]).await? > 0)
    }

    /// Inserts a session for `user_id` with `token`, expiring at `expires_at`.
    ///
    /// # Errors
    /// Any database error.
    pub async fn insert_session(
        &self,
        user_id: &str,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO \"session\" (\"id\", \"token\", {}, {}, {}, {}) VALUES ({})",
            self.c("userId"),
            self.c("expiresAt"),
            self.c("createdAt"),
            self.c("updatedAt"),
            self.placeholders(6)
        );
        let values = vec![
            uuid::Uuid::new_v4().simple().to_string().into(),
            token.to_owned().into(),
            user_id.to_owned().into(),
            self.ts(expires_at),
            self.ts(now),
            self.ts(now),
        ];
        self.exec(sql, values).await.context("could not insert the session")?;
        Ok(())
    }
}

/// A fresh session token of better-auth's shape: 32 ASCII letters and digits.
pub fn generate_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
