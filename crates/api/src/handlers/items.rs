//! `/api/v1/items`: the items of the caller's scope (personal, or an
//! organization's with `X-Organization-Id` or the session's active one).
//! Everything but the item's JSON and bodies is the resource kit's
//! ([`crate::resource`]).

use chrono::{DateTime, Utc};
use domain::item::{Item, ItemPatch, ItemService, NewItem};
use domain::validation::FieldErrors;
use serde::Serialize;
use uuid::Uuid;

use super::item_body::{CreateItemRequest, UpdateItemRequest};
use crate::resource::ApiResource;
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

impl ApiResource for Item {
    const REPRESENTATION: u32 = REPRESENTATION;
    type Response = ItemResponse;
    type CreateBody = CreateItemRequest;
    type UpdateBody = UpdateItemRequest;

    fn new_record(body: CreateItemRequest) -> Result<NewItem, FieldErrors> {
        NewItem::try_from(body)
    }

    fn patch(body: UpdateItemRequest) -> Result<ItemPatch, FieldErrors> {
        ItemPatch::try_from(body)
    }

    fn service(state: &AppState) -> Option<&ItemService> {
        Some(&state.items)
    }
}

crate::scoped_resource_docs! {
    record: Item, response: ItemResponse, create: CreateItemRequest, update: UpdateItemRequest,
    collection: "/api/v1/items", member: "/api/v1/items/{id}", tag: "items",
    operations: ("listItems", "createItem", "getItem", "updateItem", "deleteItem"),
}
