//! The API's HTTP headers, listed once.
//!
//! A browser on another origin may only send a request header the CORS
//! preflight allows, and a script may only read a response header that
//! `Access-Control-Expose-Headers` names (besides the few the Fetch standard
//! safelists). Both lists are derived from here: [`request`] is every header
//! the service reads, [`exposed`] every header a client relies on. The
//! configured API-key header (`API_KEY_HEADER`) joins [`request`] at start-up.
//!
//! A unit test reads the crate's sources and fails when a header name is
//! declared anywhere else without being classified here, so a new header
//! cannot be forgotten by CORS.

use actix_web::http::header::{self, HeaderName};

/// `X-Request-Id`: kept from the client when well-formed, echoed on every answer.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `X-Organization-Id`: the organization scope of a request.
pub static X_ORGANIZATION_ID: HeaderName = HeaderName::from_static("x-organization-id");
/// `Idempotency-Key`: makes a create safe to retry.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `Idempotent-Replayed: true` on an answer replayed for an `Idempotency-Key`.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// `RateLimit-Limit`: requests per window.
pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left in the window.
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the budget is whole again.
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// The default API-key header (`API_KEY_HEADER` may rename it).
pub static DEFAULT_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// `Permissions-Policy` (set for the browser; no script reads it).
pub static PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
/// `X-XSS-Protection` (set for the browser; no script reads it).
pub static X_XSS_PROTECTION: HeaderName = HeaderName::from_static("x-xss-protection");
/// W3C trace context: the caller's trace, and the answer's span in it.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// W3C trace context: vendor state carried along with `traceparent`.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Every request header the service reads. CORS allows exactly these (plus
/// the configured API-key header).
pub fn request() -> [HeaderName; 10] {
    [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::ACCEPT,
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        IDEMPOTENCY_KEY.clone(),
        X_ORGANIZATION_ID.clone(),
        X_REQUEST_ID.clone(),
        TRACEPARENT.clone(),
        TRACESTATE.clone(),
    ]
}

/// Every response header a client relies on. CORS exposes exactly these to
/// scripts.
pub fn exposed() -> [HeaderName; 11] {
    [
        header::ETAG,
        header::LINK,
        header::LOCATION,
        header::RETRY_AFTER,
        header::ALLOW,
        IDEMPOTENT_REPLAYED.clone(),
        RATELIMIT_LIMIT.clone(),
        RATELIMIT_REMAINING.clone(),
        RATELIMIT_RESET.clone(),
        X_REQUEST_ID.clone(),
        TRACEPARENT.clone(),
    ]
}

/// Headers the service sets for the browser itself (security policy), which
/// no script needs to read: neither allowed nor exposed.
pub fn browser_only() -> [HeaderName; 2] {
    [PERMISSIONS_POLICY.clone(), X_XSS_PROTECTION.clone()]
}

/// The request headers CORS allows when the API-key header is `api_key`.
pub fn allowed_request_headers(api_key: &HeaderName) -> Vec<HeaderName> {
    let mut all: Vec<HeaderName> = request().to_vec();
    if !all.contains(api_key) {
        all.push(api_key.clone());
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `HeaderName::from_static("…")` in the crate's non-test sources.
    fn declared_in_sources() -> Vec<(String, String)> {
        let mut found = Vec::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Test modules declare headers for their requests only.
                let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                for piece in text.split("HeaderName::from_static(\"").skip(1) {
                    let name = piece.split('"').next().unwrap_or_default().to_owned();
                    found.push((path.display().to_string(), name));
                }
            }
        }
        found
    }

    #[test]
    fn every_header_the_crate_declares_is_in_the_cors_lists() {
        let known: Vec<HeaderName> = request()
            .into_iter()
            .chain(exposed())
            .chain(browser_only())
            .chain(std::iter::once(DEFAULT_API_KEY.clone()))
            .collect();
        let declared = declared_in_sources();
        assert!(
            declared.len() >= 10,
            "the source scan found the declarations: {declared:?}"
        );
        for (file, name) in declared {
            assert!(
                known.iter().any(|h| h.as_str() == name),
                "{file} declares the header {name:?}: add it to request() or exposed() in headers.rs \
                 (or browser_only() if no script needs it)"
            );
        }
    }

    #[test]
    fn the_configured_api_key_header_is_allowed_once() {
        let default = allowed_request_headers(&DEFAULT_API_KEY);
        assert_eq!(default.iter().filter(|h| **h == DEFAULT_API_KEY).count(), 1);
        let custom = HeaderName::from_static("x-custom-key");
        let allowed = allowed_request_headers(&custom);
        assert!(allowed.contains(&custom));
        assert!(!allowed.contains(&DEFAULT_API_KEY));
        assert_eq!(allowed.len(), request().len() + 1);
    }
}
