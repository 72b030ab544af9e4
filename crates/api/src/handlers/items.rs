//! `/api/v1/items`: the items of the caller's scope (personal, or an
//! organization's with `X-Organization-Id` or the session's active one).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use domain::item::{Item, ItemId, ItemPatch, NewItem};
use serde::Serialize;
use uuid::Uuid;

use super::item_body::{self, CreateItemRequest, UpdateItemRequest};
use crate::conditional;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::idempotent;
use crate::listing;
use crate::response_cache::Views;
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

/// The version of [`ItemResponse`]'s JSON: raise it when the shape changes
/// (a field added, renamed or formatted otherwise). Cached answers are
/// keyed by it (and by the build), so a rolling deploy never mixes shapes.
pub const REPRESENTATION: u32 = 1;

/// The item reads of this request, through the response cache when it is on.
fn views(state: &AppState) -> Views<'_> {
    Views::new(domain::item::RESOURCE, REPRESENTATION, state.response_cache.as_deref())
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
    let query = listing::parse(req.query_string())?;
    let scope = caller.0.namespace();
    let page = listing::page(&query, &state.cursors, &scope)?;
    let load = state.items.list_page(&caller.0, page);
    let view = views(&state).list(&caller.0, &page, load, render_list).await?;
    let mut response = conditional::respond(&req, view.body)?;
    listing::link_next(&mut response, &req, &query, view.next.as_ref(), &state.cursors, &scope);
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
    let item_id = ItemId::parse(&id).ok_or(domain::Error::NotFound)?;
    let load = state.items.get(&caller.0, &id);
    let body = views(&state).record(&caller.0, item_id, load, render_item).await?;
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
