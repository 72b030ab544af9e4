//! Whose data a request acts on: the caller's own (personal scope) or an
//! organization's they are a member of, and what they may do there.
//!
//! - Personal scope: records (of any resource) with no organization whose
//!   owner is the caller.
//! - Organization scope: every member reads every record of the organization
//!   and may create; changing or deleting a record is for its creator and for
//!   members whose role list (better-auth stores several, comma-separated:
//!   `"admin,member"`) has an entry that is exactly `owner` or `admin`.

use serde::{Deserialize, Serialize};

use crate::auth::api_key::Permissions;
use crate::error::{Error, Forbidden};
use crate::user::User;

/// Longest organization id accepted from a client (`X-Organization-Id`).
pub const ORGANIZATION_ID_MAX: usize = 255;

/// An organization id as a client may give it: 1–255 characters, none of
/// them a control character. Anything else is refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrganizationId(String);

impl OrganizationId {
    /// Validates a client-supplied id.
    ///
    /// # Errors
    /// A short reason when it is empty, longer than 255 characters, or holds
    /// a control character.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("is empty");
        }
        if raw.chars().count() > ORGANIZATION_ID_MAX {
            return Err("is longer than 255 characters");
        }
        if raw.chars().any(char::is_control) {
            return Err("contains a control character");
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A member's role list as better-auth stores it (`"admin,member"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Roles(String);

impl Roles {
    /// The stored role string.
    pub fn new(stored: impl Into<String>) -> Self {
        Self(stored.into())
    }

    /// Whether an entry is exactly `role` (so `superadmin` is not `admin`).
    pub fn has(&self, role: &str) -> bool {
        self.0.split(',').any(|entry| entry == role)
    }

    /// Owners and admins may change and delete any record of the
    /// organization (any resource's); other members only their own.
    pub fn manages_all_records(&self) -> bool {
        self.has("owner") || self.has("admin")
    }

    /// The stored string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The scope a request acts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The caller's own records.
    Personal,
    /// An organization the caller is a member of, with their roles there.
    Organization {
        /// The organization.
        id: OrganizationId,
        /// The caller's roles in it.
        roles: Roles,
    },
}

/// Whose records a storage read or write may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Records with no organization owned by this user.
    User(String),
    /// Records of this organization.
    Organization(String),
}

/// A signed-in user acting in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who is calling.
    pub user: User,
    /// Where.
    pub scope: Scope,
    /// An API key's permissions; `None`: the user's full rights.
    pub permissions: Option<Permissions>,
}

impl Caller {
    /// The user in personal scope.
    pub fn personal(user: User) -> Self {
        Self {
            user,
            scope: Scope::Personal,
            permissions: None,
        }
    }

    /// Whether the credential allows `action` on `resource` (API keys list
    /// what they may do; every other credential has the user's full rights).
    pub fn may(&self, resource: &str, action: &str) -> bool {
        self.permissions.as_ref().is_none_or(|p| p.allows(resource, action))
    }

    /// [`Caller::may`] as a result: [`Error::Forbidden`]
    /// (`MissingPermission`) when the credential does not allow it.
    ///
    /// # Errors
    /// As said.
    pub fn permit(&self, resource: &str, action: &str) -> Result<(), Error> {
        if self.may(resource, action) {
            Ok(())
        } else {
            Err(Error::Forbidden(Forbidden::MissingPermission))
        }
    }

    /// What storage may touch for this caller.
    pub fn owner(&self) -> Owner {
        match &self.scope {
            Scope::Personal => Owner::User(self.user.id.clone()),
            Scope::Organization { id, .. } => Owner::Organization(id.as_str().to_owned()),
        }
    }

    /// The organization of the scope, if any.
    pub fn organization_id(&self) -> Option<&OrganizationId> {
        match &self.scope {
            Scope::Personal => None,
            Scope::Organization { id, .. } => Some(id),
        }
    }

    /// A name for everything this scope reads (cache namespaces, cursor and
    /// idempotency bindings): `u:<user id>` or `o:<organization id>`. The
    /// prefixes keep a user and an organization with the same id apart.
    pub fn namespace(&self) -> String {
        match &self.scope {
            Scope::Personal => format!("u:{}", self.user.id),
            Scope::Organization { id, .. } => format!("o:{id}"),
        }
    }

    /// Whether the caller may change or delete a record created by
    /// `creator_id` that is visible in this scope.
    pub fn may_change(&self, creator_id: &str) -> bool {
        match &self.scope {
            Scope::Personal => creator_id == self.user.id,
            Scope::Organization { roles, .. } => creator_id == self.user.id || roles.manages_all_records(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

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

    fn member(id: &str, roles: &str) -> Caller {
        Caller {
            user: user(id),
            scope: Scope::Organization {
                id: OrganizationId::parse("org").unwrap(),
                roles: Roles::new(roles),
            },
            permissions: None,
        }
    }

    #[test]
    fn roles_are_compared_entry_by_entry_and_exactly() {
        assert!(Roles::new("admin,member").manages_all_records());
        assert!(Roles::new("member,owner").manages_all_records());
        assert!(Roles::new("owner").manages_all_records());
        assert!(!Roles::new("member").manages_all_records());
        assert!(!Roles::new("superadmin").manages_all_records());
        assert!(!Roles::new("admins,co-owner").manages_all_records());
        assert!(!Roles::new("").manages_all_records());
    }

    #[test]
    fn members_change_their_own_items_and_managers_any() {
        assert!(member("m", "member").may_change("m"));
        assert!(!member("m", "member").may_change("other"));
        assert!(member("a", "admin").may_change("other"));
        assert!(member("o", "member,owner").may_change("other"));
        assert!(!member("s", "superadmin").may_change("other"));
        assert!(Caller::personal(user("p")).may_change("p"));
        assert!(!Caller::personal(user("p")).may_change("q"));
    }

    #[test]
    fn scopes_have_distinct_namespaces_and_owners() {
        let personal = Caller::personal(user("org"));
        let organization = member("u", "member");
        assert_ne!(personal.namespace(), organization.namespace());
        assert_eq!(personal.owner(), Owner::User("org".into()));
        assert_eq!(organization.owner(), Owner::Organization("org".into()));
    }

    #[test]
    fn organization_ids_from_clients_are_bounded_and_printable() {
        assert!(OrganizationId::parse("org_123").is_ok());
        assert!(OrganizationId::parse(&"é".repeat(255)).is_ok());
        assert_eq!(OrganizationId::parse(""), Err("is empty"));
        assert_eq!(
            OrganizationId::parse(&"a".repeat(256)),
            Err("is longer than 255 characters")
        );
        assert_eq!(OrganizationId::parse("a\tb"), Err("contains a control character"));
    }
}
