//! List requests, for every resource: `skip`/`limit`/`cursor` parsed and
//! bounded, a cursor checked against the caller's scope, and the
//! `Link: rel="next"` that keeps the request's other parameters.
//!
//! A resource's list handler parses with [`parse`], turns the cursor into its
//! position with [`resolve`] (any [`Keyset`] type), and, when its page has a
//! successor, sets the link with [`link_next`].

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::header;
use domain::page::Page;
use domain::validation::FieldErrors;

use crate::cursor::{CursorCodec, CursorError, Keyset};

/// A decimal integer written plainly: optional `-`, then ASCII digits. No
/// sign `+`, no spaces (`limit=%205`), no other notation.
fn strict_integer(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// The pagination a list request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery<P> {
    /// `skip` and `limit`, bounded.
    pub page: Page<P>,
    /// The `cursor` parameter, still to be checked ([`resolve`]).
    pub cursor: Option<String>,
    /// `skip` was given: offset paging, no `Link`.
    pub by_offset: bool,
}

/// Parses `skip`, `limit` and `cursor`; other parameters are ignored.
///
/// # Errors
/// A field error for each bad value: not an integer, out of range, or
/// `skip` with `cursor`.
pub fn parse<P: Copy>(query: &str) -> Result<ListQuery<P>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut skip = None;
    let mut limit = None;
    let mut cursor = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "skip" => &mut skip,
            "limit" => &mut limit,
            "cursor" => {
                cursor = Some(value.into_owned());
                continue;
            }
            _ => continue,
        };
        match strict_integer(&value) {
            Some(n) => *slot = Some(n),
            None => errors.push(&key, "type_error", "must be an integer"),
        }
    }
    if skip.is_some() && cursor.is_some() {
        errors.push("cursor", "conflict", "cannot be combined with skip");
    }
    let page = errors.collect(Page::new(skip, limit));
    errors.into_result()?;
    Ok(ListQuery {
        page: page.unwrap_or_default(),
        cursor,
        by_offset: skip.is_some(),
    })
}

/// Where the page starts: `None` without a cursor; a cursor, when given,
/// must be genuine and issued to `scope`.
///
/// # Errors
/// A `cursor` field error saying why it was refused.
pub fn resolve<P: Keyset + Copy>(
    query: &ListQuery<P>,
    codec: &CursorCodec,
    scope: &str,
) -> Result<Option<P>, FieldErrors> {
    let Some(cursor) = &query.cursor else {
        return Ok(None);
    };
    codec.decode(cursor, scope).map(Some).map_err(|why| {
        FieldErrors::single(
            "cursor",
            "invalid_cursor",
            match why {
                CursorError::Invalid => "is not a cursor this API issued (tampered or truncated)",
                CursorError::OtherVersion => "was issued for another sort order; start again without a cursor",
                CursorError::OtherScope => "was issued to another caller or scope",
            },
        )
    })
}

/// The page to read: the query's `skip`/`limit`, or, with a cursor, the
/// same size starting after the cursor's position.
///
/// # Errors
/// As [`resolve`].
pub fn page<P: Keyset + Copy>(query: &ListQuery<P>, codec: &CursorCodec, scope: &str) -> Result<Page<P>, FieldErrors> {
    Ok(match resolve(query, codec, scope)? {
        Some(position) => query.page.starting_after(Some(position)),
        None => query.page,
    })
}

/// `<path?…&limit=…&cursor=…>; rel="next"`, keeping the request's other parameters.
fn next_link(path: &str, query: &str, limit: u64, cursor: &str) -> String {
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !matches!(key.as_ref(), "cursor" | "limit" | "skip") {
            params.append_pair(&key, &value);
        }
    }
    params.append_pair("limit", &limit.to_string());
    params.append_pair("cursor", cursor);
    format!("<{path}?{}>; rel=\"next\"", params.finish())
}

/// Sets `Link: rel="next"` on `response` when the page has a successor
/// `next` and the request pages by cursor (not by `skip`).
pub fn link_next<P: Keyset + Copy>(
    response: &mut HttpResponse,
    req: &HttpRequest,
    query: &ListQuery<P>,
    next: Option<&P>,
    codec: &CursorCodec,
    scope: &str,
) {
    let (false, Some(next)) = (query.by_offset, next) else {
        return;
    };
    let link = next_link(
        req.path(),
        req.query_string(),
        query.page.limit(),
        &codec.encode(next, scope),
    );
    if let Ok(value) = header::HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::item::{ItemId, Page, Position};

    #[test]
    fn the_next_link_keeps_other_parameters_and_replaces_the_cursor() {
        let link = next_link("/api/v1/items", "limit=5&cursor=old&q=a%20b", 5, "NEW");
        assert_eq!(link, "</api/v1/items?q=a+b&limit=5&cursor=NEW>; rel=\"next\"");
    }

    #[test]
    fn a_cursor_from_another_caller_or_tampered_is_a_field_error() {
        let codec = CursorCodec::new(b"k");
        let position = Position {
            // Stored times have microsecond precision, as cursors do.
            created_at: chrono::DateTime::from_timestamp_micros(1_764_480_000_123_456).unwrap(),
            id: ItemId::generate(),
        };
        let query = parse::<Position>(&format!("cursor={}", codec.encode(&position, "alice"))).unwrap();
        assert_eq!(resolve::<Position>(&query, &codec, "alice").unwrap(), Some(position));
        let error = resolve::<Position>(&query, &codec, "bob").unwrap_err();
        assert_eq!(error.as_slice()[0].kind, "invalid_cursor");
        let forged = parse::<Position>("cursor=AAAA").unwrap();
        assert!(resolve::<Position>(&forged, &codec, "alice").is_err());
        assert_eq!(
            resolve::<Position>(&parse::<Position>("").unwrap(), &codec, "alice").unwrap(),
            None
        );
    }

    #[test]
    fn pagination_is_parsed_and_bounded() {
        assert_eq!(parse::<Position>("").unwrap().page, Page::default());
        let p = parse::<Position>("skip=5&limit=20&other=x").unwrap().page;
        assert_eq!((p.skip(), p.limit()), (5, 20));
        let kinds = |q: &str| {
            parse::<Position>(q)
                .unwrap_err()
                .as_slice()
                .iter()
                .map(|e| (e.field.clone(), e.kind.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds("skip=-1"), vec![("skip".into(), "out_of_range".into())]);
        assert_eq!(kinds("limit=0"), vec![("limit".into(), "out_of_range".into())]);
        assert_eq!(kinds("limit=1001"), vec![("limit".into(), "out_of_range".into())]);
        assert_eq!(kinds("limit=abc"), vec![("limit".into(), "type_error".into())]);
        for ambiguous in [
            "limit=+5",
            "limit=%205",
            "limit=5%20",
            "limit=",
            "limit=1e2",
            "limit=0x10",
        ] {
            assert_eq!(
                kinds(ambiguous),
                vec![("limit".into(), "type_error".into())],
                "{ambiguous}"
            );
        }
        assert_eq!(parse::<Position>("skip=-0&limit=007").unwrap().page.limit(), 7);
        assert_eq!(kinds("skip=0&cursor=abc"), vec![("cursor".into(), "conflict".into())]);
        assert_eq!(
            kinds("skip=99999999999999999999999"),
            vec![("skip".into(), "type_error".into())]
        );
    }
}
