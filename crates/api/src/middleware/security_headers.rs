//! Security headers on every answer, errors included.
//!
//! - `Content-Security-Policy`: nothing may load for API answers; the docs
//!   pages (Swagger UI and ReDoc, every asset served from this binary) may
//!   load from this origin only. Inline styles stay allowed (both renderers
//!   style through `style` attributes) and ReDoc's search runs in a `blob:`
//!   worker; scripts are `'self'` alone.
//! - `Strict-Transport-Security` only in production: in development the
//!   server speaks plain HTTP on localhost and HSTS would pin browsers to HTTPS.
//! - `X-XSS-Protection: 0`: the legacy XSS auditor is disabled as current
//!   guidance recommends (it could be abused to blank pages); CSP does the job.
//! - `Cache-Control: no-store` on `/api/*`: those answers are per-user.
//!
//! All values are static: nothing is allocated per request.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::state::AppState;

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

use crate::headers::{PERMISSIONS_POLICY, X_XSS_PROTECTION as XSS};

fn is_docs(path: &str) -> bool {
    path.starts_with("/docs") || path == "/redoc" || path.starts_with("/redoc/")
}

/// The middleware function.
///
/// # Errors
/// Only what inner services return as `Err`.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let production = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.security.production);
    let mut response = next.call(req).await?;
    let path = response.request().path();
    let csp = if is_docs(path) { DOCS_CSP } else { API_CSP };
    let api = path.starts_with("/api/");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(XSS.clone(), HeaderValue::from_static("0"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        PERMISSIONS_POLICY.clone(),
        HeaderValue::from_static("accelerometer=(), camera=(), geolocation=(), microphone=(), payment=(), usb=()"),
    );
    if production {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}
