//! The stable, machine-readable `type` of every error answer.
//!
//! A client branches on `error.type`, never on `message` (which is for
//! people and may be reworded). Each type belongs to one status; some
//! statuses have several types (a 403 is `csrf_origin_rejected`,
//! `not_a_member` or `forbidden`). The table in `docs/api.md` lists them
//! all (a test keeps it complete), the OpenAPI document declares the enum,
//! and the TypeScript client exports it as a union type.

use actix_web::http::StatusCode;
use serde::Serialize;

/// What went wrong, in one snake_case word a program can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// 400: malformed JSON, a malformed header (`If-Match`, `Idempotency-Key`, `X-Organization-Id`) or query.
    BadRequest,
    /// 401: no credential, or one that is forged, expired, revoked or unknown.
    NotAuthenticated,
    /// 403: a write with a session cookie from an origin outside `FRONTEND_URL`.
    CsrfOriginRejected,
    /// 403: the organization asked for (or the session's active one) is not one the caller belongs to.
    NotAMember,
    /// 403: the caller's role or the API key's permissions do not allow this.
    Forbidden,
    /// 404: no such resource in the caller's scope, or no such route.
    NotFound,
    /// 405: the route exists but not with this method (see `Allow`).
    MethodNotAllowed,
    /// 408: the request body did not arrive in time.
    RequestTimeout,
    /// 409: a request with this `Idempotency-Key` is still being processed.
    IdempotencyInProgress,
    /// 409: the request conflicts with the resource's state.
    Conflict,
    /// 412: `If-Match` did not match the resource's current `ETag`; nothing changed.
    PreconditionFailed,
    /// 413: the body is larger than `MAX_REQUEST_SIZE`.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: one or more fields or parameters broke a rule (`details.errors` lists them).
    ValidationFailed,
    /// 422: this `Idempotency-Key` was already used with a different body.
    IdempotencyKeyReused,
    /// 429: the client's (or the API key's) rate limit is spent; see `Retry-After`.
    RateLimited,
    /// 429: the API key has no `remaining` uses left until its next refill.
    UsageExceeded,
    /// 500: a fault of the service; nothing internal is said.
    InternalError,
    /// 503: a dependency (database, Redis) is unreachable, or the service is shutting down.
    ServiceUnavailable,
}

impl ErrorType {
    /// Every type, in the order of `docs/api.md`.
    pub const ALL: [Self; 19] = [
        Self::BadRequest,
        Self::NotAuthenticated,
        Self::CsrfOriginRejected,
        Self::NotAMember,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::IdempotencyInProgress,
        Self::Conflict,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
        Self::IdempotencyKeyReused,
        Self::RateLimited,
        Self::UsageExceeded,
        Self::InternalError,
        Self::ServiceUnavailable,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::NotAuthenticated => "not_authenticated",
            Self::CsrfOriginRejected => "csrf_origin_rejected",
            Self::NotAMember => "not_a_member",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::IdempotencyInProgress => "idempotency_in_progress",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition_failed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::RateLimited => "rate_limited",
            Self::UsageExceeded => "usage_exceeded",
            Self::InternalError => "internal_error",
            Self::ServiceUnavailable => "service_unavailable",
        }
    }

    /// The status this type is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated => StatusCode::UNAUTHORIZED,
            Self::CsrfOriginRejected | Self::NotAMember | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::IdempotencyInProgress | Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ValidationFailed | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited | Self::UsageExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The general type of a status, for errors that say nothing more
    /// specific (the framework's own rejections). Unlisted 4xx are
    /// `bad_request`, unlisted 5xx `internal_error`.
    pub fn of_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::NotAuthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            409 => Self::Conflict,
            412 => Self::PreconditionFailed,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::ValidationFailed,
            429 => Self::RateLimited,
            503 => Self::ServiceUnavailable,
            500..=599 => Self::InternalError,
            _ => Self::BadRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_serialized_ones_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for kind in ErrorType::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert!(seen.insert(kind.as_str()), "{kind:?} twice");
        }
    }

    #[test]
    fn each_general_type_belongs_to_its_status() {
        for kind in ErrorType::ALL {
            let general = ErrorType::of_status(kind.status());
            assert_eq!(general.status(), kind.status(), "{kind:?}");
        }
        assert_eq!(ErrorType::of_status(StatusCode::IM_A_TEAPOT), ErrorType::BadRequest);
        assert_eq!(ErrorType::of_status(StatusCode::BAD_GATEWAY), ErrorType::InternalError);
    }

    #[test]
    fn the_table_in_docs_api_md_lists_every_type_with_its_status() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let table = std::fs::read_to_string(path).unwrap();
        for kind in ErrorType::ALL {
            let row = format!("| `{}` | {} |", kind.as_str(), kind.status().as_u16());
            assert!(table.contains(&row), "docs/api.md lacks the row starting {row:?}");
        }
    }
}
