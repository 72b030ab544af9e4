//! The signed-in person, as better-auth stores them. Read-only here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A better-auth user. Its id is better-auth's (a string, not necessarily a UUID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// better-auth's user id.
    pub id: String,
    /// The user's email address.
    pub email: String,
    /// The display name.
    pub name: String,
    /// Whether the email address was verified.
    pub email_verified: bool,
    /// An avatar URL, if any.
    pub image: Option<String>,
    /// When better-auth created the user.
    pub created_at: DateTime<Utc>,
    /// When better-auth last updated the user.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
impl User {
    /// The user the domain's unit tests sign in as: `user-1`, Ada, verified,
    /// created and updated `at`.
    pub(crate) fn ada(at: DateTime<Utc>) -> Self {
        Self {
            id: "user-1".into(),
            email: "ada@example.com".into(),
            name: "Ada".into(),
            email_verified: true,
            image: None,
            created_at: at,
            updated_at: at,
        }
    }
}
