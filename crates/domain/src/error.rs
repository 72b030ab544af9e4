//! The domain's one error type. The HTTP layer maps each variant to a status;
//! adapters translate their storage errors into it.

use crate::validation::FieldErrors;

/// Why a request was refused as unauthenticated. Logged, never returned to the
/// client: every variant answers the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No session cookie and no bearer token.
    Missing,
    /// The credential is not `<token>.<signature>`, or the token is not 32 letters/digits.
    Malformed,
    /// The HMAC signature does not match any configured secret.
    BadSignature,
    /// A bare (unsigned) bearer token while signatures are required.
    UnsignedBearer,
    /// No session has this token.
    UnknownSession,
    /// The session's `expiresAt` is in the past.
    Expired,
    /// The user is banned (admin plugin) and the ban has not expired.
    Banned,
}

impl AuthFailure {
    /// A short, stable reason for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing credential",
            Self::Malformed => "malformed credential",
            Self::BadSignature => "bad signature",
            Self::UnsignedBearer => "unsigned bearer token refused",
            Self::UnknownSession => "unknown session",
            Self::Expired => "expired session",
            Self::Banned => "banned user",
        }
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a signed-in caller was refused (403). The message is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// The organization asked for (or the session's active one) is unknown,
    /// or the caller is not a member of it.
    NotAMember,
    /// In an organization, only an item's creator, the organization's
    /// owners and its admins may change or delete it.
    NotAllowedToChange,
}

impl Forbidden {
    /// The message the client gets.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAMember => "not a member of this organization",
            Self::NotAllowedToChange => "only the item's creator or an organization owner or admin may change it",
        }
    }
}

/// Everything a domain operation or a port can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input broke one or more rules; each field error says which.
    #[error("validation failed: {0}")]
    Validation(FieldErrors),
    /// The resource does not exist or belongs to someone else; the two are
    /// deliberately indistinguishable.
    #[error("not found")]
    NotFound,
    /// The client's precondition on the resource's current state (HTTP
    /// `If-Match`) does not hold; nothing was changed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The caller is signed in but may not do this.
    #[error("forbidden: {}", .0.as_str())]
    Forbidden(Forbidden),
    /// The caller is not signed in (the reason is for logs only).
    #[error("unauthenticated: {0}")]
    Unauthenticated(AuthFailure),
    /// A dependency (database, cache) is unreachable or timed out; retrying later may work.
    #[error("dependency unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug or an unexpected storage answer.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Self {
        Self::Validation(errors)
    }
}
