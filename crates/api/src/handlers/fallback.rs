//! Answers for unknown routes and wrong methods, in the JSON envelope.

use actix_web::HttpResponse;

use crate::error::ApiError;

/// 404 for any path no route matches.
///
/// # Errors
/// Always.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

/// A handler answering 405 with `Allow: <allow>`.
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    actix_web::web::route().to(move || async move { Err::<HttpResponse, _>(ApiError::method_not_allowed(allow)) })
}
