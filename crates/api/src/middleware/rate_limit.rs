//! Per-client-IP rate limiting on `/api/*` (not `/health`, not the docs).
//!
//! Every `/api/*` answer carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (seconds until the budget is whole); a refused request is
//! a 429 in the JSON envelope with `Retry-After` (seconds). The decision is
//! `RateLimitService`'s: Redis-backed and shared when configured, in process
//! otherwise or when Redis fails.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use domain::rate_limit::RateDecision;

use super::client_ip::ClientIp;
use crate::error::ApiError;
use crate::state::AppState;

use crate::headers::{RATELIMIT_LIMIT as LIMIT, RATELIMIT_REMAINING as REMAINING, RATELIMIT_RESET as RESET};

fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn set_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    headers.insert(LIMIT.clone(), HeaderValue::from(decision.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(decision.remaining));
    headers.insert(RESET.clone(), HeaderValue::from(ceil_secs(decision.reset_after)));
}

fn limited(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The middleware function.
///
/// # Errors
/// Only what inner services return as `Err`.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .filter(|_| limited(req.path()))
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let decision = state.rate_limit.check(&ClientIp::of(req.request())).await;
    if !decision.allowed {
        let retry = ceil_secs(decision.retry_after).max(1);
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
            .with_header(RETRY_AFTER, HeaderValue::from(retry));
        let mut response = req.error_response(error);
        set_headers(response.headers_mut(), &decision);
        return Ok(response);
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    // A credential's own limit (an API key's) already set its headers on its 429.
    if !response.headers().contains_key(&LIMIT) {
        set_headers(response.headers_mut(), &decision);
    }
    Ok(response)
}
