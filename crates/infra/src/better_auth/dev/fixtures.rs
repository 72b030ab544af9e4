//! What only the test suite does to better-auth's tables (a sign-out, a
//! ban, a removed member, a deleted organization, a switched active
//! organization): compiled with the `test-support` feature only, never into
//! the service.

use chrono::{DateTime, Utc};
use sea_orm::Value;

use super::DevBetterAuth;
use crate::better_auth::schema::NamingStyle;
use crate::db::DbBackendKind;

impl DevBetterAuth {
    /// Removes a member, as better-auth's `removeMember` does.
    ///
    /// # Errors
    /// Any database error.
    pub async fn delete_member(&self, organization_id: &str, user_id: &str) -> anyhow::Result<bool> {
        let p = self.placeholders(2);
        let (p1, p2) = p.split_once(", ").unwrap_or(("?", "?"));
        let sql = format!(
            "DELETE FROM \"member\" WHERE {} = {p1} AND {} = {p2}",
            self.c("organizationId"),
            self.c("userId")
        );
        Ok(self.exec(sql, vec![organization_id.into(), user_id.into()]).await? > 0)
    }

    /// Deletes an organization (its members cascade), as better-auth's
    /// `deleteOrganization` does.
    ///
    /// # Errors
    /// Any database error.
    pub async fn delete_organization(&self, id: &str) -> anyhow::Result<bool> {
        let sql = format!("DELETE FROM \"organization\" WHERE \"id\" = {}", self.placeholders(1));
        Ok(self.exec(sql, vec![id.into()]).await? > 0)
    }

    /// Sets (or clears) the active organization of the session with `token`.
    ///
    /// # Errors
    /// Any database error.
    pub async fn set_active_organization(&self, token: &str, organization_id: Option<&str>) -> anyhow::Result<()> {
        let p = self.placeholders(2);
        let (p1, p2) = p.split_once(", ").unwrap_or(("?", "?"));
        let sql = format!(
            "UPDATE \"session\" SET {} = {p1} WHERE \"token\" = {p2}",
            self.c("activeOrganizationId")
        );
        self.exec(sql, vec![organization_id.map(str::to_owned).into(), token.into()])
            .await?;
        Ok(())
    }

    /// Deletes the session with `token`, as better-auth's sign-out does; returns whether one existed.
    ///
    /// # Errors
    /// Any database error.
    pub async fn delete_session(&self, token: &str) -> anyhow::Result<bool> {
        let sql = format!("DELETE FROM \"session\" WHERE \"token\" = {}", self.placeholders(1));
        Ok(self.exec(sql, vec![token.to_owned().into()]).await? > 0)
    }

    /// Sets the admin plugin's ban on a user (requires the ban columns).
    ///
    /// # Errors
    /// Any database error.
    pub async fn set_ban(&self, user_id: &str, banned: bool, until: Option<DateTime<Utc>>) -> anyhow::Result<()> {
        let p = match self.db.kind() {
            DbBackendKind::Postgres => ("$1", "$2", "$3"),
            DbBackendKind::Sqlite => ("?", "?", "?"),
        };
        let sql = format!(
            "UPDATE \"user\" SET {} = {}, {} = {} WHERE \"id\" = {}",
            self.c("banned"),
            p.0,
            self.c("banExpires"),
            p.1,
            p.2
        );
        let until = match until {
            Some(at) => self.ts(at),
            None => match (self.db.kind(), self.style) {
                (DbBackendKind::Postgres, NamingStyle::SnakeCase) => Value::ChronoDateTime(None),
                _ => Value::ChronoDateTimeUtc(None),
            },
        };
        self.exec(sql, vec![banned.into(), until, user_id.to_owned().into()])
            .await?;
        Ok(())
    }
}
