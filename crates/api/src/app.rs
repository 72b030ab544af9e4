//! The application factory: routes, extractor limits and middleware, built
//! once per worker from the shared state.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, web};

use crate::extract::BodyConfig;
use crate::handlers::fallback::{method_not_allowed, not_found};
use crate::handlers::{health, organizations, users};
use crate::metrics::{Metrics, record, scrape};
use crate::middleware::access_log::access_log;
use crate::middleware::catch_panic::catch_panic;
use crate::middleware::cors::{cors, strip_unmatched};
use crate::middleware::rate_limit::rate_limit;
use crate::middleware::request_context::request_context;
use crate::middleware::security_headers::security_headers;
use crate::state::AppState;

/// What the factory needs besides the state.
#[derive(Clone)]
pub struct AppOptions {
    /// Bound on every body read, in bytes and in time.
    pub body: BodyConfig,
    /// Request metrics (always recorded).
    pub metrics: web::Data<Metrics>,
    /// Serve `/metrics` on this listener (false when `METRICS_ADDR` moves it elsewhere, or disabled).
    pub serve_metrics: bool,
}

/// One resource of `/api/v1`, with what every API resource has: a panic in
/// any of its handlers answers 500 in the JSON envelope (`catch_panic`), any
/// other method 405 with `Allow: allow`. `routes` adds its routes (and its
/// `app_data`). Every API resource is made here, so none can forget either.
///
/// (The panic guard is mounted per resource rather than once on the scope:
/// it keeps a handle on the request, which actix allows only once routing
/// has filled in the path's parameters.)
pub fn api_resource(
    path: impl Into<String>,
    allow: &'static str,
    routes: impl FnOnce(actix_web::Resource) -> actix_web::Resource,
) -> impl actix_web::dev::HttpServiceFactory {
    routes(web::resource(path.into()))
        .default_service(method_not_allowed(allow))
        .wrap(from_fn(catch_panic))
}

/// Builds the app. Each resource also answers with a trailing slash
/// (`/api/v1/items/`): `request_context` drops it before routing, so every
/// route is one pattern and the static ones match without a regex.
pub fn build(
    state: web::Data<AppState>,
    options: AppOptions,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = cors(&state.security.frontend_origins, &state.cookies.api_key);
    let docs = !state.security.production;
    App::new()
        .app_data(state)
        .app_data(options.metrics)
        .app_data(web::PayloadConfig::new(options.body.max_bytes))
        .app_data(options.body)
        .service(
            web::resource("/health")
                .route(web::get().to(health::health))
                .default_service(method_not_allowed("GET, HEAD")),
        )
        .service(
            web::resource("/health/live")
                .route(web::get().to(health::live))
                .default_service(method_not_allowed("GET, HEAD")),
        )
        .service(
            web::resource("/health/ready")
                .route(web::get().to(health::ready))
                .default_service(method_not_allowed("GET, HEAD")),
        )
        .service(
            web::scope("/api/v1")
                .service(api_resource("/users/me", "GET, HEAD", |r| {
                    r.route(web::get().to(users::me))
                }))
                .service(api_resource("/organizations", "GET, HEAD", |r| {
                    r.route(web::get().to(organizations::list))
                }))
                // Scoped resources (`saas-api generate resource` adds its own here).
                .configure(crate::resources::routes),
        )
        .configure(|cfg| {
            if docs {
                crate::docs::configure(cfg);
            }
            if options.serve_metrics {
                cfg.service(web::resource("/metrics").route(web::get().to(scrape)));
            }
        })
        .default_service(web::to(not_found))
        // Innermost first: each `wrap` encloses everything above it.
        .wrap(from_fn(rate_limit))
        .wrap(cors)
        .wrap(from_fn(strip_unmatched))
        .wrap(from_fn(record))
        .wrap(from_fn(access_log))
        .wrap(from_fn(security_headers))
        // Outermost: sees every answer, including the framework's own errors.
        .wrap(from_fn(request_context))
}
