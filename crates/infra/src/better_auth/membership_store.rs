//! [`MembershipStore`] over the organization plugin's `member` and
//! `organization` tables (read-only), in either naming style.

use async_trait::async_trait;
use domain::Error;
use domain::organization::{Membership, MembershipStore, Organization};
use domain::scope::{OrganizationId, Roles};
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};

use super::schema::{BetterAuthSchema, OrganizationSchema};
use crate::db::{Db, translate};

/// Membership lookups with SQL built once from the detected schema.
#[derive(Debug, Clone)]
pub struct SqlMembershipStore {
    db: Db,
    roles_sql: String,
    memberships_sql: String,
    orphans_sql: String,
    uuid_ids: bool,
}

impl SqlMembershipStore {
    /// A store over `db`; `None` when the plugin's tables were not found.
    pub fn new(db: Db, schema: &BetterAuthSchema) -> Option<Self> {
        let OrganizationSchema { uuid_ids, .. } = schema.organizations.clone()?;
        let cast = |n: usize| {
            let p = schema.placeholder(n);
            if uuid_ids { format!("{p}::uuid") } else { p }
        };
        let roles_sql = format!(
            "SELECT m.\"role\" AS role FROM \"member\" m WHERE {} = {} AND {} = {}",
            schema.col("m", "organizationId"),
            cast(1),
            schema.col("m", "userId"),
            cast(2),
        );
        let memberships_sql = format!(
            "SELECT {id} AS id, o.\"name\" AS name, o.\"slug\" AS slug, o.\"logo\" AS logo, {created} AS created_at, \
             m.\"role\" AS role FROM \"member\" m JOIN \"organization\" o ON o.\"id\" = {org} \
             WHERE {user} = {p} ORDER BY o.\"name\", o.\"id\"",
            id = schema.id_text("o", "id"),
            created = schema.timestamp("organization", "o", "createdAt"),
            org = schema.col("m", "organizationId"),
            user = schema.col("m", "userId"),
            p = cast(1),
        );
        let orphans_sql = format!(
            "DELETE FROM \"{{table}}\" WHERE \"id\" IN (SELECT i.\"id\" FROM \"{{table}}\" i \
             WHERE i.\"organization_id\" IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM \"organization\" o WHERE {} = i.\"organization_id\") LIMIT {})",
            schema.id_text("o", "id"),
            schema.placeholder(1),
        );
        Some(Self {
            db,
            roles_sql,
            memberships_sql,
            orphans_sql,
            uuid_ids,
        })
    }

    /// With `uuid` ids, a value that is not a UUID in its canonical form
    /// (lower-case, hyphenated: what better-auth hands out) matches nothing,
    /// and never reaches the cast, which would fail the statement.
    fn usable(&self, id: &str) -> bool {
        !self.uuid_ids || uuid::Uuid::try_parse(id).is_ok_and(|u| u.hyphenated().to_string() == id)
    }

    /// Deletes up to `limit` items whose organization no longer exists;
    /// see [`SqlMembershipStore::delete_records_of_deleted_organizations`].
    ///
    /// # Errors
    /// Any database error.
    pub async fn delete_items_of_deleted_organizations(&self, limit: u32) -> Result<u64, Error> {
        self.delete_records_of_deleted_organizations("items", limit).await
    }

    /// Deletes up to `limit` rows of `table` (a scoped resource's: it has
    /// `id` and `organization_id`) whose organization no longer exists
    /// (better-auth's `deleteOrganization` cannot cascade to them: there is
    /// no foreign key, so the plugin's tables stay optional); returns how
    /// many went. Run periodically, off the request path.
    ///
    /// # Errors
    /// [`Error::Unexpected`] for a table name that is not a plain
    /// identifier (names come from the code, never from a client); any
    /// database error.
    pub async fn delete_records_of_deleted_organizations(&self, table: &str, limit: u32) -> Result<u64, Error> {
        if table.is_empty()
            || !table
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::Unexpected(anyhow::anyhow!("not a table name: {table:?}")));
        }
        let sql = self.orphans_sql.replace("{table}", table);
        let stmt = Statement::from_sql_and_values(self.db.backend(), sql.as_str(), [limit.into()]);
        let result = self.db.conn().execute_raw(stmt).await.map_err(translate)?;
        Ok(result.rows_affected())
    }

    async fn query(&self, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>, Error> {
        let stmt = Statement::from_sql_and_values(self.db.backend(), sql, values);
        self.db.conn().query_all_raw(stmt).await.map_err(translate)
    }
}

fn unexpected(error: sea_orm::DbErr) -> Error {
    Error::Unexpected(anyhow::Error::new(error).context("unexpected organization plugin row"))
}

#[async_trait]
impl MembershipStore for SqlMembershipStore {
    async fn roles(&self, user_id: &str, organization_id: &OrganizationId) -> Result<Option<Roles>, Error> {
        if !self.usable(user_id) || !self.usable(organization_id.as_str()) {
            return Ok(None);
        }
        let rows = self
            .query(
                &self.roles_sql,
                vec![organization_id.as_str().to_owned().into(), user_id.to_owned().into()],
            )
            .await?;
        // One row per membership; should a user be in twice, both role lists count.
        let roles: Vec<String> = rows
            .iter()
            .map(|row| row.try_get::<String>("", "role"))
            .collect::<Result<_, _>>()
            .map_err(unexpected)?;
        Ok((!roles.is_empty()).then(|| Roles::new(roles.join(","))))
    }

    async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>, Error> {
        if !self.usable(user_id) {
            return Ok(Vec::new());
        }
        let rows = self
            .query(&self.memberships_sql, vec![user_id.to_owned().into()])
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Membership {
                    organization: Organization {
                        id: row.try_get("", "id")?,
                        name: row.try_get("", "name")?,
                        slug: row.try_get("", "slug")?,
                        logo: row.try_get("", "logo")?,
                        created_at: row.try_get("", "created_at")?,
                    },
                    role: Roles::new(row.try_get::<String>("", "role")?),
                })
            })
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(unexpected)
    }
}
