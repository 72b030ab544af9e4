//! HTTP conditional requests on items (RFC 9110 §13): `ETag`,
//! `If-None-Match` (→ 304) and `If-Match` (→ 412).
//!
//! - The `ETag` is strong and derived from the answer's bytes (XXH3-128 of
//!   the JSON body, 32 hex digits in quotes): it changes whenever the body
//!   would and is the same on every instance. A cached answer costs one hash
//!   of its bytes, no storage round trip.
//! - `If-None-Match` compares weakly (a `W/` tag matches its strong twin) and
//!   accepts a list or `*`: a match answers 304 with the `ETag` and no body.
//! - `If-Match` compares strongly (a weak tag never matches) and accepts a
//!   list or `*` (any existing item): on PATCH and DELETE the check is made on
//!   the stored item and the write is conditional on it not having changed
//!   since, in one statement (see `ItemService::update_if`), so of concurrent
//!   writes carrying the same tag exactly one succeeds; the others get 412.
//! - A malformed header (an unquoted tag, a character outside the tag
//!   grammar, more than 1 KiB) is a 400 naming the header. `If-Match` on
//!   other methods and `If-None-Match` on writes are ignored.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse};

use crate::error::ApiError;

/// Longest conditional header accepted.
pub const MAX_HEADER_BYTES: usize = 1024;

/// The strong `ETag` of an answer's bytes, with its quotes.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(body))
}

/// A parsed `If-Match` / `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    /// `*`.
    Any,
    /// The listed tags: (weak, opaque tag with its quotes).
    List(Vec<(bool, String)>),
}

fn malformed(name: &HeaderName) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("Malformed {name} header: expected * or a list of quoted entity tags"),
    )
}

/// Parses the header `name` of `req`; `None` when it is absent.
///
/// # Errors
/// 400 when it is malformed or longer than [`MAX_HEADER_BYTES`].
pub fn parse(req: &HttpRequest, name: &HeaderName) -> Result<Option<Tags>, ApiError> {
    let mut values = req.headers().get_all(name).peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut joined = String::new();
    for value in values {
        let text = value.to_str().map_err(|_| malformed(name))?;
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(text);
        if joined.len() > MAX_HEADER_BYTES {
            return Err(malformed(name));
        }
    }
    if joined.trim() == "*" {
        return Ok(Some(Tags::Any));
    }
    let mut tags = Vec::new();
    for part in joined.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (weak, quoted) = match part.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, part),
        };
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .ok_or_else(|| malformed(name))?;
        // etagc = %x21 / %x23-7E / obs-text
        if !inner
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80)
        {
            return Err(malformed(name));
        }
        tags.push((weak, quoted.to_owned()));
    }
    if tags.is_empty() {
        return Err(malformed(name));
    }
    Ok(Some(Tags::List(tags)))
}

impl Tags {
    /// `If-None-Match`: weak comparison.
    pub fn matches_weakly(&self, etag: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(tags) => tags.iter().any(|(_, tag)| tag == etag),
        }
    }

    /// `If-Match`: strong comparison (weak tags never match).
    pub fn matches_strongly(&self, etag: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(tags) => tags.iter().any(|(weak, tag)| !weak && tag == etag),
        }
    }
}

/// A 200 with `body` and its `ETag`, or a 304 when `If-None-Match` matches.
///
/// # Errors
/// 400 for a malformed `If-None-Match`.
pub fn respond(req: &HttpRequest, body: Vec<u8>) -> Result<HttpResponse, ApiError> {
    let etag = etag_of(&body);
    if parse(req, &header::IF_NONE_MATCH)?.is_some_and(|tags| tags.matches_weakly(&etag)) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .insert_header((header::ETAG, etag))
        .body(body))
}

/// A 201 for a resource created in `collection` (the request's path):
/// `Location: <collection>/<id>`, `id` read from the body, and the `ETag` a
/// GET of that location answers (both are the same bytes). Used for first
/// answers and idempotent replays alike, so a replay says where and what too.
pub fn created(collection: &str, body: Vec<u8>) -> HttpResponse {
    let mut response = HttpResponse::Created();
    response
        .content_type(header::ContentType::json())
        .insert_header((header::ETAG, etag_of(&body)));
    if let Some(id) = id_of(&body) {
        response.insert_header((header::LOCATION, format!("{}/{id}", collection.trim_end_matches('/'))));
    }
    response.body(body)
}

/// The top-level `"id"` of a JSON object, when it is a string that needs no
/// escaping in a path segment (UUIDs, better-auth's ids).
fn id_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Identified {
        id: String,
    }
    let Identified { id } = serde_json::from_slice(body).ok()?;
    let safe = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        && id != "."
        && id != "..";
    safe.then_some(id)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn tags(value: &str) -> Result<Option<Tags>, ApiError> {
        let req = TestRequest::default()
            .insert_header((header::IF_MATCH, value))
            .to_http_request();
        parse(&req, &header::IF_MATCH)
    }

    #[test]
    fn a_created_answer_says_where_and_what() {
        let body = br#"{"id":"0192b7d2-8a1e-7cc1-9c1f-3f1f5c8f2e10","name":"lamp"}"#.to_vec();
        let response = created("/api/v1/items", body.clone());
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers().get(header::LOCATION).unwrap();
        assert_eq!(location, "/api/v1/items/0192b7d2-8a1e-7cc1-9c1f-3f1f5c8f2e10");
        assert_eq!(
            response.headers().get(header::ETAG).unwrap().to_str().unwrap(),
            etag_of(&body)
        );
        for odd in [
            &br#"{"id":"a/b"}"#[..],
            br#"{"id":".."}"#,
            br#"{"id":7}"#,
            b"[]",
            b"not json",
        ] {
            let response = created("/api/v1/items", odd.to_vec());
            assert!(response.headers().get(header::LOCATION).is_none(), "{odd:?}");
            assert!(response.headers().get(header::ETAG).is_some());
        }
    }

    #[test]
    fn etags_are_strong_quoted_and_follow_the_bytes() {
        let a = etag_of(b"{\"name\":\"a\"}");
        assert_eq!(a.len(), 34);
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert_eq!(a, etag_of(b"{\"name\":\"a\"}"));
        assert_ne!(a, etag_of(b"{\"name\":\"b\"}"));
    }

    #[test]
    fn lists_star_and_weak_tags_are_read() {
        assert_eq!(tags("*").unwrap(), Some(Tags::Any));
        let list = tags(r#""a", W/"b" ,"c""#).unwrap().unwrap();
        assert!(list.matches_strongly(r#""a""#));
        assert!(!list.matches_strongly(r#""b""#), "weak tags never match strongly");
        assert!(list.matches_weakly(r#""b""#));
        assert!(!list.matches_weakly(r#""d""#));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "abc",
            r#""unterminated"#,
            r#"W/abc"#,
            r#""a b""#,
            ",",
            &format!("\"{}\"", "x".repeat(1100)),
        ] {
            let error = tags(bad).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
