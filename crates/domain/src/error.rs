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
    /// The session's `expiresAt` (or the JWT's `exp`) is in the past, or a JWT has no `exp`.
    Expired,
    /// The user is banned (admin plugin) and the ban has not expired.
    Banned,
    /// A JWT whose `alg` is `none`, HMAC, unknown, or not its key's.
    UnsupportedAlgorithm,
    /// A JWT whose header names extensions to understand (`crit`, `b64`).
    UnsupportedHeader,
    /// A JWT without a `kid`, or whose `kid` is not a known key.
    UnknownKey,
    /// A JWT signed by a key past its `expiresAt` plus the grace period.
    RetiredKey,
    /// A JWT whose `nbf` is still in the future.
    NotYetValid,
    /// A JWT from another issuer.
    WrongIssuer,
    /// A JWT for another audience.
    WrongAudience,
    /// An API key that is unknown.
    UnknownApiKey,
    /// An API key that is disabled.
    DisabledApiKey,
    /// An API key past its `expiresAt`.
    ExpiredApiKey,
    /// An API key whose user no longer exists.
    UnknownUser,
    /// A session better-auth revoked in bulk (secondary storage's
    /// `revoked-sessions-before` mark is later than its creation).
    Revoked,
    /// A stored session or key that cannot be read (not better-auth's shape,
    /// or too large): refused, never trusted.
    Unreadable,
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
            Self::UnsupportedAlgorithm => "JWT algorithm refused",
            Self::UnsupportedHeader => "JWT header names an extension this service does not understand (crit, b64)",
            Self::UnknownKey => "JWT key unknown",
            Self::RetiredKey => "JWT key retired past its grace period",
            Self::NotYetValid => "JWT not yet valid",
            Self::WrongIssuer => "JWT issuer mismatch",
            Self::WrongAudience => "JWT audience mismatch",
            Self::UnknownApiKey => "unknown API key",
            Self::DisabledApiKey => "disabled API key",
            Self::ExpiredApiKey => "expired API key",
            Self::UnknownUser => "the credential's user does not exist",
            Self::Revoked => "session revoked",
            Self::Unreadable => "stored credential unreadable",
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
    /// In an organization, only a record's creator, the organization's
    /// owners and its admins may change or delete it (any resource).
    NotAllowedToChange,
    /// An API key whose permissions do not list this action.
    MissingPermission,
    /// An organization scope was asked for, but better-auth's organization
    /// plugin tables were not found at start-up. Told to the client as
    /// [`Self::NotAMember`]; the difference is for logs and development.
    OrganizationsNotSetUp,
}

impl Forbidden {
    /// The message the client gets.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAMember | Self::OrganizationsNotSetUp => "not a member of this organization",
            Self::NotAllowedToChange => "only the resource's creator or an organization owner or admin may change it",
            Self::MissingPermission => "the API key's permissions do not allow this",
        }
    }

    /// Why, in more words than the client gets in production: for logs and
    /// for `details.reason` in development.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotAMember => {
                "the caller is not a member of the organization asked for (X-Organization-Id) or of the session's active one, or it does not exist"
            }
            Self::OrganizationsNotSetUp => {
                "organization plugin tables not found: better-auth's organization and member tables did not exist when the service started"
            }
            Self::NotAllowedToChange => {
                "in an organization, only the resource's creator and members whose role includes owner or admin may change or delete it"
            }
            Self::MissingPermission => "the API key's permissions do not list this action on this resource",
        }
    }
}

/// Which limit a 429 is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Requests per window (per client IP, or an API key's own rate limit).
    Rate,
    /// An API key's `remaining` uses are spent until its next refill.
    Usage,
}

/// A limit a credential ran into (429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany {
    /// Which limit.
    pub kind: Limit,
    /// What the client is told (`usage exceeded`, `rate limit exceeded`).
    pub message: &'static str,
    /// When trying again may work.
    pub retry_after: Option<std::time::Duration>,
    /// The limit, for `RateLimit-Limit`.
    pub limit: Option<u32>,
    /// When the limit is whole again, for `RateLimit-Reset`.
    pub reset_after: Option<std::time::Duration>,
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
    /// The credential's own limit is used up (API keys: rate limit or `remaining`).
    #[error("too many requests: {}", .0.message)]
    TooManyRequests(TooMany),
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
