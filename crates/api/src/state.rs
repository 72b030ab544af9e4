//! What every handler can reach: the domain services and the health probes.

use std::sync::Arc;

use domain::auth::AuthService;
use domain::health::DependencyProbe;
use domain::item::ItemService;
use domain::rate_limit::RateLimitService;

/// Where better-auth's credentials arrive: the cookies it sets, derived once
/// from the prefix, and the api-key plugin's header.
#[derive(Debug, Clone)]
pub struct CookieNames {
    /// `__Secure-<prefix>.session_token` (set over HTTPS).
    pub secure: String,
    /// `<prefix>.session_token`.
    pub plain: String,
    /// The API-key header (`x-api-key`, `API_KEY_HEADER`).
    pub api_key: actix_web::http::header::HeaderName,
}

impl CookieNames {
    /// Names for better-auth's `advanced.cookiePrefix` (default `better-auth`).
    pub fn new(prefix: &str) -> Self {
        Self {
            secure: format!("__Secure-{prefix}.session_token"),
            plain: format!("{prefix}.session_token"),
            api_key: crate::headers::DEFAULT_API_KEY.clone(),
        }
    }

    /// With the API key in `header` instead of `x-api-key`.
    #[must_use]
    pub fn with_api_key_header(mut self, header: actix_web::http::header::HeaderName) -> Self {
        self.api_key = header;
        self
    }
}

/// Shared, immutable application state.
pub struct AppState {
    /// Session validation.
    pub auth: AuthService,
    /// Item use cases (their writes reported to the response cache, when on).
    pub items: ItemService,
    /// The services of the scoped resources besides items (see `crate::resources`).
    pub resources: crate::resource::Services,
    /// Rendered answers of every resource's reads (Redis; `None`: off).
    pub response_cache: Option<Arc<crate::response_cache::ResponseCache>>,
    /// Scopes and memberships (better-auth's organization plugin).
    pub organizations: domain::organization::OrganizationService,
    /// Whether better-auth's changes are being received (`None`: not
    /// listening by configuration: SQLite, or `AUTH_CHANGE_NOTIFY=false`).
    pub auth_changes: Option<Arc<infra::better_auth::auth_changes::ListenerStatus>>,
    /// Dependencies `/health` checks; a configured-off dependency is absent.
    pub probes: Vec<Arc<dyn DependencyProbe>>,
    /// Whether Redis is configured (reported as `disabled` when not).
    pub redis_configured: bool,
    /// Session cookie names.
    pub cookies: CookieNames,
    /// Per-client-IP limits on `/api/*`.
    pub rate_limit: RateLimitService,
    /// Origins, proxies and environment the security middleware needs.
    pub security: SecurityPolicy,
    /// `Idempotency-Key` claims and kept answers.
    pub idempotency: std::sync::Arc<domain::idempotency::IdempotencyService>,
    /// Signs and reads pagination cursors (`SECRET_KEY`).
    pub cursors: crate::cursor::CursorCodec,
    /// Readiness during shutdown.
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
}

/// What the security layer needs to know, derived once from the settings.
#[derive(Debug, Clone, Default)]
pub struct SecurityPolicy {
    /// `FRONTEND_URL` origins: CORS and CSRF allow these only.
    pub frontend_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Production mode (HSTS, no docs).
    pub production: bool,
    /// `DEBUG=true` in development: 5xx bodies carry their cause chain
    /// (`details.cause`). Never in production (start-up refuses it).
    pub expose_causes: bool,
}

impl SecurityPolicy {
    /// Whether `origin` (scheme://host[:port]) is one of the frontend's.
    pub fn is_trusted_origin(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.frontend_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}
