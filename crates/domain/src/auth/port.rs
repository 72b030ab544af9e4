//! Ports the authentication service needs from the outside world.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::token::{SessionToken, TokenHash};
use crate::error::Error;
use crate::user::User;

/// A better-auth session row joined with its user, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's owner.
    pub user: User,
    /// When the session stops being valid.
    pub expires_at: DateTime<Utc>,
    /// The admin plugin's `banned` flag (false when the column does not exist).
    pub banned: bool,
    /// The admin plugin's `banExpires` (a ban without it is permanent).
    pub ban_expires: Option<DateTime<Utc>>,
    /// The organization plugin's `activeOrganizationId` (`None` without the plugin).
    pub active_organization_id: Option<String>,
    /// Where the session was found, and what that storage says about revocation.
    pub revocation: SessionRevocation,
}

/// What better-auth's storage says about a session beyond its own fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionRevocation {
    /// A database row: deleting it is how better-auth revokes, so a row that
    /// exists is not revoked.
    #[default]
    Row,
    /// A secondary-storage value: better-auth revokes every session of the
    /// user created before `<prefix>revoked-sessions-before-<userId>`.
    SecondaryStorage {
        /// The session's `createdAt`.
        created_at: DateTime<Utc>,
        /// The user's `revoked-sessions-before` mark, when set.
        revoked_before: Option<DateTime<Utc>>,
    },
}

impl SessionRevocation {
    /// Whether better-auth considers the session revoked (its
    /// `isRevokedSession`: created strictly before the mark).
    pub fn revoked(self) -> bool {
        match self {
            Self::Row => false,
            Self::SecondaryStorage {
                created_at,
                revoked_before,
            } => revoked_before.is_some_and(|mark| created_at < mark),
        }
    }
}

/// What the session cache keeps: enough to answer without the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedSession {
    /// The session's owner.
    pub user: User,
    /// The session's own expiry; a cached entry is never trusted past it.
    pub expires_at: DateTime<Utc>,
    /// The session's active organization (organization plugin), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_organization_id: Option<String>,
    /// When the decision was made (checked against [`crate::revocation::Revocations`]);
    /// entries written before the field existed read as 1970, the safe side.
    #[serde(default)]
    pub cached_at: DateTime<Utc>,
}

/// Which kind of credential authenticated a request (logged, never the credential).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// better-auth's session cookie.
    Cookie,
    /// A session token as `Authorization: Bearer` (bearer plugin).
    Bearer,
    /// A JWT of the jwt plugin.
    Jwt,
    /// An API key of the api-key plugin.
    ApiKey,
}

impl CredentialKind {
    /// `cookie`, `bearer`, `jwt` or `api_key`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::Bearer => "bearer",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
        }
    }
}

/// Who a valid credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The signed-in user.
    pub user: User,
    /// The session's active organization, if any (organization plugin;
    /// sessions only).
    pub active_organization_id: Option<String>,
    /// How the caller authenticated.
    pub credential: CredentialKind,
    /// An API key's permissions (`None`: the user's full rights).
    pub permissions: Option<super::api_key::Permissions>,
}

/// A better-auth user with the admin plugin's ban, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// The admin plugin's `banned` flag (false when the column does not exist).
    pub banned: bool,
    /// The admin plugin's `banExpires`.
    pub ban_expires: Option<DateTime<Utc>>,
}

/// Read access to better-auth's `session` and `user` tables.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Finds the session whose token is `token`, joined with its user, in one
    /// query. Returns `Ok(None)` when no session has that token. Expired
    /// sessions may be returned or not; the caller checks expiry.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached in time,
    /// [`Error::Unexpected`] for any other failure.
    async fn find_by_token(&self, token: &SessionToken) -> Result<Option<SessionRecord>, Error>;

    /// The user with this id (for credentials that name a user, such as API
    /// keys), `Ok(None)` when there is none.
    ///
    /// # Errors
    /// As [`SessionStore::find_by_token`].
    async fn find_user(&self, user_id: &str) -> Result<Option<UserRecord>, Error>;
}

/// A cache of validated sessions keyed by the SHA-256 of their token.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionCache: Send + Sync {
    /// Returns the entry stored under `key`, if it has not expired.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the cache cannot be reached; callers treat
    /// that as a miss.
    async fn get(&self, key: &TokenHash) -> Result<Option<CachedSession>, Error>;

    /// Stores `session` under `key` for `ttl`, replacing any previous entry.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the cache cannot be reached; callers log it
    /// and carry on.
    async fn put(&self, key: &TokenHash, session: &CachedSession, ttl: Duration) -> Result<(), Error>;
}
