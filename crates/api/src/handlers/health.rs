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
    /// better-auth's secondary storage (`BETTER_AUTH_SECONDARY_STORAGE_URL`):
    /// `ok`, `error` (sessions cannot be validated: 503 for requests that
    /// need one), or `disabled` (sessions are read from the database).
    session_storage: &'static str,
    /// better-auth's changes: `listening` (honoured within a second),
    /// `reconnecting` (nothing cached before the loss is trusted meanwhile),
    /// or `disabled` (SQLite or `AUTH_CHANGE_NOTIFY=false`: `SESSION_CACHE_TTL` bounds them).
    auth_changes: &'static str,
    version: &'static str,
}

async fn check_all(state: &AppState) -> Vec<(&'static str, bool)> {
    let checks = state.probes.iter().map(|probe| async move {
        let failure = match tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("{:#}", anyhow::Error::from(error))),
            Err(_) => Some(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
        };
        if let Some(reason) = &failure {
            tracing::warn!(dependency = probe.name(), reason = %reason, "health check failed");
        }
        (probe.name(), failure.is_none())
    });
    join_all(checks).await
}

/// `GET /health/live`: the process is up and serving (no dependency is checked).
#[utoipa::path(get, path = "/health/live", tag = "health", operation_id = "getLiveness", responses((status = 200, description = "The process is alive")))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({"status": "alive"}))
}

/// `GET /health/ready`: whether this instance should receive traffic: 503
/// from the moment shutdown begins, or while the database (the one
/// dependency it cannot serve without) is down. A Redis outage does not make
/// an instance unready: it degrades to the database and in-process limits.
#[utoipa::path(get, path = "/health/ready", tag = "health", operation_id = "getReadiness", responses(
    (status = 200, description = "Ready for traffic"),
    (status = 503, description = "Shutting down, or the database is unreachable"),
))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (status, body) = if state.lifecycle.is_shutting_down() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "shutting_down"}),
        )
    } else {
        let results = check_all(&state).await;
        let database_ok = results.iter().any(|(name, ok)| *name == "database" && *ok);
        if database_ok {
            (StatusCode::OK, serde_json::json!({"status": "ready"}))
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "not_ready", "database": "error"}),
            )
        }
    };
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

/// `GET /health`: 200 when every configured dependency answers, 503 naming the one that does not.
#[utoipa::path(get, path = "/health", tag = "health", operation_id = "getHealth",
    responses(
        (status = 200, description = "All configured dependencies answer", body = Health),
        (status = 503, description = "A dependency is down (named in the body)", body = Health),
    ))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let results = check_all(&state).await;
    let status_of = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, ok)| if *ok { "ok" } else { "error" })
    };
    let database = status_of("database").unwrap_or("error");
    let redis = status_of("redis").unwrap_or(if state.redis_configured { "error" } else { "disabled" });
    let session_storage = status_of("session_storage").unwrap_or("disabled");
    let healthy = results.iter().all(|(_, ok)| *ok);
    let body = Health {
        status: if healthy { "healthy" } else { "unhealthy" },
        database,
        redis,
        session_storage,
        auth_changes: match &state.auth_changes {
            Some(status) if status.listening() => "listening",
            Some(_) => "reconnecting",
            None => "disabled",
        },
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
