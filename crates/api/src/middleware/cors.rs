//! CORS for the browser frontend: only the `FRONTEND_URL` origins, with
//! credentials (cookies). Requests from any other origin get no
//! `Access-Control-Allow-*` headers, so the browser withholds the answer; they
//! are not refused here, since CORS protects readers, not the server.

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName};

use crate::headers;

/// The CORS middleware for `origins` (exact, as the browser serializes them),
/// allowing every request header the service reads, `api_key` (the
/// configured API-key header) included, and exposing every response header a
/// client relies on: both lists come from [`crate::headers`].
pub fn cors(origins: &[String], api_key: &HeaderName) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers(headers::allowed_request_headers(api_key))
        .expose_headers(headers::exposed())
        .supports_credentials()
        .block_on_origin_mismatch(false)
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// actix-cors adds `Access-Control-Allow-Credentials` and
/// `Access-Control-Expose-Headers` to every answer, even one for an origin it
/// did not allow. Mounted just outside [`cors`], this drops every
/// `Access-Control-*` header from answers that carry no
/// `Access-Control-Allow-Origin`, so a foreign origin learns nothing.
///
/// # Errors
/// Only what inner services return as `Err`.
pub async fn strip_unmatched(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        for name in [
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            headers.remove(name);
        }
    }
    Ok(response)
}
