//! better-auth's organization plugin, read-only: which organizations a user
//! belongs to, with which roles, and the scope a request acts in.
//!
//! Membership is cached (at most the session cache's TTL, so a removed
//! member loses access within that bound, like a signed-out session); a
//! "not a member" answer is cached for a few seconds only, so someone just
//! added is not kept out for long while a flood of unknown organization ids
//! still costs one lookup per id and caller. Without the plugin's tables,
//! every request is personal and asking for an organization is refused.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, Forbidden};
use crate::revocation::{Mark, Revocations};
use crate::scope::{Caller, OrganizationId, Roles, Scope};
use crate::user::User;

/// An organization, as the plugin stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its slug (unique in better-auth).
    pub slug: Option<String>,
    /// A logo URL.
    pub logo: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// One of a user's memberships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The organization.
    pub organization: Organization,
    /// The user's role list there.
    pub role: Roles,
}

/// What the membership cache keeps for a (user, organization) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedMembership {
    /// The roles, or `None`: not a member.
    pub roles: Option<Roles>,
    /// When the decision was made (see [`crate::revocation`]).
    #[serde(default)]
    pub cached_at: DateTime<Utc>,
}

/// Read access to the plugin's `member` and `organization` tables.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MembershipStore: Send + Sync {
    /// The user's roles in the organization, `None` when they are not a
    /// member (or the organization does not exist).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached.
    async fn roles(&self, user_id: &str, organization_id: &OrganizationId) -> Result<Option<Roles>, Error>;

    /// Every membership of the user, ordered by organization name.
    ///
    /// # Errors
    /// As [`MembershipStore::roles`].
    async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>, Error>;
}

/// A cache of membership answers, keyed by an opaque (user, organization) key.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MembershipCache: Send + Sync {
    /// The entry under `key`, if it has not expired.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the cache cannot be reached (a miss to callers).
    async fn get(&self, key: &str) -> Result<Option<CachedMembership>, Error>;

    /// Stores `entry` under `key` for `ttl`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the cache cannot be reached (logged, ignored).
    async fn put(&self, key: &str, entry: &CachedMembership, ttl: Duration) -> Result<(), Error>;
}

/// How long a "not a member" answer is reused at most.
pub const NOT_A_MEMBER_TTL: Duration = Duration::from_secs(5);

/// Resolves scopes and lists memberships.
pub struct OrganizationService {
    store: Option<Arc<dyn MembershipStore>>,
    cache: Arc<dyn MembershipCache>,
    ttl: Duration,
    cache_warnings: crate::log_throttle::Throttle,
    revocations: Arc<Revocations>,
    clock: Option<Arc<dyn Clock>>,
}

/// The cache key of a (user, organization) pair; the length prefix keeps
/// `("a:b", "c")` and `("a", "b:c")` apart.
fn membership_key(user_id: &str, organization: &OrganizationId) -> String {
    format!("{}:{user_id}:{organization}", user_id.len())
}

impl OrganizationService {
    /// With the plugin's tables (`store`), membership answers are cached in
    /// `cache` for at most `ttl`.
    pub fn new(store: Arc<dyn MembershipStore>, cache: Arc<dyn MembershipCache>, ttl: Duration) -> Self {
        Self {
            store: Some(store),
            cache,
            ttl,
            cache_warnings: crate::log_throttle::Throttle::default(),
            revocations: Arc::default(),
            clock: None,
        }
    }

    /// Trusts a cached membership only if no change concerning it, its
    /// organization or its user arrived since it was cached (`clock` dates
    /// the entries).
    #[must_use]
    pub fn with_revocations(mut self, revocations: Arc<Revocations>, clock: Arc<dyn Clock>) -> Self {
        self.revocations = revocations;
        self.clock = Some(clock);
        self
    }

    /// Without the plugin's tables: everything is personal.
    pub fn without_plugin(cache: Arc<dyn MembershipCache>) -> Self {
        Self {
            store: None,
            cache,
            ttl: Duration::ZERO,
            cache_warnings: crate::log_throttle::Throttle::default(),
            revocations: Arc::default(),
            clock: None,
        }
    }

    /// Whether the plugin's tables were found.
    pub fn enabled(&self) -> bool {
        self.store.is_some()
    }

    /// The scope of a request: the organization the client asked for, else
    /// the session's active one, else personal.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`NotAMember`) when the caller is not a member of
    /// the organization asked for or active (unknown ones included, and any
    /// organization when the plugin is not set up); storage errors.
    pub async fn caller(
        &self,
        user: User,
        requested: Option<OrganizationId>,
        active: Option<&str>,
    ) -> Result<Caller, Error> {
        let organization = match (requested, active) {
            (Some(requested), _) => requested,
            (None, Some(active)) => {
                OrganizationId::parse(active).map_err(|_| Error::Forbidden(Forbidden::NotAMember))?
            }
            (None, None) => return Ok(Caller::personal(user)),
        };
        if !self.enabled() {
            return Err(Error::Forbidden(Forbidden::OrganizationsNotSetUp));
        }
        let roles = self
            .roles(&user.id, &organization)
            .await?
            .ok_or(Error::Forbidden(Forbidden::NotAMember))?;
        Ok(Caller {
            user,
            scope: Scope::Organization {
                id: organization,
                roles,
            },
            permissions: None,
        })
    }

    async fn roles(&self, user_id: &str, organization: &OrganizationId) -> Result<Option<Roles>, Error> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let key = membership_key(user_id, organization);
        let subjects = [
            Mark::Member(organization.as_str(), user_id),
            Mark::Organization(organization.as_str()),
            Mark::User(user_id),
        ];
        match self.cache.get(&key).await {
            Ok(Some(hit)) if self.revocations.trusts(hit.cached_at, &subjects) => return Ok(hit.roles),
            Ok(Some(_)) => {}
            Ok(None) => {}
            Err(error) => self.warn(&error, "membership cache unavailable; asking the database"),
        }
        let roles = store.roles(user_id, organization).await?;
        let ttl = if roles.is_some() {
            self.ttl
        } else {
            self.ttl.min(NOT_A_MEMBER_TTL)
        };
        if !ttl.is_zero() {
            let entry = CachedMembership {
                roles: roles.clone(),
                cached_at: self.clock.as_ref().map_or_else(DateTime::default, |clock| clock.now()),
            };
            if let Err(error) = self.cache.put(&key, &entry, ttl).await {
                self.warn(&error, "could not cache a membership");
            }
        }
        Ok(roles)
    }

    fn warn(&self, error: &Error, message: &str) {
        if let Some(suppressed) = self.cache_warnings.admit() {
            tracing::warn!(error = %error, suppressed, "{message}");
        }
    }

    /// The user's memberships, ordered by organization name (none without
    /// the plugin). Not cached: it is read when a client lists them.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn memberships(&self, user: &User) -> Result<Vec<Membership>, Error> {
        match &self.store {
            Some(store) => store.memberships(&user.id).await,
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mockall::predicate::{always, eq};

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            email: format!("{id}@example.com"),
            name: id.into(),
            email_verified: true,
            image: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn org(id: &str) -> OrganizationId {
        OrganizationId::parse(id).unwrap()
    }

    fn empty_cache() -> MockMembershipCache {
        let mut cache = MockMembershipCache::new();
        cache.expect_get().returning(|_| Ok(None));
        cache.expect_put().returning(|_, _, _| Ok(()));
        cache
    }

    fn service(store: MockMembershipStore, cache: MockMembershipCache) -> OrganizationService {
        OrganizationService::new(Arc::new(store), Arc::new(cache), Duration::from_secs(300))
    }

    #[tokio::test]
    async fn no_header_and_no_active_organization_is_personal_without_a_lookup() {
        let mut store = MockMembershipStore::new();
        store.expect_roles().never();
        let caller = service(store, empty_cache())
            .caller(user("u"), None, None)
            .await
            .unwrap();
        assert_eq!(caller.scope, Scope::Personal);
    }

    #[tokio::test]
    async fn a_member_gets_the_organization_scope_with_their_roles() {
        let mut store = MockMembershipStore::new();
        store
            .expect_roles()
            .with(eq("u"), eq(org("acme")))
            .times(1)
            .returning(|_, _| Ok(Some(Roles::new("admin,member"))));
        let caller = service(store, empty_cache())
            .caller(user("u"), Some(org("acme")), Some("other"))
            .await
            .unwrap();
        assert!(
            caller.may_change("someone else"),
            "admin in acme: the header wins over the active one"
        );
        assert_eq!(caller.organization_id(), Some(&org("acme")));
    }

    #[tokio::test]
    async fn the_active_organization_is_used_without_a_header() {
        let mut store = MockMembershipStore::new();
        store
            .expect_roles()
            .with(eq("u"), eq(org("active")))
            .returning(|_, _| Ok(Some(Roles::new("member"))));
        let caller = service(store, empty_cache())
            .caller(user("u"), None, Some("active"))
            .await
            .unwrap();
        assert!(!caller.may_change("someone else"));
        assert!(caller.may_change("u"));
    }

    #[tokio::test]
    async fn a_non_member_or_a_left_active_organization_is_forbidden_never_personal() {
        let mut store = MockMembershipStore::new();
        store.expect_roles().returning(|_, _| Ok(None));
        let service = service(store, empty_cache());
        for (requested, active) in [(Some(org("x")), None), (None, Some("left"))] {
            let refused = service.caller(user("u"), requested, active).await.unwrap_err();
            assert!(
                matches!(refused, Error::Forbidden(Forbidden::NotAMember)),
                "{refused:?}"
            );
        }
    }

    #[tokio::test]
    async fn without_the_plugin_an_organization_is_refused() {
        let service = OrganizationService::without_plugin(Arc::new(empty_cache()));
        let refused = service.caller(user("u"), Some(org("x")), None).await.unwrap_err();
        assert!(matches!(refused, Error::Forbidden(Forbidden::OrganizationsNotSetUp)));
        assert_eq!(
            Forbidden::OrganizationsNotSetUp.as_str(),
            Forbidden::NotAMember.as_str(),
            "the client is told the same as for any other organization"
        );
        assert!(service.memberships(&user("u")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_cached_membership_is_used_and_answers_are_cached_for_their_bound() {
        let mut cache = MockMembershipCache::new();
        cache.expect_get().with(eq("1:u:hit")).returning(|_| {
            Ok(Some(CachedMembership {
                roles: Some(Roles::new("owner")),
                cached_at: DateTime::default(),
            }))
        });
        cache.expect_get().returning(|_| Ok(None));
        cache
            .expect_put()
            .with(eq("1:u:member"), always(), eq(Duration::from_secs(300)))
            .times(1)
            .returning(|_, _, _| Ok(()));
        cache
            .expect_put()
            .with(eq("1:u:stranger"), always(), eq(NOT_A_MEMBER_TTL))
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut store = MockMembershipStore::new();
        store
            .expect_roles()
            .with(always(), eq(org("member")))
            .times(1)
            .returning(|_, _| Ok(Some(Roles::new("member"))));
        store
            .expect_roles()
            .with(always(), eq(org("stranger")))
            .times(1)
            .returning(|_, _| Ok(None));
        let service = service(store, cache);
        assert!(service.caller(user("u"), Some(org("hit")), None).await.is_ok());
        assert!(service.caller(user("u"), Some(org("member")), None).await.is_ok());
        assert!(service.caller(user("u"), Some(org("stranger")), None).await.is_err());
    }

    #[tokio::test]
    async fn an_unreachable_cache_asks_the_database() {
        let mut cache = MockMembershipCache::new();
        cache
            .expect_get()
            .returning(|_| Err(Error::Unavailable(anyhow::anyhow!("down"))));
        cache
            .expect_put()
            .returning(|_, _, _| Err(Error::Unavailable(anyhow::anyhow!("down"))));
        let mut store = MockMembershipStore::new();
        store.expect_roles().returning(|_, _| Ok(Some(Roles::new("member"))));
        assert!(
            service(store, cache)
                .caller(user("u"), Some(org("o")), None)
                .await
                .is_ok()
        );
    }

    #[test]
    fn keys_cannot_be_confused() {
        assert_ne!(membership_key("a:b", &org("c")), membership_key("a", &org("b:c")));
    }
}
