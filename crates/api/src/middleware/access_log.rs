//! One log line per request, through tracing-actix-web.
//!
//! The root span carries the request id, so anything a handler logs can be
//! tied to its request; when the request ends, one `request` event records
//! method, route (the template, not the raw path: ids stay out of metrics-like
//! fields), path, status, latency, client IP and — when authentication
//! succeeded — the user id. Never a cookie, token, `Authorization` value or body.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use super::client_ip::ClientIp;
use super::request_context::RequestId;
use crate::extract::current_user::AuthenticatedUserId;

#[derive(Clone, Copy)]
struct Started(Instant);

/// The root-span builder of `TracingLogger<AccessLog>`.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog;

impl RootSpanBuilder for AccessLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let span = tracing::info_span!("request", request_id = %request_id, method = %request.method());
        let mut extensions = request.extensions_mut();
        extensions.insert(Started(Instant::now()));
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let Ok(response) = outcome else { return };
        let request = response.request();
        let extensions = request.extensions();
        let latency_ms = extensions
            .get::<Started>()
            .map_or(0.0, |s| s.0.elapsed().as_secs_f64() * 1000.0);
        let client_ip = extensions.get::<ClientIp>().map_or("", |c| c.0.as_str());
        let user_id = extensions.get::<AuthenticatedUserId>().map(|u| u.0.as_str());
        let request_id = extensions.get::<RequestId>().map_or("", RequestId::as_str);
        let status = response.status().as_u16();
        span.in_scope(|| {
            tracing::info!(
                target: "access",
                request_id,
                method = %request.method(),
                route = request.match_pattern().as_deref().unwrap_or("-"),
                path = request.path(),
                status,
                latency_ms,
                client_ip,
                user_id,
                "request"
            );
        });
    }
}
