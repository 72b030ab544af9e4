//! `/api/v1/items`: the items of the caller's scope (personal, or an
//! organization's with `X-Organization-Id` or the session's active one).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use domain::item::{Item, ItemPatch, NewItem, Page};
use domain::validation::FieldErrors;
use serde::Serialize;
use uuid::Uuid;

use super::item_body::{self, CreateItemRequest, UpdateItemRequest};
use crate::conditional;
use crate::cursor::{CursorCodec, CursorError};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::idempotent;
use crate::state::AppState;

/// An item as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Item)]
pub struct ItemResponse {
    id: Uuid,
    name: String,
    description: Option<String>,
    /// The creator (in an organization) or owner (personal) of the item.
    owner_id: String,
    /// The organization the item belongs to; null for a personal item.
    organization_id: Option<String>,
    is_active: bool,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    updated_at: DateTime<Utc>,
}

impl From<Item> for ItemResponse {
    fn from(item: Item) -> Self {
        Self {
            id: item.id.as_uuid(),
            name: item.name.as_str().to_owned(),
            description: item.description.map(|d| d.as_str().to_owned()),
            owner_id: item.owner_id,
            organization_id: item.organization_id,
            is_active: item.is_active,
            created_at: item.created_at,
            updated_at: item.updated_at,
        }
    }
}

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
struct ListQuery {
    page: Page,
    /// The `cursor` parameter, still to be checked.
    cursor: Option<String>,
    /// `skip` was given: offset paging, no `Link`.
    by_offset: bool,
}

/// Parses `skip`, `limit` and `cursor`; other parameters are ignored.
fn page(query: &str) -> Result<ListQuery, FieldErrors> {
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

/// The page to read: a cursor, when given, must be genuine and the caller's.
fn resolve(query: &ListQuery, codec: &CursorCodec, scope: &str) -> Result<Page, FieldErrors> {
    let Some(cursor) = &query.cursor else {
        return Ok(query.page);
    };
    match codec.decode(cursor, scope) {
        Ok(position) => Ok(query.page.starting_after(Some(position))),
        Err(why) => Err(FieldErrors::single(
            "cursor",
            "invalid_cursor",
            match why {
                CursorError::Invalid => "is not a cursor this API issued (tampered or truncated)",
                CursorError::OtherVersion => "was issued for another sort order; start again without a cursor",
                CursorError::OtherScope => "was issued to another caller or scope",
            },
        )),
    }
}

/// `Link: <path?…&limit=…&cursor=…>; rel="next"`, keeping the request's other parameters.
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

/// `GET /api/v1/items?skip=&limit=`: the caller's items, newest first.
///
/// # Errors
/// 422 for bad pagination, 401, 503.
#[utoipa::path(get, path = "/api/v1/items", tag = "items", operation_id = "listItems",
    params(
        ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
        ("skip" = Option<i64>, Query, minimum = 0, description = "Items to pass over (offset paging; no Link; not with cursor)"),
        ("cursor" = Option<String>, Query, description = "Where to continue: the opaque cursor of a previous page's Link (keyset paging)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("If-None-Match" = Option<String>, Header, description = "ETags (or *) the client holds: 304 when one matches"),
    ),
    responses(
        (status = 200, description = "The caller's items, newest first", body = [ItemResponse],
            headers(
                ("ETag" = String, description = "Strong tag of this answer"),
                ("Link" = String, description = "`<…?limit=…&cursor=…>; rel=\"next\"` when a next page exists (not with skip)"),
            )),
        (status = 304, description = "Not modified: `If-None-Match` matched the current ETag",
            headers(("ETag" = String, description = "The current tag"))),
        (status = 400, description = "Malformed If-None-Match or X-Organization-Id", body = crate::docs::ErrorResponse),
        (status = 401, description = "Not signed in", body = crate::docs::ErrorResponse),
        (status = 403, description = "Not a member of the organization", body = crate::docs::ErrorResponse),
        (status = 422, description = "Bad pagination: skip/limit out of range, skip with cursor, or a cursor that is not genuine or not the caller's", body = crate::docs::ErrorResponse),
    ),
    security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
#[tracing::instrument(level = "debug", name = "items.list", skip_all, fields(user_id = %caller.0.user.id))]
pub async fn list(state: web::Data<AppState>, caller: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let query = page(req.query_string())?;
    let scope = caller.0.namespace();
    let page = resolve(&query, &state.cursors, &scope)?;
    let view = state.items.list_view(&caller.0, page, &render_list).await?;
    let mut response = conditional::respond(&req, view.body)?;
    if let (false, Some(next)) = (query.by_offset, view.next) {
        let link = next_link(
            req.path(),
            req.query_string(),
            page.limit(),
            &state.cursors.encode(next, &scope),
        );
        if let Ok(value) = header::HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// The JSON of a list answer.
fn render_list(items: Vec<Item>) -> Result<Vec<u8>, domain::Error> {
    let shown: Vec<ItemResponse> = items.into_iter().map(ItemResponse::from).collect();
    serde_json::to_vec(&shown).map_err(|e| domain::Error::Unexpected(e.into()))
}

/// The JSON of one item.
fn render_item(item: Item) -> Result<Vec<u8>, domain::Error> {
    serde_json::to_vec(&ItemResponse::from(item)).map_err(|e| domain::Error::Unexpected(e.into()))
}

/// `POST /api/v1/items`: 201 and the new item.
///
/// # Errors
/// 422 for an invalid body, 401, 503.
#[utoipa::path(post, path = "/api/v1/items", tag = "items", operation_id = "createItem",
    params(
        ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
        ("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters: a retry with the same key and body replays the first answer (kept 24 h) instead of creating again"),
    ),
    request_body = item_body::CreateItemRequest,
    responses(
        (status = 201, description = "Created (or, with Idempotent-Replayed: true, the first answer replayed)", body = ItemResponse,
            headers(
                ("Location" = String, description = "The new item's path, `/api/v1/items/{id}`"),
                ("ETag" = String, description = "The new item's strong tag: what a GET of `Location` answers, usable at once in `If-Match`"),
                ("Idempotent-Replayed" = Option<String>, description = "`true` on a replayed answer"))),
        (status = 400, description = "Malformed JSON, Idempotency-Key or X-Organization-Id", body = crate::docs::ErrorResponse),
        (status = 409, description = "A request with this Idempotency-Key is still being processed", body = crate::docs::ErrorResponse),
        (status = 401, description = "Not signed in", body = crate::docs::ErrorResponse),
        (status = 403, description = "Cross-site request with a session cookie, not a member of the organization, or (PATCH/DELETE) another member's item without the owner or admin role", body = crate::docs::ErrorResponse),
        (status = 413, description = "Body larger than MAX_REQUEST_SIZE", body = crate::docs::ErrorResponse),
        (status = 415, description = "Not JSON", body = crate::docs::ErrorResponse),
        (status = 422, description = "Invalid fields, or an Idempotency-Key used with another body", body = crate::docs::ErrorResponse),
        (status = 503, description = "Storage unavailable (an idempotent create is refused rather than risked twice)", body = crate::docs::ErrorResponse),
    ),
    security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
#[tracing::instrument(level = "debug", name = "items.create", skip_all, fields(user_id = %caller.0.user.id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateItemRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = idempotent::key(&req)?;
    let JsonBody(request, fingerprint) = body;
    let new = NewItem::try_from(request)?;
    let (service, creator) = (state.clone(), caller.0.clone());
    let act = async move {
        let item = service.items.create(&creator, new).await?;
        Ok((StatusCode::CREATED.as_u16(), render_item(item)?))
    };
    match key {
        Some(key) => {
            // Kept per caller and scope: a key never collides across either.
            let scope = format!("{}|{}", caller.0.user.id, caller.0.namespace());
            idempotent::run(&req, &state, &scope, &key, &fingerprint.0, act).await
        }
        None => {
            let (_, body) = act.await?;
            Ok(conditional::created(req.path(), body))
        }
    }
}

/// `GET /api/v1/items/{id}`.
///
/// # Errors
/// 404 for a missing, foreign or malformed id; 401; 503.
#[utoipa::path(get, path = "/api/v1/items/{id}", tag = "items", operation_id = "getItem",
    params(
        ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
        ("id" = Uuid, Path, description = "The item's UUID (any other value is a 404)"),
        ("If-None-Match" = Option<String>, Header, description = "ETags (or *) the client holds: 304 when one matches"),
    ),
    responses(
        (status = 200, description = "The item", body = ItemResponse,
            headers(("ETag" = String, description = "Strong tag of this answer"))),
        (status = 304, description = "Not modified: `If-None-Match` matched the current ETag",
            headers(("ETag" = String, description = "The current tag"))),
        (status = 400, description = "Malformed If-None-Match or X-Organization-Id", body = crate::docs::ErrorResponse),
        (status = 401, description = "Not signed in", body = crate::docs::ErrorResponse),
        (status = 403, description = "Not a member of the organization", body = crate::docs::ErrorResponse),
        (status = 404, description = "No such item in the caller's scope", body = crate::docs::ErrorResponse),
    ),
    security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
#[tracing::instrument(level = "debug", name = "items.get", skip_all, fields(user_id = %caller.0.user.id))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = state.items.get_view(&caller.0, &id, &render_item).await?;
    conditional::respond(&req, body)
}

/// Whether `item`, as this API shows it, has an ETag `tags` lists (strongly).
fn matches(tags: &conditional::Tags, item: &Item) -> bool {
    render_item(item.clone()).is_ok_and(|body| tags.matches_strongly(&conditional::etag_of(&body)))
}

/// `PATCH /api/v1/items/{id}`: partial update.
///
/// # Errors
/// As `get`, plus 422 for an invalid body.
#[utoipa::path(patch, path = "/api/v1/items/{id}", tag = "items", operation_id = "updateItem",
    params(
        ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
        ("id" = Uuid, Path, description = "The item's UUID (any other value is a 404)"),
        ("If-Match" = Option<String>, Header, description = "Update only if the item's ETag is one of these (or *): else 412, nothing changed"),
    ),
    request_body = item_body::UpdateItemRequest,
    responses(
        (status = 200, description = "The updated item", body = ItemResponse,
            headers(("ETag" = String, description = "The item's new tag"))),
        (status = 400, description = "Malformed If-Match or X-Organization-Id", body = crate::docs::ErrorResponse),
        (status = 412, description = "If-Match does not match the item's current ETag; nothing changed", body = crate::docs::ErrorResponse),
        (status = 401, description = "Not signed in", body = crate::docs::ErrorResponse),
        (status = 403, description = "Cross-site request with a session cookie, not a member of the organization, or (PATCH/DELETE) another member's item without the owner or admin role", body = crate::docs::ErrorResponse),
        (status = 404, description = "No such item in the caller's scope", body = crate::docs::ErrorResponse),
        (status = 422, description = "Invalid fields", body = crate::docs::ErrorResponse),
    ),
    security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
#[tracing::instrument(level = "debug", name = "items.update", skip_all, fields(user_id = %caller.0.user.id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<UpdateItemRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let if_match = conditional::parse(&req, &header::IF_MATCH)?;
    let patch = ItemPatch::try_from(body.0)?;
    let item = match &if_match {
        None => state.items.update(&caller.0, &id, patch).await?,
        Some(tags) => {
            state
                .items
                .update_if(&caller.0, &id, patch, &|item| matches(tags, item))
                .await?
        }
    };
    let body = render_item(item)?;
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .insert_header((header::ETAG, conditional::etag_of(&body)))
        .body(body))
}

/// `DELETE /api/v1/items/{id}`: 204.
///
/// # Errors
/// As `get`.
#[utoipa::path(delete, path = "/api/v1/items/{id}", tag = "items", operation_id = "deleteItem",
    params(
        ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
        ("id" = Uuid, Path, description = "The item's UUID (any other value is a 404)"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the item's ETag is one of these (or *): else 412, nothing deleted"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed If-Match or X-Organization-Id", body = crate::docs::ErrorResponse),
        (status = 412, description = "If-Match does not match the item's current ETag; nothing deleted", body = crate::docs::ErrorResponse),
        (status = 401, description = "Not signed in", body = crate::docs::ErrorResponse),
        (status = 403, description = "Cross-site request with a session cookie, not a member of the organization, or (PATCH/DELETE) another member's item without the owner or admin role", body = crate::docs::ErrorResponse),
        (status = 404, description = "No such item in the caller's scope", body = crate::docs::ErrorResponse),
    ),
    security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
#[tracing::instrument(level = "debug", name = "items.delete", skip_all, fields(user_id = %caller.0.user.id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    match conditional::parse(&req, &header::IF_MATCH)? {
        None => state.items.delete(&caller.0, &id).await?,
        Some(tags) => {
            state
                .items
                .delete_if(&caller.0, &id, &|item| matches(&tags, item))
                .await?
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_other_parameters_and_replaces_the_cursor() {
        let link = next_link("/api/v1/items", "limit=5&cursor=old&q=a%20b", 5, "NEW");
        assert_eq!(link, "</api/v1/items?q=a+b&limit=5&cursor=NEW>; rel=\"next\"");
    }

    #[test]
    fn a_cursor_from_another_caller_or_tampered_is_a_field_error() {
        let codec = CursorCodec::new(b"k");
        let position = domain::item::Position {
            // Stored times have microsecond precision, as cursors do.
            created_at: chrono::DateTime::from_timestamp_micros(1_764_480_000_123_456).unwrap(),
            id: domain::item::ItemId::generate(),
        };
        let query = page(&format!("cursor={}", codec.encode(position, "alice"))).unwrap();
        assert_eq!(resolve(&query, &codec, "alice").unwrap().after(), Some(position));
        let error = resolve(&query, &codec, "bob").unwrap_err();
        assert_eq!(error.as_slice()[0].kind, "invalid_cursor");
        let forged = page("cursor=AAAA").unwrap();
        assert!(resolve(&forged, &codec, "alice").is_err());
    }

    #[test]
    fn pagination_is_parsed_and_bounded() {
        assert_eq!(page("").unwrap().page, Page::default());
        let p = page("skip=5&limit=20&other=x").unwrap().page;
        assert_eq!((p.skip(), p.limit()), (5, 20));
        let kinds = |q: &str| {
            page(q)
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
        assert_eq!(page("skip=-0&limit=007").unwrap().page.limit(), 7);
        assert_eq!(kinds("skip=0&cursor=abc"), vec![("cursor".into(), "conflict".into())]);
        assert_eq!(
            kinds("skip=99999999999999999999999"),
            vec![("skip".into(), "type_error".into())]
        );
    }
}
