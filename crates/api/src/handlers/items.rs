//! `/api/v1/items`: the items of the caller's scope (personal, or an
//! organization's with `X-Organization-Id` or the session's active one).
//! Everything but the item's JSON and bodies is the resource kit's
//! ([`crate::resource`]).

use domain::item::{Item, ItemPatch, ItemService, NewItem};
use domain::validation::FieldErrors;

use super::item_body::{CreateItemRequest, UpdateItemRequest};
use crate::resource::ApiResource;
use crate::state::AppState;

crate::scoped_response!(ItemResponse for Item as Item {
    name: short String,
    description: long Option<String>,
    is_active: plain bool,
});

/// The version of [`ItemResponse`]'s JSON: raise it when the shape changes
/// (a field added, renamed or formatted otherwise). Cached answers are
/// keyed by it (and by the build), so a rolling deploy never mixes shapes.
pub const REPRESENTATION: u32 = 2;

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
