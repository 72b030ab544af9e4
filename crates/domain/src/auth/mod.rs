//! Authentication by better-auth session: credential parsing and signature
//! checks (`token`), the ports to the session store and cache (`port`), and the
//! policy that ties them together (`service`).

pub mod api_key;
pub mod jwt;
pub mod port;
pub mod service;
pub mod token;

pub use port::{
    Authenticated, CachedSession, CredentialKind, SessionCache, SessionRecord, SessionRevocation, SessionStore,
    UserRecord,
};
pub use service::{AuthService, AuthSettings, Credential};
pub use token::{SessionToken, SignatureVerifier, TokenHash};
