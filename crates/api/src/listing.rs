//! List requests, for every resource: `skip`/`limit`/`cursor` parsed and
//! bounded, the sort and filter the resource's [`ListSpec`] allows, a
//! cursor checked against the caller's scope and the request's sort and
//! filter, and the `Link: rel="next"` that keeps the request's other
//! parameters.
//!
//! A resource's list handler parses with [`parse`], turns the cursor into its
//! position with [`resolve`] (any [`Keyset`] type), and, when its page has a
//! successor, sets the link with [`link_next`].

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::header;
use chrono::{DateTime, Utc};
use domain::page::Page;
use domain::resource::list::{ListQuery, ListSpec, SEARCH_MAX, Sort};
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

/// What a list request asked for: its page (with its order and filter)
/// and cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest<P> {
    /// `skip` and `limit`, bounded, with the sort and filter.
    pub page: Page<P>,
    /// The `cursor` parameter, still to be checked ([`resolve`]).
    pub cursor: Option<String>,
    /// `skip` was given: offset paging, no `Link`.
    pub by_offset: bool,
}

/// Parses `skip`, `limit`, `cursor`, and the sort and filter `spec` allows
/// (`sort`, `created_after`, `created_before`, its flags and, when it has a
/// searched field, `q`). Other parameters are ignored (cache-busters such
/// as `_=1712…` are common); a known one given twice is an error.
///
/// # Errors
/// A field error for each bad value: not an integer, out of range, `skip`
/// with `cursor`, a sort `spec` does not list, a flag that is not `true` or
/// `false`, a `q` outside 1–100 characters after trimming, a time that is
/// not RFC 3339, or a parameter given twice.
pub fn parse<P>(query: &str, spec: &ListSpec) -> Result<ListRequest<P>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let (mut skip, mut limit, mut cursor) = (None, None, None);
    let mut list = ListQuery::default();
    let mut flags: Vec<(&'static str, bool)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let flag = spec.flags.iter().copied().find(|flag| *flag == key);
        let known = matches!(
            key.as_ref(),
            "skip" | "limit" | "cursor" | "sort" | "created_after" | "created_before"
        ) || (key == "q" && spec.search.is_some())
            || flag.is_some();
        if !known {
            continue;
        }
        if seen.iter().any(|k| *k == key) {
            if !errors
                .as_slice()
                .iter()
                .any(|e| e.field == key && e.kind == "duplicate")
            {
                errors.push(&key, "duplicate", "must be given at most once");
            }
            continue;
        }
        seen.push(key.clone().into_owned());
        match (key.as_ref(), flag, spec.search) {
            ("skip" | "limit", _, _) => match strict_integer(&value) {
                Some(n) if key == "skip" => skip = Some(n),
                Some(n) => limit = Some(n),
                None => errors.push(&key, "type_error", "must be an integer"),
            },
            ("cursor", _, _) => cursor = Some(value.into_owned()),
            ("sort", _, _) => match Sort::parse(spec, &value) {
                Some(sort) => list.sort = sort,
                None => errors.push(
                    "sort",
                    "enum",
                    format!("must be one of: {}", spec.sort_values().join(", ")),
                ),
            },
            ("created_after" | "created_before", _, _) => match DateTime::parse_from_rfc3339(&value) {
                Ok(at) if key == "created_after" => list.filter.created_after = Some(at.with_timezone(&Utc)),
                Ok(at) => list.filter.created_before = Some(at.with_timezone(&Utc)),
                Err(_) => errors.push(
                    &key,
                    "datetime_parsing",
                    "must be an RFC 3339 date-time, such as 2026-01-31T12:00:00Z",
                ),
            },
            ("q", None, Some(field)) => {
                let text = value.trim();
                let chars = text.chars().count();
                if text.contains('\0') {
                    errors.push("q", "value_error", "must not contain NUL characters");
                } else if chars == 0 {
                    errors.push("q", "string_too_short", "must not be empty or only whitespace");
                } else if chars > SEARCH_MAX {
                    errors.push(
                        "q",
                        "string_too_long",
                        format!("must be at most {SEARCH_MAX} characters"),
                    );
                } else {
                    list.filter.search = Some((field, text.to_owned()));
                }
            }
            (_, Some(flag), _) => match value.as_ref() {
                "true" => flags.push((flag, true)),
                "false" => flags.push((flag, false)),
                _ => errors.push(flag, "bool_parsing", "must be true or false"),
            },
            _ => {}
        }
    }
    // In the spec's order, so one filter has one canonical text.
    list.filter.flags = spec
        .flags
        .iter()
        .filter_map(|name| flags.iter().find(|(flag, _)| flag == name).copied())
        .collect();
    if skip.is_some() && cursor.is_some() {
        errors.push("cursor", "conflict", "cannot be combined with skip");
    }
    let page = errors.collect(Page::new(skip, limit));
    errors.into_result()?;
    Ok(ListRequest {
        page: page.unwrap_or_default().with_query(list),
        cursor,
        by_offset: skip.is_some(),
    })
}

/// Where the page starts: `None` without a cursor; a cursor, when given,
/// must be genuine, issued to `scope`, and for the request's sort and filter.
///
/// # Errors
/// A `cursor` field error saying why it was refused.
pub fn resolve<P: Keyset>(
    request: &ListRequest<P>,
    codec: &CursorCodec,
    scope: &str,
) -> Result<Option<P>, FieldErrors> {
    let Some(cursor) = &request.cursor else {
        return Ok(None);
    };
    codec
        .decode(cursor, scope, &request.page.query().canonical())
        .map(Some)
        .map_err(|why| {
            FieldErrors::single(
                "cursor",
                "invalid_cursor",
                match why {
                    CursorError::Invalid => "is not a cursor this API issued (tampered or truncated)",
                    CursorError::OtherVersion => "was issued by another version of this API; start again without a cursor",
                    CursorError::OtherScope => "was issued to another caller or scope",
                    CursorError::OtherQuery => {
                        "was issued for another sort or filter; keep the parameters of the page it came from, or start again without a cursor"
                    }
                },
            )
        })
}

/// The page to read: the request's `skip`/`limit`, or, with a cursor, the
/// same size starting after the cursor's position (same sort and filter).
///
/// # Errors
/// As [`resolve`].
pub fn page<P: Keyset + Clone>(
    request: &ListRequest<P>,
    codec: &CursorCodec,
    scope: &str,
) -> Result<Page<P>, FieldErrors> {
    Ok(match resolve(request, codec, scope)? {
        Some(position) => request.page.clone().starting_after(Some(position)),
        None => request.page.clone(),
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
pub fn link_next<P: Keyset>(
    response: &mut HttpResponse,
    req: &HttpRequest,
    request: &ListRequest<P>,
    next: Option<&P>,
    codec: &CursorCodec,
    scope: &str,
) {
    let (false, Some(next)) = (request.by_offset, next) else {
        return;
    };
    let link = next_link(
        req.path(),
        req.query_string(),
        request.page.limit(),
        &codec.encode(next, scope, &request.page.query().canonical()),
    );
    if let Ok(value) = header::HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::item::{ITEM_LIST, ItemId, Page, Position};
    use domain::page::SortKey;
    use domain::resource::list::SortField;

    fn parse(query: &str) -> Result<ListRequest<Position>, FieldErrors> {
        super::parse(query, &ITEM_LIST)
    }

    fn kinds(query: &str) -> Vec<(String, String)> {
        parse(query)
            .unwrap_err()
            .as_slice()
            .iter()
            .map(|e| (e.field.clone(), e.kind.clone()))
            .collect()
    }

    #[test]
    fn the_next_link_keeps_other_parameters_and_replaces_the_cursor() {
        let link = next_link("/api/v1/items", "limit=5&cursor=old&q=a%20b", 5, "NEW");
        assert_eq!(link, "</api/v1/items?q=a+b&limit=5&cursor=NEW>; rel=\"next\"");
    }

    #[test]
    fn a_cursor_from_another_caller_another_query_or_tampered_is_a_field_error() {
        let codec = CursorCodec::new(b"k");
        let position = Position {
            // Stored times have microsecond precision, as cursors do.
            key: SortKey::Time(chrono::DateTime::from_timestamp_micros(1_764_480_000_123_456).unwrap()),
            id: ItemId::generate(),
        };
        let newest = ListQuery::default().canonical();
        let request = parse(&format!("cursor={}", codec.encode(&position, "alice", &newest))).unwrap();
        assert_eq!(resolve(&request, &codec, "alice").unwrap(), Some(position.clone()));
        let error = resolve(&request, &codec, "bob").unwrap_err();
        assert_eq!(error.as_slice()[0].kind, "invalid_cursor");
        let sorted = parse(&format!(
            "sort=name&cursor={}",
            codec.encode(&position, "alice", &newest)
        ))
        .unwrap();
        let error = resolve(&sorted, &codec, "alice").unwrap_err();
        assert!(
            error.as_slice()[0].message.contains("another sort or filter"),
            "{error:?}"
        );
        let forged = parse("cursor=AAAA").unwrap();
        assert!(resolve(&forged, &codec, "alice").is_err());
        assert_eq!(resolve(&parse("").unwrap(), &codec, "alice").unwrap(), None);
    }

    #[test]
    fn pagination_is_parsed_and_bounded() {
        assert_eq!(parse("").unwrap().page, Page::default());
        let p = parse("skip=5&limit=20&other=x&_=1712").unwrap().page;
        assert_eq!((p.skip(), p.limit()), (5, 20));
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
        assert_eq!(parse("skip=-0&limit=007").unwrap().page.limit(), 7);
        assert_eq!(kinds("skip=0&cursor=abc"), vec![("cursor".into(), "conflict".into())]);
        assert_eq!(
            kinds("skip=99999999999999999999999"),
            vec![("skip".into(), "type_error".into())]
        );
    }

    #[test]
    fn sort_and_filters_are_parsed_against_the_spec() {
        let query = parse("sort=-name&is_active=false&q=%20Lamp%25_%20&created_after=2026-01-01T00:00:00%2B02:00")
            .unwrap()
            .page
            .query()
            .clone();
        assert_eq!(query.sort.field, SortField::Text("name"));
        assert!(query.sort.descending);
        assert_eq!(query.filter.flags, vec![("is_active", false)]);
        assert_eq!(
            query.filter.search,
            Some(("name", "Lamp%_".to_owned())),
            "trimmed, kept literally"
        );
        assert_eq!(
            query.filter.created_after.map(|at| at.to_rfc3339()),
            Some("2025-12-31T22:00:00+00:00".to_owned())
        );
        assert!(parse("").unwrap().page.query().is_default());
        assert_eq!(
            parse("sort=updated_at").unwrap().page.query().canonical(),
            "sort=updated_at"
        );
    }

    #[test]
    fn bad_sorts_filters_and_repeated_parameters_are_field_errors() {
        assert_eq!(kinds("sort=;drop"), vec![("sort".into(), "enum".into())]);
        assert_eq!(kinds("sort=description"), vec![("sort".into(), "enum".into())]);
        assert_eq!(
            kinds("is_active=yes"),
            vec![("is_active".into(), "bool_parsing".into())]
        );
        assert_eq!(kinds("q=%20%20"), vec![("q".into(), "string_too_short".into())]);
        assert_eq!(
            kinds(&format!("q={}", "x".repeat(10_000))),
            vec![("q".into(), "string_too_long".into())]
        );
        assert_eq!(kinds("q=a%00b"), vec![("q".into(), "value_error".into())]);
        assert_eq!(
            kinds("created_after=yesterday&created_before=2026-13-01"),
            vec![
                ("created_after".into(), "datetime_parsing".into()),
                ("created_before".into(), "datetime_parsing".into())
            ]
        );
        assert_eq!(
            kinds("sort=name&sort=name&limit=1&limit=2&limit=3"),
            vec![
                ("sort".into(), "duplicate".into()),
                ("limit".into(), "duplicate".into())
            ]
        );
        assert!(
            parse("_=1&_=2&other=a&other=b").is_ok(),
            "unknown parameters stay ignored"
        );
    }
}
