//! One log line per request, through tracing-actix-web.
//!
//! When the request ends, one `request` event records the request id,
//! method, route (the template, not the raw path: ids stay out of
//! metrics-like fields), path, status, latency, client IP and — when
//! authentication succeeded — the user id. Never a cookie, token,
//! `Authorization` value or body.
//!
//! No tracing span is opened per request: creating, entering and closing one
//! on every poll cost about 9 % of the throughput of a cheap request (see
//! README, Performance), and the JSON lines do not print span lists anyway.
//! A line that belongs to a request names it itself: every per-request event
//! carries `request_id` (the error lines in `request_context` do; a handler
//! that logs should take the [`RequestId`] from the request's extensions).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use super::client_ip::ClientIp;
use super::request_context::{HeadRequest, RequestId};
use crate::extract::current_user::AuthenticatedUserId;

#[derive(Clone, Copy)]
struct Started(Instant);

/// The root-span builder of `TracingLogger<AccessLog>`.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog;

impl RootSpanBuilder for AccessLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Started(Instant::now()));
        Span::none()
    }

    fn on_request_end<B: MessageBody>(_span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let Ok(response) = outcome else { return };
        let request = response.request();
        let extensions = request.extensions();
        // Whole microseconds, so the value prints as `1.234`, not `1.2340000000000002`.
        let latency_ms = extensions.get::<Started>().map_or(0.0, |s| {
            f64::from(u32::try_from(s.0.elapsed().as_micros()).unwrap_or(u32::MAX)) / 1000.0
        });
        let client_ip = extensions.get::<ClientIp>().map_or("", |c| c.0.as_str());
        let user_id = extensions.get::<AuthenticatedUserId>().map(|u| u.0.as_str());
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
            route = request.match_pattern().as_deref().unwrap_or("-"),
            path = request.path(),
            status,
            latency_ms,
            client_ip,
            user_id,
            "request"
        );
    }
}
