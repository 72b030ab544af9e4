//! Detection of better-auth's column naming and timestamp types.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use sea_orm::{ConnectionTrait, Statement};

use crate::db::{Db, DbBackendKind};

/// How better-auth's columns are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamingStyle {
    /// better-auth's own migrator: `"emailVerified"`, `"expiresAt"`, `"userId"`.
    CamelCase,
    /// Drizzle's generator: `email_verified`, `expires_at`, `user_id`.
    SnakeCase,
}

impl NamingStyle {
    /// The column name for a better-auth field given in camelCase.
    pub fn column(self, camel: &str) -> String {
        match self {
            Self::CamelCase => camel.to_owned(),
            Self::SnakeCase => {
                let mut out = String::with_capacity(camel.len() + 4);
                for c in camel.chars() {
                    if c.is_ascii_uppercase() {
                        out.push('_');
                        out.push(c.to_ascii_lowercase());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// `camelCase` or `snake_case`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CamelCase => "camelCase",
            Self::SnakeCase => "snake_case",
        }
    }
}

/// What start-up learned about the organization plugin's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationSchema {
    /// Whether `session` has `activeOrganizationId`.
    pub active_column: bool,
    /// Whether organization and user ids are `uuid` columns (better-auth's
    /// `generateId: "uuid"`): values are then validated and cast.
    pub uuid_ids: bool,
    /// Whether `organization.createdAt` is a naive timestamp (read as UTC).
    pub naive_created_at: bool,
}

/// What start-up learned about the jwt plugin's `jwks` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSchema {
    /// Whether the `alg` column exists (older versions lack it).
    pub has_alg: bool,
    /// Whether the `crv` column exists.
    pub has_crv: bool,
    /// Whether the `expiresAt` column exists.
    pub has_expires_at: bool,
}

/// What start-up learned about the api-key plugin's `apikey` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySchema {
    /// The column naming the key's user: `referenceId` (api-key 1.7), or
    /// `userId` (older releases).
    pub user_field: &'static str,
    /// Whether `lastRefillAt` is a naive timestamp (written as naive UTC).
    pub naive_last_refill: bool,
}

/// What start-up learned about better-auth's tables.
#[derive(Debug, Clone)]
pub struct BetterAuthSchema {
    /// Column naming.
    pub style: NamingStyle,
    /// Whether the admin plugin's `banned` / `banExpires` columns exist.
    pub has_ban_columns: bool,
    /// Columns (as `table.column`) stored as naive timestamps, read as UTC.
    pub naive_timestamps: Vec<String>,
    /// The organization plugin's tables, when they exist.
    pub organizations: Option<OrganizationSchema>,
    /// The jwt plugin's `jwks` table, when it exists.
    pub jwks: Option<JwksSchema>,
    /// The api-key plugin's `apikey` table, when it exists.
    pub api_keys: Option<ApiKeySchema>,
    /// Whether `"user".id` is a `uuid` column.
    pub uuid_user_ids: bool,
    /// Whether the `session` table exists (it may not when better-auth keeps
    /// sessions only in secondary storage).
    pub has_session_table: bool,
    backend: DbBackendKind,
}

const USER_FIELDS: [&str; 7] = [
    "id",
    "email",
    "name",
    "emailVerified",
    "image",
    "createdAt",
    "updatedAt",
];
const SESSION_FIELDS: [&str; 3] = ["token", "userId", "expiresAt"];
const ORGANIZATION_FIELDS: [&str; 5] = ["id", "name", "slug", "logo", "createdAt"];
const MEMBER_FIELDS: [&str; 3] = ["organizationId", "userId", "role"];

impl BetterAuthSchema {
    /// Inspects the database's catalogue; `session` must exist.
    ///
    /// # Errors
    /// When `session` or `user` is missing (better-auth not migrated yet, or
    /// sessions kept only in secondary storage), or when a required column is
    /// absent; the message says which and what to do.
    pub async fn detect(db: &Db) -> anyhow::Result<Self> {
        Self::detect_with(db, true).await
    }

    /// As [`Self::detect`]; without `sessions_in_table` (sessions kept only in
    /// better-auth's secondary storage) the `session` table may be absent.
    ///
    /// # Errors
    /// As [`Self::detect`].
    pub async fn detect_with(db: &Db, sessions_in_table: bool) -> anyhow::Result<Self> {
        let session = columns(db, "session").await?;
        let user = columns(db, "user").await?;
        if user.is_empty() || (sessions_in_table && session.is_empty()) {
            let hint = if sessions_in_table {
                " If better-auth keeps sessions only in secondary storage (Redis, with \
                 `storeSessionInDatabase` false), set BETTER_AUTH_SECONDARY_STORAGE_URL: then only `user` is needed."
            } else {
                ""
            };
            bail!(
                "better-auth tables not found: `user`{} must exist in this database. \
                 Run better-auth's migrations (npx @better-auth/cli migrate) against it.{hint} \
                 In development, `saas-api dev seed` creates compatible tables.",
                if sessions_in_table { " and `session`" } else { "" }
            );
        }
        let style = if session.contains_key("expiresAt") {
            NamingStyle::CamelCase
        } else if session.contains_key("expires_at") {
            NamingStyle::SnakeCase
        } else if session.is_empty() && user.contains_key("emailVerified") {
            NamingStyle::CamelCase
        } else if session.is_empty() && user.contains_key("email_verified") {
            NamingStyle::SnakeCase
        } else if session.is_empty() {
            bail!("better-auth `user` table has neither \"emailVerified\" nor email_verified: unknown schema");
        } else {
            bail!("better-auth `session` table has neither \"expiresAt\" nor expires_at: unknown schema");
        };
        let mut missing = Vec::new();
        for field in USER_FIELDS {
            if !user.contains_key(&style.column(field)) {
                missing.push(format!("user.{}", style.column(field)));
            }
        }
        for field in SESSION_FIELDS {
            if !session.is_empty() && !session.contains_key(&style.column(field)) {
                missing.push(format!("session.{}", style.column(field)));
            }
        }
        if !missing.is_empty() {
            bail!(
                "better-auth tables lack required columns ({} style): {}",
                style.as_str(),
                missing.join(", ")
            );
        }
        let has_ban_columns =
            user.contains_key(&style.column("banned")) && user.contains_key(&style.column("banExpires"));
        let mut naive_timestamps = Vec::new();
        for (table, cols, fields) in [
            ("user", &user, &["createdAt", "updatedAt", "banExpires"][..]),
            ("session", &session, &["expiresAt"][..]),
        ] {
            for field in fields {
                let col = style.column(field);
                if cols.get(&col).is_some_and(|t| t == "timestamp without time zone") {
                    naive_timestamps.push(format!("{table}.{col}"));
                }
            }
        }
        let organizations = detect_organizations(db, style, &session).await?;
        if organizations.as_ref().is_some_and(|o| o.naive_created_at) {
            naive_timestamps.push(format!("organization.{}", style.column("createdAt")));
        }
        let jwks = detect_jwks(db, style, &mut naive_timestamps).await?;
        let api_keys = detect_api_keys(db, style, &mut naive_timestamps).await?;
        Ok(Self {
            style,
            has_ban_columns,
            naive_timestamps,
            organizations,
            jwks,
            api_keys,
            uuid_user_ids: user.get("id").is_some_and(|t| t == "uuid"),
            has_session_table: !session.is_empty(),
            backend: db.kind(),
        })
    }

    /// The backend's numbered placeholder `n` (1-based), reusable in one
    /// statement on both backends (`$1` / `?1`).
    pub fn numbered(&self, n: usize) -> String {
        match self.backend {
            DbBackendKind::Postgres => format!("${n}"),
            DbBackendKind::Sqlite => format!("?{n}"),
        }
    }

    /// An integer column read as a 64-bit integer.
    pub fn int64(&self, alias: &str, field: &str) -> String {
        match self.backend {
            DbBackendKind::Postgres => format!("{}::bigint", self.col(alias, field)),
            DbBackendKind::Sqlite => self.col(alias, field),
        }
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.backend == DbBackendKind::Postgres
    }

    /// The backend's placeholder for parameter `n` (1-based).
    pub fn placeholder(&self, n: usize) -> String {
        match self.backend {
            DbBackendKind::Postgres => format!("${n}"),
            DbBackendKind::Sqlite => "?".to_owned(),
        }
    }

    /// An id column read as text (ids may be `uuid` on PostgreSQL).
    pub fn id_text(&self, alias: &str, field: &str) -> String {
        match self.backend {
            DbBackendKind::Postgres => format!("{}::text", self.col(alias, field)),
            DbBackendKind::Sqlite => self.col(alias, field),
        }
    }

    /// A quoted, aliased column reference (`s."expiresAt"`).
    pub fn col(&self, alias: &str, field: &str) -> String {
        format!("{alias}.\"{}\"", self.style.column(field))
    }

    /// A timestamp column as a UTC instant: naive columns are declared UTC.
    pub fn timestamp(&self, table: &str, alias: &str, field: &str) -> String {
        let col = self.style.column(field);
        if self.naive_timestamps.iter().any(|c| *c == format!("{table}.{col}")) {
            format!("({alias}.\"{col}\" AT TIME ZONE 'UTC')")
        } else {
            format!("{alias}.\"{col}\"")
        }
    }

    /// The user columns every lookup reads (`u` is `"user"`).
    fn user_columns(&self) -> String {
        let ban = if self.has_ban_columns {
            format!(
                ", {} AS banned, {} AS ban_expires",
                self.col("u", "banned"),
                self.timestamp("user", "u", "banExpires")
            )
        } else {
            String::new()
        };
        // better-auth may be set up with `uuid` ids; the domain treats ids as text.
        format!(
            "{id} AS id, u.\"email\" AS email, u.\"name\" AS name, {ev} AS email_verified, \
             u.\"image\" AS image, {ca} AS created_at, {ua} AS updated_at{ban}",
            id = self.id_text("u", "id"),
            ev = self.col("u", "emailVerified"),
            ca = self.timestamp("user", "u", "createdAt"),
            ua = self.timestamp("user", "u", "updatedAt"),
        )
    }

    /// The one query that resolves a token into session expiry and user: `$1` is the token.
    pub fn session_lookup_sql(&self) -> String {
        let active = if self.organizations.as_ref().is_some_and(|o| o.active_column) {
            format!(
                ", {} AS active_organization_id",
                self.id_text("s", "activeOrganizationId")
            )
        } else {
            String::new()
        };
        format!(
            "SELECT {user}, {ea} AS expires_at{active} \
             FROM \"session\" s JOIN \"user\" u ON u.\"id\" = {uid} WHERE s.\"token\" = {p}",
            user = self.user_columns(),
            ea = self.timestamp("session", "s", "expiresAt"),
            uid = self.col("s", "userId"),
            p = self.placeholder(1),
        )
    }

    /// The user with id `$1` (cast to `uuid` when ids are: callers check the
    /// value is one first).
    pub fn user_lookup_sql(&self) -> String {
        let p = self.placeholder(1);
        let p = if self.uuid_user_ids { format!("{p}::uuid") } else { p };
        format!("SELECT {} FROM \"user\" u WHERE u.\"id\" = {p}", self.user_columns())
    }
}

/// The organization plugin's tables, if `organization` and `member` exist
/// with the columns this service reads; logged either way.
async fn detect_organizations(
    db: &Db,
    style: NamingStyle,
    session: &HashMap<String, String>,
) -> anyhow::Result<Option<OrganizationSchema>> {
    let organization = columns(db, "organization").await?;
    let member = columns(db, "member").await?;
    if organization.is_empty() && member.is_empty() {
        tracing::info!("organization plugin tables not found: every request is in personal scope");
        return Ok(None);
    }
    let missing: Vec<String> = ORGANIZATION_FIELDS
        .iter()
        .map(|f| ("organization", &organization, style.column(f)))
        .chain(MEMBER_FIELDS.iter().map(|f| ("member", &member, style.column(f))))
        .filter(|(_, cols, col)| !cols.contains_key(col))
        .map(|(table, _, col)| format!("{table}.{col}"))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            missing = %missing.join(", "),
            "organization plugin tables incomplete: organizations are off (every request is in personal scope)"
        );
        return Ok(None);
    }
    let found = OrganizationSchema {
        active_column: session.contains_key(&style.column("activeOrganizationId")),
        uuid_ids: organization.get("id").is_some_and(|t| t == "uuid"),
        naive_created_at: organization
            .get(&style.column("createdAt"))
            .is_some_and(|t| t == "timestamp without time zone"),
    };
    tracing::info!(
        active_organization = found.active_column,
        uuid_ids = found.uuid_ids,
        "organization plugin tables found: X-Organization-Id and the session's active organization choose the scope"
    );
    Ok(Some(found))
}

/// Records `table.field` as naive when it is.
fn note_naive(cols: &HashMap<String, String>, table: &str, column: String, naive: &mut Vec<String>) -> bool {
    let is_naive = cols.get(&column).is_some_and(|t| t == "timestamp without time zone");
    if is_naive {
        naive.push(format!("{table}.{column}"));
    }
    is_naive
}

/// The jwt plugin's `jwks` table, if it exists with `id` and `publicKey`.
async fn detect_jwks(db: &Db, style: NamingStyle, naive: &mut Vec<String>) -> anyhow::Result<Option<JwksSchema>> {
    let cols = columns(db, "jwks").await?;
    if !cols.contains_key("id") || !cols.contains_key(&style.column("publicKey")) {
        return Ok(None);
    }
    note_naive(&cols, "jwks", style.column("expiresAt"), naive);
    let found = JwksSchema {
        has_alg: cols.contains_key("alg"),
        has_crv: cols.contains_key("crv"),
        has_expires_at: cols.contains_key(&style.column("expiresAt")),
    };
    tracing::info!("jwt plugin table `jwks` found: JWTs are verified against its keys unless JWKS_URL is set");
    Ok(Some(found))
}

const API_KEY_FIELDS: [&str; 12] = [
    "id",
    "key",
    "enabled",
    "expiresAt",
    "remaining",
    "refillInterval",
    "refillAmount",
    "lastRefillAt",
    "createdAt",
    "rateLimitEnabled",
    "rateLimitTimeWindow",
    "rateLimitMax",
];

/// The api-key plugin's `apikey` table, if it has the columns this service reads.
async fn detect_api_keys(db: &Db, style: NamingStyle, naive: &mut Vec<String>) -> anyhow::Result<Option<ApiKeySchema>> {
    let cols = columns(db, "apikey").await?;
    if cols.is_empty() {
        return Ok(None);
    }
    let user_field = if cols.contains_key(&style.column("referenceId")) {
        "referenceId"
    } else if cols.contains_key(&style.column("userId")) {
        "userId"
    } else {
        tracing::warn!("api-key plugin table `apikey` has neither referenceId nor userId: API keys are off");
        return Ok(None);
    };
    let missing: Vec<String> = API_KEY_FIELDS
        .iter()
        .map(|f| style.column(f))
        .filter(|c| !cols.contains_key(c))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(missing = %missing.join(", "), "api-key plugin table `apikey` incomplete: API keys are off");
        return Ok(None);
    }
    for field in ["expiresAt", "createdAt"] {
        note_naive(&cols, "apikey", style.column(field), naive);
    }
    let naive_last_refill = note_naive(&cols, "apikey", style.column("lastRefillAt"), naive);
    tracing::info!(user_field, "api-key plugin table `apikey` found: API keys are accepted");
    Ok(Some(ApiKeySchema {
        user_field,
        naive_last_refill,
    }))
}

/// Column name → data type of `table`, empty when the table does not exist.
async fn columns(db: &Db, table: &str) -> anyhow::Result<HashMap<String, String>> {
    let stmt = match db.kind() {
        DbBackendKind::Postgres => Statement::from_sql_and_values(
            db.backend(),
            "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            [table.into()],
        ),
        DbBackendKind::Sqlite => Statement::from_sql_and_values(
            db.backend(),
            "SELECT name, type FROM pragma_table_info(?)",
            [table.into()],
        ),
    };
    let rows = db
        .conn()
        .query_all_raw(stmt)
        .await
        .with_context(|| format!("could not read the columns of better-auth's `{table}` table"))?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get::<String>("", "name")?,
                row.try_get::<String>("", "type")?.to_lowercase(),
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .context("unexpected catalogue row")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_fields_map_to_snake_columns() {
        assert_eq!(NamingStyle::SnakeCase.column("emailVerified"), "email_verified");
        assert_eq!(NamingStyle::SnakeCase.column("banExpires"), "ban_expires");
        assert_eq!(NamingStyle::SnakeCase.column("token"), "token");
        assert_eq!(NamingStyle::CamelCase.column("userId"), "userId");
    }

    #[test]
    fn naive_timestamps_are_read_as_utc_in_the_lookup() {
        let schema = BetterAuthSchema {
            style: NamingStyle::SnakeCase,
            has_ban_columns: true,
            naive_timestamps: vec!["session.expires_at".into(), "user.ban_expires".into()],
            organizations: None,
            jwks: None,
            api_keys: None,
            uuid_user_ids: false,
            has_session_table: true,
            backend: DbBackendKind::Postgres,
        };
        let sql = schema.session_lookup_sql();
        assert!(
            sql.contains("(s.\"expires_at\" AT TIME ZONE 'UTC') AS expires_at"),
            "{sql}"
        );
        assert!(
            sql.contains("(u.\"ban_expires\" AT TIME ZONE 'UTC') AS ban_expires"),
            "{sql}"
        );
        assert!(sql.contains("u.\"created_at\" AS created_at"), "{sql}");
        assert!(sql.contains("s.\"user_id\""), "{sql}");
        assert!(sql.ends_with("s.\"token\" = $1"), "{sql}");
    }
}
