//! Request ids and the error envelope.
//!
//! - `X-Request-Id` from the client is kept when it is 1–128 characters of
//!   `A-Za-z0-9-_.:` (safe to log and echo); anything else is replaced by a
//!   new UUID. The id is echoed on every answer and stored in the request's
//!   extensions for handlers and logs, with the client IP (resolved once,
//!   see `client_ip`) for the rate limiter and the access log.
//! - Every answer with status ≥ 400 leaves here as the JSON envelope with
//!   `path` and `request_id` filled in, whether it came from a handler's
//!   [`ApiError`] or from the framework itself (payload too large, …).
//!   Causes of 5xx answers are logged once, here, with the request id.
//! - `HEAD` is answered as `GET` (RFC 9110 §9.3.2): the method is rewritten
//!   before routing, so auth, rate limits and caches behave exactly as for the
//!   GET, and the HTTP layer sends the GET's status and headers without a
//!   body (it decided that from the request line). [`HeadRequest`] in the
//!   request's extensions keeps the original method for the access log.
//! - One trailing slash is dropped from the path before routing
//!   (`/api/v1/items/` is `/api/v1/items`), except under `/docs`, whose
//!   Swagger UI lives at `/docs/`. Routes then need one pattern each, and
//!   the path in logs and error bodies is the canonical one.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::uri::{PathAndQuery, Uri};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use super::client_ip::{ClientIp, client_ip};
use crate::error::{ApiError, Details, Envelope, EnvelopeBody, ErrorType};
use crate::state::AppState;

pub use crate::headers::X_REQUEST_ID;

/// Marks a request that arrived as `HEAD` (and is routed as `GET`).
#[derive(Debug, Clone, Copy)]
pub struct HeadRequest;

/// The id of the current request.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Keeps a well-formed client id, otherwise makes a new one.
    pub fn from_client(value: Option<&HeaderValue>) -> Self {
        match value {
            Some(v) if is_acceptable(v.as_bytes()) => Self(v.clone()),
            _ => Self::generate(),
        }
    }

    fn generate() -> Self {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        Self(HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid")))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

fn is_acceptable(raw: &[u8]) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The middleware function (see the module docs).
///
/// # Errors
/// Only what an inner service returns as `Err` instead of an error response
/// (none of ours do).
pub async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    drop_trailing_slash(&mut req);
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(HeadRequest);
    }
    let request_id = RequestId::from_client(req.headers().get(&X_REQUEST_ID));
    let state = req.app_data::<web::Data<AppState>>();
    let proxies = state.map_or(&[][..], |s| s.security.trusted_proxies.as_slice());
    let disclosure = Disclosure {
        causes: state.is_some_and(|s| s.security.expose_causes),
        reasons: state.is_some_and(|s| !s.security.production),
    };
    let ip = ClientIp::new(client_ip(req.request(), proxies));
    req.extensions_mut().insert(request_id.clone());
    req.extensions_mut().insert(ip);
    // Routing needs the only reference to the request, so none is kept here;
    // inner services turn their errors into responses, which arrive as `Ok`.
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    // A handler that deliberately answers an error status with its own JSON
    // (`/health`'s 503) is left alone; everything else becomes the envelope.
    let deliberate = response.response().error().is_none()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let mut response = if (status.is_client_error() || status.is_server_error()) && !deliberate {
        into_envelope(response, &request_id, disclosure)
    } else {
        response
    };
    response.headers_mut().insert(X_REQUEST_ID.clone(), request_id.0);
    Ok(response)
}

/// `/a/b/` → `/a/b` (query kept), except `/` itself and the docs (see the module docs).
fn drop_trailing_slash(req: &mut ServiceRequest) {
    let path = req.path();
    if path.len() <= 1 || !path.ends_with('/') || path.starts_with("/docs") {
        return;
    }
    let trimmed = &path[..path.len() - 1];
    let path_and_query = match req.query_string() {
        "" => trimmed.to_owned(),
        query => format!("{trimmed}?{query}"),
    };
    let mut parts = req.uri().clone().into_parts();
    let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) else {
        return;
    };
    parts.path_and_query = Some(path_and_query);
    if let Ok(uri) = Uri::from_parts(parts) {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
}

/// What an error body may say beyond its message, by environment.
#[derive(Debug, Clone, Copy)]
struct Disclosure {
    /// The cause chain of a 5xx (`DEBUG=true` in development).
    causes: bool,
    /// Why a 401/403 was answered (development).
    reasons: bool,
}

fn into_envelope(
    response: ServiceResponse<BoxBody>,
    request_id: &RequestId,
    disclosure: Disclosure,
) -> ServiceResponse<BoxBody> {
    let (req, response) = response.into_parts();
    let status = response.status();
    let api_error = response.error().and_then(|e| e.as_error::<ApiError>());
    let message: std::borrow::Cow<'_, str> = match api_error {
        Some(e) => e.message().into(),
        None => sentence_case(status.canonical_reason().unwrap_or("Error")).into(),
    };
    let mut details = api_error.and_then(ApiError::details).map(Details::of);

    if status.is_server_error() {
        let cause = api_error
            .and_then(ApiError::cause)
            .map(|c| format!("{c:#}"))
            .or_else(|| response.error().map(ToString::to_string))
            .unwrap_or_default();
        tracing::error!(
            request_id = request_id.as_str(),
            path = req.path(),
            status = status.as_u16(),
            cause,
            "request failed"
        );
        if disclosure.causes && !cause.is_empty() {
            details.get_or_insert_with(Details::default).cause = Some(cause);
        }
    } else if let Some(reason) = api_error.and_then(ApiError::reason) {
        tracing::info!(
            request_id = request_id.as_str(),
            path = req.path(),
            status = status.as_u16(),
            reason,
            "request refused"
        );
        if disclosure.reasons {
            details.get_or_insert_with(Details::default).reason = Some(reason);
        }
    } else if let Some(cause) = api_error.and_then(ApiError::cause) {
        tracing::info!(request_id = request_id.as_str(), path = req.path(), status = status.as_u16(), reason = %cause, "request refused");
    }
    let kind = api_error.map_or_else(|| ErrorType::of_status(status), ApiError::kind);

    let body = serde_json::to_vec(&Envelope {
        error: EnvelopeBody {
            code: status.as_u16(),
            kind,
            message: &message,
            path: req.path(),
            request_id: request_id.as_str(),
            details,
        },
    })
    .unwrap_or_default();
    let mut response = response.set_body(BoxBody::new(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    ServiceResponse::new(req, response)
}

/// `Not Found` → `Not found`: the framework's reason phrases written like
/// this service's own messages, so a 404 reads the same under `/docs` and `/api`.
fn sentence_case(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for (i, c) in reason.chars().enumerate() {
        out.push(if i == 0 { c } else { c.to_ascii_lowercase() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_only_when_short_and_printable() {
        let keep = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(RequestId::from_client(Some(&keep)).as_str(), "abc-123_x.y:z");
        for bad in ["", "has space", "semi;colon", "<script>"] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = RequestId::from_client(Some(&value));
            assert_ne!(id.as_str(), bad);
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
        }
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(RequestId::from_client(Some(&long)).as_str().len(), 36);
        assert_eq!(RequestId::from_client(None).as_str().len(), 36);
    }

    #[test]
    fn reason_phrases_are_sentence_case() {
        assert_eq!(sentence_case("Not Found"), "Not found");
        assert_eq!(sentence_case("Payload Too Large"), "Payload too large");
    }
}
