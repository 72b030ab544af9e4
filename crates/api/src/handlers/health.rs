//! `GET /health`: is the service and each of its dependencies answering?
//!
//! Probes run concurrently, each bounded by [`PROBE_TIMEOUT`], on every call
//! (never cached), so a dead dependency shows within a second.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use futures_util::future::join_all;
use serde::Serialize;

use crate::state::AppState;

/// Bound on each dependency check.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Health of the service and each dependency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    database: &'static str,
    redis: &'static str,
    version: &'static str,
}

/// `GET /health`: 200 when every configured dependency answers, 503 naming the one that does not.
#[utoipa::path(get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "All configured dependencies answer", body = Health),
        (status = 503, description = "A dependency is down (named in the body)", body = Health),
    ))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let checks = state.probes.iter().map(|probe| async move {
        let ok = matches!(tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await, Ok(Ok(())));
        if !ok {
            tracing::warn!(dependency = probe.name(), "health check failed");
        }
        (probe.name(), ok)
    });
    let results = join_all(checks).await;
    let status_of = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, ok)| if *ok { "ok" } else { "error" })
    };
    let database = status_of("database").unwrap_or("error");
    let redis = status_of("redis").unwrap_or(if state.redis_configured { "error" } else { "disabled" });
    let healthy = results.iter().all(|(_, ok)| *ok);
    let body = Health {
        status: if healthy { "healthy" } else { "unhealthy" },
        database,
        redis,
        version: env!("CARGO_PKG_VERSION"),
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}
