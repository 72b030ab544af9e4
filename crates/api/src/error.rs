//! The one mapping from failures to HTTP: status, the JSON envelope, and what
//! gets logged.
//!
//! Every error answer has the same shape:
//! `{"error": {"code", "type", "message", "path", "request_id", "details"?}}`,
//! where `type` is a stable [`ErrorType`] a client can branch on. In
//! development a 401 or 403 also says why in `details.reason`.
//! Handlers return [`ApiError`]; the framework's own rejections (bad JSON,
//! bad query, payload too large, unknown route, wrong method) are turned into
//! the same envelope by [`crate::middleware::request_context`], which also
//! fills in `path` and `request_id`. 5xx bodies never carry internals in
//! production; the full cause chain is logged once.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain::validation::FieldErrors;
use serde::Serialize;

pub use crate::error_type::ErrorType;
use crate::headers;

/// An error on its way to becoming an HTTP answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: ErrorType,
    message: String,
    /// Why a 401/403 was answered: logged, and in development sent as `details.reason`.
    reason: Option<String>,
    details: Option<FieldErrors>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Close the connection after answering (the request body was not read).
    close: bool,
    /// The cause, for the log only.
    cause: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with a status and a client-facing message.
    /// Its type is the status's general one ([`ErrorType::of_status`]);
    /// [`Self::of_type`] names a more precise one.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            kind: ErrorType::of_status(status),
            message: message.into(),
            reason: None,
            details: None,
            headers: Vec::new(),
            close: false,
            cause: None,
        }
    }

    /// An error of type `kind`, answered with that type's status.
    pub fn of_type(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            ..Self::new(kind.status(), message)
        }
    }

    /// 422 with field details.
    pub fn validation(errors: FieldErrors) -> Self {
        Self {
            details: Some(errors),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Validation error")
        }
    }

    /// 404, the same for every missing or foreign resource.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found")
    }

    /// 401; the reason goes to the log (and, in development, to `details.reason`).
    pub fn unauthorized(reason: &str) -> Self {
        Self::of_type(ErrorType::NotAuthenticated, "Not authenticated").with_reason(reason)
    }

    /// 403 for a cross-site write with a session cookie (CSRF).
    pub fn csrf(reason: &str) -> Self {
        Self::of_type(ErrorType::CsrfOriginRejected, "Forbidden").with_reason(reason)
    }

    /// 429 for a credential's own limit, with `Retry-After` (whole seconds,
    /// rounded up) and, for a rate limit, the `RateLimit-*` headers.
    pub fn too_many(limit: domain::error::TooMany) -> Self {
        use actix_web::http::header::RETRY_AFTER;
        let seconds = |d: std::time::Duration| {
            let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            HeaderValue::from(whole)
        };
        let kind = match limit.kind {
            domain::error::Limit::Rate => ErrorType::RateLimited,
            domain::error::Limit::Usage => ErrorType::UsageExceeded,
        };
        let mut error = Self::of_type(kind, limit.message);
        if let Some(after) = limit.retry_after {
            error = error.with_header(RETRY_AFTER, seconds(after.max(std::time::Duration::from_secs(1))));
        }
        if let Some(max) = limit.limit {
            error = error
                .with_header(headers::RATELIMIT_LIMIT.clone(), HeaderValue::from(max))
                .with_header(headers::RATELIMIT_REMAINING.clone(), HeaderValue::from(0u32));
            if let Some(reset) = limit.reset_after {
                error = error.with_header(headers::RATELIMIT_RESET.clone(), seconds(reset));
            }
        }
        error
    }

    /// 405 with the `Allow` header.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            .with_header(actix_web::http::header::ALLOW, HeaderValue::from_static(allow))
    }

    /// 500 with nothing internal in the body.
    pub fn internal(cause: anyhow::Error) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").with_cause(cause)
    }

    /// 503: a dependency is down.
    pub fn unavailable(cause: anyhow::Error) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Service temporarily unavailable").with_cause(cause)
    }

    /// Names a more precise type of the same status.
    pub fn with_type(mut self, kind: ErrorType) -> Self {
        debug_assert_eq!(kind.status(), self.status, "{kind:?} is not a {} type", self.status);
        self.kind = kind;
        self
    }

    /// Says why (logged; in development also sent as `details.reason`).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Closes the connection after this answer (`Connection: close`): used
    /// when the request's body was left unread, so the stream cannot be reused.
    pub fn closing_connection(mut self) -> Self {
        self.close = true;
        self
    }

    /// Attaches the cause, logged but never sent.
    pub fn with_cause(mut self, cause: anyhow::Error) -> Self {
        self.cause = Some(cause);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable type.
    pub fn kind(&self) -> ErrorType {
        self.kind
    }

    /// Why a 401/403 was answered, if known.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field details, if any.
    pub fn details(&self) -> Option<&FieldErrors> {
        self.details.as_ref()
    }

    /// The logged cause, if any.
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.cause.as_ref()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl From<domain::Error> for ApiError {
    fn from(error: domain::Error) -> Self {
        use domain::Error as E;
        match error {
            E::Validation(errors) => Self::validation(errors),
            E::NotFound => Self::not_found(),
            E::PreconditionFailed => Self::of_type(
                ErrorType::PreconditionFailed,
                "Precondition failed: the resource has changed (If-Match)",
            ),
            E::Unauthenticated(reason) => Self::unauthorized(reason.as_str()),
            E::Forbidden(why) => {
                let kind = match why {
                    domain::error::Forbidden::NotAMember | domain::error::Forbidden::OrganizationsNotSetUp => {
                        ErrorType::NotAMember
                    }
                    domain::error::Forbidden::NotAllowedToChange | domain::error::Forbidden::MissingPermission => {
                        ErrorType::Forbidden
                    }
                };
                Self::of_type(kind, why.as_str()).with_reason(why.reason())
            }
            E::TooManyRequests(limit) => Self::too_many(limit),
            E::Unavailable(cause) => Self::unavailable(cause),
            E::Unexpected(cause) => Self::internal(cause),
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        Self::validation(errors)
    }
}

/// The JSON envelope every non-2xx answer uses (`ErrorResponse` in OpenAPI).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorResponse)]
pub struct Envelope<'a> {
    /// The error.
    pub error: EnvelopeBody<'a>,
}

/// The inside of the envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub struct EnvelopeBody<'a> {
    /// The HTTP status, repeated.
    #[schema(example = 422)]
    pub code: u16,
    /// What went wrong, stable and machine-readable: branch on this, not on `message`.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// A short human-readable message; never internal details.
    #[schema(example = "Validation error")]
    pub message: &'a str,
    /// The request path.
    #[schema(example = "/api/v1/items")]
    pub path: &'a str,
    /// The request id (also in `X-Request-Id`).
    pub request_id: &'a str,
    /// Field errors (validation failures), or the cause of a 5xx with `DEBUG=true` in development.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Details<'a>>,
}

/// `details` of the envelope.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorDetails)]
pub struct Details<'a> {
    /// One entry per invalid field (at most 50: see `truncated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<domain::validation::FieldError>>)]
    pub errors: Option<&'a FieldErrors>,
    /// Present and true when more problems were found than `errors` lists:
    /// the body was not examined further.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The cause chain of a 5xx, only with `DEBUG=true` in development.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Why a 401 or 403 was answered (e.g. `expired session`), only in development.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> Details<'a> {
    /// The details of a list of field errors.
    pub fn of(errors: &'a FieldErrors) -> Self {
        Self {
            errors: Some(errors),
            truncated: errors.is_truncated(),
            cause: None,
            reason: None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    /// The body without request context; [`crate::middleware::request_context`]
    /// rebuilds it with `path` and `request_id`.
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.close {
            response.force_close();
        }
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(Envelope {
            error: EnvelopeBody {
                code: self.status.as_u16(),
                kind: self.kind,
                message: &self.message,
                path: "",
                request_id: "",
                details: self.details.as_ref().map(Details::of),
            },
        })
    }
}
