//! The application factory: routes, extractor limits and middleware, built
//! once per worker from the shared state.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{NormalizePath, from_fn};
use actix_web::{App, web};

use crate::handlers::fallback::{method_not_allowed, not_found};
use crate::handlers::{health, items, users};
use crate::middleware::request_context::request_context;
use crate::state::AppState;

/// Builds the app. `max_request_size` bounds every body actually read.
pub fn build(
    state: web::Data<AppState>,
    max_request_size: usize,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(max_request_size))
        .service(
            web::resource("/health")
                .route(web::get().to(health::health))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::scope("/api/v1")
                .service(
                    web::resource("/users/me")
                        .route(web::get().to(users::me))
                        .default_service(method_not_allowed("GET")),
                )
                .service(
                    web::resource("/items")
                        .route(web::get().to(items::list))
                        .route(web::post().to(items::create))
                        .default_service(method_not_allowed("GET, POST")),
                )
                .service(
                    web::resource("/items/{id}")
                        .route(web::get().to(items::get))
                        .route(web::patch().to(items::update))
                        .route(web::delete().to(items::delete))
                        .default_service(method_not_allowed("GET, PATCH, DELETE")),
                ),
        )
        .default_service(web::to(not_found))
        // Sees every answer, including the framework's own errors.
        .wrap(from_fn(request_context))
        // Outermost, because rewriting the path needs the only reference to
        // the request: trailing slashes (`/api/v1/items/`) reach the same routes.
        .wrap(NormalizePath::trim())
}
