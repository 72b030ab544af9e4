//! What every handler can reach: the domain services and the health probes.

use std::sync::Arc;

use domain::auth::AuthService;
use domain::health::DependencyProbe;
use domain::item::ItemService;

/// Names of the cookies better-auth sets, derived once from the prefix.
#[derive(Debug, Clone)]
pub struct CookieNames {
    /// `__Secure-<prefix>.session_token` (set over HTTPS).
    pub secure: String,
    /// `<prefix>.session_token`.
    pub plain: String,
}

impl CookieNames {
    /// Names for better-auth's `advanced.cookiePrefix` (default `better-auth`).
    pub fn new(prefix: &str) -> Self {
        Self {
            secure: format!("__Secure-{prefix}.session_token"),
            plain: format!("{prefix}.session_token"),
        }
    }
}

/// Shared, immutable application state.
pub struct AppState {
    /// Session validation.
    pub auth: AuthService,
    /// Item use cases.
    pub items: ItemService,
    /// Dependencies `/health` checks; a configured-off dependency is absent.
    pub probes: Vec<Arc<dyn DependencyProbe>>,
    /// Whether Redis is configured (reported as `disabled` when not).
    pub redis_configured: bool,
    /// Session cookie names.
    pub cookies: CookieNames,
}
