//! OpenAPI 3.1, generated from the handlers' annotations (utoipa), and the
//! pages that show it: `/openapi.json`, `/docs` (Swagger UI, every asset
//! served from this binary so it renders on closed networks) and `/redoc`
//! (ReDoc's standalone bundle, embedded at build time by `build.rs`; nothing
//! comes from a CDN, so the docs CSP is `'self'`). Mounted only outside
//! production.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::docs_contract::Contract;
use crate::handlers::{health, items, organizations, users};

/// The envelope's schema, as the OpenAPI document names it. The types are
/// the ones [`crate::error`] serializes, so the document cannot drift.
pub type ErrorResponse = crate::error::Envelope<'static>;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "cookieAuth",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "better-auth.session_token",
                "better-auth's signed session cookie (`<token>.<signature>`); `__Secure-` prefixed over HTTPS",
            ))),
        );
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "better-auth bearer plugin: the signed value, or the bare token unless signatures are required",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "jwtAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "better-auth jwt plugin: a token from /api/auth/token (or the set-auth-jwt header), verified against its JWKS; valid until its exp",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "better-auth api-key plugin: the raw key (header name: API_KEY_HEADER); its permissions, rate limit and remaining uses apply",
            ))),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "SaaS Starter API", description = "Authenticated REST API trusting better-auth sessions."),
    paths(health::health, health::live, health::ready, users::me, organizations::list, items::list, items::create, items::get, items::update, items::delete),
    components(schemas(ErrorResponse, crate::error::EnvelopeBody, crate::error::Details, domain::validation::FieldError)),
    modifiers(&Security),
    tags(
        (name = "health", description = "Liveness of the service and its dependencies"),
        (name = "users", description = "The signed-in user"),
        (name = "organizations", description = "The caller's better-auth organizations"),
        (name = "items", description = "The items of the caller's scope: personal, or an organization's (X-Organization-Id, else the session's active organization)"),
    )
)]
pub struct ApiDoc;

/// The ReDoc page: its one script is the embedded bundle, at a path that
/// names its version so browsers may keep it for good.
#[cfg(redoc_bundled)]
const REDOC_PAGE: &str = concat!(
    r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>SaaS Starter API — ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/redoc/redoc-"#,
    env!("REDOC_VERSION"),
    r#".standalone.js"></script></body>
</html>"#
);

/// Built without npm: say so rather than load ReDoc from a CDN.
#[cfg(not(redoc_bundled))]
const REDOC_PAGE: &str = concat!(
    r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>SaaS Starter API — ReDoc</title></head>
<body><h1>ReDoc is not in this build</h1>
<p>ReDoc "#,
    env!("REDOC_VERSION"),
    r#" is embedded at build time from the npm registry, and npm was not available
when this binary was built. Install npm (or set <code>REDOC_BUNDLE</code> to a copy of
<code>redoc.standalone.js</code>) and rebuild. Meanwhile the same document is on
<a href="/docs/">Swagger UI</a> and at <a href="/openapi.json">/openapi.json</a>.</p></body>
</html>"#
);

#[cfg(redoc_bundled)]
static REDOC_BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/redoc.standalone.js"));

/// Path of the embedded bundle (versioned, so it is cached as immutable).
#[cfg(redoc_bundled)]
const REDOC_SCRIPT_PATH: &str = concat!("/redoc/redoc-", env!("REDOC_VERSION"), ".standalone.js");

async fn redoc() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(REDOC_PAGE)
}

#[cfg(redoc_bundled)]
async fn redoc_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(REDOC_BUNDLE)
}

async fn docs_redirect() -> HttpResponse {
    // Swagger UI's page loads its assets by relative URL: it must live at `/docs/`.
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// The OpenAPI document as pretty JSON (what `saas-api openapi` prints and
/// `/openapi.json` serves).
///
/// # Errors
/// When serialization fails (it does not for this document).
pub fn openapi_json() -> Result<String, serde_json::Error> {
    document().to_pretty_json()
}

/// The whole document: [`ApiDoc`] and every registered resource's paths
/// (`crate::resources::Docs`), with what [`Contract`] says of every operation.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.merge(crate::resources::Docs::openapi());
    // After the merge, so every resource's operations get it.
    Contract.modify(&mut document);
    document
}

/// Mounts `/openapi.json`, `/docs` and `/redoc` (with ReDoc's script when
/// the build embedded it).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/docs").route(web::get().to(docs_redirect)))
        .service(web::resource("/redoc").route(web::get().to(redoc)));
    #[cfg(redoc_bundled)]
    cfg.service(web::resource(REDOC_SCRIPT_PATH).route(web::get().to(redoc_script)));
    cfg.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", document()));
}
