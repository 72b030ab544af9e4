//! One log line per request.
//!
//! When the request ends, one `request` event records the request id,
//! method, route (the template, not the raw path: ids stay out of
//! metrics-like fields), path, status, latency, client IP and — when
//! authentication succeeded — the user id and the kind of credential
//! (`cookie`, `bearer`, `jwt`, `api_key`). Never a cookie, token, API key,
//! `Authorization` value or body.
//!
//! No tracing span is opened per request unless OpenTelemetry export is on
//! (`crate::otel`): creating, entering and closing one on every poll cost
//! about 9 % of the throughput of a cheap request (see docs/performance.md),
//! and the JSON lines do not print span lists anyway. With export on, the
//! request's span (a child of the caller's `traceparent`) wraps the request,
//! the answer carries `traceparent`, and the line carries `trace_id` and
//! `span_id`.
//! A line that belongs to a request names it itself: every per-request event
//! carries `request_id` (the error lines in `request_context` do; a handler
//! that logs should take the [`RequestId`] from the request's extensions).

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument as _;

use super::client_ip::ClientIp;
use super::request_context::{HeadRequest, RequestId};
use crate::extract::current_user::AuthenticatedUserId;
use crate::metrics::Route;

/// The middleware function: runs the request, then writes its line.
///
/// # Errors
/// What the inner service returns (errors are answers by then, see `request_context`).
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    if !infra::db::traces_exported() {
        let response = next.call(req).await?;
        write_line(&response, started.elapsed(), None);
        return Ok(response);
    }
    let parent = crate::otel::parent(req.headers());
    let sampled = crate::otel::sampled(&parent);
    let ids = crate::otel::TraceIds::new(&parent, sampled);
    let trace_state = crate::otel::trace_state(&parent);
    drop(parent);
    if !sampled {
        let mut response = next.call(req).await?;
        answer_trace(&mut response, &ids, trace_state);
        write_line(&response, started.elapsed(), Some((ids.trace_id(), ids.span_id())));
        return Ok(response);
    }
    let route = Route::of(req.request()).0;
    let span = tracing::info_span!(
        target: "otel",
        "request",
        // Joined rather than formatted: the formatting machinery cost more than the span.
        otel.name = [req.method().as_str(), " ", route.unwrap_or("unmatched")].concat().as_str(),
        otel.kind = "server",
        otel.trace_id = ids.trace(),
        otel.span_id = ids.span(),
        otel.parent_span_id = ids.parent(),
        otel.trace_state = trace_state.as_deref(),
        otel.status_code = tracing::field::Empty,
        http.request.method = req.method().as_str(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        saas.credential = tracing::field::Empty,
        saas.organization_scope = req.headers().contains_key("x-organization-id"),
    );
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        // A server span is in error for 5xx only (OpenTelemetry's HTTP conventions).
        span.record("otel.status_code", "error");
    }
    if let Some(user) = response.request().extensions().get::<AuthenticatedUserId>() {
        span.record("saas.credential", user.1.as_str());
    }
    answer_trace(&mut response, &ids, trace_state);
    write_line(&response, started.elapsed(), Some((ids.trace_id(), ids.span_id())));
    Ok(response)
}

/// `traceparent` (and the caller's `tracestate`) on the answer.
fn answer_trace<B>(response: &mut ServiceResponse<B>, ids: &crate::otel::TraceIds, trace_state: Option<String>) {
    let headers = response.headers_mut();
    headers.insert(crate::headers::TRACEPARENT.clone(), ids.header());
    if let Some(state) = trace_state.and_then(|s| actix_web::http::header::HeaderValue::try_from(s).ok()) {
        headers.insert(crate::headers::TRACESTATE.clone(), state);
    }
}

fn write_line<B>(response: &ServiceResponse<B>, elapsed: Duration, trace: Option<(&str, &str)>) {
    let request = response.request();
    let route = Route::of(request).0.unwrap_or("-");
    let extensions = request.extensions();
    // Whole microseconds, so the value prints as `1.234`, not `1.2340000000000002`.
    let latency_ms = f64::from(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)) / 1000.0;
    let client_ip = extensions.get::<ClientIp>().map_or("", |c| &*c.0);
    let authenticated = extensions.get::<AuthenticatedUserId>();
    let user_id = authenticated.map(|u| u.0.as_str());
    let credential = authenticated.map(|u| u.1.as_str());
    let request_id = extensions.get::<RequestId>().map_or("", RequestId::as_str);
    let status = response.status().as_u16();
    let method = if extensions.get::<HeadRequest>().is_some() {
        "HEAD"
    } else {
        request.method().as_str()
    };
    tracing::info!(
        target: "access",
        request_id,
        method,
        route,
        path = request.path(),
        status,
        latency_ms,
        client_ip,
        user_id,
        credential,
        trace_id = trace.map(|t| t.0),
        span_id = trace.map(|t| t.1),
        "request"
    );
}
